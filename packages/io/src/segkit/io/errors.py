"""Exceptions of segkit.io; every user-facing error in segkit derives from `SegkitError`."""


class SegkitError(Exception):
    """Base class of all segkit errors: a one-line message a CLI prints as-is (exit code 2)."""


def one_line(err: Exception) -> str:
    """The first line of a library's exception message (at most 160 characters), or its type's name, to quote as
    the cause inside a `SegkitError`'s message."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) < 160 else text[:157] + "..."


class ImageReadError(SegkitError):
    """A file or folder could not be read as an image (missing, corrupt, unsupported)."""


class ImageWriteError(SegkitError):
    """An image could not be written (unsupported extension, unwritable folder)."""


class FileWriteError(SegkitError):
    """A file could not be created where it was asked for (missing or read-only folder, a folder in the way)."""


class ImageGeometryError(SegkitError):
    """An image has invalid geometry, or two images that must share a grid do not."""


class DatasetError(SegkitError):
    """A dataset folder or its dataset.json does not follow the nnU-Net v2 raw layout."""

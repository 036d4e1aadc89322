"""Exceptions of segkit.io; every user-facing error in segkit derives from `SegkitError`."""


class SegkitError(Exception):
    """Base class of all segkit errors: a one-line message a CLI prints as-is (exit code 2)."""


def one_line(cause: Exception | str) -> str:
    """The first line of a library's exception message or of a text (at most 160 characters), or the exception's
    type name, to quote as the cause inside a `SegkitError`'s message."""
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
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

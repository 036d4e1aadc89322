"""Exceptions of segtool; all derive from `SegtoolError` (itself a `SegkitError`)."""

from segkit.io.errors import SegkitError


class SegtoolError(SegkitError):
    """Base class of segtool's user-facing errors: one line, exit code 2 from the CLI."""


class UnknownTaskError(SegtoolError):
    """A task, mode, class or group name that the registry does not know."""


class WeightsNotFoundError(SegtoolError):
    """The weights a task needs are not installed and may not be downloaded."""


class DownloadError(SegtoolError):
    """A download failed after its retries (network, HTTP status, truncated body)."""


class ChecksumMismatchError(SegtoolError):
    """A downloaded or imported file does not have the sha256 the registry promises."""


class ArchiveError(SegtoolError):
    """A model archive is corrupt, unsafe, or holds no recognisable model folder."""

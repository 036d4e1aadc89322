"""Exceptions of segtool; all derive from `SegtoolError` (itself a `SegkitError`)."""

import difflib
from collections.abc import Iterable

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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

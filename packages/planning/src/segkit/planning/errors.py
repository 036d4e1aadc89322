"""Exceptions of segkit.planning; all derive from `segkit.io.SegkitError` (CLI exit code 2)."""

from segkit.io.errors import SegkitError


class PlanningError(SegkitError):
    """Base class of planning errors: a one-line message for the user."""


class FingerprintError(PlanningError):
    """A dataset fingerprint could not be computed or read."""


class PlansError(PlanningError):
    """A plans file or one of its configurations is invalid or missing."""


class PreprocessingError(PlanningError):
    """A case could not be preprocessed, or a preprocessed case could not be read."""


class WorkerError(PlanningError):
    """A worker process died (often killed for lack of memory) while processing a case."""

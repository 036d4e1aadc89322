"""Exceptions of segkit.train; all derive from `segkit.io.SegkitError` (CLI exit code 2)."""

from segkit.io.errors import SegkitError


class TrainError(SegkitError):
    """Base class of training errors: a one-line message for the user."""


class TrainConfigError(TrainError):
    """A training configuration is invalid, or a trainer name is unknown."""


class TrainDataError(TrainError):
    """The preprocessed data, plans or split cannot be used (not planned, fold out of range...)."""


class PretrainedError(TrainError):
    """Pretrained weights do not fit the network (missing file, mismatching shapes)."""


class ResumeError(TrainError):
    """No valid checkpoint to resume from, or a checkpoint that belongs to another run."""


class NonFiniteLossError(TrainError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class DataWorkerError(TrainError):
    """A background data worker died or stopped answering."""

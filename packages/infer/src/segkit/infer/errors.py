"""Errors of segkit.infer: one base class, one-line messages (expected, found, how to fix)."""

from __future__ import annotations

from segkit.io.errors import SegkitError


class InferError(SegkitError):
    """Base class of segkit.infer's user errors."""


class ModelLoadError(InferError):
    """A model folder cannot be loaded (missing folds, plans, weights, unsupported configuration)."""


class InputMismatchError(InferError):
    """An input image does not fit the model (channels, dimensionality, non-finite values)."""


class OutputError(InferError):
    """An output location cannot be written."""


class EvaluationError(InferError):
    """Predictions and references cannot be compared (missing cases, different grids)."""

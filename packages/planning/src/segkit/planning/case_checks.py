"""Checks of one training case's arrays that planning and preprocessing cannot do without.

`segkit-plan --no-verify` (or the Python API, which does not verify) still must not turn a broken case into a
traceback, a NaN network or labels the loss cannot hold: these checks run on the arrays planning reads anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segkit.planning.errors import PreprocessingError


def check_case_arrays(identifier: str, data: np.ndarray, seg: np.ndarray | None, *,
                      label_values: Sequence[int] | None = None) -> None:
    """Raise if a case's image and labels cannot be planned or trained on.

    Args:
        identifier: the case name, for the message.
        data: ``(c, i, j, k)`` image.
        seg: ``(i, j, k)`` or ``(1, i, j, k)`` integer labels (already rounded), or None.
        label_values: the values ``dataset.json`` declares (background and ignore included); None skips that check.

    Raises:
        PreprocessingError: labels of another shape than the image, NaN/Inf voxels, or undeclared label values.

    Example:
        >>> check_case_arrays("case_1", np.zeros((1, 2, 2, 2)), np.zeros((2, 2, 2), np.int8), label_values=[0, 1])
    """
    if seg is not None:
        spatial = seg.shape[-3:] if seg.ndim == data.ndim else seg.shape
        if tuple(spatial) != tuple(data.shape[1:]):
            raise PreprocessingError(f"{identifier}: label shape {tuple(spatial)} differs from image shape "
                                     f"{tuple(data.shape[1:])}; fix the files or run `segkit-dataset verify`")
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise PreprocessingError(f"{identifier}: image has {bad} NaN/Inf voxels; fix the image (training on it "
                                     f"gives a NaN loss)")
    if seg is not None and label_values is not None and seg.size:
        low, high = int(seg.min()), int(seg.max())
        if set(range(low, high + 1)) <= set(label_values):  # the usual case, without sorting every voxel
            return
        undeclared = sorted(int(v) for v in np.setdiff1d(np.unique(seg), np.asarray(list(label_values))))
        if undeclared:
            raise PreprocessingError(f"{identifier}: label values {undeclared} are not declared in dataset.json "
                                     f"(declared: {sorted(label_values)})")

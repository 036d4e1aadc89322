"""A PNG with axial, coronal and sagittal views of the scan and its label overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segkit.io import Image
from segkit.io.atomic import atomic_path


def write_preview(scan: Image, labels: Image, path: Path) -> Path:
    """Draw three orthogonal slices through the labelled region's centre (canonical RAS view).

    Args:
        scan: the input image.
        labels: label map on the same grid.
        path: destination ``.png``.
    """
    # a Figure on an Agg canvas, not pyplot: the caller's backend and open figures stay as they were
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scan, labels = scan.to_canonical(), labels.to_canonical()
    volume = scan.array if scan.array.ndim == 3 else scan.array[0]
    centre = _centre(labels.array)
    low, high = np.percentile(volume, [1, 99])
    spacing = scan.spacing
    views = [  # (title, image slice, label slice, aspect)
        ("axial", volume[:, :, centre[2]], labels.array[:, :, centre[2]], spacing[1] / spacing[0]),
        ("coronal", volume[:, centre[1], :], labels.array[:, centre[1], :], spacing[2] / spacing[0]),
        ("sagittal", volume[centre[0], :, :], labels.array[centre[0], :, :], spacing[2] / spacing[1]),
    ]
    figure = Figure(figsize=(12, 4.5), facecolor="black")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3)
    colours = colormaps["tab20"].resampled(20)
    for axis, (title, image_slice, label_slice, aspect) in zip(axes, views, strict=True):
        axis.imshow(np.rot90(image_slice), cmap="gray", vmin=low, vmax=high, aspect=aspect)
        overlay = np.ma.masked_equal(np.rot90(label_slice), 0)
        axis.imshow(overlay % 20, cmap=colours, vmin=0, vmax=19, alpha=0.5, aspect=aspect, interpolation="nearest")
        axis.set_title(title, color="white")
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, facecolor="black", bbox_inches="tight")  # keeps every title
    return path


def _centre(labels: np.ndarray) -> tuple[int, int, int]:
    """Centre of the labelled voxels (or of the volume when nothing is labelled)."""
    found = np.argwhere(labels > 0)
    if len(found) == 0:
        return tuple(s // 2 for s in labels.shape)
    return tuple(int(v) for v in np.round(found.mean(axis=0)))

"""The `Image` contract: a voxel array with its exact world geometry.

Axis order (one for all of segkit): ``array[i, j, k]`` is the voxel at index ``(i, j, k)``
and ``affine @ [i, j, k, 1]`` is its centre in world millimetres, RAS+ (world x points to
the patient's Right, y to Anterior, z to Superior), as in NIfTI and nibabel. A
multi-channel image puts the channel axis first: ``array.shape == (c, i, j, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import nibabel.orientations as nio
import numpy as np

from segkit.io.errors import ImageGeometryError

CANONICAL_AXES = ("R", "A", "S")
XFORM_CODES = "nifti_xform_codes"  # meta key: a NIfTI file's (qform_code, sform_code), what its affine means
GRID_META_KEYS = (XFORM_CODES,)  # meta that describes the grid itself, not the voxels: see `Image.grid_meta`


@dataclass(frozen=True, eq=False)
class Image:
    """A 3D image (optionally multi-channel) and its voxel-to-world affine.

    Args:
        array: voxels, shape ``(i, j, k)`` or ``(c, i, j, k)`` (kept in the machine's byte order).
        affine: 4x4 voxel-index to RAS+ world (mm) matrix.
        meta: free-form, JSON-friendly facts kept alongside (for example label names).

    Example:
        >>> import numpy as np
        >>> img = Image(np.zeros((4, 5, 6), np.int16), np.diag([2.0, 2.0, 3.0, 1.0]))
        >>> img.spacing, img.spatial_shape
        ((2.0, 2.0, 3.0), (4, 5, 6))
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise ImageGeometryError(f"affine must be a finite 4x4 matrix, got shape {affine.shape}")
        if self.array.ndim not in (3, 4):
            raise ImageGeometryError(
                f"image must be 3D (i, j, k) or multi-channel (c, i, j, k), got {self.array.ndim} dimensions"
            )
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        if np.any(spacing <= 0) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ImageGeometryError(f"voxel spacing must be positive, got {tuple(spacing.round(6))}")
        object.__setattr__(self, "affine", affine)
        if not self.array.dtype.isnative:  # big-endian files (MGH always, NIfTI sometimes); torch takes native only
            object.__setattr__(self, "array", self.array.astype(self.array.dtype.newbyteorder("=")))

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """Shape of the spatial axes ``(i, j, k)``."""
        return tuple(int(s) for s in self.array.shape[-3:])

    @property
    def num_channels(self) -> int:
        """Number of channels (1 for a plain 3D image)."""
        return 1 if self.array.ndim == 3 else int(self.array.shape[0])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along ``(i, j, k)``."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit world (RAS+) directions of ``i, j, k``."""
        return self.affine[:3, :3] / np.asarray(self.spacing)

    @property
    def origin(self) -> tuple[float, float, float]:
        """World (RAS+, mm) position of voxel ``(0, 0, 0)``."""
        return tuple(float(v) for v in self.affine[:3, 3])

    @property
    def axis_codes(self) -> tuple[str, str, str]:
        """Anatomical direction each axis ``i, j, k`` points to, e.g. ``("L", "P", "S")``."""
        return tuple(nio.aff2axcodes(self.affine))

    def with_array(self, array: np.ndarray) -> Image:
        """Return an image on the same grid holding ``array`` (same spatial shape)."""
        if tuple(array.shape[-3:]) != self.spatial_shape:
            raise ImageGeometryError(
                f"new array has spatial shape {tuple(array.shape[-3:])}, expected {self.spatial_shape}"
            )
        return replace(self, array=array)

    def grid_meta(self) -> dict:
        """The meta entries that describe the grid rather than the voxels, for a new image on this grid (a mask
        written beside its scan keeps the scan's NIfTI qform and sform codes, not its label table)."""
        return {key: self.meta[key] for key in GRID_META_KEYS if key in self.meta}

    def channel(self, index: int) -> Image:
        """Return channel ``index`` as a plain 3D image."""
        if self.array.ndim == 3:
            if index != 0:
                raise ImageGeometryError(f"image has 1 channel, asked for channel {index}")
            return self
        return replace(self, array=self.array[index])

    def crop(self, box: tuple[slice, slice, slice]) -> Image:
        """Return the sub-volume ``box`` (one ``start:stop`` slice per spatial axis) at its true position.

        Example:
            >>> img = Image(np.zeros((4, 5, 6)), np.diag([2.0, 2.0, 3.0, 1.0]))
            >>> img.crop((slice(1, 3), slice(0, 5), slice(2, 4))).origin
            (2.0, 0.0, 6.0)
        """
        starts = []
        for axis, (part, size) in enumerate(zip(box, self.spatial_shape, strict=True)):
            start, stop, step = part.indices(size)
            if step != 1 or stop <= start:
                raise ImageGeometryError(f"crop along axis {axis} must be a non-empty start:stop slice, got {part}")
            starts.append(start)
        affine = self.affine.copy()
        affine[:3, 3] = self.affine[:3, :3] @ np.asarray(starts, dtype=np.float64) + self.affine[:3, 3]
        array = self.array[(..., *box)]
        return replace(self, array=np.ascontiguousarray(array), affine=affine)

    def reorient(self, axis_codes: tuple[str, str, str] | str) -> Image:
        """Return the same voxels re-laid so that axes point along ``axis_codes``.

        Only axis permutations and flips are applied, so the operation is exact and is
        undone by ``reoriented.reorient(original.axis_codes)``.
        """
        current = nio.io_orientation(self.affine)
        target = nio.axcodes2ornt(tuple(axis_codes))
        transform = nio.ornt_transform(current, target)
        if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
            return self
        spatial_offset = self.array.ndim - 3
        array = _apply_orientation(self.array, transform, spatial_offset)
        affine = self.affine @ nio.inv_ornt_aff(transform, self.spatial_shape)
        return replace(self, array=array, affine=affine)

    def to_canonical(self) -> Image:
        """Return the image in RAS+ axis order (see `reorient`)."""
        return self.reorient(CANONICAL_AXES)

    def same_grid(self, other: Image, *, tolerance: float = 1e-4) -> bool:
        """Tell whether ``other`` has the same spatial shape and affine (within ``tolerance`` mm)."""
        return self.spatial_shape == other.spatial_shape and bool(
            np.allclose(self.affine, other.affine, atol=tolerance, rtol=0)
        )


def _apply_orientation(array: np.ndarray, transform: np.ndarray, offset: int) -> np.ndarray:
    """Flip and permute the spatial axes (those after ``offset`` leading axes) of ``array``."""
    for axis, (_, flip) in enumerate(transform):
        if flip == -1:
            array = np.flip(array, axis=offset + axis)
    order = list(range(offset)) + [offset + int(i) for i in np.argsort(transform[:, 0])]
    return np.ascontiguousarray(np.transpose(array, order))

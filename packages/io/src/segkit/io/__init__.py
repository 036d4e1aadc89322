"""Medical image I/O with exact geometry, and nnU-Net v2 raw dataset folders.

Every image is an `Image`: voxels in ``(i, j, k)`` (or ``(c, i, j, k)``) order and the
4x4 voxel-to-RAS+ affine, whatever the file format. See `segkit.io.image`.
"""

from segkit.io.atomic import atomic_path
from segkit.io.errors import (
    DatasetError,
    FileWriteError,
    ImageGeometryError,
    ImageReadError,
    ImageWriteError,
    SegkitError,
)
from segkit.io.image import Image
from segkit.io.reading import ImageSource, as_image, read_channels, read_image
from segkit.io.writing import as_label_array, write_image

__all__ = [
    "DatasetError",
    "FileWriteError",
    "Image",
    "ImageGeometryError",
    "ImageReadError",
    "ImageSource",
    "ImageWriteError",
    "SegkitError",
    "as_image",
    "as_label_array",
    "atomic_path",
    "read_channels",
    "read_image",
    "write_image",
]

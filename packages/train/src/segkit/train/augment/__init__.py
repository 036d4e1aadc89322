"""nnU-Net's augmentation in torch: each transform draws parameters, then applies them deterministically.

The same code runs batched on the GPU or on a CPU batch inside a data worker. Images are
``(B, C, *spatial)`` float tensors, label maps ``(B, 1, *spatial)`` integer tensors, spatial axes in
segkit's (i, j, k) order.
"""

from segkit.train.augment.intensity import Brightness, Contrast, Gamma, GaussianBlur, GaussianNoise, LowResolution
from segkit.train.augment.pipeline import Augmenter, initial_patch_size
from segkit.train.augment.spatial import Mirror, SpatialTransform, center_crop

__all__ = [
    "Augmenter", "Brightness", "Contrast", "Gamma", "GaussianBlur", "GaussianNoise", "LowResolution", "Mirror",
    "SpatialTransform", "center_crop", "initial_patch_size",
]

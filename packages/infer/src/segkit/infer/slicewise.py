"""A 2D network presented as a 3D one, so that the 3D sliding window runs it slice by slice."""

from __future__ import annotations

import torch
from torch import nn


class Slicewise(nn.Module):
    """Run a 2D network on ``(b, c, *tile)`` tiles that are one voxel thick along ``slice_axis``.

    Example:
        >>> net = Slicewise(nn.Conv2d(1, 2, 3, padding=1), slice_axis=2)
        >>> tuple(net(torch.zeros(1, 1, 8, 6, 1)).shape)
        (1, 2, 8, 6, 1)
    """

    def __init__(self, network: nn.Module, slice_axis: int) -> None:
        super().__init__()
        self.network = network
        self.dim = 2 + slice_axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.squeeze(self.dim)).unsqueeze(self.dim)

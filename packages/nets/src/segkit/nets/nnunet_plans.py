"""Translate the ``architecture`` section of an nnU-Net v2 plans.json into an `ArchitectureSpec`.

nnU-Net lists kernel sizes and strides in its (z, y, x) axis order; segkit's order (i, j, k) is the
reverse, so every per-axis list is reversed here, once.
"""

from __future__ import annotations

from typing import Any

from segkit.nets.errors import ArchitectureSpecError
from segkit.nets.spec import ArchitectureSpec, Block, Nonlin, Norm

NETWORK_CLASSES = {"PlainConvUNet": Block.PLAIN, "ResidualEncoderUNet": Block.RESIDUAL}
_CONV_DIMS = {"Conv2d": 2, "Conv3d": 3}
_NORMS = {"InstanceNorm2d": Norm.INSTANCE, "InstanceNorm3d": Norm.INSTANCE, "BatchNorm2d": Norm.BATCH,
          "BatchNorm3d": Norm.BATCH}
_NONLINS = {"LeakyReLU": Nonlin.LEAKY_RELU, "ReLU": Nonlin.RELU}


def _short(name: Any) -> str:
    return str(name).rsplit(".", 1)[-1] if name else ""


def _lookup(table: dict[str, Any], name: Any, key: str) -> Any:
    short = _short(name)
    if short not in table:
        raise ArchitectureSpecError(f"nnU-Net plans {key}: unsupported {name!r}; supported: {', '.join(table)}")
    return table[short]


def _per_stage(value: Any, n: int, dims: int) -> list[list[int]]:
    rows = [value] * n if isinstance(value, int) else list(value)
    return [[row] * dims if isinstance(row, int) else list(row)[::-1] for row in rows]


def _counts(value: Any, n: int) -> list[int]:
    return [value] * n if isinstance(value, int) else list(value)


def spec_from_nnunet_architecture(architecture: dict[str, Any]) -> ArchitectureSpec:
    """Return the spec of the network that an nnU-Net v2 plans ``architecture`` section describes.

    Args:
        architecture: ``plans["configurations"][name]["architecture"]`` with ``network_class_name`` and
            ``arch_kwargs`` (PlainConvUNet or ResidualEncoderUNet from dynamic_network_architectures).

    Returns:
        The spec in segkit's axis order, deep supervision off (inference).

    Raises:
        ArchitectureSpecError: unsupported class, conv, norm, nonlinearity or option (names the key).
    """
    if not isinstance(architecture, dict) or "arch_kwargs" not in architecture:
        raise ArchitectureSpecError("nnU-Net plans: expected an 'architecture' dict with 'arch_kwargs' "
                                    "(plans from nnU-Net >= 2.4)")
    block = _lookup(NETWORK_CLASSES, architecture.get("network_class_name"), "network_class_name")
    kw = architecture["arch_kwargs"]
    dims = _lookup(_CONV_DIMS, kw.get("conv_op"), "conv_op")
    n = int(kw["n_stages"])
    norm_kwargs = kw.get("norm_op_kwargs") or {}
    if not norm_kwargs.get("affine", True):
        raise ArchitectureSpecError("nnU-Net plans norm_op_kwargs: affine=False is not supported")
    if kw.get("nonlin_first"):
        raise ArchitectureSpecError("nnU-Net plans nonlin_first=True is not supported (conv -> norm -> nonlin only)")
    nonlin_kwargs = kw.get("nonlin_kwargs") or {}
    features = kw["features_per_stage"]
    blocks_key = "n_blocks_per_stage" if block is Block.RESIDUAL else "n_conv_per_stage"
    if blocks_key not in kw:
        raise ArchitectureSpecError(f"nnU-Net plans arch_kwargs: missing {blocks_key!r}")
    return ArchitectureSpec(
        dims=dims,
        features_per_stage=_counts(features, n),
        kernel_sizes=_per_stage(kw["kernel_sizes"], n, dims),
        strides=_per_stage(kw["strides"], n, dims),
        blocks_per_stage=_counts(kw[blocks_key], n),
        blocks_per_stage_decoder=_counts(kw["n_conv_per_stage_decoder"], n - 1),
        block=block,
        norm=_lookup(_NORMS, kw.get("norm_op"), "norm_op"),
        deep_supervision=False,
        conv_bias=bool(kw.get("conv_bias", False)),
        nonlin=_lookup(_NONLINS, kw.get("nonlin"), "nonlin"),
        negative_slope=float(nonlin_kwargs.get("negative_slope", 0.01)),
        norm_eps=float(norm_kwargs.get("eps", 1e-5)),
        stem_channels=kw.get("stem_channels"),
    )

"""Dynamic U-Nets built from architecture specs, fusion for fast inference, nnU-Net weight import.

Public API::

    ArchitectureSpec, Block, Norm, Nonlin      the spec (segkit.nets.spec)
    build_network, register_network            networks by name (segkit.nets.registry)
    load_nnunet_checkpoint                     nnU-Net v2 checkpoint import (segkit.nets.nnunet_import)
    checkpoint_configuration                   the configuration an nnU-Net checkpoint was trained as
    spec_from_nnunet_architecture              nnU-Net plans ``architecture`` -> spec
    read_checkpoint                            safe torch.load with an allow-list
    fuse                                       fused eval-mode copy for inference (segkit.nets.fusion)
    compile_for_inference                      optional torch.compile with freezing (segkit.nets.compiling)
    save_weights, load_weights                 safetensors + spec (segkit.nets.weights)
    count_parameters, estimate_flops, feature_map_size   counts (segkit.nets.counting)
    cpu_bf16_pays                              whether bf16 pays on this CPU (segkit.nets.hardware)
    cpu_emulation_message                      why bf16/fp16 should not run on this CPU, if so
    autocast_dtype                             the autocast dtype a precision name means on a device
    cudnn_autotuning                           cuDNN's algorithm search on CUDA inside a block, as nnU-Net
"""

from segkit.nets.checkpoint import read_checkpoint
from segkit.nets.compiling import compile_for_inference
from segkit.nets.counting import count_parameters, estimate_flops, feature_map_size
from segkit.nets.errors import ArchitectureSpecError, CheckpointError, NetsError, PrecisionError, WeightsMismatchError
from segkit.nets.fusion import fuse
from segkit.nets.hardware import autocast_dtype, cpu_bf16_pays, cpu_emulation_message, cudnn_autotuning
from segkit.nets.nnunet_import import NnunetCheckpointInfo, checkpoint_configuration, load_nnunet_checkpoint
from segkit.nets.nnunet_plans import spec_from_nnunet_architecture
from segkit.nets.registry import build_network, register_network, registered_networks
from segkit.nets.spec import ArchitectureSpec, Block, Nonlin, Norm
from segkit.nets.unet import UNet
from segkit.nets.weights import StoredWeights, load_weights, save_weights

__all__ = [
    "ArchitectureSpec", "ArchitectureSpecError", "Block", "CheckpointError", "NetsError", "NnunetCheckpointInfo",
    "Nonlin", "Norm", "PrecisionError", "UNet", "WeightsMismatchError", "build_network", "checkpoint_configuration",
    "load_nnunet_checkpoint",
    "read_checkpoint", "register_network", "registered_networks", "spec_from_nnunet_architecture",
    "StoredWeights", "autocast_dtype", "compile_for_inference", "count_parameters", "cpu_bf16_pays",
    "cpu_emulation_message", "cudnn_autotuning", "estimate_flops", "feature_map_size", "fuse", "load_weights",
    "save_weights",
]

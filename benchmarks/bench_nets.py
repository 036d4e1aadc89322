"""Benchmark segkit.nets against nnU-Net's own network (dynamic_network_architectures) on the same weights.

Times one forward pass over a batch of sliding-window tiles for: nnU-Net's PlainConvUNet (fp32, and bf16
autocast for reference) in the peer venv (a subprocess, driven round by round so both sides see the same
machine load), and ours: unfused, fused, fused + bf16 autocast, fused with PyTorch's own conv kernels (A/B of
`OneDnnConv`), fused + channels_last_3d, fused + both.
Every output is compared with nnU-Net's fp32 logits (argmax agreement, max abs diff / logit scale).
A second part times a batch-norm and a re-parameterizable model unfused vs fused (fusion must not slow them).
``--check-import`` also checks the import of random ResidualEncoderUNet / 2D batch-norm PlainConvUNet
networks built by dynamic_network_architectures (no real checkpoints of those exist in the shared data).

Run:  .venv/bin/python benchmarks/bench_nets.py [--model ct|hippocampus] [--batch 2] [--rounds 3] [--compile]
Times are per forward of the whole batch; medians and minima over interleaved rounds (the machine is shared,
so the minimum is the least disturbed estimate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from segkit.nets import build_network, compile_for_inference, fuse, load_nnunet_checkpoint
from segkit.nets.blocks import ConvNormAct
from segkit.nets.fastpath import OneDnnConv

REF = Path(__file__).resolve().parents[2] / "shared" / "data" / "nnunet_reference"
PEER_PYTHON = "/work/peers/venv/bin/python"
HIPPO = REF / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"

PEER_WORKER = r"""
import json, sys, time, numpy as np, torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
torch.set_num_threads(int(sys.argv[5]))
arch = json.loads(open(sys.argv[2]).read())
net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                             1, int(sys.argv[6]), allow_init=False, deep_supervision=False)
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
net.load_state_dict(ckpt["network_weights"]); net.eval()
x = torch.from_numpy(np.load(sys.argv[3]))
def run(mode):
    with torch.no_grad():
        if mode == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)
        return net(x)
for mode in sys.argv[7].split(","):
    np.save(sys.argv[4] + f"_{mode}.npy", run(mode).float().numpy())
print("ready", flush=True)
for line in sys.stdin:
    mode = line.strip()
    if mode == "quit":
        break
    t0 = time.perf_counter(); run(mode); print(json.dumps({"seconds": time.perf_counter() - t0}), flush=True)
"""


PEER_RANDOM_NETS = r"""
import json, sys, numpy as np, torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
torch.manual_seed(0)
out = sys.argv[1]
cases = {
    "resenc_3d_aniso": ("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet", {
        "n_stages": 4, "features_per_stage": [8, 16, 32, 40], "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
        "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 1]], "n_blocks_per_stage": [1, 3, 4, 2],
        "n_conv_per_stage_decoder": [1, 1, 1], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True}}, (2, 1, 12, 24, 16)),
    "plain_2d_batchnorm": ("dynamic_network_architectures.architectures.unet.PlainConvUNet", {
        "n_stages": 3, "features_per_stage": [8, 16, 24], "conv_op": "torch.nn.modules.conv.Conv2d",
        "kernel_sizes": [[3, 3], [3, 1], [3, 3]], "strides": [[1, 1], [2, 1], [2, 2]],
        "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2], "conv_bias": False,
        "norm_op": "torch.nn.BatchNorm2d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.ReLU",
        "nonlin_kwargs": {"inplace": True}}, (2, 1, 20, 14)),
}
for name, (cls, kw, shape) in cases.items():
    net = get_network_from_plans(cls, kw, ["conv_op", "norm_op", "dropout_op", "nonlin"], 1, 3, deep_supervision=False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.3, 0.3); m.running_var.uniform_(0.5, 2); m.weight.uniform_(0.5, 1.5)
            if isinstance(m, (torch.nn.InstanceNorm3d, torch.nn.BatchNorm2d)):
                m.bias.uniform_(-0.3, 0.3)
    net.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        y = net(x)
    torch.save({"network_weights": net.state_dict(), "trainer_name": "random",
                "inference_allowed_mirroring_axes": (0, 1)}, f"{out}/{name}.pth")
    np.save(f"{out}/{name}_x.npy", x.numpy()); np.save(f"{out}/{name}_y.npy", y.numpy())
    arch = {"network_class_name": cls, "arch_kwargs": kw, "_kw_requires_import": []}
    json.dump(arch, open(f"{out}/{name}.json", "w"))
print(json.dumps(list(cases)))
"""


def check_imports(tmp: Path) -> dict:
    """Import random ResEnc-3D and BN-2D nnU-Net networks and compare with the peer's output for one input."""
    names = json.loads(subprocess.run([PEER_PYTHON, "-c", PEER_RANDOM_NETS, str(tmp)], check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1])
    out = {}
    for name in names:
        arch = json.loads((tmp / f"{name}.json").read_text())
        model, spec, _ = load_nnunet_checkpoint(tmp / f"{name}.pth", arch, in_channels=1, num_classes=3)
        x = torch.from_numpy(_to_ours(np.load(tmp / f"{name}_x.npy")))
        ref = _to_ours(np.load(tmp / f"{name}_y.npy"))
        with torch.no_grad():
            out[name] = {"unfused": _compare(model(x), ref), "fused": _compare(fuse(model)(x), ref),
                         "block": spec.block.value, "norm": spec.norm.value}
    return out


def _model_files(name: str, tmp: Path) -> tuple[Path, dict, int]:
    if name == "hippocampus":
        plans = json.loads((HIPPO / "plans.json").read_text())
        return HIPPO / "fold_0" / "checkpoint_final.pth", plans["configurations"]["3d_fullres"], 3
    archive = next((REF / "totalseg").glob("Dataset297_*.zip"))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp, members=[m for m in zf.namelist() if m.endswith(("plans.json", ".pth"))])
    folder = next(tmp.glob("Dataset297_*/nnUNetTrainer_*"))
    plans = json.loads((folder / "plans.json").read_text())
    return folder / "fold_0" / "checkpoint_final.pth", plans["configurations"]["3d_fullres"], 118


def _to_ours(array: np.ndarray) -> np.ndarray:
    """(b, c, z, y, x) nnU-Net order -> (b, c, i, j, k) segkit order."""
    order = (0, 1, *range(array.ndim - 1, 1, -1))
    return np.ascontiguousarray(array.transpose(order))


class Ours:
    """One of our inference variants: a module plus dtype and memory-format choices."""

    def __init__(self, module: torch.nn.Module, *, bf16: bool = False, channels_last: bool = False):
        self.module = module.to(memory_format=torch.channels_last_3d) if channels_last else module
        self.bf16, self.channels_last = bf16, channels_last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.to(memory_format=torch.channels_last_3d)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return self.module(x)


def _timed(fn, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    fn(x)
    return time.perf_counter() - t0


def _compare(out: torch.Tensor, ref: np.ndarray) -> dict:
    out_np = out.float().numpy()
    scale = float(np.abs(ref).max())
    worst = float(np.abs(out_np - ref).max())
    return {"max_abs_diff": worst, "rel_to_scale": worst / scale,
            "argmax_agreement": float((out_np.argmax(1) == ref.argmax(1)).mean())}


def _with_torch_conv_choice(fused: torch.nn.Module) -> torch.nn.Module:
    """Undo `OneDnnConv` (PyTorch picks each conv's kernel again), for the A/B of that wrapper."""
    for block in fused.modules():
        if isinstance(block, ConvNormAct) and isinstance(block.conv, OneDnnConv):
            block.conv = block.conv.conv
    return fused


def bench_nnunet(args: argparse.Namespace, tmp: Path) -> dict:
    """Peer fp32/bf16 vs our variants on a genuine nnU-Net model, interleaved round by round."""
    ckpt, config, classes = _model_files(args.model, tmp)
    tile = config["patch_size"]
    rng = np.random.default_rng(0)
    x_nn = rng.standard_normal((args.batch, 1, *tile), dtype=np.float32)
    np.save(tmp / "input.npy", x_nn)
    (tmp / "arch.json").write_text(json.dumps(config["architecture"]))
    modes = ("fp32",) if args.no_bf16 else ("fp32", "bf16")
    peer = subprocess.Popen([PEER_PYTHON, "-c", PEER_WORKER, str(ckpt), str(tmp / "arch.json"), str(tmp / "input.npy"),
                             str(tmp / "ref"), str(args.threads), str(classes), ",".join(modes)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    model, _, _ = load_nnunet_checkpoint(ckpt, config["architecture"], in_channels=1, num_classes=classes)
    fused = fuse(model)
    variants = {"ours_unfused": Ours(model), "ours_fused": Ours(fused), "ours_fused_bf16": Ours(fuse(model), bf16=True),
                "ours_fused_torch_convs": Ours(_with_torch_conv_choice(fuse(model))),
                "ours_fused_cl": Ours(fuse(model), channels_last=True),
                "ours_fused_bf16_cl": Ours(fuse(model), bf16=True, channels_last=True)}
    if args.no_bf16:
        variants = {k: v for k, v in variants.items() if "bf16" not in k}
    x = torch.from_numpy(_to_ours(x_nn))
    compile_seconds = None
    if args.compile:
        t0 = time.perf_counter()
        variants["ours_fused_compiled"] = Ours(compile_for_inference(fuse(model)))
        variants["ours_fused_compiled"](x)
        compile_seconds = time.perf_counter() - t0
    if peer.stdout.readline().strip() != "ready":
        raise RuntimeError("nnU-Net peer worker failed to start")
    ref = {m: _to_ours(np.load(tmp / f"ref_{m}.npy")) for m in modes}
    times: dict[str, list[float]] = {**{f"nnunet_{m}": [] for m in modes}, **{k: [] for k in variants}}
    quality = {"nnunet_bf16": _compare(torch.from_numpy(ref["bf16"]), ref["fp32"])} if "bf16" in modes else {}
    for name, fn in variants.items():  # warm-up and equivalence
        quality[name] = _compare(fn(x), ref["fp32"])
    for _ in range(args.rounds):
        for mode in modes:
            peer.stdin.write(mode + "\n")
            peer.stdin.flush()
            times[f"nnunet_{mode}"].append(json.loads(peer.stdout.readline())["seconds"])
        for name, fn in variants.items():
            times[name].append(_timed(fn, x))
    peer.stdin.write("quit\n")
    peer.stdin.flush()
    peer.wait()
    return {"model": args.model, "tile": tile, "batch": args.batch, "times": times, "quality": quality,
            "compile_seconds": compile_seconds}


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def bench_batch_norm(args: argparse.Namespace) -> dict:
    """Unfused vs fused fp32 for batch-norm plain and rep networks (CT-like 5-stage topology)."""
    from segkit.nets import ArchitectureSpec

    torch.manual_seed(0)
    out = {}
    tile = (128, 112, 80) if args.model == "ct" else (48, 64, 48)
    for block in ("plain", "rep"):
        spec = ArchitectureSpec(dims=3, features_per_stage=[32, 64, 128, 256, 320], kernel_sizes=[[3, 3, 3]] * 5,
                                strides=[[1, 1, 1]] + [[2, 2, 2]] * 4, blocks_per_stage=[2] * 5,
                                blocks_per_stage_decoder=[2] * 4, block=block, norm="batch", deep_supervision=False)
        model = _randomize_bn(build_network(spec, 1, 8))
        variants = {"unfused": Ours(model), "fused": Ours(fuse(model)),
                    "fused_no_fast_layers": Ours(fuse(model, fast_layers=False))}
        x = torch.randn(args.batch, 1, *tile)
        ref = variants["unfused"](x)
        diffs = {k: float((fn(x) - ref).abs().max()) for k, fn in variants.items()}
        times = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                times[name].append(_timed(fn, x))
        out[block] = {"times": times, "max_abs_diff_vs_unfused": diffs, "logit_scale": float(ref.abs().max())}
    return out


def _report(result: dict) -> None:
    times, quality = result["times"], result["quality"]
    base = statistics.median(times["nnunet_fp32"])
    print(f"\nmodel {result['model']}, tile batch {result['batch']} x {result['tile']} (nnU-Net order), "
          f"{len(times['nnunet_fp32'])} interleaved rounds; ratio = nnU-Net fp32 median / variant median")
    print(f"{'variant':22s} {'median s':>9s} {'min s':>7s} {'ratio':>6s} {'argmax agr.':>11s} {'max|d|/scale':>12s}")
    for name, ts in times.items():
        q = quality.get(name, {"argmax_agreement": 1.0, "rel_to_scale": 0.0})
        print(f"{name:22s} {statistics.median(ts):9.3f} {min(ts):7.3f} {base / statistics.median(ts):6.2f} "
              f"{q['argmax_agreement']:11.5f} {q['rel_to_scale']:12.2e}")
    if result.get("compile_seconds"):
        print(f"(compile + first call of the compiled variant: {result['compile_seconds']:.1f} s, not in the times)")


def _report_bn(bn: dict) -> None:
    for block, res in bn.items():
        med = {k: statistics.median(v) for k, v in res["times"].items()}
        print(f"batch-norm {block}: " + ", ".join(f"{k} {v:.3f}s" for k, v in med.items())
              + f"; fused speed-up x{med['unfused'] / med['fused']:.2f}; max|d| vs unfused "
              + ", ".join(f"{k} {v:.1e}" for k, v in res["max_abs_diff_vs_unfused"].items())
              + f" (logit scale {res['logit_scale']:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["ct", "hippocampus"], default="ct")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="add torch.compile (inductor, freezing) variant")
    parser.add_argument("--skip-bn", action="store_true", help="skip the batch-norm fusion timing")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 variants (CPUs without bf16 units "
                        "emulate it, many times slower)")
    parser.add_argument("--check-import", action="store_true", help="also check ResEnc / 2D BN import vs the peer")
    parser.add_argument("--json", type=Path, help="write all numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_nnunet(args, Path(tmp))
        if args.check_import:
            result["import_checks"] = check_imports(Path(tmp))
            print(json.dumps(result["import_checks"]), flush=True)
    _report(result)
    if args.json:
        args.json.write_text(json.dumps({"nnunet": result}, indent=1))
    bn = None if args.skip_bn else bench_batch_norm(args)
    if bn:
        _report_bn(bn)
    if args.json:
        args.json.write_text(json.dumps({"nnunet": result, "batch_norm": bn}, indent=1))


if __name__ == "__main__":
    main()

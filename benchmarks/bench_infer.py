"""segkit-predict beside nnUNetv2_predict_from_modelfolder: wall time, peak memory, Dice between outputs.

Both tools run as subprocesses of this script, one after the other, with the same nnU-Net v2 model
folder, fold 0, step 0.5, the same TTA setting, on the CPU, one process each (nnU-Net with ``-npp 1
-nps 1``):

(a) ``hippo``: 20 hippocampus cases (the first 20 of imagesTr), the genuine nnU-Net model of
    nnunet_reference/ (mirroring TTA on, as both tools default);
(b) ``ct``: the CT example resampled to 1.5 mm (about 244x202x224 voxels, cubic, with segkit.planning),
    the Dataset297 3 mm model from the TotalSegmentator-layout zip (extracted to a temp folder),
    without TTA (``--no-tta`` / ``--disable_tta``) as TotalSegmentator runs it.

Wall time is measured around each command (process start to exit, imports included). Peak memory is
the largest sum over the command's process tree of each process's PSS (shared pages split between
sharers) and of its RSS, sampled from /proc (`process_tree.TreeMemory`). Dice per case and class is computed between
the two tools' label maps; segkit's share of time inside network forward passes comes from
``segkit-predict --timing``.

segkit runs at its default precision (``auto``: bf16 autocast on CPUs where it pays, else fp32) unless
``--precision`` says otherwise; nnU-Net always runs fp32 on the CPU.

Usage: .venv/bin/python benchmarks/bench_infer.py [--only hippo|ct] [--cases 20] [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from process_tree import run_measured_or_exit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REFERENCE = DATA / "nnunet_reference"
HIPPO_MODEL = REFERENCE / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"
CT_ZIP = REFERENCE / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
PEER = Path("/work/peers/venv/bin")
# nnU-Net finds the trainer class named in the checkpoint by importing every trainer module; in the peer venv
# that dies importing Primus -> timm -> torchvision (wheel mismatch), and the reference trainers
# (nnUNetTrainer_refShort, ..._NoMirroring) only change training. The launcher hands nnU-Net its base trainer
# class (which builds the network from the plans) and runs the unmodified entry point: it skips the search, so
# it can only make nnU-Net faster.
LAUNCHER = """import nnunetv2.inference.predict_from_raw_data as p
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
p.recursive_find_trainer_class_by_name = lambda name: nnUNetTrainer
if __name__ == "__main__":
    p.predict_entry_point_modelfolder()
"""
OURS = REPO / ".venv" / "bin"


def dice_table(ours: Path, theirs: Path) -> tuple[float, float, int, float]:
    """Return (min, mean) Dice over cases and classes present in either output, their number, voxel agreement."""
    from segkit.io import read_image

    scores, same, total = [], 0, 0
    for path in sorted(theirs.glob("*.nii.gz")):
        a = read_image(ours / path.name).array
        b = read_image(path).array
        same += int((a == b).sum())
        total += a.size
        for label in np.union1d(np.unique(a), np.unique(b)):
            if label == 0:
                continue
            x, y = a == label, b == label
            scores.append(2.0 * (x & y).sum() / (x.sum() + y.sum()))
    return float(np.min(scores)), float(np.mean(scores)), len(scores), same / total


def prepare_hippo(work: Path, cases: int) -> Path:
    inputs = work / "hippo_in"
    inputs.mkdir()
    for path in sorted((DATA / "Dataset004_Hippocampus" / "imagesTr").glob("*_0000.nii.gz"))[:cases]:
        (inputs / path.name).symlink_to(path)
    return inputs


def prepare_ct(work: Path) -> tuple[Path, Path]:
    from segkit.io import Image, read_image, write_image
    from segkit.io.safe_zip import extract_zip
    from segkit.planning.resampling import resample_image

    extract_zip(CT_ZIP, work / "model")
    model = next((work / "model").glob("*/nnUNetTrainer*"))
    image = read_image(DATA / "ct_examples" / "example_ct.nii.gz")
    data = resample_image(image.array[None].astype(np.float32), from_spacing=image.spacing,
                          to_spacing=(1.5, 1.5, 1.5)).numpy()[0]
    scale = np.asarray(image.spatial_shape) / np.asarray(data.shape)  # old voxels per new voxel
    affine = image.affine.copy()
    affine[:3, :3] = image.affine[:3, :3] * scale  # columns: new voxel steps
    affine[:3, 3] = image.affine[:3, :3] @ (scale * 0.5 - 0.5) + image.affine[:3, 3]  # same outer corner
    inputs = work / "ct_in"
    inputs.mkdir()
    write_image(Image(np.round(data).astype(np.int16), affine), inputs / "ct15_0000.nii.gz")
    return inputs, model


def run_pair(name: str, inputs: Path, model: Path, work: Path, *, tta: bool, precision: str) -> dict:
    theirs, ours = work / f"{name}_nnunet", work / f"{name}_segkit"
    timing = work / f"{name}_timing.json"
    launcher = work / "nnunet_launcher.py"
    launcher.write_text(LAUNCHER)
    nnunet = [str(PEER / "python"), str(launcher), "-i", str(inputs), "-o", str(theirs), "-m", str(model),
              "-f", "0", "-step_size", "0.5", "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_progress_bar"]
    segkit = [str(OURS / "segkit-predict"), "-i", str(inputs), "-o", str(ours), "-m", str(model), "-f", "0",
              "--step", "0.5", "--device", "cpu", "--precision", precision, "--quiet", "--timing", str(timing)]
    if not tta:
        nnunet.append("--disable_tta")
        segkit.append("--no-tta")
    env = {**os.environ, "nnUNet_raw": str(work), "nnUNet_preprocessed": str(work), "nnUNet_results": str(work)}
    result = {"nnunet": run_measured_or_exit(nnunet, env), "segkit": run_measured_or_exit(segkit)}
    result["dice_min"], result["dice_mean"], result["dice_n"], result["agreement"] = dice_table(ours, theirs)
    stats = json.loads(timing.read_text())
    result["forward_share"] = stats["forward_s"] / stats["wall_s"]
    result["segkit_inner_wall_s"] = stats["wall_s"]
    return result


def report(name: str, result: dict) -> None:
    n, s = result["nnunet"], result["segkit"]
    print(f"## {name}")
    print("| tool | wall time | CPU time (tree) | peak PSS sum | peak RSS sum |")
    print("|---|---|---|---|---|")
    for label, r in (("nnU-Net", n), ("segkit", s)):
        print(f"| {label} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {r['pss_mb']:.0f} MB | {r['rss_mb']:.0f} MB |")
    print(f"| segkit / nnU-Net | {s['wall_s'] / n['wall_s']:.2f}x | {s['cpu_s'] / n['cpu_s']:.2f}x | "
          f"{s['pss_mb'] / n['pss_mb']:.2f}x | {s['rss_mb'] / n['rss_mb']:.2f}x |")
    print(f"Dice segkit vs nnU-Net over {result['dice_n']} case-class pairs: min {result['dice_min']:.4f}, "
          f"mean {result['dice_mean']:.4f}; voxel agreement {result['agreement']:.5f}")
    print(f"segkit time inside network forward passes: {result['forward_share'] * 100:.0f}% of its "
          f"{result['segkit_inner_wall_s']:.1f} s in-process wall time\n", flush=True)


def main() -> None:
    """Run the comparisons and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("hippo", "ct"))
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="Work in this (new) folder and keep the outputs.")
    parser.add_argument("--precision", default="auto", help="segkit-predict's --precision (nnU-Net: fp32 on CPU).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        work = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            work = args.keep
        print(f"load average at start: {os.getloadavg()}; segkit precision {args.precision}")
        if args.only in (None, "hippo"):
            inputs = prepare_hippo(work, args.cases)
            report(f"(a) {args.cases} hippocampus cases, TTA", run_pair("hippo", inputs, HIPPO_MODEL, work, tta=True,
                                                                     precision=args.precision))
        if args.only in (None, "ct"):
            inputs, model = prepare_ct(work)
            report("(b) CT example at 1.5 mm, no TTA", run_pair("ct", inputs, model, work, tta=False,
                                                                  precision=args.precision))
        print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Fingerprint + plan + preprocess of the 220 hippocampus cases: segkit-plan beside nnU-Net v2.

Runs, in this one process and one after the other (alternating when repeated):

- nnU-Net: ``nnUNetv2_plan_and_preprocess -d 4 -c 3d_fullres -np 2`` from the peer venv
  (``/work/peers/venv``), with nnUNet_raw / nnUNet_preprocessed / nnUNet_results set to
  fresh temp folders and the dataset symlinked into nnUNet_raw;
- segkit: ``segkit-plan DATASET -o OUT -c 3d_fullres -w 2 -q`` (dataset verification included).

Wall time is measured around each command; CPU time is the command's user + system time including
its worker processes (os.wait4), which depends less on what else the machine runs. Peak memory is
the largest sum, over the command's whole process tree, of each process's proportional set size
(PSS: shared pages split between the processes sharing them), sampled from /proc (`process_tree.TreeMemory`); the
peak RSS sum is printed too.

Usage: .venv/bin/python benchmarks/bench_planning.py [--repeats N] [--dataset DIR]

``--write-reference-plans FILE`` instead runs nnU-Net's ExperimentPlanner (peer venv) on a few
synthetic fingerprints (large isotropic images, thick-sliced scans, CT + masked MR) and writes
the fingerprints and nnU-Net's plans to FILE, for tests/planning/test_nnunet_reference.py.

``--compare-resampling`` instead resamples the CT example and its 62-label mask with nnU-Net's
``resample_data_or_seg_to_shape`` (peer venv) and with segkit's torch functions, isotropic and
with separate-z handling, and prints how far apart they are and how long each took.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from process_tree import run_measured_or_exit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "Dataset004_Hippocampus"
PEER_VENV = Path("/work/peers/venv")


def compare_outputs(nnunet_work: Path, segkit_work: Path) -> str:
    """Compare the preprocessed arrays of every case (nnU-Net's are (c, z, y, x): reversed)."""
    import blosc2
    import numpy as np

    theirs_dir = nnunet_work / "preprocessed" / "Dataset004_Hippocampus" / "nnUNetPlans_3d_fullres"
    ours_dir = segkit_work / "segkit" / "3d_fullres"
    worst, seg_equal, n = 0.0, 0, 0
    for path in sorted(ours_dir.glob("*.json")):
        case = path.stem
        ours = blosc2.open(str(ours_dir / f"{case}.b2nd"))[:]
        theirs = blosc2.open(str(theirs_dir / f"{case}.b2nd"))[:].transpose(0, 3, 2, 1)
        seg_ours = blosc2.open(str(ours_dir / f"{case}_seg.b2nd"))[:]
        seg_theirs = blosc2.open(str(theirs_dir / f"{case}_seg.b2nd"))[:].transpose(0, 3, 2, 1)
        if ours.shape != theirs.shape:
            return f"case {case}: shape {ours.shape} vs nnU-Net {theirs.shape}"
        worst = max(worst, float(np.abs(ours - theirs).max()))
        seg_equal += int(np.array_equal(seg_ours, seg_theirs))
        n += 1
    return f"{n} cases: same shapes, max |data difference| {worst:.2e}, labels identical in {seg_equal}/{n}"


def run_nnunet(dataset: Path, work: Path) -> dict:
    raw, pre, res = (work / name for name in ("raw", "preprocessed", "results"))
    for folder in (raw, pre, res):
        folder.mkdir(parents=True)
    (raw / "Dataset004_Hippocampus").symlink_to(dataset)
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre), "nnUNet_results": str(res)}
    command = [str(PEER_VENV / "bin" / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c", "3d_fullres", "-np", "2"]
    result = run_measured_or_exit(command, env)
    cases = list((pre / "Dataset004_Hippocampus" / "nnUNetPlans_3d_fullres").glob("*.b2nd"))
    result["outputs"] = len([c for c in cases if not c.name.endswith("_seg.b2nd")])
    return result


def run_segkit(dataset: Path, work: Path) -> dict:
    out = work / "segkit"
    command = [
        str(REPO / ".venv" / "bin" / "segkit-plan"),
        str(dataset),
        "-o",
        str(out),
        "-c",
        "3d_fullres",
        "-w",
        "2",
        "-q",
    ]
    result = run_measured_or_exit(command, dict(os.environ))
    result["outputs"] = len(list((out / "3d_fullres").glob("*.json")))
    return result


SYNTHETIC = {
    # name: (channel_names, median_relative_size_after_cropping, spacings (i, j, k), shapes (i, j, k))
    "large_isotropic": (
        {"0": "MRI"},
        1.0,
        [[0.8, 0.8, 0.8]] * 10,
        [[400 + 7 * n, 380 + 5 * n, 360 + 3 * n] for n in range(10)],
    ),
    "thick_slices": (
        {"0": "CT"},
        0.9,
        [[0.7 + 0.02 * n, 0.7 + 0.02 * n, [2.5, 3.0, 5.0, 5.0, 6.0][n % 5]] for n in range(20)],
        [[512, 512, 40 + 9 * n] for n in range(20)],
    ),
    "ct_and_masked_mr": ({"0": "CT", "1": "T2"}, 0.5, [[1.0, 1.2, 1.5]] * 4, [[160, 170, 120]] * 4),
}

PEER_PLANNER = """
import json, sys
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
    nnUNetPlannerResEncL, nnUNetPlannerResEncM, nnUNetPlannerResEncXL)
planners = {"default": ExperimentPlanner, "resenc_m": nnUNetPlannerResEncM, "resenc_l": nnUNetPlannerResEncL,
            "resenc_xl": nnUNetPlannerResEncXL}
print(json.dumps({name: planner(sys.argv[1]).plan_experiment() for name, planner in planners.items()}))
"""


def write_reference_plans(path: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="nnunet_reference_plans_"))
    reference = {}
    try:
        for index, (name, (channels, relative, spacings, shapes)) in enumerate(SYNTHETIC.items()):
            dataset = f"Dataset{900 + index}_{name}"
            raw, pre = work / "raw" / dataset, work / "preprocessed" / dataset
            (raw / "imagesTr").mkdir(parents=True)
            pre.mkdir(parents=True)
            for case in range(len(spacings)):
                for channel in channels:
                    (raw / "imagesTr" / f"case{case:03d}_{int(channel):04d}.nii.gz").touch()
            labels = {"background": 0, "a": 1, "b": 2}
            (raw / "dataset.json").write_text(
                json.dumps(
                    {
                        "channel_names": channels,
                        "labels": labels,
                        "numTraining": len(spacings),
                        "file_ending": ".nii.gz",
                        "overwrite_image_reader_writer": "SimpleITKIO",
                    }
                )
            )
            stats = {
                str(c): {
                    "mean": 50.0,
                    "std": 100.0,
                    "median": 40.0,
                    "min": -1000.0,
                    "max": 2000.0,
                    "percentile_00_5": -900.0,
                    "percentile_99_5": 900.0,
                }
                for c in channels
            }
            (pre / "dataset_fingerprint.json").write_text(
                json.dumps(
                    {
                        "spacings": [s[::-1] for s in spacings],
                        "shapes_after_crop": [s[::-1] for s in shapes],
                        "foreground_intensity_properties_per_channel": stats,
                        "median_relative_size_after_cropping": relative,
                    }
                )
            )
            env = {
                **os.environ,
                "nnUNet_raw": str(work / "raw"),
                "nnUNet_preprocessed": str(work / "preprocessed"),
                "nnUNet_results": str(work / "results"),
            }
            done = subprocess.run(
                [str(PEER_VENV / "bin" / "python"), "-c", PEER_PLANNER, dataset],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            plans = json.loads(done.stdout.strip().splitlines()[-1])
            reference[name] = {
                "channel_names": channels,
                "labels": labels,
                "median_relative_size_after_cropping": relative,
                "spacings": spacings,
                "shapes_after_crop": shapes,
                "intensity": stats,
                "nnunet_plans": plans["default"],
                "nnunet_resenc_plans": {k: v for k, v in plans.items() if k != "default"},
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path.write_text(json.dumps(reference, indent=1))
    print(f"wrote {path}")


PEER_RESAMPLER = """
import sys, time, numpy as np
from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape
data = np.load(sys.argv[1])
shape, spacing, new_spacing = [[float(v) for v in a.split(',')] for a in sys.argv[3:6]]
is_seg = sys.argv[6] == 'seg'
start = time.perf_counter()
out = resample_data_or_seg_to_shape(data, [int(v) for v in shape], spacing, new_spacing, is_seg=is_seg,
                                    order=1 if is_seg else 3, order_z=0, force_separate_z=None)
print(time.perf_counter() - start)
np.save(sys.argv[2], out)
"""


def compare_resampling() -> None:
    import nibabel as nib
    import numpy as np

    sys.path.insert(0, str(REPO / "packages" / "planning" / "src"))
    from segkit.planning.resampling import resample_image, resample_labels
    from segkit.planning.spacing import compute_new_shape

    ct = REPO.parent / "shared" / "data" / "ct_examples"
    image = np.asanyarray(nib.load(ct / "example_ct.nii.gz").dataobj).astype(np.float32)[None]
    labels = np.asanyarray(nib.load(ct / "example_seg_fast_force_split.nii.gz").dataobj).astype(np.int16)[None]
    cases = {
        "isotropic 3 -> 1.5 mm": ((3.0, 3.0, 3.0), (1.5, 1.5, 1.5)),
        "thick slices 1x1x5 -> 0.8x0.8x2.5 mm (separate z)": ((1.0, 1.0, 5.0), (0.8, 0.8, 2.5)),
    }
    work = Path(tempfile.mkdtemp(prefix="resampling_compare_"))
    try:
        for title, (spacing, target) in cases.items():
            shape = compute_new_shape(image.shape[1:], spacing, target)
            print(title, "->", shape)
            for kind, array in (("image", image), ("seg", labels)):
                source, result = work / f"{kind}_in.npy", work / f"{kind}_out.npy"
                np.save(source, np.ascontiguousarray(array.transpose(0, 3, 2, 1)))  # nnU-Net's (c, z, y, x)
                args = [",".join(str(v) for v in values[::-1]) for values in (shape, spacing, target)]
                command = [
                    str(PEER_VENV / "bin" / "python"),
                    "-c",
                    PEER_RESAMPLER,
                    str(source),
                    str(result),
                    *args,
                    kind,
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                theirs = np.load(result).transpose(0, 3, 2, 1)
                start = time.perf_counter()
                if kind == "image":
                    ours = resample_image(array, from_spacing=spacing, to_spacing=target).numpy()
                else:
                    ours = resample_labels(array, from_spacing=spacing, to_spacing=target).numpy()
                took = time.perf_counter() - start
                timing = f"nnU-Net {float(done.stdout.split()[-1]):.2f} s, segkit {took:.2f} s"
                if kind == "image":
                    diff = np.abs(ours - theirs)
                    corr = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
                    print(
                        f"  image: mean |diff| {diff.mean():.2f} HU, 99th pct {np.percentile(diff, 99):.1f} HU, "
                        f"correlation {corr:.5f}; {timing}"
                    )
                else:
                    dice = []
                    for value in np.unique(labels):
                        a, b = ours == value, theirs == value
                        if value > 0 and (a.sum() + b.sum()) > 0:
                            dice.append(2 * (a & b).sum() / (a.sum() + b.sum()))
                    print(
                        f"  labels: voxels equal {(ours == theirs).mean():.4f}, Dice ours vs nnU-Net over "
                        f"{len(dice)} labels: mean {np.mean(dice):.4f}, min {np.min(dice):.4f}; {timing}"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--write-reference-plans", type=Path, default=None)
    parser.add_argument("--compare-resampling", action="store_true")
    args = parser.parse_args()
    if args.compare_resampling:
        compare_resampling()
        return
    if args.write_reference_plans is not None:
        write_reference_plans(args.write_reference_plans)
        return
    results: dict[str, list[dict]] = {"nnU-Net": [], "segkit": []}
    for repeat in range(args.repeats):
        order = [("nnU-Net", run_nnunet), ("segkit", run_segkit)]
        works = {}
        try:
            for name, runner in order if repeat % 2 == 0 else order[::-1]:
                works[name] = Path(tempfile.mkdtemp(prefix=f"bench_planning_{name}_"))
                result = runner(args.dataset.resolve(), works[name])
                results[name].append(result)
                print(
                    f"run {repeat + 1} {name:8s} wall {result['wall_s']:6.1f} s  CPU {result['cpu_s']:6.1f} s  "
                    f"peak PSS {result['pss_mb']:7.0f} MB  "
                    f"peak RSS sum {result['rss_mb']:7.0f} MB  cases written {result['outputs']}",
                    flush=True,
                )
            if repeat == 0:
                print("outputs:", compare_outputs(works["nnU-Net"], works["segkit"]), flush=True)
        finally:
            for work in works.values():
                shutil.rmtree(work, ignore_errors=True)
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
    ours, theirs = best["segkit"], best["nnU-Net"]
    print()
    print("| tool | wall time (best) | CPU time (same run) | peak memory (PSS sum) | peak RSS sum |")
    print("|---|---|---|---|---|")
    for name in ("nnU-Net", "segkit"):
        r = best[name]
        print(f"| {name} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {r['pss_mb']:.0f} MB | {r['rss_mb']:.0f} MB |")
    ratios = [ours[k] / theirs[k] for k in ("wall_s", "cpu_s", "pss_mb", "rss_mb")]
    print("| segkit / nnU-Net | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
    main()

"""segtool beside TotalSegmentator: same input, same nnU-Net model folder, one process each (issue #6).

Both tools get the same weights, installed offline into fresh temp homes:

- segtool: ``SEGTOOL_HOME=H segtool weights import ZIP``, then
  ``segtool -i CT -o OUT.nii.gz -ta total --fast --ml -q --device cpu``;
- TotalSegmentator (peer venv ``/work/peers/venv``): ZIP unzipped into ``TOTALSEG_HOME_DIR/nnunet/results``
  with a ``config.json`` that turns usage statistics off, then ``TotalSegmentator -i CT -o OUT.nii.gz --fast --ml
  -d cpu``. Where the peer venv cannot import torchvision (its torchvision wheel does not match its torch, so
  nnU-Net's trainer-class search dies importing Primus -> timm -> torchvision), TotalSegmentator is started through a
  five-line launcher that hands it the trainer class directly (TotalSegmentator's own ``custom_trainers`` hook) and
  then calls its unmodified ``main``. That skips the class search, so it can only make TotalSegmentator faster.

Each command is a subprocess; runs alternate (theirs, ours, ours, theirs, ...) and the best wall time is kept.
Measured per run: wall time; CPU time (user + sys of the whole tree, from ``wait4``: less sensitive to a busy machine
than wall time); peak memory of the whole process tree (nnU-Net spawns worker processes) as the largest sum of RSS
and of PSS (shared pages split between sharers) over all processes of the tree, sampled from /proc
(`process_tree.TreeMemory`; the RSS sum is floored at the exact peak of the largest single process, ``ru_maxrss``,
which sampling can miss); and the load average.
The outputs are compared voxel by voxel: agreement, and Dice per class present in either output.

Usage: .venv/bin/python benchmarks/bench_segtool.py [--repeats N] [--no-dicom] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from process_tree import run_measured

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ZIP = DATA / "nnunet_reference" / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
CT = DATA / "ct_examples" / "example_ct.nii.gz"
DICOM = DATA / "ct_examples" / "example_ct_dicom"
SEGTOOL = Path(sys.executable).parent / "segtool"
PEER_PYTHON = Path("/work/peers/venv/bin/python")
PEER_TOTALSEG = PEER_PYTHON.parent / "TotalSegmentator"
LAUNCHER = '''import sys
if __name__ == "__main__":
    import totalsegmentator.nnunet as tn
    from nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs_NoMirroring import (
        nnUNetTrainer_4000epochs_NoMirroring as trainer)
    tn.custom_trainers[trainer.__name__] = trainer
    from totalsegmentator.bin.TotalSegmentator import main
    sys.argv[0] = "TotalSegmentator"
    sys.exit(main())
'''


def install(work: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Install the model zip for both tools; returns (segtool env, TotalSegmentator env)."""
    ours = dict(os.environ, SEGTOOL_HOME=str(work / "segtool_home"))
    subprocess.run([str(SEGTOOL), "weights", "import", str(ZIP)], env=ours, check=True, capture_output=True)
    theirs_home = work / "totalseg_home"
    with zipfile.ZipFile(ZIP) as archive:
        archive.extractall(theirs_home / "nnunet" / "results")
    config = {"totalseg_id": "totalseg_BENCHMRK", "send_usage_stats": False, "prediction_counter": 0}
    (theirs_home / "config.json").write_text(json.dumps(config, indent=4))
    return ours, dict(os.environ, TOTALSEG_HOME_DIR=str(theirs_home))


def totalseg_command(work: Path) -> list[str]:
    """The stock entry point, or the launcher where the peer venv cannot import torchvision."""
    probe = subprocess.run([str(PEER_PYTHON), "-c", "import torchvision"], capture_output=True)
    if probe.returncode == 0:
        return [str(PEER_TOTALSEG)]
    launcher = work / "totalseg_launcher.py"
    launcher.write_text(LAUNCHER)
    print("peer venv: `import torchvision` fails, TotalSegmentator runs through the launcher (see docstring)")
    return [str(PEER_PYTHON), str(launcher)]


def code_version() -> str:
    """HEAD commit, and how many files under packages/ and apps/ differ from it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "packages", "apps"], capture_output=True, text=True)
    return f"commit {head or '?'}, {len(dirty.stdout.splitlines())} changed files under packages/ and apps/"


def label_names() -> dict[int, str]:
    with zipfile.ZipFile(ZIP) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/dataset.json"))
        labels = json.loads(archive.read(name))["labels"]
    return {int(v): k for k, v in labels.items()}


def compare(ours_path: Path, theirs_path: Path) -> dict:
    """Voxel agreement and per-class Dice (classes present in either output) between two label maps."""
    ours_img, theirs_img = nib.load(ours_path), nib.load(theirs_path)
    if ours_img.shape != theirs_img.shape or not np.allclose(ours_img.affine, theirs_img.affine, atol=1e-4):
        return {"same_grid": False, "shapes": [ours_img.shape, theirs_img.shape]}
    ours, theirs = np.asarray(ours_img.dataobj), np.asarray(theirs_img.dataobj)
    counts_ours = np.bincount(ours.ravel().astype(np.int64))
    counts_theirs = np.bincount(theirs.ravel().astype(np.int64))
    size = max(len(counts_ours), len(counts_theirs))
    counts_ours, counts_theirs = np.pad(counts_ours, (0, size - len(counts_ours))), np.pad(
        counts_theirs, (0, size - len(counts_theirs)))
    both = np.bincount(ours[ours == theirs].astype(np.int64), minlength=size)
    present = [c for c in range(1, size) if counts_ours[c] or counts_theirs[c]]
    dice = {c: 2.0 * both[c] / (counts_ours[c] + counts_theirs[c]) for c in present}
    fg_both = both[1:].sum()
    return {
        "same_grid": True, "voxels": int(ours.size), "agreement": float((ours == theirs).mean()),
        "foreground_dice": float(2.0 * fg_both / (counts_ours[1:].sum() + counts_theirs[1:].sum())),
        "classes": {c: {"dice": float(dice[c]), "ours": int(counts_ours[c]), "theirs": int(counts_theirs[c])}
                    for c in present},
    }


def report_comparison(title: str, result: dict, names: dict[int, str], show_all: bool) -> None:
    if not result["same_grid"]:
        print(f"{title}: outputs on different grids {result['shapes']}")
        return
    classes = result["classes"]
    dice = np.array([c["dice"] for c in classes.values()]) if classes else np.array([1.0])
    print(f"\n{title}: voxel agreement {result['agreement']:.6f}, foreground Dice {result['foreground_dice']:.4f}, "
          f"{len(classes)} classes: mean Dice {dice.mean():.4f}, min {dice.min():.4f}, "
          f"{int((dice >= 0.99).sum())}/{len(classes)} classes >= 0.99")
    rows = sorted(classes.items(), key=lambda kv: kv[1]["dice"])
    print(f"  {'class':<34} {'ours':>8} {'theirs':>8} {'Dice':>7}")
    for c, row in rows if show_all else [r for r in rows if r[1]["dice"] < 0.99]:
        print(f"  {c:>3} {names.get(c, '?'):<30} {row['ours']:>8} {row['theirs']:>8} {row['dice']:>7.4f}")


def run_case(case: str, source: Path, tools: dict, args: argparse.Namespace) -> dict:
    """Alternating runs of both tools on one input; best wall time and peak memory per tool."""
    runs: dict[str, list[dict]] = {"theirs": [], "ours": []}
    outputs = {}
    for repeat in range(args.repeats):
        order = ("theirs", "ours") if repeat % 2 == 0 else ("ours", "theirs")
        for side in order:
            if side == "theirs" and not tools["theirs_ok"].get(case, True):
                continue
            out = args.work / f"{case}_{side}_{repeat}.nii.gz"
            command = [*tools[side]["command"], "-i", str(source), "-o", str(out), *tools[side]["flags"]]
            log = args.work / f"{case}_{side}_{repeat}.log"
            result = run_measured(command, tools[side]["env"], log)
            result["command"] = " ".join(command)
            print(f"{case} {side:<6} run {repeat}: wall {result['wall_s']:6.1f} s, cpu {result['cpu_s']:6.1f} s, "
                  f"tree RSS {result['rss_mb']:6.0f} MB, PSS {result['pss_mb']:6.0f} MB, "
                  f"load {result['load_before']:.2f}->{result['load_after']:.2f}"
                  + ("" if result["returncode"] == 0 else f"  FAILED (exit {result['returncode']}, log {log})"))
            if result["returncode"] != 0:
                if side == "ours":
                    sys.exit(result["output_tail"])
                tools["theirs_ok"][case] = False
                print(result["output_tail"][-1500:])
                continue
            runs[side].append(result)
            outputs[side] = out
    best = {side: min(r, key=lambda x: x["wall_s"]) for side, r in runs.items() if r}
    summary = {"runs": runs, "best": best}
    if "theirs" in best:
        summary["wall_ratio"] = best["ours"]["wall_s"] / best["theirs"]["wall_s"]
        summary["cpu_ratio"] = min(r["cpu_s"] for r in runs["ours"]) / min(r["cpu_s"] for r in runs["theirs"])
        summary["rss_ratio"] = max(r["rss_mb"] for r in runs["ours"]) / max(r["rss_mb"] for r in runs["theirs"])
        summary["pss_ratio"] = max(r["pss_mb"] for r in runs["ours"]) / max(r["pss_mb"] for r in runs["theirs"])
        summary["comparison"] = compare(outputs["ours"], outputs["theirs"])
    return summary


def print_summary(case: str, summary: dict, names: dict[int, str], show_all: bool) -> None:
    best = summary["best"]
    print(f"\n== {case} ==")
    print(f"  {'':<16} {'wall s':>8} {'cpu s':>8} {'tree RSS MB':>12} {'tree PSS MB':>12} {'1-proc RSS MB':>14}")
    for side, result in best.items():
        peak_rss = max(r["rss_mb"] for r in summary["runs"][side])
        peak_pss = max(r["pss_mb"] for r in summary["runs"][side])
        single = max(r["max_single_rss_mb"] for r in summary["runs"][side])
        label = "segtool" if side == "ours" else "TotalSegmentator"
        print(f"  {label:<16} {result['wall_s']:>8.1f} {min(r['cpu_s'] for r in summary['runs'][side]):>8.1f} "
              f"{peak_rss:>12.0f} {peak_pss:>12.0f} {single:>14.0f}")
    if "wall_ratio" not in summary:
        print("  TotalSegmentator did not run on this input: no ratios")
        return
    print(f"  ours/theirs: wall {summary['wall_ratio']:.2f}x (target <= 0.33), cpu {summary['cpu_ratio']:.2f}x, "
          f"tree RSS {summary['rss_ratio']:.2f}x (target <= 0.5), PSS {summary['pss_ratio']:.2f}x")
    report_comparison(f"{case} outputs", summary["comparison"], names, show_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per tool and input (best wall time kept)")
    parser.add_argument("--no-dicom", action="store_true", help="skip the DICOM series")
    parser.add_argument("--only", choices=("example_ct", "example_ct_dicom"), help="run only this input")
    parser.add_argument("--all-classes", action="store_true", help="list every class, not only Dice < 0.99")
    parser.add_argument("--json", type=Path, help="also write all numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (outputs and logs)")
    args = parser.parse_args()
    args.work = Path(tempfile.mkdtemp(prefix="bench_segtool_"))
    print(f"work folder {args.work}; load average at start {os.getloadavg()}; {os.cpu_count()} CPUs")
    print(f"segkit {code_version()} (packages are editable installs: a run uses the tree as it is when it starts)")
    try:
        ours_env, theirs_env = install(args.work)
        tools = {
            "ours": {"command": [str(SEGTOOL)], "env": ours_env,
                     "flags": ["-ta", "total", "--fast", "--ml", "-q", "--device", "cpu"]},
            "theirs": {"command": totalseg_command(args.work), "env": theirs_env,
                       "flags": ["--fast", "--ml", "-d", "cpu"]},
            "theirs_ok": {},
        }
        cases = {"example_ct": CT} if args.no_dicom else {"example_ct": CT, "example_ct_dicom": DICOM}
        if args.only:
            cases = {args.only: cases[args.only]}
        names = label_names()
        results = {}
        for case, source in cases.items():
            results[case] = run_case(case, source, tools, args)
        for case, summary in results.items():
            print_summary(case, summary, names, args.all_classes)
        print(f"\nload average at end {os.getloadavg()}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        if args.keep:
            print(f"kept {args.work}")
        else:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()

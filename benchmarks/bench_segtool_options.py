"""segtool's TotalSegmentator options beside TotalSegmentator's own: same input, same weights, same flags (issue #6).

The input is a quarter of the example DICOM series (256 x 256 x 20 voxels, LAS, saved as NIfTI: one 3 mm tile), the
weights the reference zip, installed for both tools as `bench_segtool.install` does. For each set of flags both tools
run ``-i Q -o OUT --fast -d cpu FLAGS``, once with ``--ml`` (the maps are compared voxel by voxel: agreement, Dice per
class) and, where asked, once with one mask per class (the mask names and their voxels are compared).

``--input CT`` uses another scan instead (``--force_split`` needs more than 62 slices on the 3 mm grid, e.g. the
example CT's 112).

Usage: .venv/bin/python benchmarks/bench_segtool_options.py [--flags "-ro 3" "-v1o" ...] [--input CT]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from bench_segtool import DATA, DICOM, SEGTOOL, compare, install, totalseg_command

DEFAULT_FLAGS = ("", "-ro 3", "-ro 0", "-v1o")
MASK_FLAGS = ("-v1o",)  #: flags whose per-class masks are compared too (their names change)


def quarter_scan(work: Path) -> Path:
    """The middle quarter of the example series' slices as a NIfTI file on the series' grid."""
    from segkit.io import read_image

    reference = nib.load(DATA / "ct_examples" / "example_seg_dicom.nii.gz")  # the series' grid, as NIfTI
    path = work / "quarter.nii.gz"
    nib.save(nib.Nifti1Image(read_image(DICOM).array[128:384, 128:384].astype(np.int16), reference.affine), path)
    return path


def timed(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def compare_masks(ours: Path, theirs: Path) -> str:
    """Which mask names only one tool wrote, and how many of the masks both wrote are equal voxel for voxel."""
    names = {tool: {p.name.removesuffix(".nii.gz") for p in folder.glob("*.nii.gz")}
             for tool, folder in (("ours", ours), ("theirs", theirs))}
    common = sorted(names["ours"] & names["theirs"])
    equal = sum(np.array_equal(np.asarray(nib.load(ours / f"{n}.nii.gz").dataobj),
                               np.asarray(nib.load(theirs / f"{n}.nii.gz").dataobj)) for n in common)
    return (f"segtool {len(names['ours'])} masks, TotalSegmentator {len(names['theirs'])}; {equal} of the "
            f"{len(common)} both wrote equal voxel for voxel; only segtool: {sorted(names['ours'] - names['theirs'])}; "
            f"only TotalSegmentator: {sorted(names['theirs'] - names['ours'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", nargs="+", default=list(DEFAULT_FLAGS), help="flag sets, each one string")
    parser.add_argument("--input", type=Path, help="a scan instead of the quarter of the DICOM series")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-options-") as tmp:
        work = Path(tmp)
        ours_env, theirs_env = install(work)
        theirs = totalseg_command(work)
        scan = args.input.resolve() if args.input else quarter_scan(work)
        maps: dict[str, np.ndarray] = {}
        for number, flags in enumerate(args.flags):
            extra = shlex.split(flags)
            common = ["-i", str(scan), "--fast", "-d", "cpu", *extra]
            out = {tool: work / f"{tool}{number}" for tool in ("theirs", "ours")}
            seconds = {"theirs": timed([*theirs, *common, "-o", f"{out['theirs']}.nii.gz", "--ml"], theirs_env),
                       "ours": timed([str(SEGTOOL), *common, "-o", f"{out['ours']}.nii.gz", "--ml", "-q"], ours_env)}
            result = compare(Path(f"{out['ours']}.nii.gz"), Path(f"{out['theirs']}.nii.gz"))
            dice = [c["dice"] for c in result["classes"].values()]
            maps[flags] = np.asarray(nib.load(f"{out['ours']}.nii.gz").dataobj)
            print(f"flags {flags or '(none)'!r}: TotalSegmentator {seconds['theirs']:.1f} s, segtool "
                  f"{seconds['ours']:.1f} s; agreement {result['agreement']:.6f}, {len(dice)} classes, Dice min "
                  f"{min(dice):.4f}, mean {np.mean(dice):.4f}", flush=True)
            if flags in MASK_FLAGS:
                subprocess.run([*theirs, *common, "-o", str(out["theirs"])], env=theirs_env, check=True,
                               capture_output=True)
                subprocess.run([str(SEGTOOL), *common, "-o", str(out["ours"]), "-q"], env=ours_env, check=True)
                print(f"  per-class masks: {compare_masks(out['ours'], out['theirs'])}", flush=True)
        baseline = maps.get("")
        for flags, labels in maps.items():
            if baseline is not None and flags and "-v1o" not in flags:
                print(f"segtool {flags!r} vs no flags: {(labels == baseline).mean():.6f} of the voxels agree")


if __name__ == "__main__":
    main()

"""``--save_probabilities`` beside TotalSegmentator's (issue #6): the same scan, weights and flags; the saved
probabilities compared channel by channel.

Both tools run ``-i Q -o OUT --fast -d cpu -sp FILE.npz FLAGS`` on a quarter of the example DICOM series (as
`bench_segtool_options`). TotalSegmentator's file is nnU-Net's ``(c, z, y, x)`` on the canonical (RAS) grid it
predicted on; segtool's is in the same layout on the grid its JSON gives (in the scan's axis order with ``-ho``), so
it is brought to RAS before the comparison.

Usage: .venv/bin/python benchmarks/bench_save_probabilities.py [--flags "" " -ho"]
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
from pathlib import Path

import numpy as np
from bench_segtool import SEGTOOL, install, totalseg_command
from bench_segtool_options import quarter_scan, timed


def in_ras(probabilities: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``(c, k, j, i)`` probabilities of the grid ``affine`` describes as ``(c, x, y, z)`` in RAS order."""
    from segkit.io import Image

    return Image(probabilities.transpose(0, 3, 2, 1), affine).to_canonical().array


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", nargs="+", default=["", " -ho"], help="flag sets, each one string")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probabilities-") as tmp:
        work = Path(tmp)
        ours_env, theirs_env = install(work)
        theirs_command = totalseg_command(work)
        scan = quarter_scan(work)
        for number, flags in enumerate(args.flags):
            common = ["-i", str(scan), "--fast", "-d", "cpu", "--ml", *shlex.split(flags)]
            files = {tool: work / f"{tool}{number}.npz" for tool in ("theirs", "ours")}
            seconds = {
                "theirs": timed([*theirs_command, *common, "-o", str(work / f"t{number}.nii.gz"),
                                 "-sp", str(files["theirs"])], theirs_env),
                "ours": timed([str(SEGTOOL), *common, "-o", str(work / f"o{number}.nii.gz"), "-q",
                               "-sp", str(files["ours"])], ours_env)}
            with np.load(files["theirs"]) as stored:
                theirs = stored["probabilities"].astype(np.float32).transpose(0, 3, 2, 1)  # (c, x, y, z)
            description = json.loads(files["ours"].with_suffix(".json").read_text())
            with np.load(files["ours"]) as stored:
                ours = in_ras(stored["probabilities"], np.asarray(description["affine"]))
            if ours.shape != theirs.shape:
                print(f"flags {flags!r}: shapes differ, segtool {ours.shape}, TotalSegmentator {theirs.shape}")
                continue
            difference = np.abs(ours - theirs)
            agreement = float((ours.argmax(0) == theirs.argmax(0)).mean())
            print(f"flags {flags.strip() or '(none)'!r}: TotalSegmentator {seconds['theirs']:.1f} s, segtool "
                  f"{seconds['ours']:.1f} s; probabilities {theirs.shape}, mean |difference| {difference.mean():.2e}, "
                  f"max {difference.max():.3f}; argmax agreement {agreement:.6f}; segtool's channels "
                  f"{description['channels'][:3]}... ({len(description['channels'])})")


if __name__ == "__main__":
    main()

"""Writing one mask per class (segtool's default output, TotalSegmentator's without ``--ml``) beside
TotalSegmentator's way of writing them (issue #6).

Input: TotalSegmentator's label map of its example CT (``totalseg_fast_example_ct.nii.gz``, 36 of the 117 ``total``
classes present) tiled 4 x 4 x 3 into 488 x 404 x 336 voxels, the size of a full-resolution abdominal CT. Each tool
writes the 117 masks (``<class>.nii.gz``, uint8) in its own process:

- segtool: ``segtool.outputs.write_class_masks`` (the label map ordered as NIfTI stores it, one thread per CPU,
  the masks of absent classes compressed once and copied);
- TotalSegmentator 2.18 (peer venv ``/work/peers/venv``): its own saving step, as ``nnUNet_predict_image`` runs it
  with its default ``nr_thr_saving=6``: the map saved to a temp file, then a pool of 6 processes that each reload it
  and write one class (``totalsegmentator.nnunet.save_segmentation_nifti``).

Printed: wall time, CPU time and peak memory of each process tree (`process_tree`), and whether all 117 masks are
equal voxel for voxel.

Usage: .venv/bin/python benchmarks/bench_masks.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from process_tree import run_measured_or_exit

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO.parent / "shared" / "data" / "nnunet_reference" / "predictions" / "totalseg_fast_example_ct.nii.gz"
PEER_PYTHON = Path("/work/peers/venv/bin/python")
TILES = (4, 4, 3)

OURS = '''import sys
from pathlib import Path
from segkit.io import read_image
from segtool.outputs import write_class_masks
from segtool.registry import load_registry
labels = read_image(sys.argv[1])
write_class_masks(labels, load_registry().task("total").labels, Path(sys.argv[2]))
'''
THEIRS = '''import sys
from multiprocessing import Pool
from pathlib import Path
import nibabel as nib
from totalsegmentator.map_to_binary import class_map
from totalsegmentator.nnunet import save_segmentation_nifti
if __name__ == "__main__":
    image, out = nib.load(sys.argv[1]), Path(sys.argv[2])
    tmp = out / "tmp"
    tmp.mkdir()
    nib.save(image, tmp / "s01.nii.gz")
    with Pool(6) as pool:
        jobs = [pool.starmap_async(save_segmentation_nifti, [((k, v), tmp, out, "None", image.header, "total", True)])
                for k, v in class_map["total"].items()]
        [job.get() for job in jobs]
'''


def run(tool: str, script: str, python: Path, labels: Path, out: Path) -> dict:
    out.mkdir()
    result = run_measured_or_exit([str(python), "-c", script, str(labels), str(out)])
    print(f"{tool:17s} wall {result['wall_s']:6.1f} s  CPU {result['cpu_s']:6.1f} s  tree RSS "
          f"{result['rss_mb']:6.0f} MB  tree PSS {result['pss_mb']:6.0f} MB  load {result['load_before']:.1f}",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_masks_") as tmp:
        source = nib.load(LABELS)
        labels = Path(tmp) / "labels.nii.gz"
        tiled = np.tile(np.asanyarray(source.dataobj), TILES)
        nib.save(nib.Nifti1Image(tiled, source.affine), labels)
        print(f"label map {tiled.shape}, {len(np.unique(tiled)) - 1} classes present", flush=True)
        runs: dict[str, list[dict]] = {"TotalSegmentator": [], "segtool": []}
        for repeat in range(args.repeats):
            runs["TotalSegmentator"].append(run("TotalSegmentator", THEIRS, PEER_PYTHON, labels,
                                                Path(tmp) / f"t{repeat}"))
            runs["segtool"].append(run("segtool", OURS, Path(sys.executable), labels, Path(tmp) / f"s{repeat}"))
        best = {tool: min(results, key=lambda r: r["wall_s"]) for tool, results in runs.items()}
        ratios = {key: best["segtool"][key] / best["TotalSegmentator"][key] for key in ("wall_s", "cpu_s", "rss_mb",
                                                                                        "pss_mb")}
        print("segtool / TotalSegmentator:", ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()))
        theirs, ours = sorted((Path(tmp) / "t0").glob("*.nii.gz")), sorted((Path(tmp) / "s0").glob("*.nii.gz"))
        assert [p.name for p in theirs] == [p.name for p in ours] and len(ours) == 117, (len(theirs), len(ours))
        equal = sum(np.array_equal(np.asanyarray(nib.load(t).dataobj), np.asanyarray(nib.load(o).dataobj))
                    for t, o in zip(theirs, ours, strict=True))
        print(f"masks equal voxel for voxel: {equal} of {len(ours)}")


if __name__ == "__main__":
    main()

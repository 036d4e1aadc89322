"""segtool's DICOM SEG and RTSTRUCT writers beside TotalSegmentator's, on the same label map (issue #6).

Input: TotalSegmentator's own label map of its example DICOM series (``example_seg_dicom.nii.gz``, on the series'
grid, 31 classes present) and that series (20 slices of 512 x 512). Each tool writes both objects in its own fresh
process, so that the peak memory and the wall time (imports included) are its own:

- segtool: ``segtool.dicom_seg.write_dicom_seg`` and ``segtool.dicom_rtstruct.write_rtstruct``;
- TotalSegmentator 2.18 (peer venv ``/work/peers/venv``, plus ``pip install --no-deps rt-utils
  opencv-python-headless`` for its RTSTRUCT): ``save_mask_as_dicomseg`` and ``save_mask_as_rtstruct`` of
  ``totalsegmentator.dicom_io``, called as its ``--output_type`` does.

Runs alternate (theirs, ours, ...) and the best wall time is kept. Printed: wall time, the seconds inside each
writer, peak RSS, file sizes, and how the SEGs agree: both are read back with highdicom and mapped onto the label
map's grid, voxel by voxel. (TotalSegmentator's RTSTRUCT references this anonymized series' blank SOP instance UIDs,
so no reader can place its contours; it is timed, not compared.)

Usage: .venv/bin/python benchmarks/bench_dicom_outputs.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from process_tree import run_measured_or_exit

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "ct_examples"
SERIES, LABELS = DATA / "example_ct_dicom", DATA / "example_seg_dicom.nii.gz"
PEER_PYTHON = Path("/work/peers/venv/bin/python")

OURS = '''import json, sys, time
from pathlib import Path
from segkit.io import read_image
from segtool.dicom_rtstruct import write_rtstruct
from segtool.dicom_seg import write_dicom_seg
from segtool.registry import load_registry
series, labels, out = sys.argv[1:4]
scan, labels = read_image(series), read_image(labels)
names = load_registry().task("total").labels
seconds = {}
for name, write in (("seg", write_dicom_seg), ("rtstruct", write_rtstruct)):
    start = time.perf_counter()
    write(labels, names, scan, Path(out) / f"{name}.dcm")
    seconds[name] = time.perf_counter() - start
print(json.dumps(seconds))
'''
THEIRS = '''import json, sys, time
from pathlib import Path
import nibabel as nib, numpy as np
from totalsegmentator.dicom_io import save_mask_as_dicomseg, save_mask_as_rtstruct
from totalsegmentator.map_to_binary import class_map
series, labels, out = sys.argv[1:4]
image = nib.load(labels)
data = image.get_fdata().astype(np.uint8)
seconds = {}
start = time.perf_counter()
save_mask_as_dicomseg(data, class_map["total"], series, Path(out) / "seg.dcm", image.affine)
seconds["seg"] = time.perf_counter() - start
start = time.perf_counter()
save_mask_as_rtstruct(data, class_map["total"], series, Path(out) / "rtstruct.dcm")
seconds["rtstruct"] = time.perf_counter() - start
print(json.dumps(seconds))
'''


def run(tool: str, script: str, python: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    result = run_measured_or_exit([str(python), "-c", script, str(SERIES), str(LABELS), str(out)])
    result["writers_s"] = json.loads(result["output_tail"].strip().splitlines()[-1])
    result["sizes_mb"] = {p.stem: p.stat().st_size / 1e6 for p in out.glob("*.dcm")}
    print(f"{tool:17s} wall {result['wall_s']:6.1f} s  SEG {result['writers_s']['seg']:5.1f} s  RTSTRUCT "
          f"{result['writers_s']['rtstruct']:5.1f} s  peak RSS {result['rss_mb']:6.0f} MB  load "
          f"{result['load_before']:.1f}", flush=True)
    return result


def seg_on_grid(path: Path, grid) -> tuple[np.ndarray, list[str]]:
    """A SEG's class names per voxel of ``grid`` (index into the returned names, 0 = none)."""
    import highdicom as hd

    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=True, relabel=False)
    to_volume = np.linalg.inv(volume.affine) @ np.diag([-1.0, -1.0, 1.0, 1.0]) @ grid.affine
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.spatial_shape], indexing="ij"))
    index = np.rint(np.tensordot(to_volume[:3, :3], ijk, 1) + to_volume[:3, 3, None, None, None]).astype(int)
    return volume.array[index[0], index[1], index[2]], ["", *(d.SegmentLabel for d in seg.SegmentSequence)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from segkit.io import read_image

    with tempfile.TemporaryDirectory(prefix="bench_dicom_") as tmp:
        runs: dict[str, list[dict]] = {"TotalSegmentator": [], "segtool": []}
        for repeat in range(args.repeats):
            runs["TotalSegmentator"].append(run("TotalSegmentator", THEIRS, PEER_PYTHON, Path(tmp) / f"t{repeat}"))
            runs["segtool"].append(run("segtool", OURS, Path(sys.executable), Path(tmp) / f"s{repeat}"))
        best = {tool: min(results, key=lambda r: r["wall_s"]) for tool, results in runs.items()}
        for what in ("seg", "rtstruct"):
            theirs, ours = (min(r["writers_s"][what] for r in runs[t]) for t in ("TotalSegmentator", "segtool"))
            print(f"{what:8s} writer: TotalSegmentator {theirs:5.1f} s, segtool {ours:5.1f} s, "
                  f"ratio {ours / theirs:.3f}")
        print(f"process wall ratio {best['segtool']['wall_s'] / best['TotalSegmentator']['wall_s']:.3f}, peak RSS "
              f"ratio {best['segtool']['rss_mb'] / best['TotalSegmentator']['rss_mb']:.3f}")
        print("sizes (MB):", {t: {k: round(v, 1) for k, v in r["sizes_mb"].items()} for t, r in best.items()})

        grid = read_image(LABELS)
        theirs, their_names = seg_on_grid(Path(tmp) / "t0" / "seg.dcm", grid)
        ours, our_names = seg_on_grid(Path(tmp) / "s0" / "seg.dcm", grid)
        same = np.array(their_names)[theirs] == np.array(our_names)[ours]
        print(f"SEG agreement: {same.mean():.6f} of voxels carry the same class name; segments "
              f"{len(their_names) - 1} vs {len(our_names) - 1}")


if __name__ == "__main__":
    main()

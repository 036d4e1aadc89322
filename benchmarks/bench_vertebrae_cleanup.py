"""segtool's vertebrae clean-up beside TotalSegmentator's own functions, on the same real vertebrae (issue #6).

TotalSegmentator cleans its ``vertebrae_pp`` maps with ``postprocess_vertebrae_pp`` (mixed-up vertebrae numbered again
by height, each grown 3 mm) and refines them with ``refine_vertebrae_pp_with_body_mask`` (grown 2 mm more, cleared
outside the vertebral bodies). Both get the vertebrae of TotalSegmentator's own fast map of the small example CT
(``example_seg_fast.nii.gz``) in vertebrae_pp's numbering, eroded by one voxel as the model's training labels were:
once as they are, once with the upper half of L1 numbered T12 (mixed up). The map is declared at several spacings
(the grid's voxels stay the same), since the growth's reach in voxels depends on them. The bodies to refine to are
the vertebrae dilated by two voxels. segtool runs here, TotalSegmentator in its venv; the maps are compared voxel by
voxel.

Usage: .venv/bin/python benchmarks/bench_vertebrae_cleanup.py
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from bench_segtool import DATA, PEER_PYTHON
from scipy import ndimage

from segkit.io import Image, read_image
from segtool.registry import load_registry
from segtool.vertebrae import separate_vertebrae, trim_to

SPACINGS = [(3.0, 3.0, 3.0), (1.5, 1.5, 1.5), (0.8, 0.8, 1.0), (0.7, 0.7, 1.25)]
THEIRS = '''import sys, numpy as np
from totalsegmentator.map_to_binary import class_map
from totalsegmentator.postprocessing import postprocess_vertebrae_pp, refine_vertebrae_pp_with_body_mask
data = dict(np.load(sys.argv[1]))
names, out = class_map["vertebrae_pp"], {}
for key in ("clean", "mixed"):
    for i, spacing in enumerate(data["spacings"]):
        spacing = tuple(float(s) for s in spacing)
        out[f"{key}{i}"] = postprocess_vertebrae_pp(data[key], names, voxel_volume=float(np.prod(spacing)),
                                                    voxel_spacing=spacing)
        out[f"refined_{key}{i}"] = refine_vertebrae_pp_with_body_mask(out[f"{key}{i}"], data["bodies"], names,
                                                                      voxel_spacing=spacing, dilation_mm=2)
np.savez(sys.argv[2], **out)
'''


def vertebrae() -> tuple[Image, np.ndarray, np.ndarray]:
    """The grid, the inner vertebrae in vertebrae_pp's numbering, and the same with L1 mixed up with T12."""
    seg = read_image(DATA / "ct_examples" / "example_seg_fast.nii.gz")
    total = {name: int(v) for v, name in
             json.loads((DATA / "ct_examples" / "total_labels.json").read_text())["labels"].items()}
    inner = np.zeros(seg.spatial_shape, dtype=np.uint8)
    for value, name in load_registry().task("vertebrae_pp").labels.items():
        inner[ndimage.binary_erosion(seg.array == total[name])] = value
    mixed = inner.copy()
    l1 = inner == 20
    upper = np.zeros_like(l1)
    upper[:, :, int(np.median(np.nonzero(l1)[2])) + 1:] = True
    mixed[l1 & upper] = 19
    return seg, inner, mixed


def main() -> None:
    seg, clean, mixed = vertebrae()
    bodies = ndimage.binary_dilation(clean > 0, iterations=2)
    with tempfile.TemporaryDirectory(prefix="bench-vertebrae-") as tmp:
        given, theirs_file, script = Path(tmp) / "in.npz", Path(tmp) / "theirs.npz", Path(tmp) / "theirs.py"
        np.savez(given, clean=clean, mixed=mixed, bodies=bodies.astype(np.uint8), spacings=np.array(SPACINGS))
        script.write_text(THEIRS)
        subprocess.run([str(PEER_PYTHON), str(script), str(given), str(theirs_file)], check=True)
        theirs = dict(np.load(theirs_file))
    for key, labels in (("clean", clean), ("mixed", mixed)):
        for i, spacing in enumerate(SPACINGS):
            affine = seg.affine.copy()
            affine[:3, :3] = seg.affine[:3, :3] / np.asarray(seg.spacing) * np.asarray(spacing)
            ours = separate_vertebrae(labels, Image(labels, affine), range(1, 25), 100.0, 3.0)
            refined = trim_to(ours, bodies, spacing, 2.0)
            for step, mine, peer in (("vertebrae_pp", ours, theirs[f"{key}{i}"]),
                                     ("refined", refined, theirs[f"refined_{key}{i}"])):
                differ = int(np.count_nonzero(mine != peer))
                print(f"{key:5} {step:12} spacing {spacing}: {np.count_nonzero(peer)} labelled voxels, "
                      f"vertebrae {sorted(set(np.unique(peer).tolist()) - {0})}; "
                      f"{'identical' if differ == 0 else f'{differ} voxels differ'}", flush=True)


if __name__ == "__main__":
    main()

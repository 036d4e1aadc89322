"""segtool's skin mask beside TotalSegmentator's ``extract_skin`` on the same CT and body mask (issue #6).

TotalSegmentator derives ``skin.nii.gz`` from the CT and the body task's masks; the body weights are not available
offline here, so both tools get the same stand-in body mask: the largest component above -500 HU of each example CT,
holes filled slice by slice (as in tests/segtool/test_derived_masks.py). TotalSegmentator's function runs in the
peer venv on the files; the masks are compared voxel for voxel, with each tool's time for the step.

Usage: .venv/bin/python benchmarks/bench_derived_masks.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CT_EXAMPLES = REPO.parent / "shared" / "data" / "ct_examples"
PEER_PYTHON = Path("/work/peers/venv/bin/python")
THEIRS = """import sys, time, json
import nibabel as nib
from totalsegmentator.postprocessing import extract_skin
ct, body, out = sys.argv[1:4]
began = time.perf_counter()
nib.save(extract_skin(nib.load(ct), nib.load(body)), out)
print(json.dumps({"seconds": time.perf_counter() - began}))
"""


def main() -> None:
    sys.path.insert(0, str(REPO / "tests" / "segtool"))
    from test_derived_masks import body_of

    from segtool.derived_masks import skin

    with tempfile.TemporaryDirectory(prefix="bench-skin-") as tmp:
        for name in ("example_ct_sm.nii.gz", "example_ct.nii.gz"):
            image = nib.load(CT_EXAMPLES / name)
            scan = np.asanyarray(image.dataobj)
            body = body_of(scan)
            body_path, skin_path = Path(tmp) / "body.nii.gz", Path(tmp) / "skin.nii.gz"
            nib.save(nib.Nifti1Image(body.astype(np.uint8), image.affine), body_path)
            began = time.perf_counter()
            ours = skin(scan, body)
            seconds = time.perf_counter() - began
            run = subprocess.run([str(PEER_PYTHON), "-c", THEIRS, str(CT_EXAMPLES / name), str(body_path),
                                  str(skin_path)], capture_output=True, text=True, check=True)
            theirs = np.asanyarray(nib.load(skin_path).dataobj) > 0
            print(f"{name} {scan.shape}: body {int(body.sum())} voxels; skin ours {int(ours.sum())}, TotalSegmentator "
                  f"{int(theirs.sum())}, {int((ours != theirs).sum())} voxels differ; time ours {seconds:.2f} s, "
                  f"TotalSegmentator {json.loads(run.stdout)['seconds']:.2f} s", flush=True)


if __name__ == "__main__":
    main()

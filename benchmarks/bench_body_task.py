"""segtool's handling of the body task's map beside TotalSegmentator's, on the same inputs (issue #6).

The body weights are not available offline here, so both tools get the same stand-in maps of each example CT:

- clean-up (TotalSegmentator's ``keep_largest_blob_multilabel`` for body_trunc, then ``remove_small_blobs_multilabel``
  for body_extremities under 50000 mm3, segtool's registry ``cleanup``): a map of everything above -500 HU as
  body_trunc and above 300 HU as body_extremities (as in tests/segtool/test_cleanup.py);
- skin (``extract_skin``, segtool's ``skin``): the CT and a body mask, the largest component above -500 HU with holes
  filled slice by slice (as in tests/segtool/test_derived_masks.py).

TotalSegmentator's functions run in the peer venv on the files; results are compared voxel for voxel, with each
tool's time for the step.

Usage: .venv/bin/python benchmarks/bench_body_task.py
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
import numpy as np
from totalsegmentator.map_to_binary import class_map
from totalsegmentator.postprocessing import (extract_skin, keep_largest_blob_multilabel,
                                             remove_small_blobs_multilabel)
ct, body, skin_out, labels, cleaned_out = sys.argv[1:6]
began = time.perf_counter()
nib.save(extract_skin(nib.load(ct), nib.load(body)), skin_out)
skin_seconds = time.perf_counter() - began
image = nib.load(labels)
began = time.perf_counter()
data = keep_largest_blob_multilabel(image.get_fdata().astype(np.uint8), class_map["body"], ["body_trunc"],
                                    quiet=True)
data = remove_small_blobs_multilabel(data, class_map["body"], ["body_extremities"],
                                     interval=[50000 / np.prod(image.header.get_zooms()), 1e10], quiet=True)
cleanup_seconds = time.perf_counter() - began
nib.save(nib.Nifti1Image(data, image.affine), cleaned_out)
print(json.dumps({"skin": skin_seconds, "cleanup": cleanup_seconds}))
"""


def main() -> None:
    sys.path.insert(0, str(REPO / "tests" / "segtool"))
    from test_derived_masks import body_of

    from segtool.derived_masks import skin
    from segtool.registry import load_registry

    cleanup = load_registry().task("body").cleanup
    with tempfile.TemporaryDirectory(prefix="bench-body-") as tmp:
        files = {name: Path(tmp) / f"{name}.nii.gz" for name in ("body", "skin", "labels", "cleaned")}
        for name in ("example_ct_sm.nii.gz", "example_ct.nii.gz"):
            image = nib.load(CT_EXAMPLES / name)
            scan = np.asanyarray(image.dataobj)
            body = body_of(scan)
            labels = np.where(scan > 300, 2, np.where(scan > -500, 1, 0)).astype(np.uint8)
            nib.save(nib.Nifti1Image(body.astype(np.uint8), image.affine), files["body"])
            nib.save(nib.Nifti1Image(labels, image.affine), files["labels"])
            began = time.perf_counter()
            ours_skin = skin(scan, body)
            skin_seconds = time.perf_counter() - began
            began = time.perf_counter()
            ours_cleaned = cleanup.apply(labels, {1: "body_trunc", 2: "body_extremities"},
                                         float(np.prod(image.header.get_zooms())))
            cleanup_seconds = time.perf_counter() - began
            run = subprocess.run([str(PEER_PYTHON), "-c", THEIRS, str(CT_EXAMPLES / name), str(files["body"]),
                                  str(files["skin"]), str(files["labels"]), str(files["cleaned"])],
                                 capture_output=True, text=True, check=True)
            seconds = json.loads(run.stdout)
            theirs_skin = np.asanyarray(nib.load(files["skin"]).dataobj) > 0
            theirs_cleaned = np.asanyarray(nib.load(files["cleaned"]).dataobj)
            print(f"{name} {scan.shape}: clean-up kept {int((ours_cleaned > 0).sum())} of {int((labels > 0).sum())} "
                  f"labelled voxels (TotalSegmentator {int((theirs_cleaned > 0).sum())}), "
                  f"{int((ours_cleaned != theirs_cleaned).sum())} voxels differ, time {cleanup_seconds:.2f} s vs "
                  f"{seconds['cleanup']:.2f} s; skin {int(ours_skin.sum())} voxels (TotalSegmentator "
                  f"{int(theirs_skin.sum())}), {int((ours_skin != theirs_skin).sum())} differ, time "
                  f"{skin_seconds:.2f} s vs {seconds['skin']:.2f} s", flush=True)


if __name__ == "__main__":
    main()

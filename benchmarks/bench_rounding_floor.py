"""How far float32 rounding alone moves the masks of the reference TotalSegmentator model on its example CT.

segtool's masks of ``example_ct`` with the shared Dataset297 zip (a genuine nnU-Net model, trained briefly, so many of
its logits are near ties) differ from TotalSegmentator's in about 0.01% of the voxels. This script predicts the scan
twice with the same weights and the same sliding window: once with the fused network segtool runs (heads and
upsamplers as matrix products), once with the network as nnU-Net builds it (the same function, summed in another
order). It prints each one's agreement with TotalSegmentator's own output (``nnunet_reference/predictions``) and
with each other, and the classes below Dice 0.99.

Usage: .venv/bin/python benchmarks/bench_rounding_floor.py
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

from segkit.infer.model_folder import load_model_folder
from segkit.infer.predictor import PredictOptions, Predictor
from segkit.io import read_image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ZIP = DATA / "nnunet_reference" / "totalseg" / "Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
CT = DATA / "ct_examples" / "example_ct.nii.gz"
THEIRS = DATA / "nnunet_reference" / "predictions" / "totalseg_fast_example_ct.nii.gz"
#: TotalSegmentator's settings for its weights, as segtool runs them on the CPU
OPTIONS = PredictOptions(step=0.5, tta=False, precision="fp32", fast_export=True)


def predict(model_folder: Path, *, fused: bool) -> np.ndarray:
    model = load_model_folder(model_folder, folds=[0])
    started = time.perf_counter()
    labels = Predictor(model, device="cpu", options=OPTIONS, fused=fused).predict(read_image(CT)).array
    print(f"{'fused' if fused else 'as nnU-Net builds it'}: {time.perf_counter() - started:.1f} s")
    return labels


def compare(name: str, a: np.ndarray, b: np.ndarray) -> None:
    low = []
    for value in np.union1d(np.unique(a), np.unique(b)):
        x, y = a == value, b == value
        dice = 2 * np.sum(x & y) / (x.sum() + y.sum())
        if value and dice < 0.99:
            low.append(f"{value}: {dice:.3f} ({x.sum()} vs {y.sum()} voxels)")
    print(f"{name}: {np.sum(a != b)} voxels differ (agreement {np.mean(a == b):.6f}); "
          f"below Dice 0.99: {', '.join(low) or 'none'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        with zipfile.ZipFile(ZIP) as archive:
            archive.extractall(work)
        folder = next(Path(work).glob("*/*__nnUNetPlans__3d_fullres"))
        fused, plain = predict(folder, fused=True), predict(folder, fused=False)
    theirs = np.asarray(nib.load(THEIRS).dataobj)
    compare("fused (segtool) vs TotalSegmentator", fused, theirs)
    compare("as nnU-Net builds it vs TotalSegmentator", plain, theirs)
    compare("fused vs as nnU-Net builds it", fused, plain)


if __name__ == "__main__":
    main()

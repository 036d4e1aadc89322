"""Small real datasets made in tests from the shared hippocampus cases."""

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture()
def msd_task(hippocampus_dir, tmp_path):
    """Make an MSD-style task from three real cases (4D images when ``channels`` > 1); return (root, ids)."""

    def make(channels: int) -> tuple[Path, list[str]]:
        root = tmp_path / "Task04_Hippocampus"
        for folder in ("imagesTr", "labelsTr", "imagesTs"):
            (root / folder).mkdir(parents=True)
        ids = ["hippocampus_001", "hippocampus_003", "hippocampus_004"]
        for cid in ids:
            nifti = nib.load(hippocampus_dir / "imagesTr" / f"{cid}_0000.nii.gz")
            data = np.asanyarray(nifti.dataobj).astype(np.float32)
            if channels > 1:
                data = np.stack([data * (c + 1) for c in range(channels)], axis=-1)
            nib.save(nib.Nifti1Image(data, nifti.affine), root / "imagesTr" / f"{cid}.nii.gz")
            shutil.copy(hippocampus_dir / "labelsTr" / f"{cid}.nii.gz", root / "labelsTr")
        shutil.copy(root / "imagesTr" / f"{ids[0]}.nii.gz", root / "imagesTs" / "hippocampus_900.nii.gz")
        (root / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"macOS junk")
        (root / "dataset.json").write_text(json.dumps({
            "name": "Hippocampus", "modality": {str(c): f"MR{c}" for c in range(channels)},
            "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
            "numTraining": 3, "training": [], "test": []}))
        return root, ids

    return make

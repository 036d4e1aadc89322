"""Fixtures of the planning tests: fingerprints of the real datasets, computed once."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from segkit.io.dataset import Dataset
from segkit.planning.architecture import Block
from segkit.planning.fingerprint import Fingerprint, extract_fingerprint

TOTALSEG_ZIP = "totalseg/Dataset297_TotalSegmentator_total_3mm_1559subj.zip"
TOTALSEG_MODEL = (
    "Dataset297_TotalSegmentator_total_3mm_1559subj/nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
)


@pytest.fixture(scope="session")
def hippocampus(hippocampus_dir: Path) -> Dataset:
    return Dataset.load(hippocampus_dir)


@pytest.fixture(scope="session")
def hippocampus_fingerprint(hippocampus: Dataset) -> Fingerprint:
    return extract_fingerprint(hippocampus, workers=2)


@pytest.fixture(scope="session")
def hippocampus_reference(nnunet_reference_dir: Path) -> dict:
    """nnU-Net's own plans of the hippocampus dataset."""
    return json.loads((nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetPlans.json").read_text())


@pytest.fixture(scope="session")
def hippocampus_reference_fingerprint(nnunet_reference_dir: Path) -> dict:
    folder = nnunet_reference_dir / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"
    return json.loads((folder / "dataset_fingerprint.json").read_text())


@pytest.fixture(scope="session")
def totalseg_reference(nnunet_reference_dir: Path) -> dict[str, dict]:
    """plans.json, dataset.json and dataset_fingerprint.json of the TotalSegmentator-style CT model."""
    with zipfile.ZipFile(nnunet_reference_dir / TOTALSEG_ZIP) as archive:
        return {
            name: json.loads(archive.read(f"{TOTALSEG_MODEL}/{name}.json"))
            for name in ("plans", "dataset", "dataset_fingerprint")
        }


@pytest.fixture(scope="session")
def ct_dataset(tmp_path_factory, ct_dir: Path, totalseg_reference: dict) -> Dataset:
    """The two CT examples with TotalSegmentator's masks as a raw dataset (what the CT model was planned on)."""
    root = tmp_path_factory.mktemp("Dataset297_ct")
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    pairs = {
        "ct": ("example_ct.nii.gz", "example_seg_fast_force_split.nii.gz"),
        "ct_sm": ("example_ct_sm.nii.gz", "example_seg.nii.gz"),
    }
    for case, (image, label) in pairs.items():
        (root / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(ct_dir / image)
        (root / "labelsTr" / f"{case}.nii.gz").symlink_to(ct_dir / label)
    (root / "dataset.json").write_text(json.dumps(totalseg_reference["dataset"]))
    return Dataset.load(root)


@pytest.fixture(scope="session")
def ct_fingerprint(ct_dataset: Dataset) -> Fingerprint:
    return extract_fingerprint(ct_dataset, workers=1)


@pytest.fixture(scope="session")
def small_hippocampus(tmp_path_factory, hippocampus_dir: Path) -> Dataset:
    """Six hippocampus cases as their own dataset (symlinks), for pipeline and CLI tests."""
    root = tmp_path_factory.mktemp("Dataset904_SmallHippocampus")
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    source = Dataset.load(hippocampus_dir)
    for case in source.training[:6]:
        (root / "imagesTr" / case.image_files[0].name).symlink_to(case.image_files[0])
        (root / "labelsTr" / case.label_file.name).symlink_to(case.label_file)
    info = json.loads((hippocampus_dir / "dataset.json").read_text())
    info["numTraining"] = 6
    (root / "dataset.json").write_text(json.dumps(info))
    return Dataset.load(root)


@pytest.fixture(scope="session")
def brain_dataset(tmp_path_factory, data_dir: Path) -> Path:
    """One anisotropic NRRD case (0.78 x 0.78 x 6.5 mm) as a one-case dataset."""
    root = tmp_path_factory.mktemp("Dataset905_Brain")
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    (root / "imagesTr" / "brain_0000.nrrd").symlink_to(data_dir / "misc" / "nrrd" / "brain1_image.nrrd")
    (root / "labelsTr" / "brain.nrrd").symlink_to(data_dir / "misc" / "nrrd" / "brain1_label.nrrd")
    info = {
        "channel_names": {"0": "T1"},
        "labels": {"background": 0, "tumour": 1, "oedema": 2},
        "numTraining": 1,
        "file_ending": ".nrrd",
    }
    (root / "dataset.json").write_text(json.dumps(info))
    return root


def _compare_plans(ours, theirs: dict) -> None:
    """Assert that a segkit configuration equals nnU-Net's (per-axis lists reversed)."""
    kwargs = theirs["architecture"]["arch_kwargs"]
    assert list(ours.patch_size) == theirs["patch_size"][::-1]
    assert list(ours.spacing) == pytest.approx(theirs["spacing"][::-1])
    assert ours.batch_size == theirs["batch_size"]
    assert list(ours.median_image_size_in_voxels) == pytest.approx(theirs["median_image_size_in_voxels"][::-1])
    assert [s.value for s in ours.normalization_schemes] == theirs["normalization_schemes"]
    assert list(ours.use_mask_for_norm) == theirs["use_mask_for_norm"]
    assert ours.batch_dice == theirs["batch_dice"]
    spec = ours.architecture
    assert spec.num_stages == kwargs["n_stages"]
    assert list(spec.features_per_stage) == kwargs["features_per_stage"]
    assert [list(k) for k in spec.kernel_sizes] == [k[::-1] for k in kwargs["kernel_sizes"]]
    assert [list(s) for s in spec.strides] == [s[::-1] for s in kwargs["strides"]]
    assert list(spec.blocks_per_stage) == kwargs.get("n_conv_per_stage", kwargs.get("n_blocks_per_stage"))
    assert list(spec.blocks_per_stage_decoder) == kwargs["n_conv_per_stage_decoder"]
    residual = theirs["architecture"]["network_class_name"].endswith("ResidualEncoderUNet")
    assert spec.block is (Block.RESIDUAL if residual else Block.PLAIN) and spec.norm.value == "instance"


@pytest.fixture(scope="session")
def compare_plans():
    return _compare_plans

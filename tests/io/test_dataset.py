"""nnU-Net v2 raw dataset folders and dataset.json."""

import json

import pytest

from segkit.io import DatasetError
from segkit.io.dataset import Dataset, DatasetInfo, case_identifier


def test_hippocampus_dataset_lists_every_case(hippocampus_dir):
    dataset = Dataset.load(hippocampus_dir)
    assert len(dataset.training) == 220 and dataset.test == ()
    case = dataset.training[0]
    assert case.identifier == "hippocampus_001"
    assert [p.name for p in case.image_files] == ["hippocampus_001_0000.nii.gz"]
    assert case.label_file.name == "hippocampus_001.nii.gz" and case.label_file.is_file()
    assert dataset.info.label_values == (0, 1, 2)
    assert dataset.info.channel_names == {0: "MRI"}


def test_dataset_json_round_trips_with_regions_and_ignore_label():
    data = {
        "channel_names": {"0": "T2", "1": "ADC"},
        "labels": {"background": 0, "whole": [1, 2], "core": 2, "ignore": 3},
        "regions_class_order": [1, 2],
        "numTraining": 4,
        "file_ending": ".nrrd",
        "name": "demo",
    }
    info = DatasetInfo.from_dict(data)
    assert info.has_regions and info.ignore_label == 3 and info.num_channels == 2
    assert info.label_values == (0, 1, 2, 3)
    assert info.to_dict() == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": {"liver": 1}}, "'background' to 0"),
        ({"channel_names": {"1": "CT"}}, "channel indices"),
        ({"labels": {"background": 0, "a": [1, 2]}}, "regions_class_order"),
        ({"labels": {"background": 0, "a": 1.5}}, "label 'a'"),
        ({"file_ending": "nii.gz"}, "file_ending"),
        ({"channel_names": None}, 'missing or malformed "channel_names"'),
        ({"channel_names": ["CT"]}, 'missing or malformed "channel_names"'),
        ({"labels": "background"}, 'missing or malformed "labels"'),
    ],
)
def test_invalid_dataset_json_says_what_is_wrong(change, message):
    data = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1}, "file_ending": ".nii.gz", **change}
    with pytest.raises(DatasetError, match=message):
        DatasetInfo.from_dict({k: v for k, v in data.items() if v is not None})
    with pytest.raises(DatasetError, match="expected a JSON object, found list"):
        DatasetInfo.from_dict([data])


def test_missing_pieces_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.load(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="no dataset.json"):
        Dataset.load(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="invalid JSON"):
        Dataset.load(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "CT"}, "labels": {"background": 0}, "file_ending": ".nii.gz"}))
    with pytest.raises(DatasetError, match="no imagesTr"):
        Dataset.load(tmp_path)


def test_case_identifier_strips_channel_and_ending():
    assert case_identifier("liver_7_0003.nrrd", ".nrrd") == "liver_7"
    assert case_identifier("liver_7.nii.gz", ".nii.gz") == "liver_7"

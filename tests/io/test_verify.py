"""Dataset verification finds every problem, on real cases."""

import numpy as np
import pytest

from segkit.io import Image, read_image, write_image
from segkit.io.verify import verify_dataset


def test_all_220_hippocampus_cases_pass(hippocampus_dir):
    assert verify_dataset(hippocampus_dir, workers=2) == []


@pytest.fixture()
def broken_dataset(hippocampus_subset, tmp_path):
    root = hippocampus_subset(tmp_path / "Dataset999_Subset", 6, copy=True)  # the files are damaged below
    ids = sorted(path.name.removesuffix(".nii.gz") for path in (root / "labelsTr").iterdir())
    images, labels = root / "imagesTr", root / "labelsTr"
    (images / f"{ids[0]}_0000.nii.gz").rename(images / f"{ids[0]}_0001.nii.gz")  # channel 1 is not declared
    label = read_image(labels / f"{ids[1]}.nii.gz")
    shifted = label.affine.copy()
    shifted[2, 3] += 1.0
    write_image(Image(label.array, shifted), labels / f"{ids[1]}.nii.gz", label=True)
    other = read_image(labels / f"{ids[2]}.nii.gz")
    write_image(other.with_array(np.where(other.array == 2, 7, other.array)), labels / f"{ids[2]}.nii.gz", label=True)
    image = read_image(images / f"{ids[3]}_0000.nii.gz")
    nan_image = image.array.astype(np.float32)
    nan_image[0, 0, 0] = np.nan
    write_image(image.with_array(nan_image), images / f"{ids[3]}_0000.nii.gz")
    data = (images / f"{ids[4]}_0000.nii.gz").read_bytes()
    (images / f"{ids[4]}_0000.nii.gz").write_bytes(data[: len(data) // 2])
    (labels / "orphan.nii.gz").write_bytes(b"")
    (images / "nosuffix.nii.gz").write_bytes(b"")  # not a case: no _0000
    return root, ids


def test_every_problem_is_reported(broken_dataset):
    root, ids = broken_dataset
    problems = verify_dataset(root, workers=2)
    found = {(p.case, p.message.split(" ")[0]) for p in problems}
    assert len(problems) == 8
    messages = "\n".join(f"{p.case} {p.file} {p.message}" for p in problems)
    assert (ids[0], "file") in found, messages  # channel 0 missing
    assert any(p.case == ids[0] and p.file.endswith("_0001.nii.gz") and "not declared" in p.message
               for p in problems), messages
    assert any(p.case == ids[1] and "affine differs" in p.message for p in problems), messages
    assert any(p.case == ids[2] and "[7]" in p.message for p in problems), messages
    assert any(p.case == ids[3] and "NaN" in p.message for p in problems), messages
    assert any(p.case == ids[4] and "not a readable NIfTI" in p.message for p in problems), messages
    assert any(p.case == "orphan" and p.file == "labelsTr/orphan.nii.gz"
               and p.message == "label has no image (imagesTr/orphan_0000.nii.gz)" for p in problems), messages
    assert any(p.case == "nosuffix" and p.file == "imagesTr/nosuffix.nii.gz"
               and "without a channel suffix: name it CASE_0000.nii.gz" in p.message for p in problems), messages
    assert not any(p.case == ids[5] for p in problems), messages

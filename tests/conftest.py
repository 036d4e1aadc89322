"""Shared fixtures: the real data folder (``SEGKIT_TEST_DATA``, default ``../shared/data``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_segtool_logger():
    """segtool's CLI sets the ``segtool`` logger's level and handler (`context.show_messages`); undo that after each
    test, wherever it ran the CLI (tests/segtool, tests/e2e), so later tests in the worker see the logger as new."""
    logger = logging.getLogger("segtool")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared real data; missing data fails under CI=true and skips elsewhere."""
    root = Path(os.environ.get("SEGKIT_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (root / "README.md").is_file():
        message = f"real test data not found at {root} (set SEGKIT_TEST_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def hippocampus_dir(data_dir: Path) -> Path:
    """The nnU-Net v2 raw hippocampus dataset (220 cases)."""
    return data_dir / "Dataset004_Hippocampus"


@pytest.fixture(scope="session")
def hippocampus_subset(hippocampus_dir: Path):
    """A function that puts the first ``count`` hippocampus cases into a new raw dataset folder ``target`` and returns
    that folder: links to the shared files, or copies of them with ``copy`` (for tests that change the files)."""

    def make(target: Path, count: int, *, copy: bool = False) -> Path:
        (target / "imagesTr").mkdir(parents=True)
        (target / "labelsTr").mkdir()
        info = json.loads((hippocampus_dir / "dataset.json").read_text())
        (target / "dataset.json").write_text(json.dumps({**info, "numTraining": count}))
        place = shutil.copyfile if copy else os.symlink
        for image in sorted((hippocampus_dir / "imagesTr").glob("*_0000.nii.gz"))[:count]:
            case = image.name.removesuffix("_0000.nii.gz")
            place(image, target / "imagesTr" / image.name)
            place(hippocampus_dir / "labelsTr" / f"{case}.nii.gz", target / "labelsTr" / f"{case}.nii.gz")
        return target

    return make


@pytest.fixture(scope="session")
def ct_dir(data_dir: Path) -> Path:
    """CT/MR examples with TotalSegmentator reference outputs."""
    return data_dir / "ct_examples"


@pytest.fixture(scope="session")
def nnunet_reference_dir(data_dir: Path) -> Path:
    """Genuine nnU-Net v2 model folders and their outputs."""
    return data_dir / "nnunet_reference"

"""The project's own task ``hippocampus``: the committed model zip, served over HTTP, installed, segmenting real MRI."""

import hashlib
import json
import os
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from segkit.io import read_image, write_image
from segtool.cli.main import app
from segtool.registry import Mode, ModelFormat, load_registry

REPO = Path(__file__).resolve().parents[2]
CASES = ["hippocampus_001", "hippocampus_106", "hippocampus_204", "hippocampus_367"]


@pytest.fixture(scope="module")
def entry():
    (model,) = load_registry().task("hippocampus").modes[Mode.DEFAULT]
    return model


def committed_zip(entry) -> Path:
    return Path(urlparse(load_registry().resolve_url(entry.url)).path)


def test_registry_entry_matches_the_committed_zip(entry, tmp_path):
    path = committed_zip(entry)
    assert path.is_file() and path.is_relative_to(REPO) and not entry.url.startswith(("http", "file"))
    assert entry.format is ModelFormat.SEGKIT and entry.labels == {1: "anterior", 2: "posterior"}
    assert entry.size == path.stat().st_size < 8 * 2**20
    assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with zipfile.ZipFile(path) as archive:
        weights = [n for n in archive.namelist() if n.endswith("weights.safetensors")]
        assert weights and all(n.startswith(f"{entry.name}/fold_") for n in weights)
        archive.extract(weights[0], tmp_path)
    with safe_open(str(tmp_path / weights[0]), framework="pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"F16"}


def test_download_install_and_segment_real_cases(entry, http_server, hippocampus_dir, tmp_path, monkeypatch):
    from segtool.cli import context

    base, state = http_server
    state.files["hippocampus.zip"] = committed_zip(entry).read_bytes()
    registry = json.loads((REPO / "weights_registry.json").read_text())
    registry["tasks"]["hippocampus"]["modes"]["default"][0]["url"] = f"{base}/hippocampus.zip"
    (tmp_path / "weights_registry.json").write_text(json.dumps(registry))
    local = load_registry(tmp_path / "weights_registry.json")
    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(context, "registry", lambda: local)
    runner = CliRunner()

    result = runner.invoke(app, ["download", "hippocampus", "--quiet"])
    assert result.exit_code == 0, result.output
    assert state.log == [("/hippocampus.zip", None)]
    scans = tmp_path / "scans"
    scans.mkdir()
    for case in CASES[:-1]:
        os.symlink(hippocampus_dir / "imagesTr" / f"{case}_0000.nii.gz", scans / f"{case}_0000.nii.gz")
    # FreeSurfer's format too: its mask comes back on the grid of the case's NIfTI label map
    write_image(read_image(hippocampus_dir / "imagesTr" / f"{CASES[-1]}_0000.nii.gz"), scans / f"{CASES[-1]}.mgz")
    result = runner.invoke(app, ["-i", str(scans), "-o", str(tmp_path / "out"), "-ta", "hippocampus", "--ml"])
    assert result.exit_code == 0, result.output
    assert len(state.log) == 1  # installed once, not downloaded again

    scores = []
    for case in CASES:
        predicted = read_image(tmp_path / "out" / f"{case}.nii.gz")
        truth = read_image(hippocampus_dir / "labelsTr" / f"{case}.nii.gz")
        assert predicted.same_grid(truth, tolerance=1e-5)
        for value in (1, 2):
            p, t = predicted.array == value, truth.array == value
            scores.append(2 * np.logical_and(p, t).sum() / (p.sum() + t.sum()))
    assert np.mean(scores) >= 0.85, scores

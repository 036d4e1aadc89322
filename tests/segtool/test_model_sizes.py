"""Model sizes (TotalSegmentator's ``--model_size``): the same task's models trained with other plans, shipped in the
same zips, chosen with ``-ms``."""

import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from segkit.io import read_image
from segkit.nets.checkpoint import read_checkpoint
from segtool.cli.main import app
from segtool.errors import UnknownTaskError
from segtool.registry import BIG, load_registry

from .conftest import HIPPOCAMPUS_RESULT

runner = CliRunner()
SMALL_PLANS = "nnUNetSmallPlans"
SMALL_RESULT = HIPPOCAMPUS_RESULT.replace("nnUNetPlans", SMALL_PLANS)


def _swapped_classes(checkpoint) -> dict:
    """``checkpoint`` with the output channels of anterior (1) and posterior (2) swapped in every head."""
    data = read_checkpoint(checkpoint)
    for key, tensor in data["network_weights"].items():
        if ".seg_layers." in key:
            data["network_weights"][key] = tensor[[0, 2, 1]].clone()
    return data


@pytest.fixture(scope="module")
def sized_zip(nnunet_reference_dir, tmp_path_factory):
    """The reference hippocampus model zipped with a second 'small' result folder beside it: the same network with
    its two classes swapped, so which folder ran shows in the labels."""
    source = nnunet_reference_dir / "Dataset004_Hippocampus" / HIPPOCAMPUS_RESULT
    folder = tmp_path_factory.mktemp("sized")
    swapped = folder / "checkpoint_final.pth"
    torch.save(_swapped_classes(source / "fold_0" / "checkpoint_final.pth"), swapped)
    archive = folder / "hippo.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                relative = path.relative_to(source)
                zf.write(path, f"Dataset004_Hippocampus/{HIPPOCAMPUS_RESULT}/{relative}")
                zf.write(swapped if path.name == "checkpoint_final.pth" else path,
                         f"Dataset004_Hippocampus/{SMALL_RESULT}/{relative}")
    return archive


@pytest.fixture()
def serve_sized(http_server, make_registry, monkeypatch, tmp_path):
    """segtool's CLI context on a task ``hippo`` that comes in sizes big and small, served from ``archive``."""
    from segtool.cli import context

    def serve(archive):
        base, state = http_server
        state.files["hippo.zip"] = archive.read_bytes()
        sha256 = hashlib.sha256(state.files["hippo.zip"]).hexdigest()
        registry = load_registry(make_registry(f"{base}/hippo.zip", sha256, fast=True,
                                                model_sizes={"small": SMALL_PLANS}))
        monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
        monkeypatch.setattr(context, "registry", lambda: registry)
        return registry

    return serve


def test_small_runs_the_small_plans_folder_of_the_same_zip(serve_sized, sized_zip, nnunet_reference_dir, tmp_path):
    serve_sized(sized_zip)
    scan = nnunet_reference_dir / "predictions" / "inputs" / "hippocampus_033_0000.nii.gz"
    maps = {}
    for size in (BIG, "small"):
        out = tmp_path / f"{size}.nii.gz"
        report = tmp_path / f"{size}_report.json"  # {size}.json holds the map's class names
        result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo", "--ml", "-q", "-ms", size,
                                     "-rp", str(report)])
        assert result.exit_code == 0, result.output
        maps[size] = read_image(out).array
        recorded = json.loads(report.read_text())
        assert recorded["model_size"] == size
        assert recorded["models"][0]["plans"] == ("nnUNetPlans" if size == BIG else SMALL_PLANS)
    big, small = maps[BIG], maps["small"]
    assert set(np.unique(big)) == {0, 1, 2}
    assert np.array_equal(small, np.choose(big, [0, 2, 1]))  # the swapped network ran: anterior <-> posterior
    installed = sorted(p.name for p in (tmp_path / "home" / "weights" / "Dataset004_Hippocampus").iterdir())
    assert installed == [HIPPOCAMPUS_RESULT, SMALL_RESULT]  # one zip, one install for both sizes


def test_a_roi_subset_is_located_by_the_big_models(serve_sized, sized_zip):
    # as TotalSegmentator locates ROIs with its standard 6 mm model whatever the model size
    from segtool import Segmenter, SegmentOptions

    registry = serve_sized(sized_zip)
    segmenter = Segmenter(SegmentOptions(task="hippo", model_size="small", roi_subset=("anterior",), device="cpu"),
                          registry=registry)
    assert [entry.plans for entry, _ in segmenter.finder_models] == ["nnUNetPlans"]
    assert [entry.plans for entry, _ in segmenter.parts] == [SMALL_PLANS]


def test_a_size_the_zip_or_the_task_lacks_is_one_line(serve_sized, hippocampus_model_zip, nnunet_reference_dir,
                                                      tmp_path):
    serve_sized(hippocampus_model_zip)  # holds the big folder only
    scan = nnunet_reference_dir / "predictions" / "inputs" / "hippocampus_033_0000.nii.gz"
    out = tmp_path / "out"
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo", "-ms", "small"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and f"missing Dataset004_Hippocampus/{SMALL_RESULT}/" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["-i", str(scan), "-o", str(out), "-ta", "hippo", "--model_size", "huge"])
    assert result.exit_code == 2 and "task 'hippo' has no 'huge' model size; it has: big, small" in result.output
    result = runner.invoke(app, ["download", "hippo", "-ms", "small", "-q"])
    assert result.exit_code == 2 and f"missing Dataset004_Hippocampus/{SMALL_RESULT}/" in result.output


def test_totalsegmentators_total_v3_comes_in_two_sizes():
    registry = load_registry()
    total, v3 = registry.task("total"), registry.task("total_v3")
    assert v3.sizes == [BIG, "small"]
    assert {v: n for v, n in v3.labels.items() if total.labels[v] != n} == {26: "vertebrae_L6"}
    small = v3.sized("small")
    for mode, models in small.modes.items():
        assert [m.name for m in models] == [m.name for m in v3.models(mode)]  # the same zips
        assert all(m.plans == "nnUNetResEncUNetLPlans_8" and "v3.0.0-weights" in m.url for m in models)
        assert all(m.result_folder.endswith("__nnUNetResEncUNetLPlans_8__3d_fullres") for m in models)
    assert all(m.plans == "nnUNetPlans" for m in v3.sized(BIG).all_models())
    with pytest.raises(UnknownTaskError, match="task 'total' has no 'small' model size; it has: big"):
        total.sized("small")


def test_a_registry_with_bad_model_sizes_is_refused(make_registry):
    from segtool.errors import SegtoolError

    with pytest.raises(SegtoolError, match="model size 'big' is the models as listed"):
        load_registry(make_registry("http://127.0.0.1/x.zip", None, model_sizes={"big": "nnUNetPlans"}))
    path = make_registry("http://127.0.0.1/x.zip", None, model_sizes={"small": SMALL_PLANS})
    data = json.loads(path.read_text())
    data["tasks"]["hippo"]["modes"]["default"][0]["format"] = "segkit"
    path.write_text(json.dumps(data))
    with pytest.raises(SegtoolError, match="model sizes choose nnU-Net plans"):
        load_registry(path)

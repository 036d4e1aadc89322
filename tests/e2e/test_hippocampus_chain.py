"""The chain that builds segtool's ``hippocampus`` task (apps/segtool/tasks/hippocampus/build.sh), at test size, on
real MRI: plan, train, export, publish in a registry, download, segment, predict and evaluate.

The segkit steps run as the installed commands; segtool runs in this process, pointed at a registry that publishes
the freshly trained model. Training fine-tunes the shipped model's weights for 50 iterations (fresh heads), enough
to segment well: a step that loses the geometry, the label map, the normalization or the weights shows as a low Dice.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from typer.testing import CliRunner

from segkit.io import read_image
from segtool.cli import context
from segtool.cli.main import app
from segtool.download import file_sha256
from segtool.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
TASK_FOLDER = REPO / "apps" / "segtool" / "tasks" / "hippocampus"
BIN = Path(sys.executable).parent
NAME = "segkit_hippocampus_e2e"
CASES = 10
#: the task's trainer (trainer_final.json) on 5 x 10 iterations, at a learning rate that trains fresh heads that fast
#: (0.01: Dice 0.32 to 0.87 after 40 iterations, depending on the shipped weights; 0.03: 0.86 to 0.88 after 50)
TRAINER = {**json.loads((TASK_FOLDER / "trainer_final.json").read_text()), "epochs": 5, "iters_per_epoch": 10,
           "checkpoint_every": 5, "lr": 0.03}


def run(command: str, *args) -> None:
    """Run one of the installed segkit commands; it must succeed."""
    done = subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def shipped_weights(target: Path) -> Path:
    """The shipped hippocampus model's weights, taken out of its committed zip."""
    registry = load_registry()
    (entry,) = registry.task("hippocampus").all_models()
    with zipfile.ZipFile(urlparse(registry.resolve_url(entry.url)).path) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith("weights.safetensors")]
        return Path(archive.extract(member, target))


def publish(archive: Path, configuration: str, folder: Path) -> Path:
    """Write a registry beside ``archive`` whose task ``hippocampus`` is that model (fold 0); return its path."""
    registry = json.loads((REPO / "weights_registry.json").read_text())
    task = registry["tasks"]["hippocampus"]
    (model,) = task["modes"]["default"]
    model.update(name=NAME, url=archive.name, sha256=file_sha256(archive), size=archive.stat().st_size,
                 configuration=configuration, folds=[0])
    path = folder / "weights_registry.json"
    path.write_text(json.dumps({**registry, "tasks": {"hippocampus": task}}))
    return path


def test_plan_train_export_publish_download_segment_evaluate(hippocampus_dir, hippocampus_subset, tmp_path,
                                                            monkeypatch):
    raw = hippocampus_subset(tmp_path / "Dataset004_Hippocampus", CASES)
    pre = tmp_path / "pre"
    run("segkit-plan", "run", raw, "-o", pre, "-c", "3d_fullres", "--quiet")
    plans = json.loads((pre / "plans.json").read_text())  # build.sh's configuration, at a batch of 2
    plans["configurations"].update(json.loads((TASK_FOLDER / "configuration.json").read_text()))
    plans["configurations"]["e2e"] = {"inherits_from": "3d_fullres_16", "batch_size": 2}
    (pre / "plans.json").write_text(json.dumps(plans))
    (tmp_path / "trainer.json").write_text(json.dumps(TRAINER))

    model = tmp_path / NAME
    run("segkit-train", pre, "e2e", "0", "-o", model, "-tr", tmp_path / "trainer.json", "--device", "cpu",
        "--pretrained", shipped_weights(tmp_path / "shipped"), "--quiet")
    validated = json.loads((model / "fold_0" / "validation" / "summary.json").read_text())["foreground_mean"]["Dice"]
    published = tmp_path / "published"
    published.mkdir()
    run("segkit-export", model, published / f"{NAME}.zip", "--half")

    monkeypatch.setenv("SEGTOOL_HOME", str(tmp_path / "home"))
    registry = load_registry(publish(published / f"{NAME}.zip", "e2e", published))
    monkeypatch.setattr(context, "registry", lambda: registry)
    runner = CliRunner()
    result = runner.invoke(app, ["download", "hippocampus", "--quiet"])
    assert result.exit_code == 0, result.output
    (installed,) = [p.parent for p in (tmp_path / "home").rglob("model.json")]

    held_out = json.loads((model / "splits_final.json").read_text())[0]["val"]
    scans, labels = tmp_path / "scans", tmp_path / "labels"
    scans.mkdir(), labels.mkdir()
    for case in held_out:
        (scans / f"{case}_0000.nii.gz").symlink_to(hippocampus_dir / "imagesTr" / f"{case}_0000.nii.gz")
        (labels / f"{case}.nii.gz").symlink_to(hippocampus_dir / "labelsTr" / f"{case}.nii.gz")
    result = runner.invoke(app, ["-i", str(scans), "-o", str(tmp_path / "segtool"), "-ta", "hippocampus", "--ml",
                                 "-q"])
    assert result.exit_code == 0, result.output
    (entry,) = registry.task("hippocampus").all_models()  # with the test-time augmentation segtool uses
    run("segkit-predict", "-i", scans, "-o", tmp_path / "predict", "-m", installed, "--device", "cpu", "--shift-tta",
        str(entry.shift_tta))
    run("segkit-evaluate", tmp_path / "segtool", labels, "-o", tmp_path / "summary.json", "--quiet")

    for case in held_out:  # segtool and segkit-predict agree on the same installed model, on the scan's grid
        segmented = read_image(tmp_path / "segtool" / f"{case}.nii.gz")
        predicted = read_image(tmp_path / "predict" / f"{case}.nii.gz")
        assert segmented.same_grid(read_image(labels / f"{case}.nii.gz"), tolerance=1e-5)
        assert segmented.same_grid(predicted, tolerance=1e-5)
        assert (segmented.array == predicted.array).mean() > 0.9999
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(c["case"] for c in summary["metric_per_case"]) == sorted(f"{c}.nii.gz" for c in held_out)
    evaluated = summary["foreground_mean"]["Dice"]
    assert evaluated >= 0.8, summary["mean"]  # an untrained model scores ~0
    assert abs(evaluated - validated) < 0.03  # the trainer's own validation: fp32 weights, no mirroring

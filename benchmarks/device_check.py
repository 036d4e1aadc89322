"""segkit and segtool on a CUDA GPU, in one short run: nnU-Net compatibility, speed against the CPU, training.

Made for the few minutes of a lent GPU machine (`benchmarks/device_check.sh` installs the tree there and runs
this); ``--device cpu`` runs the same checks here. Each check prints one line and goes into
``OUT/device_check.json`` with its numbers, or with the error that stopped it (the other checks still run):

- ``reference``: the genuine nnU-Net hippocampus model (fold 0, mirroring) on the 10 reference inputs, at the
  default precision (fp16 autocast on CUDA) and in fp32: Dice per class and probability MAE against
  nnUNetv2_predict's outputs (the bar: Dice >= 0.99, MAE < 1e-3), seconds per case.
- ``large``: that model on a case enlarged 5x (about 180x250x180 voxels; 2x on the CPU), logits blended on the
  device and on the CPU: the two must agree; seconds and peak GPU memory.
- ``segtool``: ``segtool -ta hippocampus`` (the repository's own model zip, installed offline) on the 10 inputs as
  one batch, on the device and on the CPU: Dice against the dataset's labels, wall time of each.
- ``train``: ``segkit-plan`` on 20 hippocampus cases, ``segkit-train`` fold 0 for 2 short epochs at the default
  precision (bf16 on CUDA where supported), resumed for a third (``--c``), one epoch in fp16 (gradient scaling),
  then ``segkit-predict`` with the trained model.

Usage: python benchmarks/device_check.py --data ../shared/data --out OUT [--device cuda] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from segkit.infer.predictor import PredictOptions, Predictor
from segkit.infer.sliding_window import predict_sliding_window
from segkit.io import Image, read_image

BIN = Path(sys.executable).parent
CASES = 20  # of the training subset


def dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    x, y = a == label, b == label
    total = x.sum() + y.sum()
    return 1.0 if total == 0 else float(2.0 * (x & y).sum() / total)


def reference_inputs(data: Path) -> list[Path]:
    return sorted((data / "nnunet_reference" / "predictions" / "inputs").glob("*_0000.nii.gz"))


def reference_model(data: Path) -> Path:
    return data / "nnunet_reference" / "Dataset004_Hippocampus" / "nnUNetTrainer_refShort__nnUNetPlans__3d_fullres"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_reference(data: Path, device: torch.device, work: Path) -> dict:
    """nnU-Net's own outputs at the default precision and in fp32 (see the module doc)."""
    expected = data / "nnunet_reference" / "predictions" / "hippocampus_tta"
    result = {}
    for precision in ("auto", "fp32"):
        predictor = Predictor.from_model_folder(reference_model(data), folds=[0], device=device,
                                                options=PredictOptions(precision=precision))
        dices, errors, seconds = [], [], []
        for path in reference_inputs(data):
            case = path.name.removesuffix("_0000.nii.gz")
            image = read_image(path)
            began = time.perf_counter()
            labels, probs = predictor.predict_probabilities(image)
            seconds.append(time.perf_counter() - began)
            ref = read_image(expected / f"{case}.nii.gz").array
            ref_probs = np.transpose(np.load(expected / f"{case}.npz")["probabilities"], (0, 3, 2, 1))
            dices += [dice(labels.array, ref, label) for label in (1, 2)]
            errors.append(float(np.abs(probs - ref_probs).mean()))
        result[precision] = {"dtype": str(predictor.network_dtype), "dice_min": min(dices),
                             "mae_max": max(errors), "s_per_case_after_first": float(np.mean(seconds[1:])),
                             "first_case_s": seconds[0]}
        if min(dices) < 0.99 or max(errors) >= 1e-3:
            raise AssertionError(f"{precision}: not within nnU-Net's bar: {result[precision]}")
    return result


def check_large(data: Path, device: torch.device, work: Path) -> dict:
    """Blending on the device and on the CPU give the same logits for a large volume (see the module doc)."""
    predictor = Predictor.from_model_folder(reference_model(data), folds=[0], device=device,
                                            options=PredictOptions(tta=False))
    image = read_image(reference_inputs(data)[0])
    factor = 5 if device.type == "cuda" else 2  # the CPU check of this script stays short
    big = Image(np.kron(image.array, np.ones((factor,) * 3, dtype=image.array.dtype)), image.affine)
    case = predictor.prepare(big)  # same spacing: the model sees the enlarged volume as it is
    outputs = {}
    for on_device in (True, False):
        options = dataclasses.replace(predictor._window, accumulate_on_device=on_device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        began = time.perf_counter()
        logits = predict_sliding_window(predictor.networks[0], case.data, options,
                                        num_classes=predictor.setup.num_classes)
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        outputs[on_device] = (logits.float().cpu(), time.perf_counter() - began, peak, str(logits.device))
    (a, a_s, a_peak, a_where), (b, b_s, b_peak, b_where) = outputs[True], outputs[False]
    agreement = float((a.argmax(0) == b.argmax(0)).float().mean())
    result = {"shape": list(case.data.shape[1:]), "on_device": {"s": a_s, "peak_mb": a_peak, "where": a_where},
              "on_cpu": {"s": b_s, "peak_mb": b_peak, "where": b_where},
              "max_abs_diff": float((a - b).abs().max()), "label_agreement": agreement}
    if agreement < 0.9999:
        raise AssertionError(f"device and CPU blending disagree: {result}")
    return result


def run(command: list[str], **settings) -> float:
    """Run ``command``; return its wall seconds (a failure raises with its last output lines)."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **settings)
    if done.returncode:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(command)} -> exit {done.returncode}:\n" + "\n".join(tail))
    return time.perf_counter() - began


def check_segtool(data: Path, device: torch.device, work: Path) -> dict:
    """segtool's own hippocampus task on the 10 inputs, one batch, on the device and on the CPU (with the registry's
    test-time augmentation: left-right mirroring and, since session 31, shifts of 6 voxels, about 9x the tiles)."""
    inputs = work / "segtool_in"
    inputs.mkdir()
    for path in reference_inputs(data):
        (inputs / path.name).symlink_to(path.resolve())
    env = {**os.environ, "SEGTOOL_HOME": str(work / "segtool_home")}
    run([str(BIN / "segtool"), "download", "hippocampus"], env=env)
    result = {}
    for where in (str(device), "cpu"):
        out = work / f"segtool_{where}"
        seconds = run([str(BIN / "segtool"), "-i", str(inputs), "-o", str(out), "-ta", "hippocampus", "-d", where,
                       "--ml", "--quiet"], env=env)
        dices = []
        for path in sorted(inputs.iterdir()):
            case = path.name.removesuffix("_0000.nii.gz")
            labels = read_image(next(out.glob(f"{case}*.nii.gz"))).array
            truth = read_image(data / "Dataset004_Hippocampus" / "labelsTr" / f"{case}.nii.gz").array
            dices += [dice(labels, truth, label) for label in (1, 2)]
        result[where] = {"wall_s": seconds, "dice_mean": float(np.mean(dices)), "dice_min": float(np.min(dices))}
        if device.type == "cpu":
            break
    if result[str(device)]["dice_mean"] < 0.85:
        raise AssertionError(f"segtool's hippocampus masks are off: {result}")
    return result


def training_subset(data: Path, work: Path) -> Path:
    """An nnU-Net raw dataset of the first `CASES` hippocampus cases (links to the shared files)."""
    source = data / "Dataset004_Hippocampus"
    raw = work / "Dataset004_Hippocampus"
    for sub in ("imagesTr", "labelsTr"):
        (raw / sub).mkdir(parents=True)
    labels = sorted((source / "labelsTr").glob("*.nii.gz"))[:CASES]
    for label in labels:
        case = label.name.removesuffix(".nii.gz")
        (raw / "labelsTr" / label.name).symlink_to(label.resolve())
        (raw / "imagesTr" / f"{case}_0000.nii.gz").symlink_to((source / "imagesTr" / f"{case}_0000.nii.gz").resolve())
    dataset = json.loads((source / "dataset.json").read_text())
    (raw / "dataset.json").write_text(json.dumps({**dataset, "numTraining": len(labels)}))
    return raw


def check_train(data: Path, device: torch.device, work: Path) -> dict:
    """Plan, train 2 epochs, resume for a third, one fp16 epoch, predict (see the module doc)."""
    raw = training_subset(data, work)
    pre = work / "pre"
    result = {"plan_s": run([str(BIN / "segkit-plan"), "run", str(raw), "-o", str(pre), "-c", "3d_fullres",
                             "--quiet"])}
    iterations = "50" if device.type == "cuda" else "3"  # the CPU check of this script stays short
    short = ["--iters-per-epoch", iterations, "--val-iters-per-epoch", "2", "--device", str(device), "--quiet"]
    train = [str(BIN / "segkit-train"), str(pre), "3d_fullres", "0"]
    model = work / "model"
    result["train_2_epochs_s"] = run([*train, "-o", str(model), "--epochs", "2", *short])
    result["resume_to_3_s"] = run([*train, "-o", str(model), "--epochs", "3", "--c", *short])
    fp16 = work / "fp16.json"
    fp16.write_text(json.dumps({"inherits_from": "default", "precision": "fp16"}))
    if device.type == "cuda":
        result["fp16_epoch_s"] = run([*train, "-o", str(work / "model_fp16"), "-tr", str(fp16), "--epochs", "1",
                                      *short])
    summary = model / "fold_0" / "validation" / "summary.json"
    if summary.exists():
        result["validation_foreground_mean"] = json.loads(summary.read_text()).get("foreground_mean")
    out = work / "predicted"
    inputs = data / "nnunet_reference" / "predictions" / "inputs"
    result["predict_s"] = run([str(BIN / "segkit-predict"), "-i", str(inputs), "-o", str(out), "-m", str(model),
                               "-f", "0", "--device", str(device), "--save-probabilities", "--quiet"])
    result["predicted_files"] = len(list(out.glob("*.nii.gz")))
    return result


CHECKS = {"reference": check_reference, "large": check_large, "segtool": check_segtool, "train": check_train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--out", type=Path, required=True, help="where device_check.json goes")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these checks")
    args = parser.parse_args()
    device = torch.device(args.device)
    report = {"torch": torch.__version__, "device": str(device), "python": sys.version.split()[0],
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "checks": {}}
    print(json.dumps({k: v for k, v in report.items() if k != "checks"}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="device_check_"))
    try:
        for name in args.only or CHECKS:
            began = time.perf_counter()
            try:
                entry = {"ok": True, **CHECKS[name](args.data.resolve(), device, work)}
            except Exception as err:  # a failed check is reported, and the others still run
                entry = {"ok": False, "error": f"{type(err).__name__}: {err}",
                         "where": traceback.format_exc().splitlines()[-6:]}
            entry["check_s"] = round(time.perf_counter() - began, 1)
            report["checks"][name] = entry
            print(f"{name}: {json.dumps(entry)}", flush=True)
            (args.out / "device_check.json").write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if all(entry["ok"] for entry in report["checks"].values()) else 1)


if __name__ == "__main__":
    main()

"""Train hippocampus 3d_fullres (fold 0 by default) with segkit and with nnU-Net; compare speed and Dice.

Run with the project venv:  .venv/bin/python benchmarks/bench_train.py [--epochs 2 --iters 20 --val-iters 2]

- nnU-Net (peer venv /work/peers/venv, nnunetv2 2.8.1): fresh nnUNet_raw/preprocessed/results folders,
  ``nnUNetv2_plan_and_preprocess -d 4 -c 3d_fullres -np 2``, then ``nnUNetv2_train 4 3d_fullres 0 -device cpu
  -tr nnUNetTrainer_segkitBench...`` with nnUNet_compile=f. nnU-Net finds trainers only inside its package, so
  a short-schedule trainer file is written into the peer venv's ``training/nnUNetTrainer`` folder (its
  ``variants`` subfolder is searched only after ``primus``, whose import fails in the peer venv). It keeps
  mirroring augmentation but validates without test-time mirroring, like segkit's validation.
- segkit: ``segkit-plan``-equivalent API calls (fingerprint, plan, preprocess), then ``segkit-train PRE 3d_fullres 0
  --device cpu`` with the same epochs, iterations and validation iterations (default trainer, precision ``auto``:
  bf16 channels-last on CPUs where it pays (segkit.nets.cpu_bf16_pays), else fp32 with conv weight gradients by
  segkit.nets.weight_grad; batch 8 computed in micro-batches; spawned data workers). nnU-Net trains in fp32 on any CPU.
- Both tools train the same fold of the same split: the ``splits_final.json`` of segkit's preprocessed folder
  (created there as segkit-train would, if missing) is copied into nnU-Net's preprocessed folder before it trains.
- Iterations per second = training iterations / sum of epoch times (each epoch also runs the same number of
  pseudo-Dice validation batches in both tools). Dice = mean foreground Dice over the fold's 44 validation cases
  (nnU-Net: its validation/summary.json "foreground_mean"; segkit: fold_K/validation/summary.json).
- ``--equal-time``: a second segkit run with as many epochs as fit in nnU-Net's training time, for the
  "Dice after the same wall-clock time" comparison.
- ``--segkit-epochs N``: skip the same-iterations segkit run and train segkit N epochs of the same length instead
  (N chosen beforehand from ``--compute-ab`` step times so that it fits in nnU-Net's time); iterations per second
  and Dice of both are printed, with both training times, so the equal-time claim can be checked.
- ``--nnunet-only``: train only nnU-Net (``--epochs`` x ``--iters``, sized beforehand to the wall time of a segkit
  run made elsewhere, e.g. a cross-validation fold) and print its training time and Dice.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEER = Path("/work/peers/venv")
DATA = Path(os.environ.get("SEGKIT_TEST_DATA", REPO.parent / "shared" / "data")) / "Dataset004_Hippocampus"

TRAINER_TEMPLATE = '''import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class {name}(nnUNetTrainer):
    """segkit benchmark: short schedule; validation without test-time mirroring."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = {epochs}
        self.num_iterations_per_epoch = {iters}
        self.num_val_iterations_per_epoch = {val_iters}

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        out = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return out
'''


def run(command: list[str], env: dict | None = None, log: Path | None = None) -> float:
    start = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text()[-3000:] if log else ""
        sys.exit(f"{' '.join(command[:3])} failed ({done.returncode}):\n{tail}")
    return time.perf_counter() - start


def nnunet_env(work: Path) -> dict:
    """nnU-Net's environment for ``work`` (raw data linked in; folders made)."""
    raw, pre, res = (work / n for n in ("raw", "preprocessed", "results"))
    for folder in (raw, pre, res):
        folder.mkdir(parents=True, exist_ok=True)
    if not (raw / "Dataset004_Hippocampus").exists():
        (raw / "Dataset004_Hippocampus").symlink_to(DATA)
    return {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(pre), "nnUNet_results": str(res),
            "nnUNet_compile": "f"}


def nnunet_preprocess(work: Path, env: dict) -> None:
    """``nnUNetv2_plan_and_preprocess`` for 3d_fullres, once per work folder."""
    if not (work / "preprocessed" / "Dataset004_Hippocampus" / "nnUNetPlans_3d_fullres").is_dir():
        run([str(PEER / "bin" / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c", "3d_fullres", "-np", "2"], env,
            work / "nnunet_plan.log")


def share_segkit_split(pre: Path, work: Path) -> None:
    """Copy the split segkit trains on (``pre/splits_final.json``, made as segkit-train makes it if missing) to
    nnU-Net's preprocessed folder, where nnUNetv2_train reads it."""
    from segkit.train.config import TrainConfig
    from segkit.train.data.splits import SPLITS_FILE, load_or_create_splits

    cases = tuple(sorted(p.name.removesuffix(".nii.gz") for p in (DATA / "labelsTr").glob("*.nii.gz")))
    config = TrainConfig()
    load_or_create_splits(pre, cases, num_folds=config.num_folds, seed=config.split_seed)
    shutil.copy(pre / SPLITS_FILE, work / "preprocessed" / "Dataset004_Hippocampus" / SPLITS_FILE)


def nnunet(work: Path, pre: Path, epochs: int, iters: int, val_iters: int, fold: int) -> dict:
    env = nnunet_env(work)
    res = work / "results"
    nnunet_preprocess(work, env)
    share_segkit_split(pre, work)
    name = f"nnUNetTrainer_segkitBench_{epochs}x{iters}v{val_iters}"
    # nnU-Net imports modules folder by folder looking for the class; variants/ comes after primus/, whose import
    # fails in the peer venv (timm -> torchvision mismatch), so the file goes into the top trainer folder.
    trainers = next(PEER.glob("lib/python3*/site-packages/nnunetv2/training/nnUNetTrainer"))
    (trainers / f"{name}.py").write_text(TRAINER_TEMPLATE.format(name=name, epochs=epochs, iters=iters,
                                                                  val_iters=val_iters))
    wall = run([str(PEER / "bin" / "nnUNetv2_train"), "4", "3d_fullres", str(fold), "-tr", name, "-device", "cpu"],
               env, work / f"nnunet_train_fold{fold}.log")
    fold_dir = res / "Dataset004_Hippocampus" / f"{name}__nnUNetPlans__3d_fullres" / f"fold_{fold}"
    log_text = "".join(p.read_text() for p in sorted(fold_dir.glob("training_log_*.txt")))
    epoch_times = [float(v) for v in re.findall(r"Epoch time: ([0-9.]+) s", log_text)]
    summary = json.loads((fold_dir / "validation" / "summary.json").read_text())
    dice = {k: v["Dice"] for k, v in summary["mean"].items()}
    return {"train_s": sum(epoch_times), "wall_s": wall, "it_per_s": epochs * iters / sum(epoch_times),
            "dice": dice, "foreground_dice": summary["foreground_mean"]["Dice"], "epochs": epochs}


def segkit_preprocess(work: Path) -> Path:
    out = work / "segkit_pre"
    if (out / "plans.json").is_file():
        return out
    from segkit.io.dataset import Dataset
    from segkit.planning.fingerprint import extract_fingerprint
    from segkit.planning.pipeline import preprocess_dataset
    from segkit.planning.planner import plan_dataset

    dataset = Dataset.load(DATA)
    plans = plan_dataset(extract_fingerprint(dataset, workers=2), dataset.info, dataset_name=DATA.name)
    out.mkdir(parents=True, exist_ok=True)
    preprocess_dataset(dataset, plans, configuration="3d_fullres", output=out, workers=2)
    plans.save(out / "plans.json")
    shutil.copy(DATA / "dataset.json", out / "dataset.json")
    return out


def segkit(work: Path, pre: Path, epochs: int, iters: int, val_iters: int, tag: str, fold: int) -> dict:
    out = work / f"segkit_model_{tag}"
    shutil.rmtree(out, ignore_errors=True)
    wall = run([str(REPO / ".venv" / "bin" / "segkit-train"), str(pre), "3d_fullres", str(fold), "-o", str(out),
                "--device", "cpu", "--epochs", str(epochs), "--iters-per-epoch", str(iters),
                "--val-iters-per-epoch", str(val_iters)], dict(os.environ), work / f"segkit_train_{tag}.log")
    records = [json.loads(line) for line in (out / f"fold_{fold}" / "progress.jsonl").read_text().splitlines()]
    train_s = sum(r["epoch_time_s"] for r in records)
    summary = json.loads((out / f"fold_{fold}" / "validation" / "summary.json").read_text())
    return {"train_s": train_s, "wall_s": wall, "it_per_s": epochs * iters / train_s,
            "dice": {k: v["Dice"] for k, v in summary["mean"].items()},
            "data_wait_s": sum(r.get("data_wait_s", 0.0) for r in records),
            "foreground_dice": summary["foreground_mean"]["Dice"], "epochs": epochs}


NNUNET_STEP = r'''
import json, sys, time, torch
import torch.nn.functional as F
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
plans, steps = json.load(open(sys.argv[1])), int(sys.argv[2])
arch = plans["configurations"]["3d_fullres"]["architecture"]
net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"], 1, 3,
                             deep_supervision=True)
w = [1 / 2 ** i for i in range(4)]; w[-1] = 0; w = [v / sum(w) for v in w]
loss = DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {},
                                             weight_ce=1, weight_dice=1, dice_class=MemoryEfficientSoftDiceLoss), w)
opt = torch.optim.SGD(net.parameters(), 1e-2, weight_decay=3e-5, momentum=0.99, nesterov=True)
g = torch.Generator().manual_seed(0)
x = torch.randn(8, 1, 40, 56, 40, generator=g); y = (torch.rand(8, 1, 40, 56, 40, generator=g) * 3).long()
targets = [y] + [F.interpolate(y.float(), scale_factor=0.5 ** i, mode="nearest-exact").long() for i in (1, 2, 3)]
times = []
for i in range(steps + 1):
    t = time.perf_counter(); opt.zero_grad(); l = loss(net(x), targets); l.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 12); opt.step(); times.append(time.perf_counter() - t)
print(json.dumps(times[1:]))
'''

SEGKIT_STEP = r'''
import json, sys, time, torch
from segkit.nets import ArchitectureSpec, build_network
from segkit.nets.weight_grad import use_fast_weight_grads
from segkit.train.config import TrainConfig
from segkit.train.loop import Trainer, TrainParts
from segkit.train.losses import build_loss
from segkit.train.micro_batches import micro_batch_size
from segkit.train.precision import Autocast
from segkit.train.schedules import build_optimizer
plans, steps = json.load(open(sys.argv[1])), int(sys.argv[2])
spec = ArchitectureSpec.from_dict(plans["configurations"]["3d_fullres"]["architecture"])
net, cpu, config = build_network(spec, 1, 3), torch.device("cpu"), TrainConfig()
if config.fast_weight_grads:  # as segkit.train.setup does on the CPU
    use_fast_weight_grads(net)
autocast = Autocast.choose(config.precision, cpu)  # as segkit.train.run does: precision, layout, micro-batches
layout = autocast.memory_format(spec.dims)
net.to(memory_format=layout)
micro = micro_batch_size(config, batch_size=8, first_stage_features=spec.features_per_stage[0],
                         patch_size=(40, 56, 40), device=cpu, batch_dice=False,
                         channels_last=layout is torch.channels_last_3d)
optimizer = build_optimizer(config, net.parameters())
parts = TrainParts(config=config, model=net, loss=build_loss(config), optimizer=optimizer, train_batches=None,
                   val_batches=None, device=cpu, folder=None, autocast=autocast, micro_batch=micro,
                   memory_format=layout)
trainer = Trainer(parts)
g = torch.Generator().manual_seed(0)
batch = {"image": torch.randn(8, 1, 40, 56, 40, generator=g),
         "seg": (torch.rand(8, 1, 40, 56, 40, generator=g) * 3).long()}
times = []
for i in range(steps + 1):
    t = time.perf_counter(); trainer.train_step(batch, 0, i); times.append(time.perf_counter() - t)
print(json.dumps(times[1:]))
'''


def compute_ab(work: Path, pre: Path, rounds: int, steps: int) -> None:
    """Alternate nnU-Net's and segkit's training step (batch 8, 40x56x40, network + loss + SGD) in fresh processes."""
    nnunet_preprocess(work / "nnunet", nnunet_env(work / "nnunet"))
    nnunet_plans = work / "nnunet" / "preprocessed" / "Dataset004_Hippocampus" / "nnUNetPlans.json"
    ours, theirs = [], []
    for _ in range(rounds):
        out = subprocess.run([str(PEER / "bin" / "python"), "-c", NNUNET_STEP, str(nnunet_plans), str(steps)],
                             capture_output=True, text=True, check=True)
        theirs += json.loads(out.stdout.strip().splitlines()[-1])
        out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", SEGKIT_STEP, str(pre / "plans.json"),
                              str(steps)], capture_output=True, text=True, check=True)
        ours += json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  nnU-Net steps {[round(t, 1) for t in theirs]}  segkit steps {[round(t, 1) for t in ours]}",
              flush=True)
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    print(f"training step (median of {len(ours)}): nnU-Net {med(theirs):.2f} s, segkit {med(ours):.2f} s, "
          f"ratio {med(theirs) / med(ours):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--val-iters", type=int, default=2)
    parser.add_argument("--fold", type=int, default=0, choices=range(5))
    parser.add_argument("--work", type=Path, default=Path("/tmp/segkit_bench_train"))
    parser.add_argument("--nnunet-only", action="store_true", help="train only nnU-Net")
    parser.add_argument("--equal-time", action="store_true", help="also train segkit for nnU-Net's training time")
    parser.add_argument("--segkit-epochs", type=int, default=0, metavar="N",
                        help="train segkit N epochs (instead of the same-iterations and equal-time runs)")
    parser.add_argument("--compute-ab", type=int, default=0, metavar="ROUNDS",
                        help="only alternate the two tools' training steps (needs a previous run's preprocessed data)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pre = segkit_preprocess(args.work)
    if args.compute_ab:
        compute_ab(args.work, pre, args.compute_ab, 2)
        return
    theirs = nnunet(args.work / "nnunet", pre, args.epochs, args.iters, args.val_iters, args.fold)
    print(f"nnU-Net: {json.dumps(theirs)}", flush=True)
    if args.nnunet_only:
        return
    if args.segkit_epochs:
        ours = segkit(args.work, pre, args.segkit_epochs, args.iters, args.val_iters, f"{args.segkit_epochs}_epochs",
                      args.fold)
        print(f"segkit:  {json.dumps(ours)}", flush=True)
        _compare(f"segkit {args.segkit_epochs} x {args.iters}, nnU-Net {args.epochs} x {args.iters}", ours, theirs)
        return
    ours = segkit(args.work, pre, args.epochs, args.iters, args.val_iters, "same_iters", args.fold)
    print(f"segkit:  {json.dumps(ours)}", flush=True)
    _compare(f"same iterations ({args.epochs} x {args.iters}, {args.val_iters} val batches/epoch)", ours, theirs)
    if args.equal_time:
        epochs = max(args.epochs, int(theirs["train_s"] / (ours["train_s"] / args.epochs)))
        same_time = segkit(args.work, pre, epochs, args.iters, args.val_iters, "same_time", args.fold)
        print(f"segkit (same time): {json.dumps(same_time)}")
        _compare(f"same training time (segkit {epochs} epochs)", same_time, theirs)


def _compare(title: str, ours: dict, theirs: dict) -> None:
    print(f"\n{title}:")
    print(f"  training time: segkit {ours['train_s']:.0f} s, nnU-Net {theirs['train_s']:.0f} s")
    print(f"  iterations/s: segkit {ours['it_per_s']:.4f}, nnU-Net {theirs['it_per_s']:.4f}, "
          f"ratio {ours['it_per_s'] / theirs['it_per_s']:.2f}x")
    print(f"  foreground Dice: segkit {ours['foreground_dice']:.4f}, nnU-Net {theirs['foreground_dice']:.4f}")
    print(f"  per class: segkit {ours['dice']}, nnU-Net {theirs['dice']}", flush=True)

if __name__ == "__main__":
    main()

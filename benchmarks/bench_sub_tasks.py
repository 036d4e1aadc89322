"""segtool's sub-tasks beside TotalSegmentator's: same scan, same stand-in weights, the region found alike (issue #6).

TotalSegmentator's sub-task weights (hip implant, lung vessels, ...) cannot be downloaded here, so both tools get
the same stand-ins, made from the reference 3 mm ``total`` zip: its network with the output layer cut to the
sub-task's number of classes (background and some of total's classes), in a folder of the sub-task's name and
trainer (the checkpoint keeps its own trainer name, which TotalSegmentator's launcher registers, see `bench_segtool`).
The region each sub-task runs on is found by the reference zip, ``total``'s 3 mm model (``-rc``; lung_vessels asks
for it itself, TotalSegmentator's ``robust_crop``):

- ``hip_implant`` (crop: femurs and hips, as configured): the crop goes to the model at the scan's spacing; nnU-Net
  (in TotalSegmentator) and segkit's predictor (in segtool) resample it to the model's 3 mm and its logits back.
- ``lung_vessels``: each tool resamples the crop per axis. Its real grid (0.70 x 0.70 x 1 mm) would take a
  full-resolution CPU run per tool, so both tools' task configuration is patched by a launcher to (2.5, 3.0, 3.5) mm
  (x, y, z) and the stand-in's plans give the same spacing (the network sees the tool's grid as is); and the
  briefly trained reference model finds no lungs, so both crop to vertebrae T5-T6 instead.

Both tools run ``-i CT -o OUT.nii.gz -ta TASK --ml -d cpu -rc``, one after the other; the maps are compared voxel
by voxel (agreement, Dice per label).

Four TotalSegmentator 2.18 tasks run the same way, all models patched (plans and both tools' task configuration) to
3 mm; TotalSegmentator's launcher also patches the spacing it hard-codes for vertebrae_body (1.5 mm):

- ``vertebrae_pp``: the stand-in predicts total's 24 vertebrae C1..L5, its background logit raised by 1 (the briefly
  trained model's T5/T6 logits barely beat background: without it the map is ~12000 specks, of which the 24 lowest
  of >= 100 mm3 are numbered, so one voxel's near-tie between the tools shifts every number above it); what is left
  are a few T5/T6 blobs that touch: the renumbering by height runs, then each is grown 3 mm on the model grid.
- ``vertebrae_pp_refined``: the same, trimmed (grown 2 mm on the scan's grid) to class 1 of a ``vertebrae_body``
  stand-in (``vertebrae_T6`` as the bodies, ``spinal_cord`` as the discs) run on the whole scan.
- ``teeth`` (77 classes: total's first 77): cropped (+10 mm) to teeth_lower, teeth_upper of a
  ``craniofacial_structures`` stand-in (total's ``vertebrae_T6`` as teeth_lower, ``spinal_cord`` as teeth_upper,
  ...), itself cropped (+20 mm) to what a stand-in of total's 6 mm model (the reference network, plans at 6 mm)
  finds: the scan has no head, so both tools crop to vertebrae T5-T6 instead of the skull (``--skull``). Where that
  crop is empty (``--skull liver spleen``: the 6 mm stand-in finds neither), both run craniofacial_structures on the
  whole scan (TotalSegmentator skips its empty-crop return when a run has no output file, as a crop model's has).

``crop_to_body`` (TotalSegmentator's) and ``segtool crop-to-body`` get a stand-in of the body task's 6 mm model
(``hip_right`` as the trunk, ``portal_vein_and_splenic_vein`` as the extremities) and crop the scan, whole body and
``-t`` (trunk); the cropped scans are compared (shape, affine, voxels).

Usage: .venv/bin/python benchmarks/bench_sub_tasks.py [--input CT] [--only TASK|crop_to_body] [--skull CLASS ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from subprocess import run

import nibabel as nib
import numpy as np
import torch
from bench_segtool import CT, PEER_PYTHON, SEGTOOL, ZIP, compare, install

from segkit.nets.checkpoint import read_checkpoint


@dataclass(frozen=True)
class StandIn:
    """A sub-task's stand-in model: its folder, trainer and configuration, total's classes that stand in for its own
    (none: total's first ones, as many as it has), and what both tools' task configuration is patched to (None: as
    configured; the plans get the spacing too)."""

    folder: str
    trainer: str
    classes: tuple[str, ...]
    spacing: tuple[float, float, float] | None = None  #: x, y, z (mm)
    crop: tuple[str, ...] | None = None
    configuration: str = "3d_fullres"
    background: float = 0.0  #: added to the background logit (a higher one keeps only confident blobs)


MM3 = (3.0, 3.0, 3.0)
VERTEBRAE = StandIn("Dataset803_TotalSegmentator_vertebrae_inner_1559subj", "nnUNetTrainerNoMirroring",
                    tuple(f"vertebrae_{v}" for v in [*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 13)),
                                                     *(f"L{i}" for i in range(1, 6))]), spacing=MM3,
                    background=1.0)  # without it: thousands of T5/T6 specks, numbered by a hair's breadth
STAND_INS = {
    "hip_implant": StandIn("Dataset260_hip_implant_71subj", "nnUNetTrainer", ("hip_right",)),
    "lung_vessels": StandIn("Dataset117_lung_airways_arteries_veins_282subj", "nnUNetTrainerSkeletonRecall",
                            ("vertebrae_T6", "vertebrae_T5", "spinal_cord", "rib_left_1"), spacing=(2.5, 3.0, 3.5),
                            crop=("vertebrae_T6", "vertebrae_T5")),
    "vertebrae_pp": VERTEBRAE,
    "vertebrae_pp_refined": VERTEBRAE,  # the same model
    "teeth": StandIn("Dataset113_ToothFairy3", "nnUNetTrainer_onlyMirror01", (), spacing=MM3,
                     configuration="3d_lowres_high"),
}
HELPERS = {  # models a comparison needs besides its task's: what finds its region or trims its map, crop_to_body's
    "vertebrae_body": StandIn("Dataset305_vertebrae_discs_1559subj", "nnUNetTrainer_DASegOrd0",
                              ("vertebrae_T6", "spinal_cord"), spacing=MM3),
    "craniofacial_structures": StandIn(
        "Dataset115_mandible", "nnUNetTrainer_DASegOrd0_NoMirroring",
        ("vertebrae_T5", "vertebrae_T6", "esophagus", "aorta", "lung_upper_lobe_left", "lung_upper_lobe_right",
         "spinal_cord"), spacing=MM3, crop=("vertebrae_T6", "vertebrae_T5")),
    "total": StandIn("Dataset298_TotalSegmentator_total_6mm_1559subj", "nnUNetTrainer_4000epochs_NoMirroring", (),
                     spacing=(6.0, 6.0, 6.0)),  # its plans at 6 mm, as the real model's; all of total's classes
    "body": StandIn("Dataset300_body_6mm_1559subj", "nnUNetTrainer", ("hip_right", "portal_vein_and_splenic_vein"),
                    spacing=(6.0, 6.0, 6.0)),
}
NEEDS = {"vertebrae_pp_refined": ("vertebrae_body",), "teeth": ("craniofacial_structures", "total"),
         "crop_to_body": ("body",)}
PATCHES = {task: {"resample": s.spacing, "crop": s.crop} for task, s in {**STAND_INS, **HELPERS}.items()
           if task not in ("total", "body")}  # those two run at their own spacing (6 mm)
THEIRS = '''import json, os, sys
if __name__ == "__main__":
    from totalsegmentator.map_tasks_config import TASK_CONFIGS
    for task, patch in json.loads(os.environ["PATCHES"]).items():
        TASK_CONFIGS[task].update({key: value for key, value in patch.items() if value is not None})
    import totalsegmentator.nnunet as tn
    from nnunetv2.training.nnUNetTrainer.variants.training_length.nnUNetTrainer_Xepochs_NoMirroring import (
        nnUNetTrainer_4000epochs_NoMirroring as trainer)
    tn.custom_trainers[trainer.__name__] = trainer
    patches, predict = json.loads(os.environ["PATCHES"]), tn.nnUNet_predict_image

    def predict_patched(*args, **kwargs):  # vertebrae_body's spacing is hard-coded in python_api
        resample = patches.get(kwargs.get("task_name"), {}).get("resample")
        return predict(*args, **{**kwargs, **({"resample": resample} if resample else {})})

    tn.nnUNet_predict_image = predict_patched
    import totalsegmentator.python_api as api
    api.convert_device_to_string = api.device_to_str  # 2.18's gives None for "cpu": teeth's crop run would fail
    if sys.argv[1] == "crop_to_body":
        from totalsegmentator.bin.crop_to_body import main
    else:
        from totalsegmentator.bin.TotalSegmentator import main
    sys.argv[0:2] = [sys.argv[1]]
    sys.exit(main())
'''
OURS = '''import dataclasses, json, os, sys
if __name__ == "__main__":
    from segtool.cli import context
    from segtool.registry import Mode, load_registry

    def patched():
        registry = load_registry()
        for name, patch in json.loads(os.environ["PATCHES"]).items():
            task = registry.tasks[name]
            if patch["resample"] is not None:
                models = tuple(dataclasses.replace(m, spacing_mm=tuple(patch["resample"]))
                               for m in task.modes[Mode.DEFAULT])
                task = dataclasses.replace(task, modes={Mode.DEFAULT: models})
            if patch["crop"] is not None:
                task = dataclasses.replace(task, crop=dataclasses.replace(task.crop, classes=tuple(patch["crop"])))
            registry.tasks[name] = task
        return registry

    context.registry = patched
    from segtool.cli.main import main
    sys.exit(main())
'''


def stand_in(task: str, source: Path, work: Path) -> Path:
    """Zip of the stand-in model of ``task``, made from the reference model folder ``source``."""
    spec = STAND_INS.get(task) or HELPERS[task]
    target = work / "stand_ins" / spec.folder / f"{spec.trainer}__nnUNetPlans__{spec.configuration}"
    shutil.copytree(source, target)
    dataset = json.loads((source / "dataset.json").read_text())
    names = json.loads(run([str(PEER_PYTHON), "-c", "import json; from totalsegmentator.map_to_binary import "
                            f"class_map; print(json.dumps(class_map[{task!r}]))"],
                           capture_output=True, text=True, check=True).stdout)
    keep = [0, *(dataset["labels"][name] for name in spec.classes)] if spec.classes else list(range(len(names) + 1))
    dataset["labels"] = {"background": 0, **{names[str(i)]: i for i in range(1, len(keep))}}
    (target / "dataset.json").write_text(json.dumps(dataset, indent=1))
    plans = json.loads((source / "plans.json").read_text())
    configuration = dict(plans["configurations"]["3d_fullres"])
    if spec.spacing is not None:
        configuration["spacing"] = list(reversed(spec.spacing))  # nnU-Net's z, y, x
    plans["configurations"][spec.configuration] = configuration
    (target / "plans.json").write_text(json.dumps(plans, indent=1))
    checkpoint = read_checkpoint(source / "fold_0" / "checkpoint_final.pth")
    checkpoint["init_args"]["configuration"] = spec.configuration  # nnU-Net takes the configuration from here
    weights = checkpoint["network_weights"]
    for key in [k for k in weights if ".seg_layers." in k]:
        weights[key] = weights[key][keep].clone()
        if key.endswith(".bias"):
            weights[key][0] += spec.background
    torch.save(checkpoint, target / "fold_0" / "checkpoint_final.pth")
    archive = work / f"{spec.folder}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(target.rglob("*")):
            zf.write(path, path.relative_to(work / "stand_ins"))
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=CT, help="a CT scan (default: the example CT)")
    parser.add_argument("--only", choices=[*STAND_INS, "crop_to_body"], help="one comparison (default: all)")
    parser.add_argument("--skull", nargs="+", default=["vertebrae_T6", "vertebrae_T5"], metavar="CLASS",
                        help="total's classes craniofacial_structures is cropped to for teeth (default: %(default)s; "
                             "liver spleen: none found, so it runs on the whole scan)")
    args = parser.parse_args()
    patches = {**PATCHES, "craniofacial_structures": {**PATCHES["craniofacial_structures"], "crop": args.skull}}
    tasks = [t for t in STAND_INS if args.only in (None, t)]
    helpers = [h for t in [*tasks, "crop_to_body"] if args.only in (None, t) for h in NEEDS.get(t, ())]
    models = {(STAND_INS.get(t) or HELPERS[t]).folder: t for t in [*tasks, *helpers]}  # one stand-in per folder
    with tempfile.TemporaryDirectory(prefix="bench-subtasks-") as tmp:
        work = Path(tmp)
        ours_env, theirs_env = install(work)
        with zipfile.ZipFile(ZIP) as archive:
            archive.extractall(work / "reference")
        source = next((work / "reference").glob("*/*__3d_fullres"))
        for task in models.values():
            archive = stand_in(task, source, work)
            run([str(SEGTOOL), "weights", "import", str(archive)], env=ours_env, check=True, capture_output=True)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(theirs_env["TOTALSEG_HOME_DIR"]) / "nnunet" / "results")
        for env in (ours_env, theirs_env):
            env["PATCHES"] = json.dumps(patches)
        (work / "theirs.py").write_text(THEIRS)
        (work / "ours.py").write_text(OURS)
        ours_python = Path(SEGTOOL).parent / "python"
        for task in tasks:
            common = ["-i", str(args.input.resolve()), "-ta", task, "--ml", "-d", "cpu", "-rc"]
            seconds = {}
            for tool, command, env in (("theirs", [str(PEER_PYTHON), str(work / "theirs.py"), "TotalSegmentator"],
                                        theirs_env),
                                       ("ours", [str(ours_python), str(work / "ours.py"), "-q"], ours_env)):
                began = time.perf_counter()
                done = run([*command, *common, "-o", str(work / f"{tool}_{task}.nii.gz")], env=env,
                           capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"{task}: {tool} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
                seconds[tool] = time.perf_counter() - began
            result = compare(work / f"ours_{task}.nii.gz", work / f"theirs_{task}.nii.gz")
            if not result["same_grid"]:
                print(f"{task}: outputs on different grids {result['shapes']}")
                continue
            dice = {value: round(c["dice"], 4) for value, c in result["classes"].items()}
            voxels = {tool: int(np.count_nonzero(np.asarray(nib.load(work / f"{tool}_{task}.nii.gz").dataobj)))
                      for tool in ("ours", "theirs")}
            print(f"{task}: TotalSegmentator {seconds['theirs']:.1f} s, segtool {seconds['ours']:.1f} s; labelled "
                  f"voxels {voxels['ours']} / {voxels['theirs']}; agreement {result['agreement']:.6f}; Dice per "
                  f"label {dice}", flush=True)
        if args.only in (None, "crop_to_body"):
            crops_beside(args.input.resolve(), work, ours_env, theirs_env)


def crops_beside(scan: Path, work: Path, ours_env: dict[str, str], theirs_env: dict[str, str]) -> None:
    """Crop ``scan`` to the (stand-in) body with both tools, whole body and trunk; print how the crops compare."""
    for only_trunc in ([], ["-t"]):
        outputs = {tool: work / f"{tool}_crop{''.join(only_trunc)}.nii.gz" for tool in ("ours", "theirs")}
        seconds = {}
        for tool, command, env in (
                ("theirs", [str(PEER_PYTHON), str(work / "theirs.py"), "crop_to_body", "-d", "cpu"], theirs_env),
                ("ours", [str(SEGTOOL), "crop-to-body", "-q", "-d", "cpu"], ours_env)):
            began = time.perf_counter()
            run([*command, "-i", str(scan), "-o", str(outputs[tool]), *only_trunc], env=env, check=True,
                capture_output=True)
            seconds[tool] = time.perf_counter() - began
        ours, theirs = (nib.load(outputs[tool]) for tool in ("ours", "theirs"))
        same = ours.shape == theirs.shape and np.allclose(ours.affine, theirs.affine, atol=1e-4) and np.array_equal(
            np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
        print(f"crop_to_body{' -t' if only_trunc else ''}: TotalSegmentator {seconds['theirs']:.1f} s, segtool "
              f"{seconds['ours']:.1f} s; {nib.load(scan).shape} cropped to {theirs.shape} / {ours.shape}; "
              f"{'identical' if same else 'DIFFERENT'} (shape, affine, voxels)", flush=True)


if __name__ == "__main__":
    main()

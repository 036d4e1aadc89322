"""The segkit model folder: what segkit-train writes, segtool downloads and the predictor loads.

Layout::

    MODEL_DIR/
        model.json            ModelInfo (this module)
        plans.json            the plans the model was trained with (segkit.planning)
        dataset.json          the dataset's dataset.json (segkit.io.dataset)
        fold_0/weights.safetensors, fold_1/..., or fold_all/...   (segkit.nets weights)

An nnU-Net v2 result folder (``fold_K/checkpoint_final.pth`` beside ``plans.json`` and
``dataset.json``, no ``model.json``) is recognised by `is_nnunet_result_folder`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from segkit.io.atomic import atomic_path
from segkit.io.errors import SegkitError

MODEL_FORMAT = "segkit-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
NNUNET_CHECKPOINT = "checkpoint_final.pth"


class ModelFolderError(SegkitError):
    """A folder is not a usable model folder (missing or malformed model.json, plans, weights)."""


@dataclass(frozen=True)
class ModelInfo:
    """Contents of ``model.json``.

    Args:
        trainer: name of the training configuration used (e.g. ``"default"``).
        configuration: plans configuration (e.g. ``"3d_fullres"``).
        folds: trained folds, integers or ``"all"``.
        labels: label name -> value (or region values), as in ``dataset.json``.
        mirroring_axes: spatial axes, in ``(i, j, k)`` order, that test-time mirroring may flip.
        versions: distribution -> version that produced the model.
    """

    trainer: str
    configuration: str
    folds: tuple[int | str, ...]
    labels: dict[str, int | tuple[int, ...]]
    mirroring_axes: tuple[int, ...] = (0, 1, 2)
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.folds:
            raise ModelFolderError("model.json: 'folds' must list at least one fold")
        bad = [f for f in self.folds if not (f == "all" or (isinstance(f, int) and f >= 0))]
        if bad:
            raise ModelFolderError(f"model.json: folds must be integers >= 0 or 'all', got {bad}")
        if self.labels.get("background") != 0:
            raise ModelFolderError("model.json: 'labels' must map 'background' to 0")

    def to_dict(self) -> dict:
        """Return the JSON object of ``model.json``."""
        return {
            "format": MODEL_FORMAT,
            "format_version": FORMAT_VERSION,
            "trainer": self.trainer,
            "configuration": self.configuration,
            "folds": list(self.folds),
            "labels": {k: list(v) if isinstance(v, tuple) else v for k, v in self.labels.items()},
            "mirroring_axes": list(self.mirroring_axes),
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelInfo:
        """Parse the JSON object of ``model.json``."""
        if data.get("format") != MODEL_FORMAT:
            raise ModelFolderError(f"model.json: 'format' must be {MODEL_FORMAT!r}, got {data.get('format')!r}")
        try:
            return cls(
                trainer=str(data["trainer"]),
                configuration=str(data["configuration"]),
                folds=tuple(f if f == "all" else int(f) for f in data["folds"]),
                labels={k: tuple(v) if isinstance(v, list) else int(v) for k, v in data["labels"].items()},
                mirroring_axes=tuple(int(a) for a in data.get("mirroring_axes", ())),
                versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFolderError(f"model.json: missing or malformed entry ({err})") from err


def read_model_info(folder: str | os.PathLike) -> ModelInfo:
    """Read ``folder/model.json``."""
    path = Path(folder) / "model.json"
    try:
        return ModelInfo.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as err:
        raise ModelFolderError(f"{folder}: not a segkit model folder (no model.json)") from err
    except json.JSONDecodeError as err:
        raise ModelFolderError(f"{path}: invalid JSON ({err})") from err


def write_model_info(info: ModelInfo, folder: str | os.PathLike) -> Path:
    """Write ``folder/model.json`` atomically."""
    path = Path(folder) / "model.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info.to_dict(), indent=2))
    return path


def fold_dir(folder: str | os.PathLike, fold: int | str) -> Path:
    """Folder of one fold: ``fold_0`` ... or ``fold_all``."""
    return Path(folder) / f"fold_{fold}"


def is_nnunet_result_folder(folder: str | os.PathLike) -> bool:
    """Tell whether ``folder`` is an nnU-Net v2 result folder (plans, dataset.json, fold_K checkpoints)."""
    folder = Path(folder)
    return (
        not (folder / "model.json").exists()
        and (folder / "plans.json").is_file()
        and (folder / "dataset.json").is_file()
        and any(folder.glob(f"fold_*/{NNUNET_CHECKPOINT}"))
    )

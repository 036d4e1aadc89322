"""Per-epoch log: JSON lines (``progress.jsonl``) and a ``progress.png`` drawn like nnU-Net's."""

from __future__ import annotations

import json
from pathlib import Path

from segkit.io import atomic_path

LOG_FILE = "progress.jsonl"
PLOT_FILE = "progress.png"


def append_log(folder: Path, record: dict) -> None:
    """Append one epoch record as a JSON line."""
    with open(Path(folder) / LOG_FILE, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def rewrite_log(folder: Path, records: list[dict]) -> None:
    """Replace the log with `records` (after a resume drops epochs past the checkpoint)."""
    with atomic_path(Path(folder) / LOG_FILE) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))


def plot_progress(folder: Path, records: list[dict]) -> Path:
    """Draw losses + pseudo Dice, epoch durations and learning rate per epoch into ``progress.png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(12, 14))
    FigureCanvasAgg(fig)
    ax_loss, ax_time, ax_lr = fig.subplots(3, 1)
    ax_loss.plot(epochs, [r["train_loss"] for r in records], color="b", label="loss_tr")
    ax_loss.plot(epochs, [r.get("val_loss") for r in records], color="r", label="loss_val")
    ax_dice = ax_loss.twinx()
    ax_dice.plot(epochs, [r.get("mean_pseudo_dice") for r in records], color="g", ls="dotted", label="pseudo dice")
    ax_dice.plot(epochs, [r.get("ema_pseudo_dice") for r in records], color="g", label="pseudo dice (mov. avg.)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_dice.set_ylabel("pseudo dice")
    ax_loss.legend(loc=(0, 1))
    ax_dice.legend(loc=(0.2, 1))
    ax_time.plot(epochs, [r["epoch_time_s"] for r in records], color="b", label="epoch duration")
    ax_time.set_ylabel("time [s]")
    ax_time.legend(loc=(0, 1))
    ax_lr.plot(epochs, [r["lr"] for r in records], color="b", label="learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate")
    ax_lr.legend(loc=(0, 1))
    fig.tight_layout()
    path = Path(folder) / PLOT_FILE
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path

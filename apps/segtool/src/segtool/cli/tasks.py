"""``segtool tasks`` and ``segtool classes TASK``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from segtool.cli import context


def tasks() -> None:
    """List the tasks, their modality, classes, which task finds a sub-task's region, modes (and model sizes), and
    which weights are installed (with those of the tasks a task needs: to find its region or to trim its map)."""
    registry, store = context.registry(), context.store()
    table = Table("task", "modality", "classes", "region found by", "modes", "installed")
    for name, task in sorted(registry.tasks.items()):
        counts = [(mode.value, sum(store.is_installed(m) for m in models), len(models))
                  for mode, models in task.modes.items()]
        needed = [m for _, helper, mode in registry.helpers(task) for m in helper.models(mode)]
        needed_done = sum(store.is_installed(m) for m in needed)
        if needed:
            counts.append(("needed", needed_done, len(needed)))
        installed = all(store.is_installed(m) for m in task.all_models()) and needed_done == len(needed)
        sizes = f" (sizes: {', '.join(task.sizes)})" if task.model_sizes else ""
        table.add_row(name, task.modality, str(len(task.labels)), task.crop.task if task.crop else "",
                      ", ".join(m.value for m in task.modes) + sizes,
                      "all" if installed else "; ".join(f"{what} {done}/{count}" for what, done, count in counts))
    context.out().print(table)


def classes(task: Annotated[str, typer.Argument(help="Task name (see 'segtool tasks').")]) -> None:
    """List the classes of TASK with their label values."""
    spec = context.registry().task(task)
    table = Table("value", "class", title=f"{task} ({spec.modality})", caption=spec.description or None)
    for value, name in sorted(spec.labels.items()):
        table.add_row(str(value), name)
    context.out().print(table)

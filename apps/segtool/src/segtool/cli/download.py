"""``segtool download TASK [--mode ...]``."""

from __future__ import annotations

from typing import Annotated

import typer

from segtool.cli import context
from segtool.cli.choices import DownloadMode
from segtool.registry import BIG, Mode
from segtool.weights import ensure_task


def download(
    task: Annotated[str, typer.Argument(help="Task name (see 'segtool tasks').")],
    mode: Annotated[DownloadMode, typer.Option("--mode", "-m", help="Which models.")] = DownloadMode.DEFAULT,
    model_size: Annotated[str, typer.Option(
        "--model-size", "-ms", metavar="SIZE", help="big, or another size the task comes in.")] = BIG,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or messages.")] = False,
) -> None:
    """Download, verify and install the weights of TASK (and of the models that find a sub-task's region or trim its
    map)."""
    context.show_messages(quiet)
    registry, store = context.registry(), context.store()
    spec = registry.task(task).sized(model_size)
    modes = list(spec.modes) if mode is DownloadMode.ALL else [Mode(mode.value)]
    with context.download_bars(quiet) as bars:
        for each in modes:
            installed = ensure_task(spec, each, registry=registry, store=store,
                                    progress_for=context.progress_for(bars))
            for entry, path in installed:
                context.out().print(f"{task} {each.value}: {entry.name} -> {path}")
        for role, helper, helper_mode in registry.helpers(spec):  # models that find its region or trim its map
            for entry, path in ensure_task(helper, helper_mode, registry=registry, store=store,
                                           progress_for=context.progress_for(bars)):
                context.out().print(f"{task} {role} ({helper.name} {helper_mode.value}): {entry.name} -> {path}")

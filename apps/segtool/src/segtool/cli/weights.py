"""``segtool weights path|list|verify|import|remove``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from segkit.io.console import USAGE_ERROR, App, print_error
from segtool.cli import context
from segtool.weights import import_zip

app = App(help="Manage installed weights (offline import, verification, removal).")


@app.command()
def path() -> None:
    """Print the folder where weights are installed ($SEGTOOL_HOME)."""
    context.out().print(str(context.store().root))


@app.command("list")
def list_installed() -> None:
    """List installed models with their sha256 and whether it was verified."""
    records = context.store().records()
    table = Table(Column("model", no_wrap=True), "sha256", "verified", "source")
    for name, record in sorted(records.items()):
        table.add_row(name, record.sha256[:16] + "...", "yes" if record.verified else "no (recorded)", record.source)
    context.out().print(table if records else "no weights installed")


@app.command()
def verify(task: Annotated[str | None, typer.Argument(help="Only this task's models.")] = None) -> None:
    """Check installed files against the hashes recorded at install; exit 2 on any difference."""
    registry, store = context.registry(), context.store()
    names = ([m.name for m in registry.task(task).all_models() if m.name in store.records()] if task
             else list(store.records()))
    problems = [p for name in names for p in store.verify(name)]
    for problem in problems:
        print_error(problem)
    if problems:
        raise typer.Exit(USAGE_ERROR)
    context.out().print(f"{len(names)} model(s) intact")


@app.command("import")
def import_command(zip_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Model zip.")]) -> None:
    """Install a model zip fetched by other means (recognised by folder name or sha256)."""
    for entry in import_zip(zip_path, registry=context.registry(), store=context.store()):
        context.out().print(f"installed {entry.name}")


@app.command()
def remove(task: Annotated[str, typer.Argument(help="Task whose models to remove.")]) -> None:
    """Remove every installed model of TASK."""
    removed = [m.name for m in context.registry().task(task).all_models() if context.store().remove(m.name)]
    context.out().print(f"removed {', '.join(removed)}" if removed else f"nothing of {task} was installed")

"""The ``segtool`` command: ``segtool -i INPUT -o OUTPUT -ta TASK`` plus management commands."""

from __future__ import annotations

from segkit.io.console import App

from segtool.cli import download, info, tasks, weights

app = App(help="Segment medical images with pretrained models, by task, in one command.")
app.command("tasks")(tasks.tasks)
app.command("classes")(tasks.classes)
app.command("download")(download.download)
app.command("info")(info.info)
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Entry point of the ``segtool`` console script."""
    app()

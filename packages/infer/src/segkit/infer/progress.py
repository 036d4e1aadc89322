"""A rich progress bar over cases, for the console scripts (libraries never print)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from segkit.io.console import progress_bars


@contextlib.contextmanager
def case_progress(total: int, *, quiet: bool = False) -> Iterator[Callable[[object, str], None]]:
    """Yield ``advance(case, status)``; shows a bar on stderr unless ``quiet`` (or stderr is not a terminal)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with progress_bars(*columns, quiet=quiet, transient=False) as progress:
        task = progress.add_task("predicting", total=total)

        def advance(case, status: str) -> None:
            name = getattr(case, "identifier", str(case))
            progress.update(task, advance=1, description=f"{status} {name}")

        yield advance

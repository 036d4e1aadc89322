"""A Typer app whose commands turn user errors into one line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from segkit.io.errors import SegkitError

if TYPE_CHECKING:
    from rich.progress import Progress

USAGE_ERROR = 2
PIPED_WIDTH = 1000  # rich's default of 80 columns would wrap paths and cut table cells in piped output
PIPED_HELP_WIDTH = 120  # help piped to a file or pager: at rich's 80 columns, long option names were cut ("--disa…")


class App(typer.Typer):
    """`typer.Typer` for segkit console scripts.

    ``-h`` is ``--help``. Every command registered with ``@app.command()`` (and the ``@app.callback()``) reports an
    exception of a type in ``user_errors`` as ``error: <message>`` (one line, no traceback) and exits 2; local
    variables are never shown in tracebacks. A type may be named as ``"module.Class"``, so that the app does not
    import its module (torch, for segkit.nets) before a command needs it.

    Example:
        >>> app = App(user_errors=(SegkitError, "segkit.nets.errors.NetsError"), help="demo")
    """

    def __init__(self, *, user_errors: tuple[type[Exception] | str, ...] = (SegkitError,), **settings) -> None:
        settings.setdefault("pretty_exceptions_show_locals", False)
        settings.setdefault("no_args_is_help", True)
        settings.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})  # -h as nnU-Net's
        settings.setdefault("cls", PlainFlagsGroup)
        super().__init__(**settings)
        self.user_errors = user_errors

    def __call__(self, *args, **kwargs):
        """Run the app as a console script; a usage error (unknown option, missing argument, extra value) is
        reported like a user error: one ``error:`` line, exit 2."""
        kwargs.setdefault("standalone_mode", False)
        _widen_piped_help()
        try:
            outcome = super().__call__(*args, **kwargs)
        except Exception as err:
            if not _is_usage_error(err):
                raise
            if type(err).__name__ == "NoArgsIsHelpError":
                err.show()  # the help text, as for a bare command
            else:
                print_error(err.format_message())
            raise SystemExit(err.exit_code) from None
        finally:
            # The interpreter's last garbage collection walks every object left, which took 0.4 s after importing
            # torch; frozen objects are skipped. Exit handlers and file closing run as usual.
            gc.freeze()
        raise SystemExit(outcome if isinstance(outcome, int) else 0)

    def command(self, name: str | None = None, **settings) -> Callable[[Callable], Callable]:
        """Register a command, as `typer.Typer.command`, with user-error reporting; its repeatable options also take
        several values after one flag (`SeveralValues`)."""
        settings.setdefault("cls", SeveralValues)
        register = super().command(name, **settings)

        def decorator(func: Callable) -> Callable:
            register(self._reporting_user_errors(func))
            return func

        return decorator

    def callback(self, **settings) -> Callable[[Callable], Callable]:
        """Register the app's callback, as `typer.Typer.callback`, with user-error reporting."""
        register = super().callback(**settings)

        def decorator(func: Callable) -> Callable:
            register(self._reporting_user_errors(func))
            return func

        return decorator

    def _reporting_user_errors(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, self._loaded_user_errors()):
                    raise
                print_error(str(err))
                raise typer.Exit(USAGE_ERROR) from None

        return wrapper

    def _loaded_user_errors(self) -> tuple[type[Exception], ...]:
        """`user_errors` as types; a named type whose module was never imported cannot have been raised."""
        types = []
        for error in self.user_errors:
            if isinstance(error, str):
                module, _, name = error.rpartition(".")
                if module in sys.modules:
                    types.append(getattr(sys.modules[module], name))
            else:
                types.append(error)
        return tuple(types)


class PlainFlags:
    """Help that shows no value type after an option that takes none (typer 0.2x prints ``--quiet <bool>``)."""

    def get_params(self, ctx) -> list:
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
                param.metavar = ""
        return params


class PlainFlagsGroup(PlainFlags, TyperGroup):
    """A command group with `PlainFlags` help."""


class SeveralValues(PlainFlags, TyperCommand):
    """A command whose repeatable options also take several values after one flag, as nnU-Net's commands are
    written: ``-f 0 1 2``, ``-c 2d 3d_fullres``, ``-l 1 2`` (see `spread_values`); its help is `PlainFlags`'."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        options = [param for param in self.params if param.param_type_name == "option"]
        repeatable = [name for param in options if param.multiple for name in param.opts]
        valued = [name for param in options if not (param.is_flag or param.count) for name in param.opts]
        required = sum(param.required for param in self.params if param.param_type_name == "argument")
        return super().parse_args(ctx, spread_values(args, repeatable, valued=valued, positionals=required))


def spread_values(args: list[str], repeatable: Iterable[str], *, valued: Iterable[str] = (),
                  positionals: int = 0) -> list[str]:
    """``args`` with each further value after a ``repeatable`` option given its own flag (``-f 0 1`` -> ``-f 0 -f
    1``). The values end at the next option, or at an existing file or folder while fewer than ``positionals``
    positional arguments have been given: that one is a positional argument (``-l 1 2 PRED_DIR REF_DIR``).
    ``valued`` names the options that take a value (not counted as positional arguments).

    Example:
        >>> spread_values(["-f", "0", "1", "--no-tta"], ["-f"])
        ['-f', '0', '-f', '1', '--no-tta']
    """
    repeatable, valued = set(repeatable), set(valued) | set(repeatable)
    spread: list[str] = []
    flag, values, given, option_value = None, 0, 0, False
    for arg in args:
        if arg.startswith("-"):
            flag = arg if arg in repeatable else None
            option_value = arg in valued and flag is None
            values = 0
        elif option_value:
            option_value = False
        elif flag is not None and values and Path(arg).exists() and given < positionals:
            flag = None
            given += 1
        elif flag is not None:
            if values:
                spread.append(flag)
            values += 1
        else:
            given += 1
        spread.append(arg)
    return spread


def _widen_piped_help() -> None:
    """Give typer's help `PIPED_HELP_WIDTH` columns where it does not go to a terminal and no width is set (through
    $TERMINAL_WIDTH, which typer reads when it first formats help: importing its formatter here cost 45 ms a run)."""
    if not sys.stdout.isatty() and "TERMINAL_WIDTH" not in os.environ:
        if "typer.rich_utils" in sys.modules:
            sys.modules["typer.rich_utils"].MAX_WIDTH = PIPED_HELP_WIDTH
        else:
            os.environ["TERMINAL_WIDTH"] = str(PIPED_HELP_WIDTH)


def _is_usage_error(err: Exception) -> bool:
    # click's ClickException, whether typer vendors click or depends on it (typer >= 0.12 does either)
    return any(cls.__name__ == "ClickException" for cls in type(err).__mro__)


def progress_bars(*columns, quiet: bool = False, transient: bool = True) -> Progress:
    """A rich progress display of ``columns`` on stderr, off when ``quiet`` or when stderr is not a terminal (piped or
    logged output gets no bar lines, so that an error there stays its one line)."""
    from rich.progress import Progress

    console = Console(stderr=True)
    return Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=transient)


@contextlib.contextmanager
def info_to_stderr(enabled: bool, logger: str = "segkit") -> Iterator[None]:
    """While inside, ``logger``'s INFO messages go to standard error as they are (a command's ``--verbose``)."""
    if not enabled:
        yield
        return
    log, handler = logging.getLogger(logger), logging.StreamHandler(sys.stderr)
    level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def print_error(message: str) -> None:
    """Print ``error: message`` in red on stderr."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def output_console(*, stderr: bool = False) -> Console:
    """Console for results on stdout (``stderr``: on stderr): a terminal's width, or (piped into a file or another
    program, a CI log) wide enough that paths and table cells are never wrapped or cut."""
    console = Console(soft_wrap=True, stderr=stderr)
    return console if console.is_terminal else Console(soft_wrap=True, stderr=stderr, width=PIPED_WIDTH)

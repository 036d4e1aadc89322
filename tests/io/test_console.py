"""segkit.io.console.App: user errors, given as types or by name, are one line and exit 2."""

import gc
import json

import pytest
from typer.testing import CliRunner

from segkit.io.console import App


def _app(error: Exception) -> App:
    app = App(user_errors=("json.decoder.JSONDecodeError",), help="demo")

    @app.command()
    def fail(name: str) -> None:
        raise error

    return app


def test_error_named_by_module_and_class_is_one_line_exit_2():
    result = CliRunner().invoke(_app(json.JSONDecodeError("bad json", "{", 1)), ["x"])
    assert result.exit_code == 2
    assert result.output.startswith("error: bad json") and "Traceback" not in result.output


def test_other_errors_are_not_user_errors():
    result = CliRunner().invoke(_app(ValueError("a bug")), ["x"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)


def test_a_name_whose_module_was_never_imported_matches_nothing():
    app = App(user_errors=("segkit_no_such_module.Error",), help="demo")
    assert app._loaded_user_errors() == ()


def test_usage_errors_of_the_console_script_are_one_line_exit_2(capsys):
    app = App(help="demo")

    @app.command()
    def greet(name: str, loud: bool = False) -> None:
        print(name.upper() if loud else name)

    def run(*args: str) -> int:
        try:
            app(list(args), prog_name="demo")
        except SystemExit as done:
            return done.code
        raise AssertionError("a console script always exits")

    assert run("ann", "--loud") == 0 and capsys.readouterr().out == "ANN\n"
    for args, fragment in ((["ann", "--bogus"], "--bogus"), ([], "Missing argument"), (["ann", "bob"], "(bob)")):
        assert run(*args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


def test_the_console_script_freezes_the_garbage_collector_on_its_way_out():
    """The interpreter's last collection then skips every object left (0.4 s after importing torch)."""
    app = App(help="demo")

    @app.command()
    def greet(name: str) -> None:
        assert gc.get_freeze_count() == 0  # collections run as usual while the command works

    gc.unfreeze()
    try:
        with pytest.raises(SystemExit):
            app(["ann"], prog_name="demo")
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

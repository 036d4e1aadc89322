"""segkit.io.console.App: user errors, given as types or by name, are one line and exit 2; repeatable options
take several values after one flag."""

import gc
import json
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from segkit.io.console import App, spread_values


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
    assert run("-h") == 0  # -h is --help, as in nnU-Net's commands
    shown = capsys.readouterr().out
    assert "Usage: demo" in shown and "--loud" in shown and "<bool>" not in shown  # a flag takes no value
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


def test_repeatable_options_take_several_values_after_one_flag_as_nnunet_writes_them(tmp_path, monkeypatch):
    app = App(help="demo")

    @app.command()
    def show(folder: str, folds: Annotated[list[str] | None, typer.Option("-f", "--folds")] = None,
             labels: Annotated[list[int] | None, typer.Option("-l")] = None,
             output: Annotated[str, typer.Option("-o")] = "o") -> None:
        print(json.dumps({"folder": folder, "folds": folds, "labels": labels, "output": output}))

    def parsed(*args: str) -> dict:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert parsed("-f", "0", "1", "all", "-o", "out", "x") == {"folder": "x", "folds": ["0", "1", "all"],
                                                               "labels": None, "output": "out"}
    assert parsed("x", "--folds", "3", "-f", "4", "-l", "1", "2") == {"folder": "x", "folds": ["3", "4"],
                                                                    "labels": [1, 2], "output": "o"}
    # an existing folder after the values is the positional argument, not one more value...
    assert parsed("-l", "1", "2", str(tmp_path))["folder"] == str(tmp_path)
    # ...unless the positional arguments are all there (a configuration named as a folder here: -c 2d 3d_fullres)
    (tmp_path / "3d_fullres").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parsed("-o", "out", "x", "-f", "2d", "3d_fullres")["folds"] == ["2d", "3d_fullres"]
    assert spread_values(["-o", "a", "b", "-f", "0,1"], ["-f"]) == ["-o", "a", "b", "-f", "0,1"]

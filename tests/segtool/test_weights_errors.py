"""A broken weights folder or network: one line and exit 2, never a traceback; listing creates no folders."""

import errno
import logging
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segkit.io import Image, write_image
from segtool.cli.main import app
from segtool.errors import SegtoolError
from segtool.registry import load_registry
from segtool.store import WeightsStore
from segtool.weights import ensure_task

runner = CliRunner()
ONE_HINT = "'segtool weights import ZIP'"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def one_error_line(result) -> str:
    """The single ``error: ...`` line of a run that failed with exit code 2 (and nothing else)."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def read_only(path: Path) -> OSError:
    return OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))


@pytest.mark.parametrize("text", ["{broken", "[]", '{"m": {"sha256": "0"}}'])
def test_corrupt_record_is_one_error_naming_the_file(tmp_path, text):
    (tmp_path / "installed.json").write_text(text)
    with pytest.raises(SegtoolError, match=r"installed\.json: not a valid record .*delete it"):
        WeightsStore(tmp_path).records()


def test_corrupt_record_stops_every_command_with_one_line(hippo_cli, tmp_path):
    weights = tmp_path / "home" / "weights"
    weights.mkdir(parents=True)
    (weights / "installed.json").write_text("{broken")
    scan = tmp_path / "scan.nii.gz"
    write_image(Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), scan)
    for args in (["tasks"], ["weights", "list"], ["weights", "verify"], ["download", "hippo", "-q"],
                 ["-i", scan, "-o", tmp_path / "out", "-ta", "hippo", "-q"]):
        line = one_error_line(invoke(*args))
        assert f"{weights / 'installed.json'}: not a valid record" in line and "delete it" in line
    assert hippo_cli.log == []  # nothing was downloaded over the broken record


def test_listing_creates_no_folders(hippo_cli, tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise read_only(path)

    monkeypatch.setattr(Path, "mkdir", refuse)  # a read-only SEGTOOL_HOME
    for args in (["tasks"], ["weights", "list"], ["weights", "verify"], ["weights", "path"],
                 ["weights", "remove", "hippo"]):
        assert invoke(*args).exit_code == 0, args
    assert not (tmp_path / "home").exists()
    line = one_error_line(invoke("download", "hippo", "-q"))
    assert line == (f"error: cannot write weights folder {tmp_path / 'home' / 'weights'}: Read-only file system; "
                    "set SEGTOOL_HOME to a writable folder")
    assert hippo_cli.log == []


def test_home_under_a_file_cannot_be_created(hippo_cli, hippocampus_model_zip, tmp_path):
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    assert invoke("tasks").exit_code == 0
    for args in (["download", "hippo"], ["weights", "import", hippocampus_model_zip]):
        line = one_error_line(invoke(*args))
        assert f"cannot write weights folder {home / 'weights'}: Not a directory; set SEGTOOL_HOME" in line


def test_remove_on_a_read_only_folder_is_one_line(hippo_cli, tmp_path, monkeypatch):
    assert invoke("download", "hippo", "-q").exit_code == 0

    def refuse(path, *args, **kwargs):
        raise read_only(path)

    monkeypatch.setattr("segtool.locking.open", refuse, raising=False)  # the lock file cannot be created
    line = one_error_line(invoke("weights", "remove", "hippo"))
    assert "Read-only file system; set SEGTOOL_HOME to a writable folder" in line
    assert (tmp_path / "home" / "weights" / "Dataset004_Hippocampus").is_dir()


def test_installed_weights_that_do_not_load_are_one_line(hippo_cli, tmp_path):
    assert invoke("download", "hippo", "-q").exit_code == 0
    (checkpoint,) = (tmp_path / "home" / "weights").rglob("checkpoint_final.pth")
    checkpoint.write_bytes(b"truncated")
    scan = tmp_path / "scan.nii.gz"
    write_image(Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), scan)
    line = one_error_line(invoke("-i", scan, "-o", tmp_path / "out", "-ta", "hippo", "-q"))
    assert "Dataset004_Hippocampus: the installed weights do not load" in line and "checkpoint_final.pth" in line
    assert not (tmp_path / "out").exists()


def test_quiet_failed_download_prints_only_the_final_error(hippo_cli, tmp_path, monkeypatch, caplog):
    delays = []
    monkeypatch.setattr("segtool.download.time.sleep", delays.append)
    hippo_cli.fail_next = [503] * 5
    scan = tmp_path / "scan.nii.gz"
    write_image(Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), scan)
    line = one_error_line(invoke("-i", scan, "-o", tmp_path / "out", "-ta", "hippo", "-q"))
    assert "download failed after 5 attempts (HTTP 503)" in line and ONE_HINT in line
    assert delays == [1.0, 2.0, 4.0, 8.0] and len(hippo_cli.log) == 5  # server errors are still retried
    # pytest captures log records; with no logging configured (the CLI), Python prints WARNING and above on stderr
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    hippo_cli.fail_next = [503]
    result = invoke("-i", scan, "-o", tmp_path / "out", "-ta", "hippo")  # without -q the retry is shown
    assert result.exit_code == 0 and "HTTP 503); retrying in 1.0 s" in result.output, result.output


def test_unknown_host_fails_at_once_with_the_offline_route(make_registry, tmp_path, monkeypatch):
    lookups = []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr("segtool.download.time.sleep", lambda s: pytest.fail("a DNS failure was retried"))
    registry = load_registry(make_registry("https://weights.example.invalid/hippo.zip", None))
    with pytest.raises(SegtoolError, match="cannot resolve host 'weights.example.invalid'.*segtool weights import"):
        ensure_task(registry.task("hippo"), "default", registry=registry, store=WeightsStore(tmp_path / "w"))
    assert lookups == ["weights.example.invalid"]

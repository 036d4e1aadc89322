"""Downloads against a local HTTP server: resume, retries, checksums, one writer at a time."""

import logging
import socket
import threading
import time

import pytest

from segtool.download import download, file_sha256
from segtool.errors import ChecksumMismatchError, DownloadError


@pytest.fixture()
def served_zip(http_server, hippocampus_model_zip, hippocampus_model_sha256):
    base, state = http_server
    state.files["model.zip"] = hippocampus_model_zip.read_bytes()
    return f"{base}/model.zip", state, hippocampus_model_sha256


def test_fresh_download_is_verified_and_complete(served_zip, tmp_path):
    url, state, digest = served_zip
    target = tmp_path / "model.zip"
    seen = []
    assert download(url, target, sha256=digest, on_progress=lambda done, total: seen.append((done, total))) == digest
    assert file_sha256(target) == digest
    assert seen[-1] == (len(state.files["model.zip"]), len(state.files["model.zip"]))
    assert not (tmp_path / "model.zip.part").exists()


def test_cut_connection_resumes_with_a_range_request(served_zip, tmp_path):
    url, state, digest = served_zip
    state.cut_after = 5_000_000
    assert download(url, tmp_path / "m.zip", sha256=digest, backoff=0.01) == digest
    (_, first_range), (_, resume_range) = state.log
    assert first_range is None
    assert 0 < int(resume_range.removeprefix("bytes=").rstrip("-")) <= 5_000_000  # what reached the disk


def test_partial_file_from_an_interrupted_run_is_resumed(served_zip, tmp_path):
    url, state, digest = served_zip
    (tmp_path / "m.zip.part").write_bytes(state.files["model.zip"][:1234])
    assert download(url, tmp_path / "m.zip", sha256=digest) == digest
    assert state.log == [("/model.zip", "bytes=1234-")]


def test_server_errors_are_retried_with_backoff(served_zip, tmp_path):
    url, state, digest = served_zip
    state.fail_next = [503, 503]
    assert download(url, tmp_path / "m.zip", sha256=digest, backoff=0.01) == digest
    assert len(state.log) == 3


def test_persistent_failure_and_client_errors_raise_download_error(served_zip, tmp_path):
    url, state, digest = served_zip
    state.fail_next = [503] * 3
    with pytest.raises(DownloadError, match="after 3 attempts"):
        download(url, tmp_path / "m.zip", sha256=digest, retries=2, backoff=0.01)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(url.replace("model.zip", "absent.zip"), tmp_path / "a.zip", retries=2, backoff=0.01)
    assert len(state.log) == 4  # 404 is not retried
    assert not (tmp_path / "m.zip").exists() and not (tmp_path / "a.zip").exists()


def test_checksum_mismatch_deletes_the_file(served_zip, tmp_path):
    url, _, _ = served_zip
    with pytest.raises(ChecksumMismatchError, match="expected 000"):
        download(url, tmp_path / "m.zip", sha256="0" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip.lock"]


def test_concurrent_downloads_of_one_file_fetch_it_once(served_zip, tmp_path):
    url, state, digest = served_zip
    state.chunk_delay = 0.001
    results, errors = [], []

    def fetch():
        try:
            results.append(download(url, tmp_path / "m.zip", sha256=digest))
        except Exception as err:  # noqa: BLE001 (collected and asserted below)
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [digest] * 3
    assert len(state.log) == 1


def test_file_urls_are_copied_the_same_way(hippocampus_model_zip, hippocampus_model_sha256, tmp_path):
    digest = hippocampus_model_sha256
    assert download(hippocampus_model_zip.as_uri(), tmp_path / "m.zip", sha256=digest) == digest


def test_retries_are_logged_at_info_not_warning(served_zip, tmp_path, caplog):
    url, state, digest = served_zip
    state.fail_next = [503]
    with caplog.at_level(logging.INFO, logger="segtool"):
        assert download(url, tmp_path / "m.zip", sha256=digest, backoff=0.01) == digest
    assert [(r.levelno, "retrying" in r.getMessage()) for r in caplog.records] == [(logging.INFO, True)]


def test_unresolvable_host_is_not_retried(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="cannot resolve host 'weights.example.invalid'"):
        download("http://weights.example.invalid/m.zip", tmp_path / "m.zip", backoff=5.0)
    assert time.monotonic() - started < 2.0
    assert not (tmp_path / "m.zip").exists()

"""Resumable, verified, single-writer downloads over HTTP(S) or from local ``file://`` URLs."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from segtool.errors import ChecksumMismatchError, DownloadError
from segtool.locking import exclusive_lock

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


class _Retryable(Exception):
    """A failure worth another attempt (server error, cut connection, short body)."""


def download(
    url: str,
    target: Path,
    *,
    sha256: str | None = None,
    on_progress: Progress | None = None,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> str:
    """Download ``url`` to ``target`` and return the file's sha256.

    The body goes to ``target.part`` (resumed with an HTTP Range request after a cut
    connection or an interrupted run), is checked against ``sha256`` when given, then
    renamed onto ``target``. A lock file makes a second process wait for the first instead
    of downloading the same file twice. Retries (logged at INFO) are for cut connections,
    timeouts and server errors; a host name that does not resolve fails at once.

    Raises:
        DownloadError: the server refused, the host is unknown, or every retry failed.
        ChecksumMismatchError: the file's digest differs from ``sha256`` (the file is deleted).
        OSError: ``target``'s folder cannot be written.
    """
    import requests  # here, not at the top: loading it took 0.2 s of every run that downloads nothing

    retryable = (_Retryable, requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.with_name(target.name + ".lock")):
        if target.exists() and (sha256 is None or file_sha256(target) == sha256):
            return file_sha256(target)
        partial = target.with_name(target.name + ".part")
        for attempt in range(retries + 1):
            try:
                _fetch(url, partial, timeout=timeout, on_progress=on_progress)
                break
            except (_Retryable, requests.RequestException) as err:
                if _cannot_resolve(err):
                    raise DownloadError(f"{url}: cannot resolve host {urlparse(url).hostname!r} "
                                        "(no network, or a wrong address)") from err
                if not isinstance(err, retryable):
                    raise DownloadError(f"{url}: {err}") from err
                if attempt == retries:
                    raise DownloadError(f"{url}: download failed after {retries + 1} attempts ({err})") from err
                delay = backoff * 2**attempt
                logger.info("download of %s failed (%s); retrying in %.1f s", url, err, delay)
                time.sleep(delay)
        digest = file_sha256(partial)
        if sha256 is not None and digest != sha256:
            partial.unlink()
            raise ChecksumMismatchError(f"{url}: sha256 is {digest}, expected {sha256}; the file was deleted")
        os.replace(partial, target)
        return digest


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cannot_resolve(err: BaseException | None) -> bool:
    """Whether ``err`` was caused by a host name lookup failure (retrying will not help)."""
    while err is not None and not isinstance(err, socket.gaierror):
        err = err.__cause__ or err.__context__
    return err is not None


def _fetch(url: str, partial: Path, *, timeout: float, on_progress: Progress | None) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    scheme = urlparse(url).scheme
    if scheme == "file":
        chunks, total, resumed = _local_chunks(Path(unquote(urlparse(url).path)), offset)
    elif scheme in ("http", "https"):
        chunks, total, resumed = _http_chunks(url, offset, timeout)
    else:
        raise DownloadError(f"{url}: unsupported URL scheme {scheme!r} (use http, https or file)")
    written = offset if resumed else 0
    with open(partial, "ab" if resumed else "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            written += len(chunk)
            if on_progress is not None:
                on_progress(written, total)
    if total is not None and written < total:
        raise _Retryable(f"connection closed after {written} of {total} bytes")


def _http_chunks(url: str, offset: int, timeout: float) -> tuple[Iterator[bytes], int | None, bool]:
    import requests

    headers = {"Range": f"bytes={offset}-"} if offset else {}
    response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    if response.status_code == 416 and offset:
        response.close()  # the partial file is already complete
        return iter(()), offset, True
    if response.status_code >= 500 or response.status_code == 429:
        response.close()
        raise _Retryable(f"HTTP {response.status_code}")
    if response.status_code not in (200, 206):
        response.close()
        raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
    resumed = response.status_code == 206
    length = response.headers.get("Content-Length")
    total = (int(length) + (offset if resumed else 0)) if length is not None else None
    return response.iter_content(CHUNK), total, resumed


def _local_chunks(path: Path, offset: int) -> tuple[Iterator[bytes], int, bool]:
    if not path.is_file():
        raise DownloadError(f"{path}: no such file")
    total = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            yield from iter(lambda: f.read(CHUNK), b"")

    return chunks(), total, offset > 0

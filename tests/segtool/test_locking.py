"""The lock file's Windows branch (msvcrt.locking), run with a stand-in for the module, which Linux lacks; the flock
branch is what every download test runs (test_download: concurrent downloads fetch once)."""

import errno

import pytest

from segtool import locking


class StandInMsvcrt:
    """msvcrt.locking as Windows documents it: LK_LOCK tries for 10 s, then raises EDEADLOCK."""

    LK_LOCK, LK_UNLCK = 1, 0

    def __init__(self, busy_tries: int, error: int = errno.EDEADLOCK) -> None:
        self.busy_tries, self.error, self.calls = busy_tries, error, []

    def locking(self, fd, mode, nbytes):
        self.calls.append((mode, nbytes))
        if mode == self.LK_LOCK and self.busy_tries:
            self.busy_tries -= 1
            raise OSError(self.error, "resource deadlock would occur")


def test_windows_keeps_trying_while_the_lock_is_taken_and_unlocks_after(tmp_path, monkeypatch):
    stand_in = StandInMsvcrt(busy_tries=2)
    monkeypatch.setattr(locking, "fcntl", None)
    monkeypatch.setattr(locking, "msvcrt", stand_in, raising=False)
    with locking.exclusive_lock(tmp_path / "weights.lock"):
        assert stand_in.calls == [(1, 1), (1, 1), (1, 1)]
    assert stand_in.calls[-1] == (0, 1)


def test_windows_fails_at_once_where_the_lock_cannot_be_taken_for_another_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(locking, "fcntl", None)
    monkeypatch.setattr(locking, "msvcrt", StandInMsvcrt(busy_tries=1, error=errno.EBADF), raising=False)
    with pytest.raises(OSError, match="deadlock"), locking.exclusive_lock(tmp_path / "weights.lock"):
        pass

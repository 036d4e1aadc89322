"""The lock file's Windows branch (msvcrt.locking), run with a stand-in for the module, which Linux lacks; the flock
branch is what every download test runs (test_download: concurrent downloads fetch once)."""

import errno

import pytest

from segtool import locking


class StandInMsvcrt:
    """msvcrt.locking as Windows documents it: LK_NBLCK raises EACCES (or EDEADLOCK) where the bytes are locked."""

    LK_NBLCK, LK_UNLCK = 2, 0

    def __init__(self, busy_tries: int, error: int = errno.EACCES) -> None:
        self.busy_tries, self.error, self.calls = busy_tries, error, []

    def locking(self, fd, mode, nbytes):
        self.calls.append((mode, nbytes))
        if mode == self.LK_NBLCK and self.busy_tries:
            self.busy_tries -= 1
            raise OSError(self.error, "locked")


@pytest.mark.parametrize("busy", [errno.EACCES, errno.EDEADLOCK])
def test_windows_keeps_trying_while_the_lock_is_taken_and_unlocks_after(tmp_path, monkeypatch, busy):
    stand_in = StandInMsvcrt(busy_tries=2, error=busy)
    monkeypatch.setattr(locking, "fcntl", None)
    monkeypatch.setattr(locking, "msvcrt", stand_in, raising=False)
    with locking.exclusive_lock(tmp_path / "weights.lock"):
        assert stand_in.calls == [(2, 1), (2, 1), (2, 1)]
    assert stand_in.calls[-1] == (0, 1)


def test_windows_fails_at_once_where_the_lock_cannot_be_taken_for_another_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(locking, "fcntl", None)
    monkeypatch.setattr(locking, "msvcrt", StandInMsvcrt(busy_tries=1, error=errno.EBADF), raising=False)
    with pytest.raises(OSError, match="locked"), locking.exclusive_lock(tmp_path / "weights.lock"):
        pass

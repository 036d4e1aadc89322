"""What native code writes to fd 2 is held back, and given back unless it became an error message."""

import os

from segkit.io.stderr_capture import captured_stderr


def test_text_asked_for_is_dropped_and_other_text_is_given_back(capfd):
    with captured_stderr() as text:
        os.write(2, b"ITK: cannot parse file\n")
        assert text() == "ITK: cannot parse file\n"
    assert capfd.readouterr().err == ""
    with captured_stderr():
        os.write(2, b"printed meanwhile\n")
        assert capfd.readouterr().err == ""
    assert capfd.readouterr().err == "printed meanwhile\n"

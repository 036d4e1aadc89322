"""segtool's one configuration variable, read at call time.

``SEGTOOL_HOME``: folder where weights are installed (default: the platform's user data
folder for ``segtool``, e.g. ``~/.local/share/segtool`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_VARIABLE = "SEGTOOL_HOME"


def segtool_home() -> Path:
    """Folder that holds segtool's installed weights (``$SEGTOOL_HOME`` or the user data dir)."""
    configured = os.environ.get(HOME_VARIABLE)
    return Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("segtool"))


def weights_dir() -> Path:
    """Folder of installed model folders (not created here: `WeightsStore` creates it on its first write)."""
    return segtool_home() / "weights"

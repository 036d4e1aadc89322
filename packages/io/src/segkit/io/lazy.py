"""Package exports imported on first use, so that e.g. a console script's ``--help`` does not import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """Return a module ``__getattr__`` and ``__all__`` for names that live in submodules of `package`.

    Example (in a package's ``__init__.py``)::

        __getattr__, __all__ = lazy_exports(__name__, {"Predictor": "predictor"})
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)

"""Segment medical images with pretrained models, by task, in one command.

Python API: `segment` for one scan, `Segmenter` to keep models loaded across many scans, and `totalsegmentator`
with TotalSegmentator's own signature. They are imported on first use, so that ``segtool --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {"SegmentOptions": "segtool.options", "Segmenter": "segtool.segmenter", "segment": "segtool.api",
          "totalsegmentator": "segtool.totalseg_api"}  #: public name -> its module
__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'segtool' has no attribute {name!r}")

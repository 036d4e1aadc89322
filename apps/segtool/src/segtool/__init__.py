"""Segment medical images with pretrained models, by task, in one command.

Python API: `segment` for one scan, `Segmenter` to keep models loaded across many scans, and `totalsegmentator`
with TotalSegmentator's own signature. They are imported on first use, so that ``segtool --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SegmentOptions", "Segmenter", "segment", "totalsegmentator"]


def __getattr__(name: str) -> Any:
    if name == "totalsegmentator":
        return importlib.import_module("segtool.totalseg_api").totalsegmentator
    if name in __all__:
        return getattr(importlib.import_module("segtool.api"), name)
    raise AttributeError(f"module 'segtool' has no attribute {name!r}")

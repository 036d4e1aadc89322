"""Segment medical images with pretrained models, by task, in one command.

Python API: `segment` for one scan, `Segmenter` to keep models loaded across many scans.
"""

from segtool.segment import Segmenter, SegmentOptions, segment

__all__ = ["SegmentOptions", "Segmenter", "segment"]

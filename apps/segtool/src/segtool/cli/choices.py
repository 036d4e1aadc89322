"""Closed option sets of the command line (listed in --help, validated by Typer)."""

from enum import Enum


class Precision(str, Enum):
    """Network precision."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


class DownloadMode(str, Enum):
    """Which models to fetch."""

    FASTEST = "fastest"
    FAST = "fast"
    DEFAULT = "default"
    ALL = "all"


class StatsAggregation(str, Enum):
    """Intensity statistic per class (`segtool.statistics.AGGREGATIONS`)."""

    MEAN = "mean"
    MEDIAN = "median"


class OutputType(str, Enum):
    """What the segmentation is written as (TotalSegmentator's ``--output_type``; `segtool.run.OUTPUT_TYPES`)."""

    NIFTI = "nifti"
    DICOM_SEG = "dicom_seg"
    DICOM_RTSTRUCT = "dicom_rtstruct"
    DICOM = "dicom"  # TotalSegmentator's older name of dicom_rtstruct (`segtool.run.OUTPUT_TYPE_ALIASES`)

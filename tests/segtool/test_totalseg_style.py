"""TotalSegmentator's spelling of segtool's options."""

import pytest

from segtool.cli.totalseg_style import respell

KNOWN = ["--roi-subset", "-rs", "--stats-include-incomplete", "-i", "--ml", "--remove-small-blobs", "-rmb", "-s"]
REPEATABLE = ["--roi-subset", "-rs"]
BARE = {"--remove-small-blobs": "200", "-rmb": "200", "-s": ""}


@pytest.mark.parametrize(("args", "expected"), [
    (["-rs", "liver", "spleen", "--ml"], ["-rs", "liver", "-rs", "spleen", "--ml"]),
    (["--roi_subset", "liver", "spleen", "kidney_left"],
     ["--roi-subset", "liver", "--roi-subset", "spleen", "--roi-subset", "kidney_left"]),
    (["-rs", "liver", "-rs", "spleen", "-i", "ct.nii.gz"], ["-rs", "liver", "-rs", "spleen", "-i", "ct.nii.gz"]),
    (["--roi_subset=liver", "spleen"], ["--roi-subset=liver", "spleen"]),  # '=' takes one value; spleen is extra
    (["--stats_include_incomplete", "-i", "a_b.nii.gz"], ["--stats-include-incomplete", "-i", "a_b.nii.gz"]),
    (["--body_seg", "x"], ["--body_seg", "x"]),  # not segtool's: left for the parser to reject
    (["-rs"], ["-rs"]),
    (["-rmb", "--ml"], ["-rmb", "200", "--ml"]),  # TotalSegmentator's default size
    (["--ml", "--remove_small_blobs"], ["--ml", "--remove-small-blobs", "200"]),
    (["-rmb", "50", "--ml"], ["-rmb", "50", "--ml"]),
    (["-rmb=50"], ["-rmb=50"]),
    (["-rs", "liver,spleen", "-s", "-i", "a,b.nii.gz"],
     ["-rs", "liver", "-rs", "spleen", "-s", "", "-i", "a,b.nii.gz"]),
])
def test_totalsegmentator_spellings_become_segtools(args, expected):
    assert respell(args, KNOWN, repeatable=REPEATABLE, bare_values=BARE) == expected


def test_cli_choices_are_the_apis():
    from segtool.cli.choices import OutputType, StatsAggregation
    from segtool.cli.totalseg_style import BARE_VALUES
    from segtool.options import SMALL_BLOB_MM3
    from segtool.run import OUTPUT_TYPE_ALIASES, OUTPUT_TYPES, OutputRequest
    from segtool.statistics import AGGREGATIONS

    assert tuple(o.value for o in OutputType) == (*OUTPUT_TYPES, *OUTPUT_TYPE_ALIASES)
    assert OutputRequest(output_types=("dicom",)).output_types == ("dicom_rtstruct",)  # TotalSegmentator's old name
    assert float(BARE_VALUES["remove_small_blobs"]) == SMALL_BLOB_MM3  # bare -rmb means the API's default
    assert tuple(a.value for a in StatsAggregation) == AGGREGATIONS

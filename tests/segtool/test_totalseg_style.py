"""TotalSegmentator's spelling of segtool's options."""

import pytest

from segtool.cli.totalseg_style import respell

OPTIONS = {"--roi-subset": True, "-rs": True, "--stats-include-incomplete": False, "-i": False, "--ml": False}


@pytest.mark.parametrize(("args", "expected"), [
    (["-rs", "liver", "spleen", "--ml"], ["-rs", "liver", "-rs", "spleen", "--ml"]),
    (["--roi_subset", "liver", "spleen", "kidney_left"],
     ["--roi-subset", "liver", "--roi-subset", "spleen", "--roi-subset", "kidney_left"]),
    (["-rs", "liver", "-rs", "spleen", "-i", "ct.nii.gz"], ["-rs", "liver", "-rs", "spleen", "-i", "ct.nii.gz"]),
    (["--roi_subset=liver", "spleen"], ["--roi-subset=liver", "spleen"]),  # '=' takes one value; spleen is extra
    (["--stats_include_incomplete", "-i", "a_b.nii.gz"], ["--stats-include-incomplete", "-i", "a_b.nii.gz"]),
    (["--body_seg", "x"], ["--body_seg", "x"]),  # not segtool's: left for the parser to reject
    (["-rs"], ["-rs"]),
])
def test_totalsegmentator_spellings_become_segtools(args, expected):
    assert respell(args, OPTIONS) == expected

"""``segtool combine -i DIR_OR_MULTILABEL -o OUT -m GROUP``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segtool.cli import context
from segtool.combine import write_combined


def combine(
    input_path: Annotated[Path, typer.Option("--input", "-i", exists=True,
                                             help="Folder of per-class masks or a multilabel file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output mask file (.nii.gz).")],
    group: Annotated[str, typer.Option("--mask", "-m", help="Group name (lung, vertebrae, ribs, ...).")],
) -> None:
    """Merge the classes of a group into one binary mask."""
    mask = write_combined(input_path, output, group)
    context.out().print(f"{group}: {int(mask.array.sum())} voxels -> {output}")

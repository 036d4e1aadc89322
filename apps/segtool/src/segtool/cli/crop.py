"""``segtool crop-to-body -i CT -o OUT [-t]``: TotalSegmentator's ``crop_to_body``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from segtool.cli import context


def crop_to_body(
    input_path: Annotated[Path, typer.Option("--input", "-i", help="CT scan (NIfTI/NRRD/MHA, DICOM folder or zip).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The cropped scan (.nii.gz, .nrrd, .mha...).")],
    only_trunc: Annotated[bool, typer.Option("--only-trunc", "-t", help="Crop to the trunk, not the whole body.")
                          ] = False,
    device: Annotated[str, typer.Option("--device", "-d", help="auto, cpu, cuda or cuda:N (or gpu).")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or messages.")] = False,
) -> None:
    """Crop a CT scan to the body that the body task's 6 mm model finds (plus 3 mm), keeping its voxels and their
    position; a scan where no body is found is written whole."""
    from segkit.io import write_image
    from segkit.io.writing import IMAGE_SUFFIX_LIST, IMAGE_SUFFIXES
    from segtool.body_crop import body_box
    from segtool.errors import SegtoolError
    from segtool.outputs import image_stem
    from segtool.run import check_side_file, find_scans
    from segtool.scans import as_scan

    context.show_messages(quiet)
    if image_stem(output.name, IMAGE_SUFFIXES) == output.name:  # before the model runs
        raise SegtoolError(f"{output}: the cropped scan is an image file; name it {IMAGE_SUFFIX_LIST}")
    scans, batch = find_scans(input_path)
    if batch:
        raise SegtoolError(f"{input_path}: a folder of {len(scans)} scan(s); crop-to-body crops one scan (a file, or "
                           "a DICOM series folder or zip)")
    check_side_file(output, [input_path], "cropped scan")
    image = as_scan(input_path)
    with context.download_bars(quiet) as bars:
        box = body_box(image, only_trunk=only_trunc, device=device, registry=context.registry(),
                       store=context.store(), progress_for=context.progress_for(bars))
    if box is None:
        logging.getLogger("segtool").warning("no body found in %s; it is written whole", input_path)
    cropped = image if box is None else image.crop(box)
    output.parent.mkdir(parents=True, exist_ok=True)  # as segment creates its outputs' folders
    write_image(cropped, output)
    if not quiet:
        context.out().print(f"{input_path.name} {image.spatial_shape} -> {output} {cropped.spatial_shape}")

"""Read the 220 hippocampus cases and the CT examples with segkit.io, nibabel alone and SimpleITK alone.

Usage: .venv/bin/python benchmarks/bench_io.py [--data ../shared/data] [--repeats 3]

nibabel-only and SimpleITK-only are the lower bounds (they load voxels without segkit's checks,
axis conversion or geometry validation); the ratio shows what segkit.io costs on top.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from segkit.io import read_image


def files(data: Path) -> list[Path]:
    hippocampus = data / "Dataset004_Hippocampus"
    cases = sorted((hippocampus / "imagesTr").glob("*.nii.gz")) + sorted((hippocampus / "labelsTr").glob("*.nii.gz"))
    ct = sorted((data / "ct_examples").glob("example_*.nii.gz"))
    return cases + ct


def best_time(read, paths: list[Path], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            read(path)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    paths = files(args.data)
    readers = {
        "segkit.io.read_image": lambda p: read_image(p).array,
        "nibabel only": lambda p: np.asanyarray(nib.load(p).dataobj),
        "SimpleITK only": lambda p: sitk.GetArrayFromImage(sitk.ReadImage(str(p))),
    }
    results = {name: best_time(read, paths, args.repeats) for name, read in readers.items()}
    base = results["segkit.io.read_image"]
    print(f"{len(paths)} files (220 hippocampus images + 220 labels + {len(paths) - 440} CT/MR examples), "
          f"best of {args.repeats}")
    for name, seconds in results.items():
        print(f"{name:24s} {seconds:7.3f} s   segkit/this = {base / seconds:5.2f}x")
    dicom = args.data / "ct_examples" / "example_ct_dicom"
    reader = sitk.ImageSeriesReader()
    dicom_sitk = best_time(lambda p: reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(p))) or reader.Execute(),
                           [dicom], args.repeats)
    dicom_segkit = best_time(read_image, [dicom], args.repeats)
    print(f"DICOM series (20 slices): segkit {dicom_segkit:.3f} s, SimpleITK only {dicom_sitk:.3f} s, "
          f"ratio {dicom_segkit / dicom_sitk:.2f}x")


if __name__ == "__main__":
    main()

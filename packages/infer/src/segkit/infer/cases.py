"""Finding the input cases of a prediction run and naming its outputs as nnU-Net does."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segkit.infer.errors import InputMismatchError, OutputError
from segkit.io.writing import IMAGE_SUFFIXES, split_suffix

_CHANNEL = re.compile(r"^(?P<cid>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class InputCase:
    """One case: its identifier, its channel files (sorted) and the file ending of its images."""

    identifier: str
    files: tuple[Path, ...]
    file_ending: str

    def output_name(self) -> str:
        """Output file name: the identifier (no ``_0000`` suffix) plus the file ending, as nnUNetv2_predict."""
        return f"{self.identifier}{self.file_ending}"


def find_input_cases(path: str | os.PathLike, *, num_channels: int) -> list[InputCase]:
    """Return the cases of an input file or folder.

    A folder holds ``CASE_XXXX<ending>`` files (one per channel) or plain ``CASE<ending>`` single-channel
    files; a single file is one case (its ``_0000`` suffix removed from the identifier).

    Raises:
        InputMismatchError: no such path, no images in the folder, or channel files missing.
    """
    path = Path(path)
    if path.is_file():
        parts = split_suffix(path.name)
        if parts is None:
            raise InputMismatchError(f"{path}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
        match = _CHANNEL.match(parts[0])
        return [InputCase(match["cid"] if match else parts[0], (path,), parts[1])]
    if not path.is_dir():
        raise InputMismatchError(f"input {path} does not exist")
    groups: dict[tuple[str, str], dict[int, Path]] = {}
    for child in sorted(path.iterdir()):
        parts = split_suffix(child.name) if child.is_file() else None
        if parts is None:
            continue
        match = _CHANNEL.match(parts[0])
        key = (match["cid"] if match else parts[0], parts[1])
        groups.setdefault(key, {})[int(match["channel"]) if match else 0] = child
    if not groups:
        raise InputMismatchError(f"input folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    cases = []
    for (cid, ending), channels in sorted(groups.items()):
        missing = [c for c in range(num_channels) if c not in channels]
        if missing:
            names = [f"{cid}_{c:04d}{ending}" for c in missing]
            raise InputMismatchError(f"case {cid!r}: missing channel file(s) {names}; the model expects "
                                     f"{num_channels} channel(s)")
        cases.append(InputCase(cid, tuple(channels[c] for c in sorted(channels)), ending))
    return cases


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files (any of `IMAGE_SUFFIXES`) directly in ``folder``, sorted by name; none if it is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)]


def check_output_folder(output: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """Refuse an output folder that is one of the input folders (or an input file's folder), however spelled.

    Outputs written there would replace inputs of the same name or be read as inputs by a later run. A folder
    inside an input folder is fine: inputs are never searched for in subfolders.

    Raises:
        OutputError: ``output`` is the same folder as an input's, also through a symlink or ``X/.``.
    """
    for path in map(Path, inputs):
        folder = path.parent if path.is_file() else path
        if Path(output).is_dir() and folder.is_dir() and os.path.samefile(output, folder):
            raise OutputError(f"output folder {output} is the input folder {folder}: outputs there would replace or "
                              f"join the inputs; choose another output folder")

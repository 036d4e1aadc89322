"""Spot files of a DICOM series folder that GDCM skipped, so that a corrupt slice never vanishes silently."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

_MAGIC_AT = 128  # a DICOM file: a 128-byte preamble, then b"DICM", then the file meta (explicit VR little endian)
_SOP_CLASS = b"\x02\x00\x02\x00UI"  # element (0002,0002) Media Storage SOP Class UID, VR UI, 2-byte length
_HEAD_BYTES = 4096
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  #: Media Storage Directory Storage: a DICOMDIR, the index of a medium


def is_dicom_instance(path: Path) -> bool:
    """Tell whether ``path`` is a DICOM file (``DICM`` after the preamble) other than a DICOMDIR."""
    return path.is_file() and storage_class(path) not in (None, DICOMDIR_CLASS)


def storage_class(path: Path) -> str | None:
    """Return the Media Storage SOP Class UID of a DICOM file.

    Returns:
        The UID; ``""`` when the file starts like DICOM but its header is cut short; ``None``
        when it does not start like DICOM (no ``DICM`` after the preamble) or cannot be opened.
    """
    try:
        with path.open("rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError:  # unreadable (permissions): judged as today, by GDCM alone
        return None
    if head[_MAGIC_AT : _MAGIC_AT + 4] != b"DICM":
        return None
    at = head.find(_SOP_CLASS, _MAGIC_AT + 4)
    if at < 0:
        return ""
    length = int.from_bytes(head[at + 6 : at + 8], "little")
    value = head[at + 8 : at + 8 + length]
    return value.rstrip(b"\0 ").decode("ascii", errors="replace") if len(value) == length else ""


def skipped_slices(folder: Path, series: Sequence[Sequence[str]]) -> list[Path]:
    """Return the files of ``folder`` that no series holds but that look like slices of one.

    Args:
        folder: the series folder (not searched recursively, as GDCM does not).
        series: the file paths of each series GDCM found in ``folder``.

    A file looks like a slice when it is DICOM and its storage class is missing (a header cut
    short) or that of a series, e.g. a CT slice whose pixel data is truncated. Non-DICOM files
    (a README) and DICOM files of another kind (a DICOMDIR, a report) are not slices.
    """
    held = {Path(name).name for files in series for name in files}
    classes = ({storage_class(Path(files[0])) for files in series if files} - {None}) | {""}
    return [
        path
        for path in sorted(folder.iterdir())
        if path.name not in held and path.is_file() and storage_class(path) in classes
    ]

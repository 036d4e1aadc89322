"""Label names inside NIfTI files, as a Caret XML label-table extension.

This is the extension TotalSegmentator writes into its multilabel outputs (NIfTI extension
code 0), so files from either tool carry their class names the same way.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import nibabel as nib

CARET_CODE = 0

#: label colours (RGB 0-255), cycled by label value as TotalSegmentator cycles them, so that a viewer shows a
#: file from either tool in the same colours
PALETTE = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 128, 0),
           (255, 0, 128), (128, 255, 128), (0, 128, 255), (128, 128, 128), (185, 170, 155))


def label_table_extension(names: dict[int, str]) -> nib.nifti1.Nifti1Extension:
    """Build the extension holding ``names`` (label value -> class name) and a colour per label (`PALETTE`)."""
    root = ET.Element("CaretExtension")
    info = ET.SubElement(root, "VolumeInformation", Index="0")
    table = ET.SubElement(info, "LabelTable")
    for value, name in sorted(names.items()):
        red, green, blue = (f"{c / 255:.4g}" for c in PALETTE[value % len(PALETTE)])
        label = ET.SubElement(table, "Label", Key=str(value), Red=red, Green=green, Blue=blue, Alpha="1")
        label.text = name
    ET.SubElement(info, "VolumeType").text = "Label"
    content = b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")
    return nib.nifti1.Nifti1Extension(CARET_CODE, content)


def read_label_table(header: nib.Nifti1Header) -> dict[int, str]:
    """Label value -> class name from a Caret label-table extension; empty when there is none."""
    for extension in header.extensions:
        content = extension.get_content()
        if extension.get_code() != CARET_CODE or b"<LabelTable>" not in content:
            continue
        try:
            root = ET.fromstring(content.strip())
        except ET.ParseError:
            continue
        return {int(label.get("Key")): (label.text or "").strip() for label in root.iter("Label")}
    return {}

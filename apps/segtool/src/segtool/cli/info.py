"""``segtool info``: versions, device and weights folder."""

from __future__ import annotations

from rich.table import Table

from segtool.cli import context
from segtool.versions import SOFTWARE, versions


def info() -> None:
    """Print versions, the compute device and where weights live."""
    import torch

    from segkit.infer.errors import InferError
    from segkit.infer.runtime import Precision, autocast_dtype

    table = Table(show_header=False)
    for name, version in versions((*SOFTWARE, "highdicom")).items():  # highdicom: the `dicom` extra
        table.add_row(name, version or "not installed" + (": pip install 'segtool[dicom]'" if name == "highdicom"
                                                          else ""))
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    table.add_row("device", device)
    table.add_row("CPU threads", str(torch.get_num_threads()))
    cpu = torch.device("cpu")
    bf16_auto = autocast_dtype(Precision.AUTO, cpu) is torch.bfloat16
    table.add_row("CPU bf16 pays", "yes: segkit models run in bf16" if bf16_auto else "no: fp32")
    try:
        autocast_dtype(Precision.BF16, cpu)
        table.add_row("CPU bf16 kernels", "yes")
    except InferError:
        table.add_row("CPU bf16 kernels", "no: --precision bf16 is refused")
    table.add_row("weights folder", str(context.store().root))
    context.out().print(table)

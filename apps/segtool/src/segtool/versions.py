"""Versions of segtool and the software it runs on."""

from __future__ import annotations

from importlib import metadata

SOFTWARE = ("segtool", "segkit-io", "segkit-planning", "segkit-nets", "segkit-infer", "torch")


def versions(distributions: tuple[str, ...] = SOFTWARE) -> dict[str, str | None]:
    """Installed version of each distribution (None where it is not installed)."""
    found = {}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found

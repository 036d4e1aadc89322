"""Connected-component clean-up of a task's label map, as TotalSegmentator cleans some of its tasks' maps.

The registry gives it per task (``cleanup``): classes reduced to their largest component, classes whose components of
at most some volume are removed (the ``body`` task: one trunk, no extremity under 50 cm3), and mixed-up vertebrae
numbered again (``separate_vertebrae``: `segtool.vertebrae`). It runs on each model's own grid, before the map is
brought back to the scan's, as TotalSegmentator runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segkit.io import Image


@dataclass(frozen=True)
class SeparateVertebrae:
    """`segtool.vertebrae.separate_vertebrae`'s settings: bodies below ``min_component_mm3`` are dropped where
    vertebrae are numbered again, and every vertebra is grown by ``grow_mm``."""

    min_component_mm3: float = 100.0
    grow_mm: float = 3.0

    @classmethod
    def from_dict(cls, data: dict) -> SeparateVertebrae:
        """Parse a task's ``cleanup.separate_vertebrae`` object of the registry."""
        if not isinstance(data, dict) or set(data) - {"min_component_mm3", "grow_mm"}:
            raise ValueError(f"separate_vertebrae takes min_component_mm3 and grow_mm, got {data!r}")
        return cls(**{key: millimetres(value, f"separate_vertebrae {key}") for key, value in data.items()})


def millimetres(value, what: str) -> float:
    """A registry's length or volume: a finite number of at least 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError(f"{what} must be a number of at least 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Cleanup:
    """A task's clean-up.

    Args:
        keep_largest: classes reduced to their largest (face-connected) component.
        min_component_mm3: class -> components of at most this volume (mm3) are removed.
        separate_vertebrae: the task's classes are single vertebrae, numbered top down (None: they are not).
    """

    keep_largest: tuple[str, ...] = ()
    min_component_mm3: dict[str, float] = field(default_factory=dict)
    separate_vertebrae: SeparateVertebrae | None = None

    @classmethod
    def from_dict(cls, data: dict) -> Cleanup:
        """Parse a task's ``cleanup`` object of the registry."""
        vertebrae = data.get("separate_vertebrae")
        return cls(tuple(data.get("keep_largest", ())),
                   {name: float(mm3) for name, mm3 in data.get("min_component_mm3", {}).items()},
                   None if vertebrae is None else SeparateVertebrae.from_dict(vertebrae))

    def __bool__(self) -> bool:
        return bool(self.keep_largest or self.min_component_mm3 or self.separate_vertebrae)

    def apply(self, labels: np.ndarray, names: dict[int, str], grid: Image) -> np.ndarray:
        """``labels`` (class values of ``names`` on ``grid``) cleaned up: largest components first, then small ones
        removed, then vertebrae separated."""
        from segkit.infer.postprocessing import (  # torch: not at start-up
            PostprocessingPlan,
            apply_postprocessing,
            remove_small_components,
        )

        value_of = {name: value for value, name in names.items()}
        out = apply_postprocessing(labels, PostprocessingPlan(classes=tuple(value_of[n] for n in self.keep_largest)))
        voxel_mm3 = float(np.prod(grid.spacing))
        for name, mm3 in self.min_component_mm3.items():
            mask = out == value_of[name]
            out[mask & (remove_small_components(mask.astype(np.uint8), mm3 / voxel_mm3) == 0)] = 0
        if self.separate_vertebrae is not None:
            from segtool.vertebrae import separate_vertebrae

            settings = self.separate_vertebrae
            out = separate_vertebrae(out, grid, range(min(names), max(names) + 1), settings.min_component_mm3,
                                     settings.grow_mm)
        return out

"""Connected-component clean-up of a task's label map, as TotalSegmentator cleans some of its tasks' maps.

The registry gives it per task (``cleanup``): classes reduced to their largest component, and classes whose
components of at most some volume are removed (the ``body`` task: one trunk, no extremity under 50 cm3). It runs on
each model's own grid, before the map is brought back to the scan's, as TotalSegmentator runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Cleanup:
    """A task's clean-up.

    Args:
        keep_largest: classes reduced to their largest (face-connected) component.
        min_component_mm3: class -> components of at most this volume (mm3) are removed.
    """

    keep_largest: tuple[str, ...] = ()
    min_component_mm3: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> Cleanup:
        """Parse a task's ``cleanup`` object of the registry."""
        return cls(tuple(data.get("keep_largest", ())),
                   {name: float(mm3) for name, mm3 in data.get("min_component_mm3", {}).items()})

    def __bool__(self) -> bool:
        return bool(self.keep_largest or self.min_component_mm3)

    def apply(self, labels: np.ndarray, names: dict[int, str], voxel_mm3: float) -> np.ndarray:
        """``labels`` (class values of ``names``) cleaned up: largest components first, then small ones removed."""
        from segkit.infer.postprocessing import (  # torch: not at start-up
            PostprocessingPlan,
            apply_postprocessing,
            remove_small_components,
        )

        value_of = {name: value for value, name in names.items()}
        out = apply_postprocessing(labels, PostprocessingPlan(classes=tuple(value_of[n] for n in self.keep_largest)))
        for name, mm3 in self.min_component_mm3.items():
            mask = out == value_of[name]
            out[mask & (remove_small_components(mask.astype(np.uint8), mm3 / voxel_mm3) == 0)] = 0
        return out

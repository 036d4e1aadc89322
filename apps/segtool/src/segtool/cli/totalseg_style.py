"""TotalSegmentator's spelling of segtool's options: ``--roi_subset liver spleen`` for ``--roi-subset liver
--roi-subset spleen``, ``-rmb`` for ``-rmb 200``."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from segkit.io.console import PlainFlagsGroup

#: values that an option given bare stands for: TotalSegmentator's ``-rmb`` alone removes blobs under 200 mm3
#: (`segtool.options.SMALL_BLOB_MM3`); ``-s`` alone puts statistics.json in its usual place (no path of its own);
#: ``-lc`` alone lists the classes of ``total``
BARE_VALUES = {"remove_small_blobs": "200", "statistics": "", "list_classes": "total"}


def respell(args: list[str], known: Collection[str], *, repeatable: Collection[str] = (),
            bare_values: Mapping[str, str] | None = None) -> list[str]:
    """``args`` with TotalSegmentator's spellings turned into segtool's.

    ``known`` holds segtool's option names (``--roi-subset``, ``-rs``). An underscored long name of a known option
    gets hyphens (``--roi_subset`` -> ``--roi-subset``); values that follow a ``repeatable`` option (``-rs liver
    spleen``, or ``-ot nifti,dicom_seg``) become one option each (``-rs liver -rs spleen``); an option of
    ``bare_values`` given without a value gets its value there (``-rmb`` -> ``-rmb 200``). Anything else is left for
    the parser to accept or reject.
    """
    bare_values = bare_values or {}
    respelled: list[str] = []
    repeated, values = None, 0
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            if repeated is None:
                respelled.append(arg)
                continue
            for value in arg.split(","):
                if values:
                    respelled.append(repeated)
                values += 1
                respelled.append(value)
            continue
        name, equals, value = arg.partition("=")
        hyphenated = name.replace("_", "-")
        if name.startswith("--") and name not in known and hyphenated in known:
            name, arg = hyphenated, hyphenated + equals + value
        repeated = name if name in repeatable and not equals else None
        values = 0
        respelled.append(arg)
        if name in bare_values and not equals and (i + 1 == len(args) or _is_option(args[i + 1])):
            respelled.append(bare_values[name])
    return respelled


def _is_option(arg: str) -> bool:
    """Whether ``arg`` names an option, not a (negative) number given as a value (``-rmb -5``: refused as a value)."""
    if not arg.startswith("-"):
        return False
    try:
        float(arg)
    except ValueError:
        return True
    return False


class TotalSegmentatorStyle(PlainFlagsGroup):
    """The ``segtool`` group, which also takes its own options as TotalSegmentator users write them."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:  # a sub-command parses its own options
            return super().parse_args(ctx, args)
        known = [name for param in self.params for name in param.opts]
        repeatable = [name for param in self.params if getattr(param, "multiple", False) for name in param.opts]
        bare = {name: BARE_VALUES[param.name] for param in self.params if param.name in BARE_VALUES
                for name in param.opts}
        return super().parse_args(ctx, respell(args, known, repeatable=repeatable, bare_values=bare))

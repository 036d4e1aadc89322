"""TotalSegmentator's spelling of segtool's options: ``--roi_subset liver spleen`` for ``--roi-subset liver
--roi-subset spleen``."""

from __future__ import annotations

from typer.core import TyperGroup


def respell(args: list[str], options: dict[str, bool]) -> list[str]:
    """``args`` with TotalSegmentator's spellings turned into segtool's.

    ``options`` maps each option name (``--roi-subset``, ``-rs``) to whether it may be repeated. An underscored
    long name of a known option gets hyphens (``--roi_subset`` -> ``--roi-subset``); values that follow a repeatable
    option (``-rs liver spleen``) become one option each (``-rs liver -rs spleen``). Anything else is left for the
    parser to accept or reject.
    """
    respelled: list[str] = []
    repeated, values = None, 0
    for arg in args:
        if arg.startswith("-"):
            name, equals, value = arg.partition("=")
            hyphenated = name.replace("_", "-")
            if name.startswith("--") and name not in options and hyphenated in options:
                name, arg = hyphenated, hyphenated + equals + value
            repeated = name if options.get(name) and not equals else None
            values = 0
        elif repeated is not None:
            if values:
                respelled.append(repeated)
            values += 1
        respelled.append(arg)
    return respelled


class TotalSegmentatorStyle(TyperGroup):
    """The ``segtool`` group, which also takes its own options as TotalSegmentator users write them."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:  # a sub-command parses its own options
            return super().parse_args(ctx, args)
        options = {name: bool(getattr(param, "multiple", False)) for param in self.params for name in param.opts}
        return super().parse_args(ctx, respell(args, options))

"""Exceptions of segkit.nets (which depends on torch only, so it has its own root class).

Every message is one line: what was expected, what was found, and where possible how to fix it.
"""


class NetsError(Exception):
    """Base class of all segkit.nets errors."""


class ArchitectureSpecError(NetsError):
    """An architecture spec is inconsistent, or names an unknown network, block or norm."""


class WeightsMismatchError(NetsError):
    """A set of weights does not fit the network built from its spec (missing, extra or reshaped key)."""


class CheckpointError(NetsError):
    """A checkpoint or weights file cannot be read safely (missing, corrupt, unsupported content)."""


class PrecisionError(NetsError):
    """A precision is unknown, or this CPU has no kernels for it and would emulate it many times slower."""

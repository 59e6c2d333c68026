"""One error hierarchy for everything a user can get wrong.

Every message says what was expected, what was found, and where (file, node, line). The CLI
catches :class:`AutochipError`, prints its message once and exits non-zero; anything else is a bug
in autochip and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "AutochipError",
    "CompressionError",
    "GraphError",
    "ModelLoadError",
    "SpecError",
    "ToolError",
    "TraceError",
    "UnsupportedOpError",
    "problem_text",
]


class AutochipError(Exception):
    """Base class of all errors that are reported to the user without a traceback."""


def problem_text(head: str, problems: Sequence[str], what: str = "") -> str:
    """``head: problem`` for one problem; ``head: N problems:`` then one ``  - problem`` line
    each for several (``what`` names the thing they belong to, e.g. "integer model:")."""
    lead = f"{head}: {what} " if what else f"{head}: "
    if len(problems) == 1:
        return lead + problems[0]
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{lead}{len(problems)} problems:\n{lines}"


class SpecError(AutochipError):
    """A specification (YAML file, CLI option, config) has one or more problems.

    All problems are collected first and reported together, one per line (a single problem
    on the line of its source).
    """

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(problem_text(source, self.problems))


class ModelLoadError(AutochipError):
    """MODEL could not be resolved to a zoo entry, a Python file or a .pt2 file."""


class TraceError(AutochipError):
    """The model could not be traced into an AccelGraph."""


class UnsupportedOpError(TraceError):
    """An operator in the model has no hardware mapping."""

    def __init__(self, op: str, node: str, source_line: str, reason: str = "") -> None:
        self.op = op
        self.node = node
        self.source_line = source_line
        extra = f": {reason}" if reason else ""
        super().__init__(
            f"unsupported operator '{op}' at node '{node}' ({source_line}){extra}; "
            "autochip maps conv, linear, matmul, pooling, add, concat, activations, "
            "normalisation and reshapes onto hardware"
        )


class GraphError(AutochipError):
    """An AccelGraph broke one of its invariants (after a pass, or when loaded from JSON)."""


class CompressionError(AutochipError):
    """A compression policy or checkpoint is invalid."""


class ToolError(AutochipError):
    """An external tool (Verilator, Yosys, nextpnr, SCALE-Sim) failed or reported a defect."""

"""Workload tables: the layers of an AccelGraph as numpy columns, ready for the batch model.

Every compute node (conv2d, linear, matmul) becomes one GEMM row in SCALE-Sim's view of a
convolution: ``M`` output pixels (N x P x Q per group) by ``F`` filters (K / groups) with a
reduction window of ``Kw`` = C / groups x R x S, repeated ``G`` = groups times. Nodes that do
elementwise or window work (pooling, add, activation, normalisation, softmax, concat) become
``vector`` rows run on the post-processing unit; zero-cost nodes (input, reshape, output) are
dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from autochip.errors import GraphError
from autochip.ir.graph import AccelGraph
from autochip.ir.node import ZERO_COST_KINDS, Arithmetic, Node

__all__ = [
    "GEMM",
    "VECTOR",
    "LayerRow",
    "Workload",
    "data_bits",
    "workload_from_graph",
    "workload_from_rows",
]

GEMM = 0
VECTOR = 1

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LayerRow:
    """One layer in GEMM form (``kind`` GEMM) or as vector work (``kind`` VECTOR)."""

    name: str
    op: str
    kind: int
    M: int = 1
    F: int = 1
    Kw: int = 1
    G: int = 1
    in_elems: int = 0
    w_elems: int = 0
    out_elems: int = 0
    ops: int = 0
    w_bits: int = 32
    a_bits: int = 32
    arithmetic: str = "fp32"
    arith_kind: str = "mac"
    dtype: str = "float"


@dataclass(frozen=True)
class Workload:
    """Column arrays (one entry per layer) of a list of :class:`LayerRow`."""

    name: str
    rows: tuple[LayerRow, ...]
    kind: IntArray
    M: IntArray
    F: IntArray
    Kw: IntArray
    G: IntArray
    in_elems: IntArray
    w_elems: IntArray
    out_elems: IntArray
    ops: IntArray
    w_bits: IntArray
    a_bits: IntArray

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def workload_from_rows(name: str, rows: Sequence[LayerRow]) -> Workload:
    def col(attr: str) -> IntArray:
        return np.array([getattr(r, attr) for r in rows], dtype=np.int64)

    return Workload(
        name=name,
        rows=tuple(rows),
        kind=col("kind"),
        M=col("M"),
        F=col("F"),
        Kw=col("Kw"),
        G=col("G"),
        in_elems=col("in_elems"),
        w_elems=col("w_elems"),
        out_elems=col("out_elems"),
        ops=col("ops"),
        w_bits=col("w_bits"),
        a_bits=col("a_bits"),
    )


def data_bits(graph: AccelGraph) -> dict[str, int]:
    """Bits of each node's output tensor, as the hardware stores it.

    A node's recorded ``out_bits`` (an activation quantiser) wins. Otherwise an integer compute
    node's output is requantised to its activation width (DESIGN.md, integer semantics), a float
    one keeps its float width, and a vector or zero-cost node passes its widest input through.
    """
    bits: dict[str, int] = {}
    for node in graph:
        recorded = node.attrs.get("out_bits")
        if isinstance(recorded, int) and recorded > 0:
            bits[node.name] = recorded
        elif node.is_compute:
            ar = node.arithmetic
            bits[node.name] = ar.a_bits if ar.dtype == "int" else max(ar.a_bits, ar.w_bits)
        else:
            widths = [bits[p] for p in node.inputs if p in bits]
            bits[node.name] = max(widths) if widths else Arithmetic().a_bits
    return bits


def _row(node: Node, graph: str, in_bits: int) -> LayerRow | None:
    ar = node.arithmetic
    if not node.is_compute:
        # Vector work moves and compares data of the width its producers deliver.
        dtype = "float" if in_bits >= 16 and ar.dtype == "float" else "int"
        ar = Arithmetic(
            kind="mac",
            dtype=dtype,
            w_bits=in_bits,
            a_bits=in_bits,
            acc_bits=max(in_bits, ar.acc_bits if dtype == "float" else in_bits),
        )
    base = LayerRow(
        name=node.name,
        op=node.kind.value,
        kind=VECTOR,
        w_bits=ar.w_bits,
        a_bits=ar.a_bits,
        arithmetic=ar.label,
        arith_kind=ar.kind,
        dtype=ar.dtype,
    )
    if node.is_compute:
        d = node.dims
        if d is None:
            raise GraphError(
                f"graph '{graph}': compute node '{node.name}' ({node.kind.value}) has no loop "
                "dimensions; expected LoopDims(N, K, C, P, Q, R, S, ...)"
            )
        g = max(d.groups, 1)
        if d.K % g or d.C % g:
            raise GraphError(
                f"graph '{graph}': node '{node.name}': groups={g} must divide K={d.K} and C={d.C}"
            )
        return replace(
            base,
            kind=GEMM,
            M=d.N * d.P * d.Q,
            F=d.K // g,
            Kw=(d.C // g) * d.R * d.S,
            G=g,
            in_elems=d.N * d.C * d.H * d.W,
            w_elems=d.K * (d.C // g) * d.R * d.S,
            out_elems=d.N * d.K * d.P * d.Q,
        )
    if node.kind in ZERO_COST_KINDS:
        return None
    out = math.prod(node.output_shape) if node.output_shape else 0
    return replace(
        base,
        in_elems=sum(math.prod(s) for s in node.input_shapes),
        out_elems=out,
        ops=node.ops if node.ops > 0 else out,
    )


def workload_from_graph(graph: AccelGraph) -> Workload:
    """The graph's layers in topological order (zero-cost nodes dropped)."""
    bits = data_bits(graph)
    rows = []
    for n in graph:
        in_bits = max((bits[p] for p in n.inputs), default=bits[n.name])
        row = _row(n, graph.name, in_bits)
        if row is not None:
            rows.append(row)
    return workload_from_rows(graph.name, rows)

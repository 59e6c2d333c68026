"""A Timeloop/ZigZag-style analytic model of one loop nest on a MAC array with one buffer level.

The systolic model (:mod:`autochip.predictor.batch`) fixes the mapping by dataflow. This module
takes an explicit mapping instead: which loops are unrolled across the MAC array (spatial) and in
which order the rest iterate (temporal, innermost first) out of the buffer, and counts accesses
by reuse analysis:

* an operand's tile at the array is the product of its *relevant* spatial loops;
* the tile is re-read from the buffer once per temporal iteration, except that when the array
  holds operands (``array_holds_operands``, ZigZag's operational array) the innermost temporal
  loops that are *irrelevant* to the operand reuse the tile in place;
* outputs are read-modify-written on every transfer (the first read fetches the initial value);
* an optional output register per array output (ZigZag's ``reg_O``) is read and written twice
  per temporal iteration (accumulate, and exchange with the buffer);
* cycles are the larger of the temporal iterations and each buffer port's traffic divided by
  the port's width (bits per cycle); energy is unit cost x accesses, an access being one port
  word.

Used to reproduce the Timeloop exercise 01 and ZigZag ``gemm_l1`` cases (tests/test_peers.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LoopNest", "LoopNestResult", "Operand", "evaluate_loopnest"]


@dataclass(frozen=True)
class Operand:
    """A tensor of the loop nest. ``axes`` gives, per tensor axis, the loops whose indices add
    up to it (``("P", "R")`` is the sliding window p + r, extent P + R - 1)."""

    name: str
    axes: tuple[tuple[str, ...], ...]
    bits: int
    port: str
    port_word_bits: int
    is_output: bool = False

    @property
    def dims(self) -> frozenset[str]:
        return frozenset(d for axis in self.axes for d in axis)


@dataclass(frozen=True)
class LoopNest:
    bounds: Mapping[str, int]
    spatial: tuple[tuple[str, int], ...]
    temporal: tuple[tuple[str, int], ...]  # innermost first
    operands: tuple[Operand, ...]
    port_bits_per_cycle: Mapping[str, int]
    mac_pj: float
    read_pj: float
    write_pj: float
    array_holds_operands: bool = True
    out_reg_pj: float | None = None


@dataclass(frozen=True)
class LoopNestResult:
    macs: int
    mac_units: int
    iterations: int
    cycles: int
    utilization: float
    reads: Mapping[str, int]  # buffer reads per operand, in port words
    writes: Mapping[str, int]  # buffer writes per operand (outputs), in port words
    elementwise_reads: Mapping[str, int]  # reads in elements (Timeloop's unit)
    fills: Mapping[str, int]  # unique elements of each tensor (first fill of the buffer)
    register_accesses: int
    energy_mac: float
    energy_buffer: float
    energy_register: float

    @property
    def energy(self) -> float:
        return self.energy_mac + self.energy_buffer + self.energy_register


def _extent(axis: tuple[str, ...], bounds: Mapping[str, int]) -> int:
    return sum(bounds[d] - 1 for d in axis) + 1


def evaluate_loopnest(nest: LoopNest) -> LoopNestResult:
    b = nest.bounds
    for d, n in (*nest.spatial, *nest.temporal):
        if d not in b or n < 1:
            raise ValueError(f"loop {d}={n} is not a loop of the nest {dict(b)}")
    for d, n in b.items():
        mapped = math.prod(k for dd, k in (*nest.spatial, *nest.temporal) if dd == d)
        if mapped != n:
            raise ValueError(f"loop {d}: the mapping covers {mapped}, the nest has {n}")
    units = math.prod(n for _, n in nest.spatial)
    iterations = math.prod(n for _, n in nest.temporal)
    macs = units * iterations
    reads: dict[str, int] = {}
    writes: dict[str, int] = {}
    elem_reads: dict[str, int] = {}
    fills: dict[str, int] = {}
    port_bits: dict[str, int] = {p: 0 for p in nest.port_bits_per_cycle}
    e_buf = 0.0
    for op in nest.operands:
        tile = math.prod(n for d, n in nest.spatial if d in op.dims)
        loops = list(nest.temporal)
        if nest.array_holds_operands:
            while loops and loops[0][0] not in op.dims:
                loops.pop(0)  # innermost irrelevant loops reuse the tile held in the array
        transfers = math.prod(n for _, n in loops)
        bits = transfers * tile * op.bits
        words = math.ceil(bits / op.port_word_bits)
        elem_reads[op.name] = transfers * tile
        fills[op.name] = math.prod(_extent(a, b) for a in op.axes)
        reads[op.name] = words
        port_bits[op.port] += bits
        e_buf += words * nest.read_pj
        if op.is_output:
            writes[op.name] = words
            port_bits[op.port] += bits
            e_buf += words * nest.write_pj
    port_cycles = max(
        (math.ceil(v / nest.port_bits_per_cycle[p]) for p, v in port_bits.items()), default=0
    )
    cycles = max(iterations, port_cycles)
    out_regs = 0
    e_reg = 0.0
    if nest.out_reg_pj is not None:
        outs = [op for op in nest.operands if op.is_output]
        regs = sum(math.prod(n for d, n in nest.spatial if d in op.dims) for op in outs)
        out_regs = 4 * regs * iterations
        e_reg = out_regs * nest.out_reg_pj
    return LoopNestResult(
        macs=macs,
        mac_units=units,
        iterations=iterations,
        cycles=cycles,
        utilization=macs / (cycles * units),
        reads=reads,
        writes=writes,
        elementwise_reads=elem_reads,
        fills=fills,
        register_accesses=out_regs,
        energy_mac=macs * nest.mac_pj,
        energy_buffer=e_buf,
        energy_register=e_reg,
    )

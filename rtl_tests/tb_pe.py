"""cocotb testbench: a bank of PEs of every kind and several widths, bit-exact vs golden.py.

Every PE shares clk/rst/en/clr/valid and has its own a_N, w_N, acc_N. Each test drives a
sequence of cycles and checks every accumulator after every clock edge against
:func:`golden.pe_step`.
"""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from golden import pe_step, to_signed, value_range

from autochip.builder.sim import testbench_config


def _corners(pe: dict[str, Any]) -> list[int]:
    """Operand corner values: extremes, sign edges, zero, all ones."""
    if pe["kind"] == "xnor":
        v = pe["vector"]
        full = (1 << v) - 1
        alt = int("10" * v, 2) & full
        return sorted({0, full, alt, full ^ alt, 1, 1 << (v - 1)})
    lo, hi = value_range(pe["a_bits"])
    return sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi})


def _wcorners(pe: dict[str, Any]) -> list[int]:
    if pe["kind"] == "xnor":
        return _corners(pe)
    lo, hi = value_range(pe["w_bits"])
    return sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi})


def _random_operand(
    rng: random.Random, pe: dict[str, Any], bits_key: str, corners: list[int]
) -> int:
    if rng.random() < 0.25:
        return rng.choice(corners)
    if pe["kind"] == "xnor":
        return rng.getrandbits(pe["vector"])
    lo, hi = value_range(pe[bits_key])
    return rng.randint(lo, hi)


class Bank:
    def __init__(self, dut: Any, pes: list[dict[str, Any]]) -> None:
        self.dut = dut
        self.pes = pes
        self.acc = [0] * len(pes)
        self.cycles = 0

    async def start(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        await FallingEdge(self.dut.clk)
        await self.step(rst=1, en=0, clr=0, valid=0, ops=None)

    async def step(
        self, *, rst: int, en: int, clr: int, valid: int, ops: list[tuple[int, int]] | None
    ) -> None:
        """Drive one cycle's inputs, let one rising edge pass, check every accumulator.

        Called at a falling edge; returns at the next one.
        """
        dut = self.dut
        ops = ops or [(0, 0)] * len(self.pes)
        dut.rst.value = rst
        dut.en.value = en
        dut.clr.value = clr
        dut.valid.value = valid
        for i, (pe, (a, w)) in enumerate(zip(self.pes, ops, strict=True)):
            a_bits = pe["vector"] if pe["kind"] == "xnor" else pe["a_bits"]
            w_bits = pe["vector"] if pe["kind"] == "xnor" else pe["w_bits"]
            getattr(dut, f"a_{i}").value = a & ((1 << a_bits) - 1)
            getattr(dut, f"w_{i}").value = w & ((1 << w_bits) - 1)
            self.acc[i] = pe_step(
                pe["kind"],
                self.acc[i],
                pe["acc_bits"],
                rst=rst,
                en=en,
                clr=clr,
                valid=valid,
                a=a,
                w=w,
                vector=pe["vector"],
            )
        await FallingEdge(dut.clk)
        self.cycles += 1
        for i, pe in enumerate(self.pes):
            got = to_signed(int(getattr(dut, f"acc_{i}").value), pe["acc_bits"])
            assert got == self.acc[i], (
                f"cycle {self.cycles}: PE {i} {pe}: acc {got}, expected {self.acc[i]} "
                f"(rst={rst} en={en} clr={clr} valid={valid} a,w={ops[i]})"
            )


@cocotb.test()
async def corner_vectors(dut: Any) -> None:
    """Every pair of corner operands, accumulated from a clear, for every PE."""
    pes = testbench_config()["pes"]
    bank = Bank(dut, pes)
    await bank.start()
    pairs = [[(a, w) for a in _corners(pe) for w in _wcorners(pe)] for pe in pes]
    longest = max(len(p) for p in pairs)
    for k in range(longest):
        ops = [p[k % len(p)] for p in pairs]
        await bank.step(rst=0, en=1, clr=int(k == 0), valid=1, ops=ops)
    # one term per clear: the exact product / distance / dot of each corner pair
    for k in range(longest):
        ops = [p[k % len(p)] for p in pairs]
        await bank.step(rst=0, en=1, clr=1, valid=1, ops=ops)


@cocotb.test()
async def random_vectors(dut: Any) -> None:
    """Random operands with random en / clr / valid / rst, checked every cycle."""
    cfg = testbench_config()
    pes = cfg["pes"]
    rng = random.Random(cfg["seed"])
    bank = Bank(dut, pes)
    await bank.start()
    corners = [(_corners(pe), _wcorners(pe)) for pe in pes]
    for _ in range(cfg["random_cycles"]):
        ops = [
            (_random_operand(rng, pe, "a_bits", ca), _random_operand(rng, pe, "w_bits", cw))
            for pe, (ca, cw) in zip(pes, corners, strict=True)
        ]
        await bank.step(
            rst=int(rng.random() < 0.01),
            en=int(rng.random() < 0.9),
            clr=int(rng.random() < 0.05),
            valid=int(rng.random() < 0.8),
            ops=ops,
        )


@cocotb.test()
async def long_sum_extremes(dut: Any) -> None:
    """The largest-magnitude term, many times over: sums reach (and wrap) the accumulator."""
    pes = testbench_config()["pes"]
    bank = Bank(dut, pes)
    await bank.start()
    ops = []
    for pe in pes:
        if pe["kind"] == "xnor":
            ops.append((0, (1 << pe["vector"]) - 1))  # all lanes disagree: term = -V
        elif pe["kind"] == "mac":
            ops.append((value_range(pe["a_bits"])[0], value_range(pe["w_bits"])[0]))
        else:
            ops.append((value_range(pe["a_bits"])[0], value_range(pe["w_bits"])[1]))
    for k in range(300):
        await bank.step(rst=0, en=1, clr=int(k == 0), valid=1, ops=ops)

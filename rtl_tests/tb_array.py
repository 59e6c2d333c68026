"""cocotb testbench: integer GEMM tiles through the emitted PE array, bit-exact vs numpy.

Each tile is (M x T) @ (T x N) with M <= R and N <= C (tiles smaller than the array are padded
with zeros, and the whole R x C result is checked, padding included). Cycles are measured from
the clock edge that takes a tile's first beat to the cycle out_last shows its last row, and
compared with :func:`autochip.predictor.rtl_model.os_tile_cycles` after subtracting the edges
the testbench itself stalled (en low) or left empty (in_valid low).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from golden import gemm, to_signed, value_range, wrap

from autochip.builder.sim import testbench_config
from autochip.predictor.rtl_model import os_tile_cycles


@dataclass
class Tile:
    a: np.ndarray  # R x T (rows >= M are zero padding)
    b: np.ndarray  # T x C
    m: int
    n: int
    first: int = -1  # edge that took beat 0
    last: int = -1  # cycle in which out_last was seen
    last_beat: int = -1  # edge that took the last beat
    idle_edges: int = 0  # stalled (en low) or empty (no beat) edges inside the tile
    rows: dict[int, list[int]] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return int(self.a.shape[1])


class Ports:
    """The ports of one array inside the test wrapper: ``PREFIX + port name``."""

    def __init__(self, dut: Any, prefix: str) -> None:
        self._dut = dut
        self._prefix = prefix
        self.clk = dut.clk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dut, self._prefix + name)


class ArrayTB:
    def __init__(self, dut: Any, cfg: dict[str, Any]) -> None:
        self.dut = Ports(dut, cfg["prefix"])
        self.cfg = cfg
        self.r = cfg["rows"]
        self.c = cfg["cols"]
        self.kind = cfg["kind"]
        self.v = cfg["vector"]
        self.acc_bits = cfg["acc_bits"]
        self.a_w = self.v if self.kind == "xnor" else cfg["a_bits"]
        self.b_w = self.v if self.kind == "xnor" else cfg["w_bits"]
        self.rng = random.Random(cfg["seed"])
        self.edge = 0
        self.edges: list[tuple[int, int]] = []  # per edge: (en, index of the tile fed or -1)

    # ---- stimulus --------------------------------------------------------------------------
    def operand(self, bits: int, extreme: str = "") -> int:
        if self.kind == "xnor":
            full = (1 << self.v) - 1
            return {"min": 0, "max": full}.get(extreme, self.rng.getrandbits(self.v))
        lo, hi = value_range(bits)
        if extreme:
            return lo if extreme == "min" else hi
        if self.rng.random() < 0.2:
            return self.rng.choice((lo, hi, -1, 0, 1))
        return self.rng.randint(lo, hi)

    def tile(self, m: int, n: int, t: int, a_ext: str = "", b_ext: str = "") -> Tile:
        a = np.zeros((self.r, t), dtype=np.int64)
        b = np.zeros((t, self.c), dtype=np.int64)
        for i in range(m):
            for k in range(t):
                a[i, k] = self.operand(self.a_w, a_ext)
        for k in range(t):
            for j in range(n):
                b[k, j] = self.operand(self.b_w, b_ext)
        return Tile(a, b, m, n)

    def random_tile(self) -> Tile:
        return self.tile(
            self.rng.randint(1, self.r),
            self.rng.randint(1, self.c),
            self.rng.randint(1, 2 * max(self.r, self.c) + 3),
        )

    # ---- protocol --------------------------------------------------------------------------
    async def reset(self) -> None:
        dut = self.dut
        await FallingEdge(dut.clk)
        for name, value in (
            ("rst", 1),
            ("en", 1),
            ("clear", 0),
            ("in_valid", 0),
            ("in_last", 0),
            ("a_in", 0),
            ("b_in", 0),
        ):
            getattr(dut, name).value = value
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    def _pack(self, values: np.ndarray, width: int) -> int:
        word = 0
        for lane, value in enumerate(values.tolist()):
            word |= (int(value) & ((1 << width) - 1)) << (lane * width)
        return word

    def _read_row(self) -> list[int]:
        raw = int(self.dut.out_data.value)
        mask = (1 << self.acc_bits) - 1
        return [
            to_signed((raw >> (j * self.acc_bits)) & mask, self.acc_bits) for j in range(self.c)
        ]

    async def stream(self, tiles: list[Tile], bubble: float = 0.0, stall: float = 0.0) -> None:
        """Feed ``tiles`` back to back, collecting each tile's rows; called at a falling edge."""
        dut = self.dut
        feed = 0  # tile being fed
        beat = 0
        collect = 0  # tile whose rows come out next
        prev_en = 1
        while collect < len(tiles):
            # outputs registered at the previous edge (only if that edge was enabled)
            if prev_en and int(dut.out_valid.value):
                tile = tiles[collect]
                tile.rows[int(dut.out_row.value)] = self._read_row()
                if int(dut.out_last.value):
                    tile.last = self.edge
                    collect += 1
            en = 0 if self.rng.random() < stall else 1
            ready = int(dut.in_ready.value)
            offer = feed < len(tiles) and self.rng.random() >= bubble
            dut.en.value = en
            if offer:
                tile = tiles[feed]
                dut.in_valid.value = 1
                dut.in_last.value = int(beat == tile.depth - 1)
                dut.a_in.value = self._pack(tile.a[:, beat], self.a_w)
                dut.b_in.value = self._pack(tile.b[beat, :], self.b_w)
            else:
                dut.in_valid.value = 0
                dut.in_last.value = 0
            taken = bool(offer and ready and en)
            self.edges.append((en, feed if taken else -1))
            if taken:
                tile = tiles[feed]
                if beat == 0:
                    tile.first = self.edge
                beat += 1
                if beat == tile.depth:
                    tile.last_beat = self.edge
                    feed, beat = feed + 1, 0
            prev_en = en
            await FallingEdge(dut.clk)
            self.edge += 1
        dut.in_valid.value = 0
        dut.en.value = 1
        for i, tile in enumerate(tiles):
            # idle edges: stalled (en low) anywhere in the tile, or enabled but without one of
            # its beats while it is being fed
            for e in range(tile.first, tile.last):
                en, fed = self.edges[e]
                if not en or (e < tile.last_beat and fed != i):
                    tile.idle_edges += 1

    def check(self, tiles: list[Tile], exact_cycles: bool) -> None:
        for i, tile in enumerate(tiles):
            want = gemm(self.kind, tile.a, tile.b, self.v)
            want = np.vectorize(lambda x: wrap(int(x), self.acc_bits))(want)
            got = np.array([tile.rows[r] for r in range(self.r)], dtype=np.int64)
            assert sorted(tile.rows) == list(range(self.r)), f"tile {i}: rows {sorted(tile.rows)}"
            assert np.array_equal(got, want), (
                f"{self.cfg['prefix']} tile {i} ({tile.m}x{tile.depth}x{tile.n}):\n"
                f"A=\n{tile.a}\nB=\n{tile.b}\n"
                f"got\n{got}\nexpected\n{want}"
            )
            formula = os_tile_cycles(self.r, self.c, tile.depth)
            measured = tile.last - tile.first - tile.idle_edges
            assert measured == formula, (
                f"{self.cfg['prefix']} tile {i}: T={tile.depth} on {self.r}x{self.c}: "
                f"measured {measured} cycles "
                f"({tile.last} - {tile.first} - {tile.idle_edges} idle), formula {formula}"
            )
            if exact_cycles:
                assert tile.idle_edges == 0 and tile.last - tile.first == formula


async def each_array(dut: Any, body: Callable[[ArrayTB], Awaitable[None]]) -> None:
    """Run ``body`` on every array of the wrapper at the same time (one shared clock)."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    tasks = [cocotb.start_soon(body(ArrayTB(dut, cfg))) for cfg in testbench_config()["arrays"]]
    for task in tasks:
        await task


async def _back_to_back(tb: ArrayTB) -> None:
    await tb.reset()
    r, c = tb.r, tb.c
    tiles = [tb.tile(r, c, 1), tb.tile(r, c, r + c)]
    for a_ext in ("min", "max"):
        for b_ext in ("min", "max"):
            tiles.append(tb.tile(r, c, 2 * (r + c), a_ext, b_ext))
    tiles.append(tb.tile(r, c, 3, "min", "min"))
    tiles += [tb.random_tile() for _ in range(tb.cfg["random_tiles"])]
    await tb.stream(tiles)
    tb.check(tiles, exact_cycles=True)
    for prev, nxt in itertools.pairwise(tiles):  # the next first beat is taken as out_last shows
        assert nxt.first == prev.last, (tb.cfg["prefix"], prev.last, nxt.first)


@cocotb.test()
async def gemm_tiles_back_to_back(dut: Any) -> None:
    """Random tiles (incl. smaller than the array, T = 1) and corner tiles, no gaps."""
    await each_array(dut, _back_to_back)


async def _bubbles_and_stalls(tb: ArrayTB) -> None:
    await tb.reset()
    tiles = [tb.random_tile() for _ in range(tb.cfg["random_tiles"])]
    await tb.stream(tiles, bubble=0.25, stall=0.2)
    tb.check(tiles, exact_cycles=False)


@cocotb.test()
async def bubbles_and_stalls(dut: Any) -> None:
    """Random empty beats (in_valid low) and stalls (en low) change timing, never results."""
    await each_array(dut, _bubbles_and_stalls)


async def _clear_and_reset(tb: ArrayTB) -> None:
    await tb.reset()
    dut = tb.dut
    dut.clear.value = 1
    await FallingEdge(dut.clk)
    dut.clear.value = 0
    tb.edge += 1
    tb.edges.append((1, -1))
    tile = tb.random_tile()
    await tb.stream([tile])
    tb.check([tile], exact_cycles=True)
    # feed half a tile, reset, then a full tile
    half = tb.tile(tb.r, tb.c, 4)
    dut.in_valid.value = 1
    dut.in_last.value = 0
    for k in range(2):
        dut.a_in.value = tb._pack(half.a[:, k], tb.a_w)
        dut.b_in.value = tb._pack(half.b[k, :], tb.b_w)
        await FallingEdge(dut.clk)
    dut.in_valid.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    tb.edge += 4
    tb.edges += [(1, -1)] * 4
    tile = tb.random_tile()
    await tb.stream([tile])
    tb.check([tile], exact_cycles=True)


@cocotb.test()
async def clear_and_reset(dut: Any) -> None:
    """clear zeroes idle accumulators; rst in the middle of a tile leaves nothing behind."""
    await each_array(dut, _clear_and_reset)

"""The predictor's model of autochip's accelerator core: cycles per layer and FPGA resources.

Cycles follow the structure of ``templates/core_main.v`` state by state (one cycle per control
state unless noted), for a compiled layer (:class:`autochip.builder.compiler.CompiledLayer`):

* DMA transfer of L bytes at address A on a bus of B bytes (``core_dma.v``): the bus words
  ``floor(A / B) .. floor((A + L - 1) / B)``, in bursts of at most 256 beats that never cross a
  4 KB boundary, each costing its beats plus a per-burst overhead of the DRAM model
  (``core_timing.yaml``), plus 2 cycles (the controller's issue state and the cycle it sees
  ``done``).
* compute layer: descriptor fetch, decode (1), input load, then per pass of ``np`` weight tiles:
  pass setup (1), weight and parameter loads, lane initialisation (R) and the first tile's
  set-up (1), then the ``npt * np`` array tiles of the pass back to back, ``max(T, R, C)``
  cycles each (T beats, one per cycle; the array has no fill or drain gap between tiles and
  the column walk of a tile's results through the post-processing overlaps the next tiles;
  a tile shorter than R or C waits for the read-out); then an ``R + C + 11``-cycle flush (the
  last beat's way through the array and its 3 pipeline registers, the last column walk and
  the post-processing pipeline) and one write-back of the pass's output channels (contiguous
  in DRAM: PQ bytes per valid channel); finally 1 cycle to step the program. The first pass's
  weights and parameters load before the input. The last pass's write-back is posted (2
  cycles in the layer): the next descriptor's input load, or the end's ``done``, waits for
  what is left of it (:func:`posted_wait`). Parameter loads are ``p_tile`` bytes per
  weight tile, weight loads ``tile_w`` bytes per tile, the descriptor fetch 256 bytes.
* weight prefetch (op bit 12, ``tiling.prefetch_passes``): passes after the first load
  nothing (3 cycles); each pass's write-back waits for what the next pass's loads, started
  with the pass, take beyond it (:func:`prefetch_waits`).
* cross-layer prefetch (op bits 13, 14): a layer's first pass loaded during the last pass of
  the compute layer before it loads nothing (3 cycles); that last pass's write-back waits for
  what the load takes beyond the pass (:func:`prefetch_waits`).
* feature-map residency (``autochip/builder/residency.py``, op bits 9-11): a resident input
  costs one cycle instead of its load, and the wait for the previous posted write-back moves
  to where the RTL waits (:func:`resident_wait`).
* vector layer: fetch, decode, input load(s), lane initialisation (R), then R lanes compute
  R consecutive outputs at a time, one window element per lane per cycle
  (``ceil(C * P * Q / R) * KR * KS``), flush (10), one write-back of C * P * Q bytes, 1 step
  cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Protocol

from autochip._safeio import load_yaml_text
from autochip.builder.tiling import PREFETCHED_PASS
from autochip.errors import SpecError

__all__ = [
    "FLUSH_CYCLES",
    "LayerCycles",
    "core_cycles",
    "dma_cycles",
    "dram_timing",
    "flush_compute_cycles",
]

FLUSH_CYCLES = 10  # core_main.v FLUSH: the vector engine's pipeline drained before write-back


# core_main.v A_LAT: the buffers' read-word registers, core_array's input register and
# core_pe's term register (pipeline stages for Fmax)
ARRAY_LATENCY = 3


def flush_compute_cycles(rows: int, cols: int) -> int:
    """core_main.v FLUSH_C: after the pass's last tile, its last beat's way through the array
    (R plus ``ARRAY_LATENCY`` pipeline registers), the column walk (C) and the
    post-processing pipeline (8 stages), ``R + C + 11``."""
    return rows + cols + 8 + ARRAY_LATENCY


DESC_BYTES = 256  # autochip.builder.program.DESC_BYTES
BURST_BOUNDARY = 4096  # AXI4: a burst never crosses a 4 KB boundary
MAX_BURST = 256  # AXI4 INCR: at most 256 beats


class _Layer(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def mode(self) -> str: ...
    def get(self, key: str) -> int: ...


class _Core(Protocol):
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def bus_bytes(self) -> int: ...
    @property
    def p_tile(self) -> int: ...


@dataclass(frozen=True)
class LayerCycles:
    """Predicted cycles of one descriptor, by phase; ``layer`` is their sum."""

    name: str
    fetch: int
    load: int  # input, weight and parameter loads
    compute: int  # array tiles or the vector engine, lane set-up, flushes
    writeback: int
    control: int  # decode, pass set-up, program step

    @property
    def layer(self) -> int:
        return self.fetch + self.load + self.compute + self.writeback + self.control

    @property
    def total(self) -> int:
        return self.layer

    def as_dict(self) -> dict[str, int]:
        d: dict[str, Any] = asdict(self)
        d.pop("name")
        d["layer"] = self.layer
        return d


@cache
def dram_timing() -> dict[str, int]:
    text = resources.files("autochip.predictor").joinpath("core_timing.yaml").read_text()
    data: dict[str, int] = load_yaml_text(text, "autochip/predictor/core_timing.yaml")
    return data


def dma_cycles(addr: int, length: int, write: bool, bus: int) -> int:
    """Cycles of one DMA command of ``length`` bytes at ``addr`` on a ``bus``-byte data bus,
    issue to ``done`` seen: 2 + sum over bursts of (beats + overhead)."""
    t = dram_timing()
    over = t["write_burst_overhead"] if write else t["read_burst_overhead"]
    cycles = 2
    if length <= 0:
        return cycles
    words = (addr + length - 1) // bus - addr // bus + 1
    a = addr // bus * bus
    while words > 0:
        n = min(words, MAX_BURST, (BURST_BOUNDARY - a % BURST_BOUNDARY) // bus)
        cycles += n + over
        a += n * bus
        words -= n
    return cycles


def tile_cycles(rows: int, cols: int, depth: int) -> int:
    """One array tile in the core's stream of tiles, ``max(T, R, C)``: tiles follow each other
    without a fill or drain gap (``core_array.v.j2``), one beat per cycle; a tile shorter than
    the array waits until its results can be read out (``core_main.v`` ``tper``)."""
    return max(depth, rows, cols)


POSTED_ISSUE = 2  # core_main.v S_WB, S_WB_W: a posted write-back's cycles in its layer
# Every read command the controller issues (S_FETCH, S_LW, S_LP, S_IN for each run of the input
# load, S_IN2), the prefetch engine's (PF_W, PF_P) and the load engine's (LS_CMD,
# watermark._ready) costs one cycle more than its dma_cycles: the command is registered (the
# state sets dma_valid, the DMA starts a cycle later), a cycle dma_cycles' 2-cycle base
# (measured on the DMA alone) does not hold. Measured (Icarus state trace, and every layer of
# the simulated test networks): a band of n runs is n cycles slower than the runs'
# dma_cycles, a small layer 4 (fetch, weights, parameters, input).
READ_ISSUE = 1
# The same for every write command (S_WB, S_VWB): measured, it makes every layer of the
# simulated networks exact where a per-burst write overhead of 4 (3 on the DMA alone + 1)
# overcounted writes of several bursts (ResNet-20's 16 KB write-backs: 3 cycles each).
WRITE_ISSUE = 1


def read_cycles(addr: int, length: int, bus: int) -> int:
    """Cycles of a read command the controller issues: its state, then :func:`dma_cycles`."""
    return READ_ISSUE + dma_cycles(addr, length, False, bus)


def write_cycles(addr: int, length: int, bus: int) -> int:
    """Cycles of a write command: its state (``WRITE_ISSUE``), then :func:`dma_cycles`."""
    return WRITE_ISSUE + dma_cycles(addr, length, True, bus)


def input_load(core: _Core, lay: _Layer) -> int:
    """DMA cycles of a layer's input load: one command, or ``in_runs`` strided runs of
    ``in_len`` bytes at ``in_addr + i * in_stride`` (a band of rows; ``core_main.v`` S_IN,
    S_IN_W loop once per run, each run a command of its own)."""
    g, bus = lay.get, core.bus_bytes
    runs = max(1, g("in_runs"))
    return sum(
        read_cycles(g("in_addr") + i * g("in_stride"), g("in_len"), bus) for i in range(runs)
    )


def watermarked(lay: _Layer) -> bool:
    """Op word bit 16: the load watermark (``autochip/builder/watermark.py``)."""
    return bool(lay.get("op") >> 16 & 1)


def watermark_load(core: _Core, lay: _Layer) -> int:
    """The load phase of a watermarked compute layer (op bit 16): S_IN, then what the first
    pixel tile waits for its row groups beyond the lanes' set-up (``watermark.first_wait``;
    the compiler sets the bit only where no later tile waits)."""
    from autochip.builder.watermark import first_wait

    g = lay.get
    return int(first_wait(
        rows=core.rows, bus=core.bus_bytes, in_addr=g("in_addr"), grp=g("in_grp"), cin=g("cg"),
        plane=g("hw"), q=g("q"), sh=g("sh"), ph=-g("oy0"), kr=g("kr"),
        wd=g("w"), over=dram_timing()["read_burst_overhead"],
    ))  # fmt: skip


def _write_backs(core: _Core, lay: _Layer) -> list[list[int]]:
    """DMA cycles of each pass's write-back of a compute layer, one entry per command: its
    channels, contiguous in DRAM, or (``out_run > 0``, a band of rows) one run of ``out_run``
    bytes per channel at DRAM stride ``out_stride``."""
    c, g = core.cols, lay.get
    ntiles, tpp, kt, kg = g("ntiles"), g("tpp"), g("kt"), g("kg")
    out: list[list[int]] = []
    t_ps = 0
    while t_ps < ntiles:
        n = min(tpp, ntiles - t_ps)
        grp, tt = divmod(t_ps, kt)
        k0 = grp * kg + tt * c  # first output channel of the pass
        lanes = 0
        for tile in range(t_ps, t_ps + n):
            grp, tt = divmod(tile, kt)
            lanes += min(c, kg - tt * c)
        stride = g("out_stride") or g("pq")  # the DRAM channel stride (untiled: P*Q)
        a0 = g("out_addr") + k0 * stride
        if g("out_run"):
            out.append([write_cycles(a0 + i * stride, g("out_run"), core.bus_bytes)
                        for i in range(lanes)])  # fmt: skip
        else:
            out.append([write_cycles(a0, lanes * g("pq"), core.bus_bytes)])
        t_ps += n
    return out


def posted_wait(posted: int, fetch: int, mode: str, first_loads: int = 0) -> int:
    """Cycles a descriptor's input load (or the end descriptor's ``done``) waits for the
    previous layer's posted write-back of ``posted`` DMA cycles (``core_main.v``: S_IN and the
    end's S_DECODE wait while ``dma_wbusy``). From the write's issue (S_WB, S_VWB) the next
    descriptor has spent 2 cycles (S_WB, S_WB_W), S_NEXT, its fetch, S_DECODE and, for a
    compute layer, S_PASS and its first pass's weight and parameter loads (``first_loads``);
    the end descriptor waits in S_DECODE itself (one cycle fewer spent); the write engine is
    free ``posted - 1`` cycles after S_WB."""
    spent = {"compute": 5 + fetch + first_loads, "vector": 4 + fetch, "end": 3 + fetch}[mode]
    return max(0, posted - 1 - spent)


def _flags(lay: _Layer) -> tuple[bool, bool, bool]:
    """Op word bits 9, 10, 11: resident first / second input, ofmap wait (residency.py)."""
    op = lay.get("op")
    return bool(op >> 9 & 1), bool(op >> 10 & 1), bool(op >> 11 & 1)


def resident_wait(core: _Core, lay: _Layer, cyc: LayerCycles, posted: int) -> tuple[int, int]:
    """Where a descriptor waits for the previous posted write-back of ``posted`` DMA cycles,
    and how long: ``(load wait, write-back wait)``. An input it loads waits in S_IN (S_IN2 for
    an add's second input after a resident first one), as does a resident first input with
    ``owait``; otherwise the first write-back (S_WB, S_VWB) waits, after the descriptor's
    resident inputs (1 cycle each) and its first pass (or vector) compute."""
    res_a, res_b, owait = _flags(lay)
    if lay.mode == "vector":
        if not res_a or owait:
            return posted_wait(posted, cyc.fetch, "vector"), 0
        if lay.get("in2_addr") and not res_b:
            return max(0, posted - 1 - (5 + cyc.fetch)), 0
        spent = 4 + cyc.fetch + cyc.load + cyc.compute
        return 0, max(0, posted - 1 - spent)
    first = _first_loads(core, lay)
    if not res_a or owait:
        return posted_wait(posted, cyc.fetch, "compute", first), 0
    pass1 = core.rows + 1 + _pass_tiles(core, lay, 0) + flush_compute_cycles(core.rows, core.cols)
    spent = 5 + cyc.fetch + first + RESIDENT_LOAD + pass1
    return 0, max(0, posted - 1 - spent)


RESIDENT_LOAD = 1  # core_main.v S_IN / S_IN2 of a resident input: one cycle, no command


def _pass_tiles(core: _Core, lay: _Layer, t_ps: int) -> int:
    """The array cycles of the pass from tile ``t_ps``: its tiles back to back."""
    n = min(lay.get("tpp"), lay.get("ntiles") - t_ps)
    return lay.get("npt") * n * tile_cycles(core.rows, core.cols, lay.get("t"))


def _compute(core: _Core, lay: _Layer, pc: int) -> LayerCycles:
    r, c, bus = core.rows, core.cols, core.bus_bytes
    g = lay.get
    fetch = read_cycles(pc, DESC_BYTES, bus)
    if _flags(lay)[0]:
        load = RESIDENT_LOAD
    elif watermarked(lay):
        load = watermark_load(core, lay)
    else:
        load = input_load(core, lay)
    compute = 0
    control = 1 + 1  # decode, program step
    ntiles, tpp = g("ntiles"), g("tpp")
    pf = _prefetch(lay)
    t_ps = 0
    while t_ps < ntiles:
        n = min(tpp, ntiles - t_ps)
        control += 1
        # a prefetched pass (op bit 12, not the first; op bit 14, the first) loads nothing:
        # S_LW, S_PF, S_LP
        hit = (pf and t_ps) or (_cross_in(lay) and not t_ps)
        load += PREFETCHED_PASS if hit else _weight_loads(core, lay, t_ps, n)
        compute += r + 1  # lane initialisation, first tile set-up
        compute += _pass_tiles(core, lay, t_ps)
        compute += flush_compute_cycles(r, c)
        t_ps += n
    load += sum(prefetch_waits(core, lay))
    # every write-back command but the last waits for its DMA; the last is posted
    cmds = [x for wbs in _write_backs(core, lay) for x in wbs]
    wb = sum(cmds[:-1]) + POSTED_ISSUE
    return LayerCycles(lay.name, fetch, load, compute, wb, control)


def _weight_loads(core: _Core, lay: _Layer, t_ps: int, n: int) -> int:
    """The weight and parameter loads of the pass of ``n`` tiles from tile ``t_ps``, two
    commands (the controller's S_LW, S_LP or the prefetch engine's PF_W, PF_P), each
    ``READ_ISSUE`` more than its DMA; a band that keeps the previous band's weights (op word
    bit 7) issues two empty commands."""
    g, bus = lay.get, core.bus_bytes
    keep = g("op") >> 7 & 1
    return (
        2 * READ_ISSUE
        + dma_cycles(g("w_addr") + t_ps * g("tile_w"), 0 if keep else n * g("tile_w"), False, bus)
        + dma_cycles(g("p_addr") + t_ps * core.p_tile, 0 if keep else n * core.p_tile, False, bus)
    )


def _prefetch(lay: _Layer) -> bool:
    """Op word bit 12: weight prefetch (two slots, ``program.op_word(pf=True)``)."""
    return bool(lay.get("op") >> 12 & 1)


def _cross_in(lay: _Layer) -> bool:
    """Op word bit 14: the first pass was loaded by the compute layer before (cross-layer
    prefetch, ``program.op_word(xin=True)``)."""
    return bool(lay.get("op") >> 14 & 1)


def prefetch_waits(core: _Core, lay: _Layer) -> list[int]:
    """Per pass of a compute layer with weight prefetch, the cycles its write-back (S_WB)
    waits for the prefetch engine: pass p's S_INIT starts the loads of pass p + 1 (one cycle,
    then its weight and parameter commands, ``dma_cycles`` each), which run while the pass
    computes (``R + 1`` set-up, its tiles, the ``R + C + 11`` flush); the last pass, with
    op bit 13 (cross-layer prefetch), the same for the next compute layer's first pass
    (``x_w_len`` bytes at ``x_w_addr``, ``x_p_len`` at ``x_p_addr``); otherwise 0."""
    g, bus = lay.get, core.bus_bytes
    ntiles, tpp = g("ntiles"), g("tpp")
    out: list[int] = []
    t_ps = 0
    while t_ps < ntiles:
        n = min(tpp, ntiles - t_ps)
        t_nx = t_ps + n
        busy = 0
        if _prefetch(lay) and t_nx < ntiles:
            busy = 1 + _weight_loads(core, lay, t_nx, min(tpp, ntiles - t_nx))
        elif g("op") >> 13 & 1 and t_nx >= ntiles:
            busy = (1 + 2 * READ_ISSUE + dma_cycles(g("x_w_addr"), g("x_w_len"), False, bus)
                    + dma_cycles(g("x_p_addr"), g("x_p_len"), False, bus))  # fmt: skip
        run = (core.rows + 1 + _pass_tiles(core, lay, t_ps)
               + flush_compute_cycles(core.rows, core.cols))  # fmt: skip
        out.append(max(0, busy - run))
        t_ps = t_nx
    return out


def _first_loads(core: _Core, lay: _Layer) -> int:
    """A compute layer's first pass's weight and parameter loads (before its input load);
    prefetched by the layer before (op bit 14): its 3 control cycles."""
    if _cross_in(lay):
        return PREFETCHED_PASS
    return _weight_loads(core, lay, 0, min(lay.get("tpp"), lay.get("ntiles")))


def _vector(core: _Core, lay: _Layer, pc: int) -> LayerCycles:
    g = lay.get
    bus = core.bus_bytes
    fetch = read_cycles(pc, DESC_BYTES, bus)
    res_a, res_b, _ = _flags(lay)
    load = RESIDENT_LOAD if res_a else input_load(core, lay)
    if lay.get("in2_addr"):
        load += RESIDENT_LOAD if res_b else read_cycles(g("in2_addr"), g("in_len"), bus)
    groups = -(-g("c_pq") // core.rows)  # R outputs at a time, one per lane
    compute = core.rows + groups * g("kr") * g("ks") + FLUSH_CYCLES
    wb = write_cycles(g("out_addr"), g("c_pq"), bus)
    return LayerCycles(lay.name, fetch, load, compute, wb, 2)


def core_cycles(core: _Core, layers: Sequence[_Layer]) -> tuple[LayerCycles, ...]:
    """Predicted cycles of every descriptor of a compiled program, plus the end descriptor."""
    out: list[LayerCycles] = []
    posted = 0  # DMA cycles of the previous layer's posted write-back
    for i, lay in enumerate(layers):
        pc = i * DESC_BYTES
        if lay.mode == "vector":
            cyc = _vector(core, lay, pc)
            new = 0  # a vector layer's write-back is not posted
        else:
            cyc = _compute(core, lay, pc)
            new = _write_backs(core, lay)[-1][-1]
        w_load, w_wb = resident_wait(core, lay, cyc, posted)
        if w_wb and lay.mode != "vector":
            # the first write-back waits for the posted write and the first pass's prefetch
            # at once: the prefetch's wait is already in the load phase
            w_wb = max(0, w_wb - prefetch_waits(core, lay)[0])
        posted = new
        out.append(replace(cyc, load=cyc.load + w_load, writeback=cyc.writeback + w_wb))
    end = len(layers) * DESC_BYTES
    fetch = read_cycles(end, DESC_BYTES, core.bus_bytes)
    out.append(LayerCycles("(end)", fetch, 0, 0, 0, 1 + posted_wait(posted, fetch, "end")))
    return tuple(out)


# -- FPGA resources ---------------------------------------------------------------------------
RESOURCE_TARGETS = ("xilinx", "ecp5")  # targets with a fitted whole-core model
FIT_RESOURCES = ("lut", "ff", "dsp")
# Features of the control model (everything but the PE array's PEs and the buffers' RAM cells),
# each following a structure of the RTL (see core_features); core_resources.yaml says which
# feature each resource uses (fitted by scripts/validate_core.py --calibrate).
CONTROL_FEATURES = ("one", "rows", "cols", "pes", "bus", "moves")
# Block RAM modes usable with byte-enable writes (Yosys libmap: "byte 9", so widths of whole
# 9-bit bytes): (words deep, byte lanes wide, libmap cost). Xilinx 7-series (Yosys
# brams_xc4v.txt, UG473): RAMB18 2K x 9, 1K x 18, 512 x 36 (SDP); RAMB36 4K x 9, 2K x 18,
# 1K x 36, 512 x 72 (SDP). ECP5 (Yosys lattice/brams_16kd.txt): DP16KD 2K x 9, 1K x 18;
# PDPW16KD 512 x 36.
_BRAM_MODES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "xilinx": ((2048, 1, 129), (1024, 2, 129), (512, 4, 129),
               (4096, 1, 257), (2048, 2, 257), (1024, 4, 257), (512, 8, 257)),
    "ecp5": ((2048, 1, 128), (1024, 2, 128), (512, 4, 128)),
}  # fmt: skip
# Whether the lanes nothing reads leave the block RAM mapping (observed in Yosys: on ECP5 a
# weight RAM of 8-byte words whose rows use 3 of 4 lanes takes 6 DP16KD 2K x 9; on 7-series
# the same RAM takes 4 RAMB36 2K x 18, as if all 8 lanes were read).
_BRAM_DROPS_LANES = {"xilinx": False, "ecp5": True}
# Distributed (LUT) RAM with one write and one read port: (words per cell, bits per cell,
# libmap cost per cell, bits the cost is for, LUT sites the cell occupies). One cell has one
# write enable, so a byte lane takes whole cells. Xilinx (Yosys lutrams_xc5v.txt, UG474):
# RAM32M 32 x 6 and RAM64M 64 x 3 in simple dual-port use, cost 8 per 7 bits used, each a whole
# SLICEM (4 LUT6). ECP5 (lutrams_trellis.txt): TRELLIS_DPR16X4 16 x 4, cost 4, three slices
# (two as RAM, one as its write port: 6 LUT4 sites, ECP5 family data sheet). On 7-series,
# memories deeper than one cell go to block RAM (observed in Yosys: a 256-word weight RAM,
# cheaper as RAM64M by the costs, became a RAMB36); on ECP5 DPR16X4 cells stack in depth
# (observed: the 32-word RAMs of a 512-bit-bus core became 1100 DPR16X4).
_LUTRAM: dict[str, tuple[tuple[int, int, float, int, int], ...]] = {
    "xilinx": ((32, 6, 8.0, 7, 4), (64, 3, 8.0, 7, 4)),
    "ecp5": ((16, 4, 4.0, 4, 6),),
}


@dataclass(frozen=True)
class CoreResources:
    """Predicted resources of a whole core: array + buffers + control (see core_resources)."""

    target: str
    lut: int
    ff: int
    dsp: int
    bram: int
    array_lut: int
    array_ff: int
    array_dsp: int
    control_lut: int
    control_ff: int
    lutram_lut: int = 0  # LUTs occupied by LUT RAM (in lut)
    fmax_mhz: float | None = None  # predicted Fmax (None: no model for the target)

    def as_dict(self) -> dict[str, int | str | float | None]:
        return dict(asdict(self))


class _Sized(Protocol):
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def a_bits(self) -> int: ...
    @property
    def w_bits(self) -> int: ...
    @property
    def acc_bits(self) -> int: ...
    @property
    def if_depth(self) -> int: ...
    @property
    def w_depth(self) -> int: ...
    @property
    def o_depth(self) -> int: ...
    @property
    def bus_bytes(self) -> int: ...


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def core_rams(core: _Sized) -> tuple[tuple[str, int, int, int, int, int, int], ...]:
    """The core's RAMs as ``(buffer, count, depth, lanes, row, used, bits)``: ``count`` RAMs of
    ``depth`` words of ``lanes`` byte-enable lanes, in rows of ``row`` lanes of which the first
    ``used`` are read (``bits`` bits of each). From the geometry of ``core.core_params``
    (``core_wram`` instances of ``core_main.v``): the ifmap is R copies of bus words (copy 0
    feeds the vector engine whole bytes, the others only ``a_bits`` of each byte), the weight
    RAM words of ``max(w_row, B)`` bytes in rows of ``w_row`` of which C lanes are read
    (``w_bits`` each), the parameter RAM 16 words of ``p_tile / 16`` records (the record index
    is not known to be < C) of which 9 bytes and 1 bit are read (bias, multiplier, shift;
    flip), the ofmap two banks of ``o_wb``-byte words. Yosys drops the bits nothing reads."""
    r, c, b = core.rows, core.cols, core.bus_bytes
    w_row = _pow2(c)
    w_word = max(w_row, b)
    o_wb = max(b, _pow2(r))
    recs = max(b, _pow2(16 * c)) // 16
    if_words = core.if_depth // b
    w_words = core.w_depth * w_row // w_word
    return (
        ("ifmap", 1, if_words, b, b, b, 8),
        ("ifmap", r - 1, if_words, b, b, b, core.a_bits),
        ("weight", 1, w_words, w_word, w_row, c, core.w_bits),
        ("params", 1, 16, 16 * recs, 16, 9, 8),
        ("params", 1, 16, 16 * recs, 16, 1, 1),  # the flip bit (byte 9)
        ("ofmap", 2, core.o_depth // (2 * o_wb), o_wb, o_wb, o_wb, 8),
    )


def ram_cells(
    target: str, depth: int, lanes: int, bits: int, row: int = 0, used: int = 0
) -> tuple[int, int]:
    """``(block RAMs, LUT sites of LUT RAM)`` Yosys maps one RAM to on ``target``: ``depth``
    words of ``lanes`` byte-enable lanes in rows of ``row`` lanes (default: one row) of which
    the first ``used`` (default: all) are read, ``bits`` bits each. The cheaper, by its
    libmap costs, of the best block RAM mode (a block RAM of ``w`` lanes is needed for every
    group of ``w`` lanes with a lane read in it, on ECP5; for every group on 7-series) and LUT
    RAM (each read lane in whole cells; block RAM on a tie)."""
    row, used = row or lanes, used or row or lanes
    rows = lanes // row

    def groups(w: int) -> int:
        if not _BRAM_DROPS_LANES[target]:
            return -(-lanes // w)
        return rows * -(-used // w) if w <= row else -(-lanes // w)

    bram = min(
        ((-(-depth // d)) * groups(w) * cost, (-(-depth // d)) * groups(w))
        for d, w, cost in _BRAM_MODES[target]
    )
    opts = _LUTRAM[target]
    opt = next((o for o in opts if depth <= o[0]), None if target == "xilinx" else opts[-1])
    if opt is not None:  # 7-series: LUT RAM only as deep as one cell (observed in Yosys)
        d, w, cost, per, sites = opt
        deep = -(-depth // d)  # ECP5: DPR16X4 side by side in depth
        if deep * rows * used * cost * bits / per < bram[0]:
            return 0, deep * rows * used * -(-bits // w) * sites
    return bram[1], 0


def buffer_brams(core: _Sized, target: str = "xilinx") -> dict[str, int]:
    """Block RAMs of each buffer (``ifmap``, ``weight``, ``params``, ``ofmap``) and the LUTs of
    LUT RAM (``lutram_lut``) of the core on ``target``."""
    out = {"ifmap": 0, "weight": 0, "params": 0, "ofmap": 0, "lutram_lut": 0}
    for name, count, depth, lanes, row, used, bits in core_rams(core):
        bram, lut = ram_cells(target, depth, lanes, bits, row, used)
        out[name] += count * bram
        out["lutram_lut"] += count * lut
    return out


@cache
def _control_model() -> dict[str, Any]:
    text = resources.files("autochip.predictor").joinpath("core_resources.yaml").read_text()
    data: dict[str, Any] = load_yaml_text(text, "autochip/predictor/core_resources.yaml")
    return data


def control_features(core: _Sized) -> dict[str, float]:
    """The control model's features: ``rows`` (im2col lanes, post-processing pipelines),
    ``cols`` (weight lanes, parameter records), ``pes`` (the array's column read-out: R
    copies of a C:1 mux of the PEs' 32-bit results), ``bus`` (bus bytes: DMA,
    descriptor loading, buffer write and read muxes) and ``moves`` (the array's operand hop
    and skew register bits, as autochip.hw.fpga_model counts them with the mode bit)."""
    r, c, a, w = core.rows, core.cols, core.a_bits, core.w_bits + 1
    moves = r * (c - 1) * (a + 1) + (r - 1) * c * w
    moves += r * (r - 1) // 2 * (a + 1) + c * (c - 1) // 2 * w
    return {
        "one": 1.0,
        "rows": float(r),
        "cols": float(c),
        "pes": float(r * c),
        "bus": float(core.bus_bytes),
        "moves": float(moves),
    }


def pe_resources(
    target: str, a_bits: int, w_bits: int, adder: bool, table: dict[str, list[int]] | None = None
) -> tuple[int, int, int]:
    """LUT, FF, DSP of one ``core_pe`` as Yosys maps it on ``target`` (measured at every width
    by ``validate_core.py --calibrate``: which products become DSPs is Yosys's choice);
    ``table`` replaces the YAML's (the fit uses the table it just measured)."""
    if table is None:
        table = _model_for(target)["pe"]
    key = f"{a_bits},{w_bits},{int(adder)}"
    if key not in table:
        raise SpecError(
            "core resources",
            [f"pe: no {target} measurement of core_pe a_bits={a_bits} w_bits={w_bits}"],
        )
    lut, ff, dsp = table[key]
    return int(lut), int(ff), int(dsp)


def _model_for(target: str) -> dict[str, Any]:
    targets: dict[str, Any] = _control_model()["targets"]
    if target not in targets:
        raise SpecError(
            "core resources",
            [
                f"target: the whole-core resource model is fitted for {sorted(targets)}, "
                f"found {target!r} (scripts/validate_core.py --calibrate)"
            ],
        )
    model: dict[str, Any] = targets[target]
    return model


# Logic added to the controller after the control model's fit, measured as what it adds to a
# whole core in Yosys (the 2x2 int8 core of tests/test_codesign_build.py, 32-bit bus, 2 KB
# buffers, 2026-12-03, before and after): the load watermark's engine and check (op bit 16;
# docs/core.md "Load watermark"). Part of the fixed resources, so a refit of the control
# model (scripts/validate_core.py --calibrate) fits what is left and counts it once.
ADDED_LOGIC = {"xilinx": {"lut": 505, "ff": 204}, "ecp5": {"lut": 742, "ff": 210}}


def fixed_resources(
    core: _Sized, target: str, pe_table: dict[str, list[int]] | None = None
) -> dict[str, int]:
    """What the model takes from measurements and geometry, not from the fit: the PEs
    (R x C x :func:`pe_resources`), the logic added since the fit (:data:`ADDED_LOGIC`), the
    block RAMs and the LUTs of LUT RAM."""
    lut, ff, dsp = pe_resources(target, core.a_bits, core.w_bits, core.kind == "adder", pe_table)
    n = core.rows * core.cols
    mem = buffer_brams(core, target)
    added = ADDED_LOGIC.get(target, {})
    return {
        "lut": n * lut + added.get("lut", 0),
        "ff": n * ff + added.get("ff", 0),
        "added_lut": added.get("lut", 0),
        "added_ff": added.get("ff", 0),
        "dsp": n * dsp,
        "bram": mem["ifmap"] + mem["weight"] + mem["params"] + mem["ofmap"],
        "lutram_lut": mem["lutram_lut"],
    }


def fmax_mhz(core: _Sized, target: str) -> float | None:
    """Predicted Fmax on ``target`` (None where nothing was measured): the model of
    ``core_resources.yaml`` (``fmax``: MHz = a + b * log2(R * C), fitted to nextpnr runs)."""
    model = _control_model()["targets"].get(target, {}).get("fmax")
    if not model:
        return None
    return round(float(model["a"]) + float(model["b"]) * math.log2(core.rows * core.cols), 1)


def fmax_warning(clock_mhz: float, fmax: float, target: str) -> str:
    """The one-line warning when a spec's clock exceeds the predicted Fmax."""
    model = _control_model()["targets"].get(target, {}).get("fmax", {})
    runs = len(model.get("measured", {}))
    err = model.get("max_error")
    how = f"fitted to {runs} nextpnr run{'s' if runs != 1 else ''}"
    if err is not None and runs > 2:
        how += f", error up to {100 * float(err):.0f} %"
    return (
        f"warning: clock_mhz {clock_mhz:g} exceeds the core's predicted {target} Fmax "
        f"{fmax:.1f} MHz (core_model, {how}): the core would not meet timing at this clock"
    )


def fmax_warnings(
    core: _Sized, clock_mhz: float, targets: Sequence[str] = RESOURCE_TARGETS
) -> list[str]:
    """One warning per target of ``targets`` (default: every target) with an Fmax model whose
    predicted Fmax ``clock_mhz`` exceeds."""
    out = []
    for target in targets:
        fmax = fmax_mhz(core, target)
        if fmax is not None and clock_mhz > fmax:
            out.append(fmax_warning(clock_mhz, fmax, target))
    return out


def core_resources(core: _Sized, target: str = "xilinx") -> CoreResources:
    """Predicted LUT/FF/DSP/BRAM (and Fmax) of the whole core on ``target`` (xilinx: 7-series,
    ecp5).

    = R x C measured ``core_pe`` (:func:`pe_resources`) + the block RAMs and LUT RAM of the
    buffer geometry (:func:`buffer_brams`) + the control logic (controller, im2col lanes,
    post-processing pipelines, DMA, vector engine, array skew and read-out) as a linear model
    in :func:`control_features`, fitted to Yosys runs of whole cores by
    ``scripts/validate_core.py --calibrate`` (``core_resources.yaml``).
    """
    model = _model_for(target)
    fixed = fixed_resources(core, target)
    x = control_features(core)
    ctrl = {
        res: max(0, round(sum(float(v) * x[f] for f, v in model["control"][res].items())))
        for res in FIT_RESOURCES
    }
    return CoreResources(
        target=target,
        lut=fixed["lut"] + fixed["lutram_lut"] + ctrl["lut"],
        ff=fixed["ff"] + ctrl["ff"],
        dsp=fixed["dsp"] + ctrl["dsp"],
        bram=fixed["bram"],
        array_lut=fixed["lut"] - fixed["added_lut"],
        array_ff=fixed["ff"] - fixed["added_ff"],
        array_dsp=fixed["dsp"],
        control_lut=ctrl["lut"] + fixed["added_lut"],
        control_ff=ctrl["ff"] + fixed["added_ff"],
        lutram_lut=fixed["lutram_lut"],
        fmax_mhz=fmax_mhz(core, target),
    )

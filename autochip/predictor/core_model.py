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
  a tile shorter than R or C waits for the read-out); then an ``R + C + 7``-cycle flush (the
  last beat's way through the array, the last column walk and the post-processing pipeline)
  and one write-back of the pass's output channels (contiguous in DRAM: PQ bytes per valid
  channel); finally 1 cycle to step the program. The first pass's weights and parameters load
  before the input. The last pass's write-back is posted (2 cycles in the layer): the next
  descriptor's input load, or the end's ``done``, waits for what is left of it
  (:func:`posted_wait`). Parameter loads are ``p_tile`` bytes per
  weight tile, weight loads ``tile_w`` bytes per tile, the descriptor fetch 256 bytes.
* vector layer: fetch, decode, input load(s), one cycle per window element
  (C * P * Q * KR * KS), flush (6), one write-back of C * P * Q bytes, 1 step cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Protocol

from autochip._safeio import load_yaml_text

__all__ = [
    "FLUSH_CYCLES",
    "LayerCycles",
    "core_cycles",
    "dma_cycles",
    "dram_timing",
    "flush_compute_cycles",
]

FLUSH_CYCLES = 6  # core_main.v FLUSH: the vector engine's pipeline drained before write-back


def flush_compute_cycles(rows: int, cols: int) -> int:
    """core_main.v FLUSH_C: after the pass's last tile, its last beat's way through the array
    (R), the column walk (C) and the post-processing pipeline, ``R + C + 7``."""
    return rows + cols + 7


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


def _write_backs(core: _Core, lay: _Layer) -> list[int]:
    """DMA cycles of each pass's write-back of a compute layer (its channels, contiguous)."""
    c, g = core.cols, lay.get
    ntiles, tpp, kt, kg = g("ntiles"), g("tpp"), g("kt"), g("kg")
    out: list[int] = []
    t_ps = 0
    while t_ps < ntiles:
        n = min(tpp, ntiles - t_ps)
        grp, tt = divmod(t_ps, kt)
        k0 = grp * kg + tt * c  # first output channel of the pass
        lanes = 0
        for tile in range(t_ps, t_ps + n):
            grp, tt = divmod(tile, kt)
            lanes += min(c, kg - tt * c)
        out.append(dma_cycles(g("out_addr") + k0 * g("pq"), lanes * g("pq"), True, core.bus_bytes))
        t_ps += n
    return out


def posted_wait(posted: int, fetch: int, mode: str, first_loads: int = 0) -> int:
    """Cycles a descriptor's input load (or the end descriptor's ``done``) waits for the
    previous layer's posted write-back of ``posted`` DMA cycles (``core_main.v``: S_IN and the
    end's S_DECODE wait while ``dma_wbusy``). From the write's issue (S_WB) the next descriptor
    has spent 2 cycles (S_WB, S_WB_W), S_NEXT, its fetch, S_DECODE and, for a compute layer,
    S_PASS and its first pass's weight and parameter loads (``first_loads``); the write engine
    is free ``posted - 1`` cycles after S_WB."""
    spent = {"compute": 5 + fetch + first_loads, "vector": 4 + fetch, "end": 4 + fetch}[mode]
    return max(0, posted - 1 - spent)


def _compute(core: _Core, lay: _Layer, pc: int) -> LayerCycles:
    r, c, bus = core.rows, core.cols, core.bus_bytes
    g = lay.get
    fetch = dma_cycles(pc, DESC_BYTES, False, bus)
    load = dma_cycles(g("in_addr"), g("in_len"), False, bus)
    compute = 0
    control = 1 + 1  # decode, program step
    ntiles, tpp = g("ntiles"), g("tpp")
    t_ps = 0
    while t_ps < ntiles:
        n = min(tpp, ntiles - t_ps)
        control += 1
        load += dma_cycles(g("w_addr") + t_ps * g("tile_w"), n * g("tile_w"), False, bus)
        load += dma_cycles(g("p_addr") + t_ps * core.p_tile, n * core.p_tile, False, bus)
        compute += r + 1  # lane initialisation, first tile set-up
        compute += g("npt") * n * tile_cycles(r, c, g("t"))
        compute += flush_compute_cycles(r, c)
        t_ps += n
    # every pass's write-back but the last waits for its DMA; the last is posted
    wb = sum(_write_backs(core, lay)[:-1]) + POSTED_ISSUE
    return LayerCycles(lay.name, fetch, load, compute, wb, control)


def _first_loads(core: _Core, lay: _Layer) -> int:
    """A compute layer's first pass's weight and parameter loads (before its input load)."""
    g, bus = lay.get, core.bus_bytes
    n = min(g("tpp"), g("ntiles"))
    return dma_cycles(g("w_addr"), n * g("tile_w"), False, bus) + dma_cycles(
        g("p_addr"), n * core.p_tile, False, bus
    )


def _vector(core: _Core, lay: _Layer, pc: int) -> LayerCycles:
    g = lay.get
    bus = core.bus_bytes
    fetch = dma_cycles(pc, DESC_BYTES, False, bus)
    load = dma_cycles(g("in_addr"), g("in_len"), False, bus)
    if lay.get("in2_addr"):
        load += dma_cycles(g("in2_addr"), g("in_len"), False, bus)
    compute = g("c") * g("p") * g("q") * g("kr") * g("ks") + FLUSH_CYCLES
    wb = dma_cycles(g("out_addr"), g("c_pq"), True, bus)
    return LayerCycles(lay.name, fetch, load, compute, wb, 2)


def core_cycles(core: _Core, layers: Sequence[_Layer]) -> tuple[LayerCycles, ...]:
    """Predicted cycles of every descriptor of a compiled program, plus the end descriptor."""
    out: list[LayerCycles] = []
    posted = 0  # DMA cycles of the previous layer's posted write-back (compute layers)
    for i, lay in enumerate(layers):
        pc = i * DESC_BYTES
        if lay.mode == "vector":
            cyc = _vector(core, lay, pc)
            wait = posted_wait(posted, cyc.fetch, "vector")
            posted = 0
        else:
            cyc = _compute(core, lay, pc)
            wait = posted_wait(posted, cyc.fetch, "compute", _first_loads(core, lay))
            posted = _write_backs(core, lay)[-1]
        out.append(replace(cyc, load=cyc.load + wait))
    end = len(layers) * DESC_BYTES
    fetch = dma_cycles(end, DESC_BYTES, False, core.bus_bytes)
    out.append(LayerCycles("(end)", fetch, 0, 0, 0, 1 + posted_wait(posted, fetch, "end")))
    return tuple(out)


# -- FPGA resources ---------------------------------------------------------------------------
CONTROL_FEATURES = ("one", "rows", "cols")
_XILINX_LUTRAM_MAX_BITS = 2048  # memories up to this size become LUT RAM (observed in Yosys)
_XILINX_BRAM18_BITS = 2048 * 9  # RAMB18E1: 2K x 9 (UG473, 7 Series FPGAs Memory Resources)
_XILINX_BRAM36_DEPTH = 4096  # RAMB36E1: 4K x 9 (UG473)


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

    def as_dict(self) -> dict[str, int | str]:
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
    def p_depth(self) -> int: ...


def xilinx_bram_blocks(depth: int, width: int = 8) -> int:
    """Block RAM cells Yosys maps one ``depth x width`` core_ram to on 7-series parts."""
    if depth * width <= _XILINX_LUTRAM_MAX_BITS:
        return 0
    if depth * width <= _XILINX_BRAM18_BITS and width <= 9:
        return 1
    return -(-depth // _XILINX_BRAM36_DEPTH) * -(-width // 9)


def buffer_brams(core: _Sized) -> int:
    """Block RAMs of the core's buffers: ifmap R copies, weight C banks, ofmap, 10 param RAMs."""
    return (
        core.rows * xilinx_bram_blocks(core.if_depth)
        + core.cols * xilinx_bram_blocks(core.w_depth)
        + xilinx_bram_blocks(core.o_depth)
        + 10 * xilinx_bram_blocks(core.p_depth)
    )


@cache
def _control_model() -> dict[str, Any]:
    text = resources.files("autochip.predictor").joinpath("core_resources.yaml").read_text()
    data: dict[str, Any] = load_yaml_text(text, "autochip/predictor/core_resources.yaml")
    return data


def control_features(core: _Sized) -> dict[str, float]:
    return {"one": 1.0, "rows": float(core.rows), "cols": float(core.cols)}


def core_resources(core: _Sized, target: str = "xilinx") -> CoreResources:
    """Predicted LUT/FF/DSP/BRAM of the whole core on ``target`` (``xilinx``: 7-series).

    The array comes from :func:`autochip.hw.fpga_model.estimate_array_resources` (a mac array
    of the core's size and widths: the core's PE is the RTL library's MAC PE plus a mode bit);
    buffers from the block RAM geometry (:func:`buffer_brams`); the controller, DMA,
    post-processing and vector engine from a linear model in (1, rows, cols) fitted to Yosys
    runs of whole cores by ``scripts/validate_core.py --calibrate`` (``core_resources.yaml``).
    """
    from autochip.hw.fpga_model import estimate_array_resources
    from autochip.hw.spec import hardware_spec_from_dict

    hw = hardware_spec_from_dict(
        {
            "pe": {
                "kind": "mac",
                "a_bits": core.a_bits,
                "w_bits": core.w_bits,
                "acc_bits": core.acc_bits,
            },
            "array": {"rows": core.rows, "cols": core.cols},
        },
        "core",
    )
    arr = estimate_array_resources(hw, target)
    coefs: dict[str, dict[str, float]] = _control_model()["targets"][target]
    x = control_features(core)
    ctrl = {
        res: max(0, round(sum(coefs[res].get(f, 0.0) * x[f] for f in CONTROL_FEATURES)))
        for res in ("lut", "ff", "dsp")
    }
    return CoreResources(
        target=target,
        lut=arr.lut + ctrl["lut"],
        ff=arr.ff + ctrl["ff"],
        dsp=arr.dsp + ctrl["dsp"],
        bram=buffer_brams(core),
        array_lut=arr.lut,
        array_ff=arr.ff,
        array_dsp=arr.dsp,
        control_lut=ctrl["lut"],
        control_ff=ctrl["ff"],
    )

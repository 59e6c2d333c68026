"""Every parameter of the accelerator core (``templates/core_*.v``), computed from a hardware spec.

The core wraps the output-stationary array of ``core_array.v.j2`` (``core_pe`` PEs, inlined, whose
weight lane carries a PE-mode bit, streaming tiles back to back) in buffers, a descriptor-driven
controller, an AXI4 master and AXI4-Lite registers. :func:`core_params` checks what the core
supports and raises one :class:`SpecError` listing every problem; :func:`render_core` renders
every file in memory (deterministic: no timestamps, no paths).

Buffer sizing (the spec's ``buffers.*.size_kb`` is the total storage of each buffer):

* AXI4 data bus: ``bus_bytes`` = the largest power of two <= ``dram.bandwidth`` (bytes per
  cycle), at most 64: 4 .. 64 bytes (32 .. 512 bits); a bandwidth under 4 is refused. Every
  buffer the DMA touches is a RAM of words of ``bus_bytes`` (or a multiple) with byte enables,
  filled or drained one bus word per cycle;
  DRAM byte ``a`` lands in buffer byte ``a - base`` for a ``bus_bytes``-aligned ``base``, so no
  byte-lane rotation is needed (the compiler folds the misalignment into its addresses);
* ifmap: ``rows`` copies of one RAM (each array row reads its own im2col byte every cycle), so
  one copy holds ``size // rows`` bytes (rounded down to whole bus words);
* weight: one RAM of ``w_word`` bytes per word holding weight rows of ``w_row`` bytes (``cols``
  rounded up to a power of two): a row is the C weights of one reduction step;
* ofmap: ``size`` bytes in two banks of ``o_wb``-byte words (even and odd words, ``o_wb`` =
  max(bus, rows rounded up to 2^k)), so the post-processing writes the R bytes of one output
  channel (R consecutive pixels) at any byte address in one cycle: the outputs of one pass;
* params: ``PARAM_TILES`` words of ``p_tile`` bytes (the C 16-byte records of one weight tile,
  padded to a power of two and at least one bus word).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import jinja2

from autochip.builder.params import ArrayParams
from autochip.builder.tools import templates_dir
from autochip.errors import SpecError, ToolError
from autochip.hw.spec import HardwareSpec

__all__ = [
    "ARRAY_MODULE",
    "CORE_MODULES",
    "CORE_TOP",
    "MAX_BUS_BYTES",
    "MIN_BUS_BYTES",
    "PARAM_TILES",
    "CoreParams",
    "core_params",
    "render_core",
]

CORE_TOP = "autochip_core"
ARRAY_MODULE = "core_array"
CORE_MODULES = (
    "core_pe.v",
    "core_ram.v",
    "core_wram.v",
    "core_axil.v",
    "core_dma.v",
    "core_main.v",
    "autochip_delay.v",
    "autochip_row_mux.v",
)
PARAM_TILES = 16  # weight tiles whose per-channel parameters one pass can hold
PARAM_RECORD_BYTES = 16  # program.PARAM_RECORD_BYTES (bias, multiplier, shift, flip, padding)
MIN_BUS_BYTES, MAX_BUS_BYTES = 4, 64  # AXI4 data bus: 32 .. 512 bits
_MAX_BITS = 8  # activations and weights travel as bytes


@dataclass(frozen=True)
class CoreParams:
    """Everything the core templates and the compiler need; all derived, nothing to compute."""

    spec_name: str
    top: str
    array_top: str
    kind: str  # "mac" (mac + binary-as-mac) or "adder" (mac and adder datapaths)
    adder: int
    pe_note: str
    rows: int
    cols: int
    a_bits: int
    w_bits: int
    acc_bits: int
    if_depth: int
    if_addr: int
    w_depth: int
    w_addr: int
    o_depth: int
    o_addr: int
    p_depth: int
    p_addr: int
    bus_bytes: int  # AXI4 data bus width in bytes (from dram.bandwidth)
    bus_bits: int
    bus_lb: int  # log2(bus_bytes)
    if_words: int  # ifmap copy: words of bus_bytes
    if_waddr: int
    w_row: int  # bytes per weight row in the buffer and in DRAM (cols rounded up to 2^k)
    w_row_lb: int
    w_word: int  # bytes per weight RAM word: max(w_row, bus_bytes)
    w_words: int
    w_waddr: int
    w_rows_lb: int  # log2(weight rows per word)
    w_grp_lb: int  # log2(bus words per weight word)
    o_wb: int  # bytes per ofmap word: max(bus_bytes, rows rounded up to 2^k)
    o_wbl: int
    o_bwords: int  # words per ofmap bank (two banks: even and odd words)
    o_baddr: int
    p_tile: int  # bytes of one tile's parameter records (power of two, >= bus_bytes)
    p_recs_lb: int  # log2(records per p_tile)
    p_grp_lb: int  # log2(bus words per p_tile)
    p_taddr: int
    a_bus_bits: int
    b_bus_bits: int
    out_bus_bits: int  # one column of results: rows x acc_bits
    col_bits: int  # width of the array's column select
    clock_mhz: float


def _bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def core_params(hw: HardwareSpec, source: str | None = None) -> CoreParams:
    """Validate ``hw`` against what the core supports and derive every template parameter."""
    problems: list[str] = []
    pe = hw.pe
    if pe.kind not in ("mac", "adder"):
        problems.append(
            f"pe.kind: the core runs 'mac' (int8 and binary layers) or 'adder' (adder and int8 "
            f"layers) arrays, found {pe.kind!r}; binary layers run exactly on a mac array"
        )
    if pe.dtype != "int":
        problems.append(f"pe.dtype: the core is integer-only, found {pe.dtype!r}")
    for name, value in (("a_bits", pe.a_bits), ("w_bits", pe.w_bits)):
        if not 2 <= value <= _MAX_BITS:
            problems.append(f"pe.{name}: expected 2..{_MAX_BITS} bits for the core, found {value}")
    if pe.acc_bits != 32:
        problems.append(
            f"pe.acc_bits: the core's post-processing takes 32-bit accumulators (the "
            f"reference's range), found {pe.acc_bits}"
        )
    if hw.dataflow != "os":
        problems.append(
            f"dataflow: the core uses an output-stationary array, found {hw.dataflow!r}"
        )
    if not 1 <= hw.rows <= 64 or not 1 <= hw.cols <= 64:
        problems.append(f"array: expected 1..64 rows and cols, found {hw.rows} x {hw.cols}")
    bw = hw.dram.bandwidth
    bus = min(MAX_BUS_BYTES, 1 << max(0, int(bw).bit_length() - 1))
    if bw < MIN_BUS_BYTES:
        problems.append(
            f"dram.bandwidth: expected at least {MIN_BUS_BYTES} bytes per cycle (the core's AXI4 "
            f"data bus is the largest power of two of bytes within the bandwidth, "
            f"{MIN_BUS_BYTES}..{MAX_BUS_BYTES} bytes ({8 * MIN_BUS_BYTES}..{8 * MAX_BUS_BYTES} "
            f"bits)), found {bw:g}"
        )
        bus = MIN_BUS_BYTES
    w_row = 1 << max(0, (hw.cols - 1).bit_length())
    w_word = max(w_row, bus)
    p_tile = max(bus, 1 << (PARAM_RECORD_BYTES * hw.cols - 1).bit_length())
    if_depth = hw.ifmap.size_bytes // max(1, hw.rows) // bus * bus
    w_words = hw.weight.size_bytes // w_word
    w_depth = w_words * w_word // w_row  # weight rows
    o_wb = max(bus, 1 << max(0, (hw.rows - 1).bit_length()))
    o_depth = hw.ofmap.size_bytes // (2 * o_wb) * (2 * o_wb)
    for name, depth, unit in (
        ("ifmap", if_depth, "bytes per array row"),
        ("weight", w_depth, "weight rows"),
        ("ofmap", o_depth, "bytes"),
    ):
        if depth < 16:
            problems.append(
                f"buffers.{name}.size_kb: expected room for at least 16 {unit}, found {depth}"
            )
    if problems:
        raise SpecError(source or hw.name, problems)
    p_depth = PARAM_TILES * hw.cols
    lb = bus.bit_length() - 1
    adder = pe.kind == "adder"
    note = "int MAC and AdderNet datapaths" if adder else "int MAC datapath (binary layers as +-1)"
    return CoreParams(
        spec_name=hw.name,
        top=CORE_TOP,
        array_top=ARRAY_MODULE,
        kind=pe.kind,
        adder=int(adder),
        pe_note=note,
        rows=hw.rows,
        cols=hw.cols,
        a_bits=pe.a_bits,
        w_bits=pe.w_bits,
        acc_bits=pe.acc_bits,
        if_depth=if_depth,
        if_addr=_bits(if_depth // bus) + lb,
        w_depth=w_depth,
        w_addr=_bits(w_words) + (w_word // w_row).bit_length() - 1,
        o_depth=o_depth,
        o_addr=_bits(o_depth // (2 * o_wb)) + 1 + (o_wb.bit_length() - 1),
        p_depth=p_depth,
        p_addr=_bits(p_depth),
        bus_bytes=bus,
        bus_bits=8 * bus,
        bus_lb=lb,
        if_words=if_depth // bus,
        if_waddr=_bits(if_depth // bus),
        w_row=w_row,
        w_row_lb=w_row.bit_length() - 1,
        w_word=w_word,
        w_words=w_words,
        w_waddr=_bits(w_words),
        w_rows_lb=(w_word // w_row).bit_length() - 1,
        w_grp_lb=(w_word // bus).bit_length() - 1,
        o_wb=o_wb,
        o_wbl=o_wb.bit_length() - 1,
        o_bwords=o_depth // (2 * o_wb),
        o_baddr=_bits(o_depth // (2 * o_wb)),
        p_tile=p_tile,
        p_recs_lb=(p_tile // PARAM_RECORD_BYTES).bit_length() - 1,
        p_grp_lb=(p_tile // bus).bit_length() - 1,
        p_taddr=_bits(PARAM_TILES),
        a_bus_bits=hw.rows * pe.a_bits,
        b_bus_bits=hw.cols * (pe.w_bits + 1),
        out_bus_bits=hw.rows * pe.acc_bits,
        col_bits=max(1, (hw.cols - 1).bit_length()),
        clock_mhz=hw.clock_mhz,
    )


def array_params(p: CoreParams) -> ArrayParams:
    """The array of the core: ``core_array.v.j2`` with ``core_pe`` and a (w_bits + 1) b lane
    (the fields of the emitted array's parameters that the template reads)."""
    return ArrayParams(
        spec_name=p.spec_name,
        top=p.array_top,
        kind=p.kind,
        pe_module="core_pe",
        pe_parameters=(
            f".A_BITS({p.a_bits})",
            f".W_BITS({p.w_bits})",
            f".ACC_BITS({p.acc_bits})",
            f".ADDER({p.adder})",
        ),
        dataflow="os",
        rows=p.rows,
        cols=p.cols,
        a_bits=p.a_bits,
        w_bits=p.w_bits,
        vector=1,
        acc_bits=p.acc_bits,
        a_width=p.a_bits,
        b_width=p.w_bits + 1,
        a_bus_bits=p.a_bus_bits,
        b_bus_bits=p.b_bus_bits,
        out_bus_bits=p.out_bus_bits,
        row_bits=max(1, (p.rows - 1).bit_length()),
        wait_bits=max(1, (p.cols - 1).bit_length()),
        drain_cycles=p.cols - 1,
        max_depth=(2**31 - 1) // 2 ** (p.a_bits + p.w_bits - 2),
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_core(p: CoreParams) -> dict[str, str]:
    """Every RTL file of the core plus ``files.f`` and ``manifest.json``, relative path -> text."""
    env = _environment()
    base = templates_dir()
    rtl: dict[str, str] = {}
    for name in CORE_MODULES:
        src = base / name
        if not src.is_file():
            raise ToolError(f"expected the Verilog module '{src}', found no such file")
        rtl[f"rtl/{name}"] = src.read_text()
    rtl[f"rtl/{p.array_top}.v"] = env.get_template("core_array.v.j2").render(
        **asdict(array_params(p)), col_bits=p.col_bits, adder=p.adder
    )
    rtl[f"rtl/{p.top}.v"] = env.get_template("core_top.v.j2").render(**asdict(p))
    files = sorted(rtl)
    out = dict(rtl)
    out["files.f"] = "".join(f"{f}\n" for f in files)
    manifest: dict[str, Any] = {
        "format": 1,
        "generator": "autochip build",
        "spec": p.spec_name,
        "top": p.top,
        "files": files,
        "core": asdict(p),
        "ports": [],
    }
    out["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    return out

"""HardwareSpec: the accelerator's microarchitecture, parsed from YAML into frozen dataclasses.

Example (``examples/hw/os16x16_int8.yaml``)::

    name: os16x16-int8
    pe: {kind: mac, dtype: int, w_bits: 8, a_bits: 8, acc_bits: 32}
    array: {rows: 16, cols: 16}
    dataflow: os
    buffers:
      ifmap:  {size_kb: 64, banks: 1, bandwidth: 16}   # bandwidth: bytes per cycle per bank
      weight: {size_kb: 64, banks: 1, bandwidth: 16}
      ofmap:  {size_kb: 64, banks: 1, bandwidth: 16}
    dram: {bandwidth: 8}                                # bytes per cycle
    clock_mhz: 200

``pe.vector`` is the number of packed +-1 lanes of one xnor PE (V in acc += V - 2*popcount);
it must be 1 for mac and adder PEs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autochip._safeio import name_problem, safe_name
from autochip.errors import SpecError
from autochip.hw._fields import Fields, load_yaml

__all__ = [
    "DATAFLOWS",
    "OPERANDS",
    "PE_KINDS",
    "BufferSpec",
    "DramSpec",
    "HardwareSpec",
    "PESpec",
    "hardware_spec_from_dict",
    "load_hardware_spec",
]

DATAFLOWS = ("os", "ws", "is")
PE_KINDS = ("mac", "adder", "xnor")
OPERANDS = ("ifmap", "weight", "ofmap")
FLOAT_WIDTHS = (16, 32)
# Upper bounds of the spec's numbers (each is named in the message of a value above it).
MAX_ARRAY_DIM = 4096  # rows, cols
MAX_BUFFER_KB = 1 << 20  # 1 GiB per on-chip buffer
MAX_BANDWIDTH = 1 << 20  # bytes per cycle (buffers and DRAM)
MIN_BANDWIDTH = 1 / 1024  # bytes per cycle: below it, cycle counts of real models overflow int64
MAX_CLOCK_MHZ = 100_000.0


@dataclass(frozen=True)
class PESpec:
    kind: str = "mac"
    dtype: str = "int"
    w_bits: int = 8
    a_bits: int = 8
    acc_bits: int = 32
    vector: int = 1


@dataclass(frozen=True)
class BufferSpec:
    """One on-chip buffer: capacity, banks, and bytes per cycle each bank delivers."""

    size_bytes: int
    banks: int = 1
    bandwidth: float = 16.0


@dataclass(frozen=True)
class DramSpec:
    bandwidth: float = 8.0  # bytes per cycle


@dataclass(frozen=True)
class HardwareSpec:
    name: str
    pe: PESpec
    rows: int
    cols: int
    dataflow: str
    ifmap: BufferSpec
    weight: BufferSpec
    ofmap: BufferSpec
    dram: DramSpec
    clock_mhz: float = 200.0

    def __post_init__(self) -> None:
        # The name reaches generated Verilog (a comment) and reports: never a newline in it.
        problem = name_problem(self.name)
        if problem:
            raise SpecError("hardware spec", [f"name: {problem}"])

    @property
    def num_pes(self) -> int:
        return self.rows * self.cols

    def buffer(self, operand: str) -> BufferSpec:
        buf: BufferSpec = getattr(self, operand)
        return buf


def load_hardware_spec(path: str | Path) -> HardwareSpec:
    """Parse a hardware YAML file; every problem is reported in one :class:`SpecError`."""
    data, source = load_yaml(path)
    return hardware_spec_from_dict(data, source)


def hardware_spec_from_dict(data: Any, source: str = "<hardware spec>") -> HardwareSpec:
    f = Fields(source)
    if data is None:
        raise SpecError(
            source,
            [
                "expected a hardware description (a YAML mapping with at least "
                "'array: {rows: R, cols: C}'), found an empty file"
            ],
        )
    top = f.mapping(data, "")
    f.unknown(top, ("name", "pe", "array", "dataflow", "buffers", "dram", "clock_mhz"), "")
    name = f.get(top, "name", str, "", default=safe_name(Path(source).stem))
    if isinstance(name, str) and name_problem(name):
        f.error("name", str(name_problem(name)))
        name = safe_name(name)

    pe_d = f.mapping(top.get("pe"), "pe")
    f.unknown(pe_d, ("kind", "dtype", "w_bits", "a_bits", "acc_bits", "vector"), "pe")
    kind = f.get(pe_d, "kind", str, "pe", default="mac", choices=PE_KINDS)
    dtype = f.get(pe_d, "dtype", str, "pe", default="int", choices=("int", "float"))
    width = 32 if dtype == "float" else 8  # fp32 by default, int8 by default
    w_bits = f.get(pe_d, "w_bits", int, "pe", default=width, minimum=1, maximum=32)
    a_bits = f.get(pe_d, "a_bits", int, "pe", default=width, minimum=1, maximum=32)
    acc_bits = f.get(pe_d, "acc_bits", int, "pe", default=32, minimum=2, maximum=64)
    vector = f.get(pe_d, "vector", int, "pe", default=1, minimum=1, maximum=1024)
    if kind == "xnor" and (w_bits, a_bits) != (1, 1) and "w_bits" in pe_d:
        f.error("pe", f"an xnor PE works on 1-bit operands, found w_bits={w_bits}, a_bits={a_bits}")
    if kind == "xnor":
        w_bits, a_bits = 1, 1
    elif vector != 1:
        f.error(
            "pe.vector", f"only xnor PEs pack lanes; expected 1 for a {kind} PE, found {vector}"
        )
    if kind == "adder" and dtype == "int" and w_bits != a_bits:
        f.error(
            "pe",
            f"an adder PE needs one scale for a and w: w_bits == a_bits, "
            f"found w_bits={w_bits}, a_bits={a_bits}",
        )
    if dtype == "float" and kind != "xnor":
        for field_name, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
            if bits not in FLOAT_WIDTHS:
                f.error(
                    f"pe.{field_name}",
                    f"a float PE is fp16 or fp32: expected one of "
                    f"{list(FLOAT_WIDTHS)}, found {bits}",
                )
    if dtype == "float" and kind == "xnor":
        f.error("pe.dtype", "an xnor PE is integer-only, found dtype 'float'")
    pe = PESpec(kind, dtype, w_bits, a_bits, acc_bits, vector)

    arr = f.mapping(top.get("array"), "array")
    f.unknown(arr, ("rows", "cols"), "array")
    rows = f.get(arr, "rows", int, "array", minimum=1, maximum=MAX_ARRAY_DIM, limit="MAX_ARRAY_DIM")
    cols = f.get(arr, "cols", int, "array", minimum=1, maximum=MAX_ARRAY_DIM, limit="MAX_ARRAY_DIM")
    dataflow = f.get(top, "dataflow", str, "", default="os", choices=DATAFLOWS)

    bufs = f.mapping(top.get("buffers"), "buffers")
    f.unknown(bufs, OPERANDS, "buffers")
    buffers = {op: _buffer(f, bufs.get(op), f"buffers.{op}") for op in OPERANDS}

    dram_d = f.mapping(top.get("dram"), "dram")
    f.unknown(dram_d, ("bandwidth",), "dram")
    dram = DramSpec(
        f.get(
            dram_d,
            "bandwidth",
            float,
            "dram",
            default=8.0,
            minimum=MIN_BANDWIDTH,
            maximum=MAX_BANDWIDTH,
            limit="MAX_BANDWIDTH",
        )
    )
    clock = f.get(
        top,
        "clock_mhz",
        float,
        "",
        default=200.0,
        minimum=1e-3,
        maximum=MAX_CLOCK_MHZ,
        limit="MAX_CLOCK_MHZ",
    )
    f.finish()
    return HardwareSpec(
        name,
        pe,
        rows,
        cols,
        dataflow,
        buffers["ifmap"],
        buffers["weight"],
        buffers["ofmap"],
        dram,
        clock,
    )


def _buffer(f: Fields, raw: Any, where: str) -> BufferSpec:
    d: Mapping[str, Any] = f.mapping(raw, where)
    f.unknown(d, ("size_kb", "banks", "bandwidth"), where)
    size_kb = f.get(
        d,
        "size_kb",
        float,
        where,
        default=64.0,
        minimum=1e-3,
        maximum=MAX_BUFFER_KB,
        limit="MAX_BUFFER_KB",
    )
    banks = f.get(d, "banks", int, where, default=1, minimum=1, maximum=1024)
    bandwidth = f.get(
        d,
        "bandwidth",
        float,
        where,
        default=16.0,
        minimum=MIN_BANDWIDTH,
        maximum=MAX_BANDWIDTH,
        limit="MAX_BANDWIDTH",
    )
    return BufferSpec(round((size_kb or 0) * 1024), banks or 1, bandwidth or 0.0)

"""Every parameter of the emitted PE array, computed from a :class:`HardwareSpec`.

:func:`array_params` checks what the RTL library supports and raises one :class:`SpecError`
listing every problem; the result is a frozen :class:`ArrayParams` that the Jinja2 templates only
fill in (they hold no logic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autochip.errors import SpecError
from autochip.hw.spec import HardwareSpec
from autochip.predictor.rtl_model import OS_TILE_CYCLES_FORMULA

__all__ = [
    "BIT_RANGE",
    "TOP_MODULE",
    "ArrayParams",
    "array_params",
    "max_reduction_depth",
]

TOP_MODULE = "autochip_pe_array"
BIT_RANGE = (2, 16)  # operand widths the mac and adder PEs are verified for
_PE_MODULES = {"mac": "autochip_pe_mac", "adder": "autochip_pe_adder", "xnor": "autochip_pe_xnor"}
_SUPPORTED_DATAFLOWS = ("os",)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class ArrayParams:
    """Everything the array template and the manifest need; all derived, nothing to compute."""

    spec_name: str
    top: str
    kind: str
    pe_module: str
    pe_parameters: tuple[str, ...]  # Verilog named parameter assignments, ".A_BITS(8)"
    dataflow: str
    rows: int
    cols: int
    a_bits: int  # signed operand bits (1 for xnor)
    w_bits: int
    vector: int  # packed lanes of one xnor PE, 1 otherwise
    acc_bits: int
    a_width: int  # bits of one a_in lane (a_bits, or vector for xnor)
    b_width: int
    a_bus_bits: int
    b_bus_bits: int
    out_bus_bits: int
    row_bits: int  # width of out_row / the read-out row counter
    wait_bits: int  # width of the drain counter
    drain_cycles: int  # cycles between the last beat and the read-out of row 0, minus one
    max_depth: int  # largest reduction depth T whose sum cannot overflow the accumulator
    cycles_formula: str = OS_TILE_CYCLES_FORMULA

    pe_values: tuple[tuple[str, int], ...] = ()  # the same parameters as (name, value)

    @property
    def pe_parameter_map(self) -> dict[str, int]:
        return dict(self.pe_values)


def max_reduction_depth(kind: str, a_bits: int, w_bits: int, vector: int, acc_bits: int) -> int:
    """Largest T such that any T terms of this PE kind fit a signed ``acc_bits`` accumulator.

    mac: |a*w| <= 2^(a+w-2) (both operands at their most negative value), so
    T * 2^(a+w-2) <= 2^(acc-1) - 1. adder: 0 <= |a - w| <= 2^a - 1 and the sum is negated, so
    T * (2^a - 1) <= 2^(acc-1). xnor: |V - 2 popcount| <= V, so T * V <= 2^(acc-1) - 1.
    """
    top: int = 2 ** (acc_bits - 1)
    if kind == "mac":
        product: int = 2 ** (a_bits + w_bits - 2)
        return (top - 1) // product
    if kind == "adder":
        term: int = 2**a_bits - 1
        return top // term
    return (top - 1) // vector


def array_params(
    hw: HardwareSpec,
    depth: int | None = None,
    source: str | None = None,
    top: str = TOP_MODULE,
) -> ArrayParams:
    """Validate ``hw`` against what the RTL supports and derive every template parameter.

    ``depth`` is the reduction depth the design must sum without overflow (optional);
    ``source`` names the spec in errors (default: the spec's name); ``top`` is the name of the
    rendered array module (several arrays can then live in one design).
    """
    problems: list[str] = []
    pe = hw.pe
    lo, hi = BIT_RANGE
    if pe.kind not in _PE_MODULES:
        problems.append(f"pe.kind: expected one of {sorted(_PE_MODULES)}, found {pe.kind!r}")
    if pe.dtype != "int":
        problems.append(f"pe.dtype: the RTL library builds integer PEs only, found {pe.dtype!r}")
    if pe.kind in ("mac", "adder"):
        for field, value in (("a_bits", pe.a_bits), ("w_bits", pe.w_bits)):
            if not lo <= value <= hi:
                problems.append(
                    f"pe.{field}: expected {lo}..{hi} bits for a {pe.kind} PE, found {value}"
                )
    if pe.kind == "adder" and pe.a_bits != pe.w_bits:
        problems.append(
            f"pe: an adder PE needs a_bits == w_bits, found {pe.a_bits} and {pe.w_bits}"
        )
    if pe.kind == "xnor" and not 1 <= pe.vector <= 1024:
        problems.append(f"pe.vector: expected 1..1024 lanes, found {pe.vector}")
    if not 2 <= pe.acc_bits <= 64:
        problems.append(f"pe.acc_bits: expected 2..64 bits, found {pe.acc_bits}")
    for field, value in (("array.rows", hw.rows), ("array.cols", hw.cols)):
        if value < 1:
            problems.append(f"{field}: expected at least 1 PE, found {value}")
    if hw.dataflow not in _SUPPORTED_DATAFLOWS:
        problems.append(
            f"dataflow: the RTL library renders {list(_SUPPORTED_DATAFLOWS)} arrays, "
            f"found {hw.dataflow!r}"
        )
    if depth is not None and depth < 1:
        problems.append(f"depth: expected a reduction depth >= 1, found {depth}")
    if not _IDENTIFIER.fullmatch(top) or (top.startswith("autochip_pe_") and top != TOP_MODULE):
        problems.append(
            f"top: expected a Verilog identifier not used by the library, found {top!r}"
        )
    a_width = pe.vector if pe.kind == "xnor" else pe.a_bits
    b_width = pe.vector if pe.kind == "xnor" else pe.w_bits
    max_depth = 0
    if pe.kind in _PE_MODULES and 2 <= pe.acc_bits <= 64:
        max_depth = max_reduction_depth(pe.kind, pe.a_bits, pe.w_bits, pe.vector, pe.acc_bits)
        if max_depth < 1:
            problems.append(
                f"pe.acc_bits: {pe.acc_bits} bits cannot hold one {pe.kind} term "
                f"(a={a_width} bits, w={b_width} bits); expected at least "
                f"{_min_acc(pe.kind, a_width, b_width)}"
            )
        elif depth is not None and depth > max_depth:
            problems.append(
                f"pe.acc_bits: {pe.acc_bits} bits overflow at reduction depth {depth}; "
                f"the deepest safe sum is {max_depth} terms"
            )
    if problems:
        raise SpecError(source or hw.name, problems)

    values: tuple[tuple[str, int], ...]
    if pe.kind == "mac":
        values = (("A_BITS", pe.a_bits), ("W_BITS", pe.w_bits))
    elif pe.kind == "adder":
        values = (("BITS", pe.a_bits),)
    else:
        values = (("V", pe.vector),)
    values = (*values, ("ACC_BITS", pe.acc_bits))
    return ArrayParams(
        spec_name=hw.name,
        top=top,
        kind=pe.kind,
        pe_module=_PE_MODULES[pe.kind],
        pe_parameters=tuple(f".{name}({value})" for name, value in values),
        dataflow=hw.dataflow,
        rows=hw.rows,
        cols=hw.cols,
        a_bits=1 if pe.kind == "xnor" else pe.a_bits,
        w_bits=1 if pe.kind == "xnor" else pe.w_bits,
        vector=pe.vector,
        acc_bits=pe.acc_bits,
        a_width=a_width,
        b_width=b_width,
        a_bus_bits=hw.rows * a_width,
        b_bus_bits=hw.cols * b_width,
        out_bus_bits=hw.cols * pe.acc_bits,
        row_bits=max(1, (hw.rows - 1).bit_length()),
        wait_bits=max(1, (hw.cols - 1).bit_length()),
        drain_cycles=hw.cols - 1,
        max_depth=max_depth,
        pe_values=values,
    )


def _min_acc(kind: str, a_width: int, b_width: int) -> int:
    if kind == "mac":
        return a_width + b_width
    if kind == "adder":
        return a_width + 1
    return a_width.bit_length() + 1

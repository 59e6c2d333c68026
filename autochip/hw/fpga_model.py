"""FPGA resources of autochip's own PE array, as ``autochip emit`` renders it.

``estimate_array_resources(hw, target)`` evaluates a linear model whose coefficients were fitted by
``scripts/calibrate_fpga.py`` to Yosys ``stat -json`` counts of emitted arrays (stored in
``autochip/hw/data/fpga_array_model.yaml``; the raw runs in ``fpga_array_synth.csv``). The
features follow the structure of the RTL (``templates/pe_array_os.v.j2``):

* ``pe_core``  R*C x the PE's datapath size: a*w (mac multiplier), a (adder |a-w|), V (xnor)
* ``pe_ops``   R*C x (a + w) operand bits (sign extension, subtract, xor)
* ``pe_acc``   R*C x acc_bits: accumulator adders and registers, plus the read-out mux
* ``pe``       R*C: per-PE control (and one DSP per mac PE where DSPs are used)
* ``moves``    register bits that move and skew operands: hops R*(C-1)*(a+1) + (R-1)*C*w and
               skew R(R-1)/2*(a+1) + C(C-1)/2*w
* ``out``      C*acc_bits read-out register bits
* ``one``      constant (controller)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from autochip._safeio import load_yaml_text
from autochip.errors import SpecError
from autochip.hw.spec import HardwareSpec

__all__ = [
    "FEATURES",
    "RESOURCES",
    "FpgaResources",
    "array_features",
    "calibrated_targets",
    "coefficients_for",
    "estimate_array_resources",
    "estimate_from_model",
]

FEATURES = ("pe_core", "pe_ops", "pe_acc", "pe", "moves", "out", "one")
RESOURCES = ("lut", "ff", "dsp", "bram", "carry")
MODEL_FILE = "fpga_array_model.yaml"


@dataclass(frozen=True)
class FpgaResources:
    lut: int
    ff: int
    dsp: int
    bram: int
    carry: int


def array_features(
    kind: str, rows: int, cols: int, a_bits: int, w_bits: int, vector: int, acc_bits: int
) -> dict[str, float]:
    """The model's features of an R x C array of ``kind`` PEs (see the module docstring)."""
    n = rows * cols
    a = vector if kind == "xnor" else a_bits
    w = vector if kind == "xnor" else w_bits
    core = {"mac": a * w, "adder": a, "xnor": vector}[kind]
    moves = rows * (cols - 1) * (a + 1) + (rows - 1) * cols * w
    moves += rows * (rows - 1) // 2 * (a + 1) + cols * (cols - 1) // 2 * w
    return {
        "pe_core": float(n * core),
        "pe_ops": float(n * (a + w)),
        "pe_acc": float(n * acc_bits),
        "pe": float(n),
        "moves": float(moves),
        "out": float(cols * acc_bits),
        "one": 1.0,
    }


@cache
def _model() -> dict[str, Any]:
    text = resources.files("autochip.hw").joinpath("data", MODEL_FILE).read_text()
    data: dict[str, Any] = load_yaml_text(text, f"autochip/hw/data/{MODEL_FILE}")
    return data


def calibrated_targets() -> tuple[str, ...]:
    """Targets with fitted coefficients, e.g. ``xilinx`` (DSPs on) and ``xilinx_nodsp``."""
    return tuple(sorted(_model()["targets"]))


def coefficients_for(
    model: dict[str, Any], target: str, kind: str, a_bits: int, w_bits: int
) -> dict[str, dict[str, float]]:
    """The coefficient table that applies: a mac whose product is narrower than the smallest
    one Yosys mapped to a DSP (``dsp_rule``) is built from LUTs, as on the ``_nodsp`` target."""
    targets = model["targets"]
    if target not in targets:
        raise SpecError(
            "estimate_array_resources",
            [f"target: expected one of {sorted(targets)}, found {target!r}"],
        )
    rule = model.get("dsp_rule", {}).get(target, {}).get(kind)
    if rule is not None and a_bits + w_bits < int(rule["min_product_bits"]):
        target = f"{target}_nodsp"
    kinds = targets[target]
    if kind not in kinds:
        raise SpecError(
            "estimate_array_resources",
            [f"pe.kind: no {target} calibration for {kind!r}; have {sorted(kinds)}"],
        )
    table: dict[str, dict[str, float]] = kinds[kind]
    return table


def estimate_from_model(
    model: dict[str, Any],
    target: str,
    kind: str,
    rows: int,
    cols: int,
    a_bits: int,
    w_bits: int,
    vector: int,
    acc_bits: int,
) -> FpgaResources:
    """Evaluate a fitted ``model`` (the YAML's content) for one array configuration."""
    coefs = coefficients_for(model, target, kind, a_bits, w_bits)
    x = array_features(kind, rows, cols, a_bits, w_bits, vector, acc_bits)
    values = {
        res: max(0, round(sum(coefs.get(res, {}).get(f, 0.0) * x[f] for f in FEATURES)))
        for res in RESOURCES
    }
    return FpgaResources(**values)


def estimate_array_resources(hw: HardwareSpec, target: str) -> FpgaResources:
    """Predicted LUT/FF/DSP/BRAM/carry of ``hw``'s PE array on ``target`` (see the module doc).

    The RTL library builds integer PEs only; a float PE is a :class:`SpecError`. The estimate
    is for the output-stationary array ``autochip emit`` renders, whatever ``hw.dataflow`` says.
    """
    pe = hw.pe
    if pe.dtype != "int":
        raise SpecError(
            "estimate_array_resources",
            [f"pe.dtype: autochip's RTL has integer PEs only, found {pe.dtype!r}"],
        )
    return estimate_from_model(
        _model(), target, pe.kind, hw.rows, hw.cols, pe.a_bits, pe.w_bits, pe.vector, pe.acc_bits
    )

"""``autochip build``: integer model + hardware spec -> a build folder for ``autochip sim``.

Everything is produced in memory, validated, then written (all or nothing):

* ``rtl/*.v``, ``files.f``, ``manifest.json``: the core (``autochip synth DIR`` reads these)
* ``dram.bin``: the initial DRAM image (descriptors, parameters, weights), ``program.bin``: the
  descriptors alone, ``plan.json``: memory map, tiling plan, descriptors, predicted cycles
* ``model.npz``: the integer model (the reference the simulation is checked against)
* ``inputs.npy``: quantised test inputs, ``tb/tb_core.py``: the cocotb testbench
* ``report.md``: a readable summary
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autochip.builder.compiler import Program, compile_model
from autochip.builder.core import CoreParams, core_params, render_core
from autochip.builder.program import DESC_BYTES
from autochip.builder.render import write_design
from autochip.errors import ToolError
from autochip.hw.spec import HardwareSpec
from autochip.predictor.core_model import (
    LayerCycles,
    core_cycles,
    core_resources,
    fmax_warnings,
)
from autochip.reference import IntegerModel, save_integer_model

__all__ = ["BuildResult", "build_core"]


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    core: CoreParams
    program: Program
    cycles: tuple[LayerCycles, ...]
    files: tuple[str, ...]


def _report(
    core: CoreParams,
    prog: Program,
    cycles: tuple[LayerCycles, ...],
    quantisation: dict[str, Any] | None = None,
) -> str:
    lines = [
        f"# autochip core for '{core.spec_name}'",
        "",
        f"- array: {core.rows} x {core.cols} output-stationary, PE kind {core.kind} "
        f"({core.pe_note}), {core.a_bits}-bit activations, {core.w_bits}-bit weights",
        f"- buffers: ifmap {core.rows} x {core.if_depth} B, weight {core.cols} x "
        f"{core.w_depth} B, ofmap {core.o_depth} B, params {core.p_depth} records",
        f"- DRAM image: {len(prog.dram)} bytes, {len(prog.layers)} layer descriptors",
        _resources_line(core),
        *[f"- {w}" for w in fmax_warnings(core, core.clock_mhz)],
        *_quantisation_lines(quantisation),
        "",
        "| layer | kind | mode | cycles (predicted) |",
        "|---|---|---|---:|",
    ]
    for lay, cyc in zip(prog.layers, cycles[:-1], strict=True):
        lines.append(f"| {lay.name} | {lay.kind} | {lay.mode} | {cyc.total} |")
    total = sum(c.total for c in cycles)
    lines += [f"| total (+ end descriptor) | | | {total} |", ""]
    return "\n".join(lines)


def _quantisation_lines(q: dict[str, Any] | None) -> list[str]:
    if q is None:
        return []
    agree = q.get("class_agreement")
    lines = [
        f"- model quantised post-training: {q['method']}, calibrated on {q['calibration']} "
        f"({q['calibration_inputs']} inputs)",
        f"- integer vs float model on {q['check_inputs']} held-out inputs: "
        + (f"class agreement {100 * agree:.2f} %, " if agree is not None else "")
        + f"max logit error {q['max_logit_error']:.4g} (max |logit| {q['max_logit']:.4g})",
    ]
    if "accuracy_float" in q:
        lines.append(
            f"- accuracy: float {100 * q['accuracy_float']:.2f} %, integer "
            f"{100 * q['accuracy_integer']:.2f} %"
        )
    lines += [f"- {note}" for note in q.get("step_changes") or []]
    return lines


def _resources_line(core: CoreParams) -> str:
    res = core_resources(core, "xilinx")
    return (
        f"- predicted xilinx resources: LUT {res.lut}, FF {res.ff}, DSP {res.dsp}, "
        f"BRAM {res.bram} (autochip.predictor.core_model.core_resources)"
    )


def build_core(
    model: IntegerModel,
    hw: HardwareSpec,
    out_dir: str | Path,
    inputs: np.ndarray,
    source: str | None = None,
    progress: Callable[[str], None] | None = None,
    quantisation: dict[str, Any] | None = None,
) -> BuildResult:
    """Compile ``model`` for ``hw`` and write the build folder (see the module docstring).

    ``progress`` (optional) is called with a label as each of the 3 stages starts.
    """
    step = progress or (lambda label: None)
    step("compile")
    core = core_params(hw, source)
    prog = compile_model(model, core)
    cycles = core_cycles(core, prog.layers)
    step("render RTL")
    files = render_core(core)
    plan = prog.plan()
    for lay, cyc in zip(plan["layers"], cycles[:-1], strict=True):
        lay["cycles_predicted"] = cyc.layer
        lay["cycles_breakdown"] = cyc.as_dict()
    plan["cycles_predicted_total"] = sum(c.total for c in cycles)
    if quantisation is not None:
        plan["quantisation"] = quantisation
    files["plan.json"] = json.dumps(plan, indent=2, sort_keys=True) + "\n"
    files["report.md"] = _report(core, prog, cycles, quantisation)
    tb = Path(__file__).with_name("core_tb.py")
    files["tb/tb_core.py"] = tb.read_text()
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise ToolError(f"expected an output folder at '{root}', found a file")
    step("write")
    write_design(files, root)
    (root / "dram.bin").write_bytes(prog.dram)
    (root / "program.bin").write_bytes(prog.dram[: (len(prog.layers) + 1) * DESC_BYTES])
    buf = io.BytesIO()
    np.save(buf, np.asarray(inputs, dtype=np.int64))
    (root / "inputs.npy").write_bytes(buf.getvalue())
    save_integer_model(model, root / "model.npz")
    names = (*sorted(files), "dram.bin", "program.bin", "inputs.npy", "model.npz")
    return BuildResult(root, core, prog, cycles, names)

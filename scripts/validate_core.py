"""Validate autochip's accelerator core: bit-exact networks, cycles and FPGA resources.

  .venv/bin/python scripts/validate_core.py [--images N] [--networks] [--synth] [--calibrate]

--networks  builds and simulates every test network (LeNet int8 / binary / adder on the digits,
            the residual block, the depthwise-separable block, the odd-shape network) on N
            images and prints, per layer, bit-exactness and measured vs predicted cycles
--synth     synthesises the validation cores (8x8 = the demo core's configuration, 6x10) and the
            calibration cores with Yosys for xilinx (LUT/FF/DSP/BRAM vs
            autochip.predictor.core_model); with --ecp5 also the 8x8 core for ecp5 + nextpnr Fmax
--calibrate synthesises the calibration cores and fits the control-logic coefficients of
            core_model.core_resources (writes autochip/predictor/core_resources.yaml)
--reuse     with --work DIR: read the Yosys/nextpnr results an earlier run left in DIR

Prints Markdown tables (the ones in docs/core.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))

from core_models import digits_inputs, integer_model, random_inputs, random_model  # noqa: E402

from autochip.builder.core import core_params, render_core  # noqa: E402
from autochip.builder.core_build import build_core  # noqa: E402
from autochip.builder.core_sim import simulate_core  # noqa: E402
from autochip.builder.render import write_design  # noqa: E402
from autochip.builder.synth import classify_cells, parse_fmax, synth_design  # noqa: E402
from autochip.hw import hardware_spec_from_dict, load_hardware_spec  # noqa: E402
from autochip.predictor.core_model import (  # noqa: E402
    CONTROL_FEATURES,
    control_features,
    core_resources,
)

DEMO = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"
ADDER = ROOT / "rtl_tests" / "core" / "core_adder8x8.yaml"
NETWORKS = (
    ("LeNet int8", "lenet_digits", "quant", DEMO),
    ("LeNet binary", "lenet_digits", "binary", DEMO),
    ("LeNet adder", "lenet_digits", "adder", ADDER),
    ("residual block", str(ROOT / "models" / "resblock_digits.py"), "quant", DEMO),
    ("depthwise-separable", str(ROOT / "models" / "dwsep_digits.py"), "quant", DEMO),
    ("odd shapes", "random", "quant", DEMO),
)
CALIBRATION = ((4, 4), (4, 12), (12, 6))  # (rows, cols) fitted
REUSE = False  # --reuse: read Yosys results already in WORK instead of synthesising again
VALIDATION = ((8, 8), (6, 10))  # held out: never used in the fit


def _grid_core(rows: int, cols: int):  # type: ignore[no-untyped-def]
    hw = hardware_spec_from_dict(
        {
            "name": f"core{rows}x{cols}",
            "pe": {"kind": "mac"},
            "array": {"rows": rows, "cols": cols},
            "buffers": {k: {"size_kb": 16} for k in ("ifmap", "weight", "ofmap")},
        },
        "validate_core",
    )
    return core_params(hw)


def networks(images: int, work: Path) -> None:
    sim_dir = work / "sim"
    print(
        "| network | layers | images | bit-exact | cycles measured | predicted | max layer error |"
    )
    print("|---|---:|---:|---|---:|---:|---:|")
    details = []
    for name, spec, method, hw in NETWORKS:
        if spec == "random":
            model = random_model()
            x = random_inputs(model, images)
        else:
            model = integer_model(spec, method)
            x = digits_inputs(model, images)
        res = build_core(model, load_hardware_spec(hw), work / name.replace(" ", "_"), x)
        rep = simulate_core(res.out_dir, model, x, sim_dir=sim_dir)
        errs = [
            100.0 * (lay.cycles_predicted - lay.cycles_measured) / lay.cycles_measured
            for lay in rep.layers
        ]
        worst = max(errs, key=abs)
        print(
            f"| {name} | {len(rep.layers)} | {rep.images} | {rep.bit_exact} | "
            f"{rep.cycles_total} | {rep.cycles_predicted_total} | {worst:+.2f}% |",
            flush=True,
        )
        details.append((name, rep))
    for name, rep in details:
        print(f"\n{name}:\n")
        print("| layer | outputs | cycles measured | predicted | error |")
        print("|---|---|---:|---:|---:|")
        for lay in rep.layers:
            err = 100.0 * (lay.cycles_predicted - lay.cycles_measured) / lay.cycles_measured
            ok = "exact" if lay.bit_exact else f"{lay.mismatches} differ"
            print(
                f"| {lay.name} | {ok} | {lay.cycles_measured} | {lay.cycles_predicted} | "
                f"{err:+.2f}% |"
            )


def _synth(rows: int, cols: int, work: Path, target: str = "xilinx") -> dict[str, float]:
    core = _grid_core(rows, cols)
    d = work / f"core{rows}x{cols}"
    stat = d / "synth" / target / "stat.json"
    if REUSE and stat.is_file():  # a Yosys run of this folder from an earlier invocation
        cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
        cats = classify_cells(target, {k: int(v) for k, v in cells.items()})
        fmax = parse_fmax((stat.parent / "nextpnr.log").read_text()) if target == "ecp5" else {}
        return {"lut": cats["lut"], "ff": cats["ff"], "dsp": cats["dsp"], "bram": cats["bram"],
                "fmax": min(fmax.values()) if fmax else 0.0}  # fmt: skip
    write_design(render_core(core), d)
    r = synth_design(d, target, fmax=target != "xilinx")
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp_blocks, "bram": r.bram,
            "fmax": r.fmax_mhz or 0.0}  # fmt: skip


def calibrate(work: Path) -> None:
    points = []
    for r, c in CALIBRATION:
        t = time.time()
        got = _synth(r, c, work)
        print(f"synthesised {r}x{c} in {time.time() - t:.0f} s: {got}", flush=True)
        points.append((r, c, got))
    write_fit(points)


def write_fit(points: list[tuple[int, int, dict[str, float]]]) -> None:
    """Least squares of (Yosys - array model) on the control features; writes the YAML."""
    rows_x, ys = [], {"lut": [], "ff": [], "dsp": []}
    for r, c, got in points:
        core = _grid_core(r, c)
        pred = core_resources_array_only(core)
        x = control_features(core)
        rows_x.append([x[f] for f in CONTROL_FEATURES])
        for k in ys:
            ys[k].append(got[k] - pred[k])
    a = np.asarray(rows_x)
    lines = [
        "# Control logic of autochip's core (everything but the PE array and the buffers):",
        "# resource = sum(coefficient * feature), features (1, rows, cols). Fitted by",
        "# scripts/validate_core.py --calibrate: least squares on Yosys 0.70 `stat -json` counts",
        "# (synth_xilinx, DSPs on) of whole mac cores minus the array model",
        "# (autochip.hw.fpga_model), 16 KB buffers. Yosys counts used:",
    ]
    lines += [f"#   {r}x{c}: {got}" for r, c, got in points]
    lines += [
        f"# Validation cores never used in the fit: {list(VALIDATION)}.",
        "targets:",
        "  xilinx:",
    ]
    for k, y in ys.items():
        coef = np.linalg.lstsq(a, np.asarray(y, dtype=float), rcond=None)[0]
        lines.append(f"    {k}:")
        lines += [f"      {f}: {v:.3f}" for f, v in zip(CONTROL_FEATURES, coef, strict=True)]
    path = ROOT / "autochip" / "predictor" / "core_resources.yaml"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def core_resources_array_only(core) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from autochip.hw.fpga_model import estimate_array_resources

    hw = hardware_spec_from_dict(
        {"pe": {"kind": "mac", "a_bits": core.a_bits, "w_bits": core.w_bits},
         "array": {"rows": core.rows, "cols": core.cols}},
        "core",
    )  # fmt: skip
    arr = estimate_array_resources(hw, "xilinx")
    return {"lut": arr.lut, "ff": arr.ff, "dsp": arr.dsp}


def synth(work: Path, ecp5: bool) -> None:
    print("| core | set | resource | Yosys | predicted | error |")
    print("|---|---|---|---:|---:|---:|")
    for (r, c), kind in [(rc, "validation") for rc in VALIDATION] + [
        (rc, "calibration") for rc in CALIBRATION
    ]:
        got = _synth(r, c, work)
        pred = core_resources(_grid_core(r, c), "xilinx").as_dict()
        for k in ("lut", "ff", "dsp", "bram"):
            p = float(pred[k])
            err = 100.0 * (p - got[k]) / got[k] if got[k] else 0.0
            print(f"| {r}x{c} | {kind} | {k.upper()} | {got[k]:.0f} | {p:.0f} | {err:+.1f}% |",
                  flush=True)  # fmt: skip
    if not ecp5:
        return
    e = _synth(8, 8, work, "ecp5")
    print(
        f"\necp5 (LFE5U-85F, out of context), 8x8 core: LUT4 {e['lut']:.0f}, FF {e['ff']:.0f}, "
        f"MULT18 {e['dsp']:.0f}, DP16KD {e['bram']:.0f}, nextpnr Fmax {e['fmax']:.1f} MHz"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--networks", action="store_true")
    p.add_argument("--synth", action="store_true")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--ecp5", action="store_true", help="with --synth: the 8x8 core on ecp5 too")
    p.add_argument("--work", help="work folder (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="reuse Yosys results found in --work")
    args = p.parse_args()
    global REUSE
    REUSE = args.reuse
    with tempfile.TemporaryDirectory(prefix="validate_core_") as tmp:
        work = Path(args.work or tmp)
        if args.calibrate:
            calibrate(work)
        if args.networks:
            networks(args.images, work)
        if args.synth:
            synth(work, args.ecp5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Predict latency, energy, power and area/FPGA resources of an accelerator for a model.

  autochip predict MODEL (--platform NAME | --hw HW.yaml) [--json] [--csv FILE] [--plot FILE]
  autochip predict --scalesim-config X.cfg --scalesim-topology Y.csv [--json]

MODEL is a zoo name, a Python file, a .pt2 file, an ONNX .onnx file, a compressed checkpoint,
or an AccelGraph JSON.
--platform picks the device or technology (and its default accelerator); --hw gives the
accelerator (on asic-45nm unless --platform is also given). With --scalesim-* the SCALE-Sim
config and topology (conv or GEMM M,N,K format) are costed instead, with SCALE-Sim's own
definitions of cycles, utilisation and mapping efficiency.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from autochip._progress import Stages
from autochip._safeio import atomic_path, atomic_write_text, output_file_problems, user_code
from autochip.errors import SpecError
from autochip.hw.platform import Platform, load_platform
from autochip.hw.spec import HardwareSpec, load_hardware_spec
from autochip.ir.graph import AccelGraph
from autochip.modelio import graph_for
from autochip.predictor.batch import config_table, evaluate
from autochip.predictor.estimate import Estimate, predict
from autochip.predictor.scalesim_io import read_scalesim_config, read_scalesim_topology

__all__ = ["add_arguments", "run"]

DEFAULT_ASIC = "asic-45nm"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", metavar="MODEL", help="model to cost")
    p.add_argument("--platform", metavar="NAME", help="FPGA device/board or ASIC technology")
    p.add_argument("--hw", metavar="HW.yaml", help="accelerator description (YAML)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV")
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="write a PNG: per-layer latency (compute/stall) and energy (by part)",
    )
    p.add_argument(
        "--fidelity",
        choices=("analytic", "rtl"),
        default="analytic",
        help="analytic: any array/dataflow (SCALE-Sim cycles); rtl: the whole core autochip "
        "build emits (core model: cycles, energy, whole-core resources)",
    )
    p.add_argument(
        "--model-code",
        metavar="FILE.py",
        help="the model's Python file, when a checkpoint names one",
    )
    p.add_argument("--scalesim-config", metavar="X.cfg", help="SCALE-Sim config file")
    p.add_argument("--scalesim-topology", metavar="Y.csv", help="SCALE-Sim topology (conv/GEMM)")
    p.add_argument(
        "--scalesim-format",
        choices=("auto", "conv", "gemm"),
        default="auto",
        help="topology format (default: detect from the header row)",
    )


def run(args: argparse.Namespace) -> int:
    if args.scalesim_config or args.scalesim_topology:
        return _run_scalesim(args)
    problems = []
    if not args.model:
        problems.append("MODEL: required (or give --scalesim-config and --scalesim-topology)")
    if not args.platform and not args.hw:
        problems.append("expected --platform NAME or --hw HW.yaml (or both), found neither")
    problems += _output_problems(args)
    platform: Platform | None = None
    hw: HardwareSpec | None = None
    try:
        platform = load_platform(args.platform or DEFAULT_ASIC)
    except SpecError as exc:
        problems += [f"{exc.source}: {p}" for p in exc.problems]
    if args.hw:
        try:
            hw = load_hardware_spec(args.hw)
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
    if problems or platform is None:  # every problem of the command line, platform and spec
        raise SpecError("command line and specs", problems)
    with Stages("predict", 3) as progress:  # drawn only on a terminal
        progress(f"load {args.model}")
        with user_code(f"MODEL '{args.model}'"):
            graph = _load_graph(args.model, args.model_code)
        progress(f"cost {len(graph)} nodes")
        est = predict(graph, hw or platform.default_hw, platform, args.fidelity)
        progress("write outputs")
        _write_outputs(args, est)
    if args.json:
        print(json.dumps(_jsonable(est.to_dict()), indent=2))
    else:
        print(_format(est))
    return 0


def _load_graph(spec: str, model_code: str | None = None) -> AccelGraph:
    """Anything :func:`autochip.modelio.graph_for` loads (zoo, .py, .pt2, .onnx, .pt, .json)."""
    return graph_for(spec, model_code)


def _output_problems(args: argparse.Namespace) -> list[str]:
    """Check output paths before any work, so that nothing is written half-way."""
    bad = []
    for flag, value in (("--csv", args.csv), ("--plot", args.plot)):
        bad += output_file_problems(flag, value)
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        bad.append(f"--plot {args.plot}: expected a .png file name")
    return bad


def _write_outputs(args: argparse.Namespace, est: Estimate) -> None:
    if args.csv:
        atomic_write_text(args.csv, est.layers.to_csv(index=False))
    if args.plot:
        from autochip.predictor.plot import plot_estimate

        with atomic_path(args.plot) as tmp:
            plot_estimate(est, tmp)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _format(est: Estimate) -> str:
    cols = [
        "name",
        "op",
        "arithmetic",
        "macs",
        "cycles",
        "stall_cycles",
        "utilization",
        "mapping_efficiency",
        "energy_pj",
    ]
    df = est.layers[cols].copy()
    df["utilization"] = (100 * df["utilization"]).round(1)
    df["mapping_efficiency"] = (100 * df["mapping_efficiency"]).round(1)
    df["energy_pj"] = df["energy_pj"].map(lambda v: f"{v:.4g}")
    t = est.total
    hw = est.hw
    lines = [
        f"{est.workload} on {hw.name} ({hw.rows}x{hw.cols} {hw.pe.kind} "
        f"{hw.pe.dtype}{hw.pe.w_bits}, {hw.dataflow}, {hw.clock_mhz:g} MHz) / {est.platform}",
        df.rename(columns={"utilization": "util_%", "mapping_efficiency": "map_eff_%"}).to_string(
            index=False
        ),
        "",
        f"cycles        {t.cycles:,} (compute {t.compute_cycles:,}, stall {t.stall_cycles:,})",
        f"latency       {t.latency_s * 1e3:.4g} ms   throughput {t.throughput_ips:.4g} inf/s   "
        f"{t.gops:.4g} GOPS",
        f"energy        {t.energy_pj * 1e-6:.4g} uJ per inference   power {t.power_w:.4g} W",
        "energy split  "
        + ", ".join(f"{k} {100 * v / t.energy_pj:.1f}%" for k, v in est.energy_breakdown.items())
        if t.energy_pj > 0
        else "energy split  -",
    ]
    if est.area is not None:
        a = est.area
        lines.append(
            f"area          {a.total / 1e6:.4g} mm^2 (PE array {a.pe_array / 1e6:.4g}, "
            f"SRAM {(a.ifmap + a.weight + a.ofmap) / 1e6:.4g})"
        )
    if est.resources is not None:
        r = est.resources
        fit = "fits" if not r.over_budget else "OVER: " + "; ".join(r.over_budget)
        lines.append(
            f"resources     LUT {r.lut}  FF {r.ff}  DSP {r.dsp}  BRAM {r.bram} on {r.device} "
            f"({fit})"
        )
        if r.lut is None:
            lines.append(f"              PE-array resources {r.array_model}")
    lines += [f"note          {n}" for n in est.notes]
    return "\n".join(lines)


def _run_scalesim(args: argparse.Namespace) -> int:
    problems = []
    if not args.scalesim_config:
        problems.append("--scalesim-config: required with --scalesim-topology")
    if not args.scalesim_topology:
        problems.append("--scalesim-topology: required with --scalesim-config")
    if args.model or args.hw:
        problems.append("MODEL and --hw do not combine with --scalesim-config/--scalesim-topology")
    if problems:
        raise SpecError("command line", problems)
    cfg = read_scalesim_config(args.scalesim_config)
    gemm = None if args.scalesim_format == "auto" else args.scalesim_format == "gemm"
    wl = read_scalesim_topology(args.scalesim_topology, gemm)
    platform: Platform = load_platform(args.platform or DEFAULT_ASIC)
    res = evaluate(wl, config_table([cfg.hw], platform), np.asarray([cfg.ports]))
    layers: list[dict[str, Any]] = []
    for i, name in enumerate(wl.names):
        layers.append(
            {
                "name": name,
                "cycles": int(res.cycles[0, i]),
                "stall_cycles": int(res.stall_cycles[0, i]),
                "total_cycles": int(res.total_cycles[0, i]),
                "utilization": float(res.utilization[0, i]),
                "mapping_efficiency": float(res.mapping_efficiency[0, i]),
                "compute_utilization": float(res.compute_utilization[0, i]),
                "sram_reads": {
                    "ifmap": int(res.sram_reads_ifmap[0, i]),
                    "filter": int(res.sram_reads_weight[0, i]),
                },
                "sram_writes": {"ofmap": int(res.sram_writes_ofmap[0, i])},
            }
        )
    out = {
        "run_name": cfg.run_name,
        "array": [cfg.hw.rows, cfg.hw.cols],
        "dataflow": cfg.hw.dataflow,
        "units": "cycles; utilization, mapping_efficiency, compute_utilization as fractions "
        "(0..1; SCALE-Sim's COMPUTE_REPORT shows percent); SRAM accesses in words",
        "layers": layers,
        "total_cycles": int(res.total_cycles[0].sum()),
        "total_compute_cycles": int(res.cycles[0].sum()),
        "total_stall_cycles": int(res.stall_cycles[0].sum()),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w = max(len(n) for n in wl.names)
    print(
        f"{cfg.run_name}: {cfg.hw.rows}x{cfg.hw.cols} {cfg.hw.dataflow} "
        f"({'USER' if cfg.user_bandwidth else 'CALC'} bandwidth)"
    )
    print(
        f"{'layer':<{w}}  {'cycles':>12} {'stalls':>10} {'util %':>8} {'map eff %':>9} "
        f"{'ifmap rd':>12} {'filter rd':>12} {'ofmap wr':>12}"
    )
    for row in layers:
        print(
            f"{row['name']:<{w}}  {row['cycles']:>12,} {row['stall_cycles']:>10,} "
            f"{100 * row['utilization']:>8.2f} {100 * row['mapping_efficiency']:>9.3f} "
            f"{row['sram_reads']['ifmap']:>12,} {row['sram_reads']['filter']:>12,} "
            f"{row['sram_writes']['ofmap']:>12,}"
        )
    print(f"total cycles {out['total_cycles']:,}", file=sys.stdout)
    return 0

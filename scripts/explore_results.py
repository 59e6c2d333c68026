"""Searched core vs expert baselines on zoo models and platforms: the table of docs/explore.md.

  python scripts/explore_results.py [--samples N] [--write] [--json FILE]
      [--models M1,M2] [--platforms P1,P2] [--pairs M:P,M:P]
  python scripts/explore_results.py --asic-rank [--write]

For every (model, platform) pair: `autochip explore`'s search (objective latency, the device as
budget; ASIC: area_mm2=20) and the expert baselines of `autochip.builder.baselines` in the same
budget, all costed by the core model. Prints a Markdown table (speedup and energy ratio of the
searched design over the best baseline) and the geometric mean; --write puts it into
docs/explore.md between the results markers. --asic-rank synthesises PE arrays of every kind
and several sizes with Yosys's generic synthesis and compares the ASIC area model's ranking with
the transistor counts (`stat -tech cmos`): the asic table of docs/explore.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from autochip.commands.explore import search
from autochip.errors import AutochipError

MODELS = (
    "lenet_digits", "resblock_digits", "dwsep_digits", "mlp", "alexnet", "vgg16", "resnet18",
    "resnet50", "mobilenet_v1", "mobilenet_v2", "resnet20", "squeezenet1_1",
)  # fmt: skip
PLATFORMS = ("pynq-z2", "ultra96", "zc706", "vcu118", "asic-45nm")
BUDGET = {"asic-45nm": "area_mm2=20"}
DOC = Path(__file__).resolve().parents[1] / "docs" / "explore.md"


def run_suite(samples: int, models: tuple[str, ...] = MODELS,
              platforms: tuple[str, ...] = PLATFORMS,
              pairs: tuple[tuple[str, str], ...] | None = None,
              ) -> list[dict[str, Any]]:  # fmt: skip
    """Every (model, platform) of ``models`` x ``platforms``, or ``pairs`` when given."""
    rows = []
    todo = pairs if pairs is not None else tuple((m, p) for m in models for p in platforms)
    for model, plat in todo:
        t0 = time.perf_counter()
        try:
            out = search(model, plat, BUDGET.get(plat), "latency", samples=samples)
        except AutochipError as exc:
            rows.append({"model": model, "platform": plat, "error": str(exc).splitlines()[0]})
            continue
        c = out["chosen"]
        hw = c["hw"]
        best = [b for b in out["baselines"] if b["id"] == out.get("best_baseline")]
        rows.append(
            {
                "model": model,
                "platform": plat,
                "chosen": f"{hw['array']['rows']}x{hw['array']['cols']}",
                "chosen_tiled": bool(c.get("tiled")),
                "latency_ms": c["latency_s"] * 1e3,
                "best_baseline": out.get("best_baseline"),
                "baseline_tiled": bool(best and best[0].get("tiled")),
                "evaluated_tiled": out.get("evaluated_tiled", 0),
                "speedup": out.get("speedup_vs_best_baseline"),
                "energy_ratio": out.get("energy_ratio_vs_best_baseline"),
                "evaluated": out["evaluated"],
                "strategy": out["strategy"],
                "seconds": time.perf_counter() - t0,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | platform | searched core | latency (ms) | best baseline | speedup | "
        "energy ratio | designs (tiled) | search |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            why = r["error"].replace("|", "/")
            lines.append(f"| {r['model']} | {r['platform']} | — | — | — | — | — | — | {why[:90]} |")
            continue
        sp = f"{r['speedup']:.2f}x" if r["speedup"] else "—"
        er = f"{r['energy_ratio']:.2f}x" if r["energy_ratio"] else "—"
        core = r["chosen"] + (" tiled" if r.get("chosen_tiled") else "")
        base = (r["best_baseline"] or "none fits") + (" tiled" if r.get("baseline_tiled") else "")
        lines.append(
            f"| {r['model']} | {r['platform']} | {core} | {r['latency_ms']:.4g} | {base} | "
            f"{sp} | {er} | {r['evaluated']:,} ({r.get('evaluated_tiled', 0):,}) | "
            f"{r['strategy']} |"
        )
    ok = [r for r in rows if r.get("speedup")]
    lines += [
        "",
        f"Geometric mean over the {len(ok)} pairs with a feasible baseline "
        f"({len({r['model'] for r in ok})} models, {len({r['platform'] for r in ok})} "
        f"platforms): speedup {geomean([r['speedup'] for r in ok]):.3f}x, energy ratio "
        f"{geomean([r['energy_ratio'] for r in ok]):.3f}x.",
    ]
    return "\n".join(lines)


def compare_search(samples: int, seeds: int = 3) -> str:
    """Evolutionary vs random search on the same sample budget, against the exhaustive sweep:
    best objective found / optimum, and the share of the true Pareto front found."""
    import numpy as np

    from autochip.builder.explore import explore
    from autochip.builder.space import default_space, parse_budget, platform_bus, space_from_dict
    from autochip.hw.platform import load_platform
    from autochip.ir import graph_for
    from autochip.predictor.core_batch import core_workload

    lines = [
        f"| model | platform | objective | space | strategy | samples | best / optimum "
        f"(mean, worst of {seeds} seeds) | Pareto front found |",
        "|---|---|---|---:|---|---:|---|---:|",
    ]
    for model, plat_name, objective in (("resnet18", "vcu118", "latency"),
                                        ("mobilenet_v1", "vcu118", "edp"),
                                        ("alexnet", "zc706", "energy")):  # fmt: skip
        plat = load_platform(plat_name)
        wl = core_workload(graph_for(model))
        # every array dimension of the default space; buffers at powers of two and the widest
        # bus only, so that the exhaustive sweep stays tractable (4096 x 13^3 designs)
        pow2 = [float(2**k) for k in range(13)]
        narrow = {"ifmap_kb": pow2, "weight_kb": pow2, "ofmap_kb": pow2,
                  "bus_bytes": [platform_bus(plat)]}  # fmt: skip
        space = space_from_dict(narrow, default_space(wl, plat))
        budget = parse_budget(None, plat)
        # the first phase's strategies compared (no tiled phase)
        full = explore(wl, plat, space, budget, objective, strategy="exhaustive", progress=False,
                       tiled_samples=0)  # fmt: skip
        opt = _obj(full, full.chosen, objective)
        true_front = set(full.metrics["flat"][full.pareto].tolist())
        for strategy in ("evolve", "random"):
            ratios, found = [], []
            for seed in range(seeds):
                r = explore(wl, plat, space, budget, objective, samples=samples, seed=seed,
                            strategy=strategy, progress=False, tiled_samples=0)  # fmt: skip
                ratios.append(_obj(r, r.chosen, objective) / opt)
                got = set(r.metrics["flat"][r.pareto].tolist())
                found.append(len(got & true_front) / len(true_front))
            lines.append(
                f"| {model} | {plat_name} | {objective} | {space.size:,} | {strategy} | "
                f"{samples:,} | {np.mean(ratios):.4f}, {max(ratios):.4f} | "
                f"{100 * np.mean(found):.0f}% |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines)


def asic_arrays(sizes: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (2, 4), (4, 4), (4, 8)),
                kinds: tuple[tuple[str, int], ...] = (("mac", 8), ("mac", 4), ("adder", 8),
                                                      ("adder", 4), ("xnor", 16), ("xnor", 8)),
                ) -> list[dict[str, Any]]:  # fmt: skip
    """PE arrays (``--hw`` dicts) of the RTL library: mac / adder at 8 and 4 bits (32-bit
    accumulators), xnor at 16 and 8 lanes (16-bit accumulators), at every size."""
    out = []
    for kind, n in kinds:
        if kind == "xnor":
            pe = {"kind": "xnor", "a_bits": 1, "w_bits": 1, "acc_bits": 16, "vector": n}
        else:
            pe = {"kind": kind, "a_bits": n, "w_bits": n, "acc_bits": 32}
        for r, c in sizes:
            out.append({"name": f"{kind}{n}-{r}x{c}", "pe": pe, "array": {"rows": r, "cols": c},
                        "dataflow": "os"})  # fmt: skip
    return out


def asic_rank() -> str:
    from autochip.builder.finalists import asic_rank_check

    res = asic_rank_check(asic_arrays())
    lines = ["| PE array | model area (um^2) | transistors (Yosys) | model rank | Yosys rank |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    rows = res["rows"]
    by_m = sorted(range(len(rows)), key=lambda i: rows[i]["model_um2"])
    by_t = sorted(range(len(rows)), key=lambda i: rows[i]["transistors"])
    for i in by_t:
        r = rows[i]
        lines.append(f"| {r['hw']['name']} | {r['model_um2']:,.0f} | {r['transistors']:,} | "
                     f"{by_m.index(i) + 1} | {by_t.index(i) + 1} |")  # fmt: skip
    lines.append("")
    lines.append(
        f"Spearman's rho {res['spearman']:.3f}; {res['pairs_alike']} of {res['pairs']} pairs "
        f"ordered alike; discordant: "
        + (", ".join(f"{a} / {b}" for a, b in res["discordant"]) or "none")
        + "."
    )
    return "\n".join(lines)


def _obj(res: Any, i: int, objective: str) -> float:
    from autochip.builder.explore import objective_values

    return float(objective_values(res.metrics, objective)[i])


def _write_block(marker: str, text: str, doc: Path = DOC) -> None:
    """Replace what stands between the lines ``<!-- marker:begin -->`` and
    ``<!-- marker:end -->`` of the docs page by ``text``; everything else stays as it is. Each
    marker must stand on a line of its own, once, begin before end (else an error, nothing
    written)."""
    lines = doc.read_text().splitlines(keepends=True)
    begin = [i for i, x in enumerate(lines) if x.strip() == f"<!-- {marker}:begin -->"]
    end = [i for i, x in enumerate(lines) if x.strip() == f"<!-- {marker}:end -->"]
    if len(begin) != 1 or len(end) != 1 or begin[0] > end[0]:
        raise SystemExit(
            f"{doc}: expected one '<!-- {marker}:begin -->' line before one "
            f"'<!-- {marker}:end -->' line, found {len(begin)} and {len(end)}"
        )
    body = text.rstrip("\n") + "\n"
    new = "".join(lines[: begin[0] + 1]) + body + "".join(lines[end[0] :])
    tmp = doc.with_suffix(doc.suffix + ".tmp")
    tmp.write_text(new)
    tmp.replace(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--models", help="comma-separated zoo models (default: the suite's 12)")
    ap.add_argument("--platforms", help="comma-separated platforms (default: the suite's 5)")
    ap.add_argument("--pairs", help="comma-separated MODEL:PLATFORM pairs (instead)")
    ap.add_argument("--compare-search", action="store_true", help="evolve vs random, same budget")
    ap.add_argument("--asic-rank", action="store_true", help="area model vs Yosys cmos ranking")
    args = ap.parse_args()
    if args.asic_rank:
        text = asic_rank()
        print(text)
        if args.write:
            _write_block("asic", text)
        return
    if args.compare_search:
        text = compare_search(args.samples)
        print(text)
        if args.write:
            _write_block("search", text)
        return
    models = tuple(args.models.split(",")) if args.models else MODELS
    platforms = tuple(args.platforms.split(",")) if args.platforms else PLATFORMS
    pairs = None
    if args.pairs:
        pairs = tuple((m, p) for m, _, p in (x.partition(":") for x in args.pairs.split(",")))
    rows = run_suite(args.samples, models, platforms, pairs)
    text = table(rows)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.write:
        _write_block("results", text)


if __name__ == "__main__":
    main()

"""Speed of the Chip Builder's core model and search, and its gain over expert baselines.

Prints
  designs_per_s=<n>      whole-ResNet-18 design points (every layer, cycles + energy +
                         resources) evaluated per second by the batch core model, one process,
                         on 100,000 random designs the core can run, bus widths 4..64 bytes
                         (wall clock)
  designs_per_cpu_s=<n>  the same per second of this process's CPU time (less sensitive to
                         other load on the machine)
  sweep_s=<s>            wall time of an exhaustive `explore` sweep of >= 100,000 ResNet-18
                         designs on vcu118 (feasibility and budget checks, Pareto front, chosen;
                         102,400 array x buffer designs at each of the 5 bus widths 4..64)
  sweep_designs=<n>      designs in that sweep
  speedup_vs_best_baseline=<x>  geometric mean over the suite of scripts/explore_results.py
                         (searched design's latency gain over the best expert baseline), run
                         here with --samples (default 50,000), or read from --suite-json
  tiled_designs_per_s=<n>, tiled_designs_per_cpu_s=<n>  ResNet-18 designs whose buffers hold
                         only bands of the feature maps, costed band by band (feature-map
                         tiling, ``evaluate_core(tiled=True)``)
With ``--baseline-rev REV`` also
  baseline_designs_per_cpu_s=<n>, speedup_vs_baseline_rev=<x>  the same designs through
                         ``core_batch`` (and the ``tiling`` functions it calls) as committed at
                         git revision REV, timed in this process
                         alternately with the current one (best of 3 each), after checking that
                         both give the same cycles, energy and resources

Run: ``.venv/bin/python benchmarks/explore_speed.py [--designs N] [--samples N] [--no-suite]
[--baseline-rev REV]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from autochip.builder.explore import explore
from autochip.builder.space import default_space, parse_budget, space_from_dict
from autochip.hw.platform import load_platform
from autochip.ir import graph_for
from autochip.predictor.core_batch import CoreConfigs, core_feasible, core_workload, evaluate_core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _module_at(rev: str) -> ModuleType:
    """``autochip.predictor.core_batch`` as committed at ``rev`` (git show), imported apart, with
    ``autochip.builder.tiling`` (its prefetch choices) as committed at ``rev`` too."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp())

    def load(name: str, rel: str, edit: dict[str, str]) -> ModuleType:
        src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{rel}"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        for a, b in edit.items():
            src = src.replace(a, b)
        path = tmp / f"{name}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod

    load("tiling_at_rev", "autochip/builder/tiling.py", {})
    return load("core_batch_at_rev", "autochip/predictor/core_batch.py",
                {"from autochip.builder.tiling import": "from tiling_at_rev import"})  # fmt: skip


def _rate(mod: Any, wl: Any, cfg: Any, plat: Any, n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, n, 4096):
        mod.evaluate_core(wl, cfg.take(np.arange(s, min(s + 4096, n))), plat, per_layer=False)
    return n / (time.perf_counter() - w0), n / (time.process_time() - c0)


def compare_rev(rev: str, wl: Any, cfg: Any, plat: Any, n: int) -> None:
    import autochip.predictor.core_batch as cur

    old = _module_at(rev)
    names = ("rows", "cols", "a_bits", "w_bits", "adder", "if_bytes", "w_bytes", "o_bytes",
             "clock_mhz")  # fmt: skip
    fields = {f: getattr(cfg, f) for f in names}
    cfg_old = old.CoreConfigs(**fields, bus_bytes=cfg.bus_bytes)
    wl_old = old.core_workload(graph_for("resnet18"))
    a = cur.evaluate_core(wl, cfg.take(np.arange(4096)), plat, per_layer=False)
    b = old.evaluate_core(wl_old, cfg_old.take(np.arange(4096)), plat, per_layer=False)
    assert (a.total_cycles == b.total_cycles).all() and (a.energy_pj == b.energy_pj).all()
    assert all((a.resources[k] == b.resources[k]).all() for k in ("lut", "ff", "dsp", "bram"))
    best: dict[str, tuple[float, float]] = {"cur": (0.0, 0.0), "rev": (0.0, 0.0)}
    for _ in range(3):  # alternately, so that both see the machine's load alike
        for tag, mod, w, c in (("rev", old, wl_old, cfg_old), ("cur", cur, wl, cfg)):
            r = _rate(mod, w, c, plat, n)
            best[tag] = (max(best[tag][0], r[0]), max(best[tag][1], r[1]))
    print(f"# {rev} vs this tree, best of 3 alternate runs: wall {best['rev'][0]:.0f} -> "
          f"{best['cur'][0]:.0f} designs/s")  # fmt: skip
    print(f"baseline_designs_per_cpu_s={best['rev'][1]:.0f}")
    print(f"current_designs_per_cpu_s={best['cur'][1]:.0f}")
    print(f"speedup_vs_baseline_rev={best['cur'][1] / best['rev'][1]:.2f}")


def tiled_rate(wl: Any, plat: Any, n: int = 4096) -> None:
    """ResNet-18 designs whose buffers hold only bands of the feature maps (ifmap 32-512 KB,
    ofmap 64-512 KB), costed band by band (``evaluate_core(tiled=True)``)."""
    rng = np.random.default_rng(1)
    cfg = CoreConfigs(rows=rng.integers(1, 33, n), cols=rng.integers(1, 65, n),
                      a_bits=np.full(n, 8), w_bits=np.full(n, 8), adder=np.zeros(n, dtype=np.int64),
                      if_bytes=rng.integers(32, 512, n) * 1024,
                      w_bytes=rng.integers(1024, 2048, n) * 1024,
                      o_bytes=rng.integers(64, 512, n) * 1024, clock_mhz=np.full(n, 200.0),
                      bus_bytes=1 << rng.integers(2, 7, n))  # fmt: skip
    untiled = core_feasible(wl, cfg)
    w0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_core(wl, cfg, plat, per_layer=False, tiled=True)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    m = int((res.feasible & ~untiled).sum())
    print(f"# {n} small-buffer ResNet-18 designs: {m} run tiled, {int(untiled.sum())} untiled, "
          f"{n - int(res.feasible.sum())} refused; {wall:.2f} s wall, {cpu:.2f} s CPU")  # fmt: skip
    print(f"tiled_designs_per_s={m / wall:.0f}")
    print(f"tiled_designs_per_cpu_s={m / cpu:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--designs", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--no-suite", action="store_true")
    ap.add_argument("--baseline-rev", metavar="REV",
                    help="also time core_batch as committed at this git revision")  # fmt: skip
    ap.add_argument("--suite-json", metavar="FILE",
                    help="the suite from scripts/explore_results.py --json FILE")  # fmt: skip
    args = ap.parse_args()
    plat = load_platform("vcu118")
    wl = core_workload(graph_for("resnet18"))
    rng = np.random.default_rng(0)
    n = args.designs
    rows = rng.integers(1, 65, n)
    cols = rng.integers(1, 65, n)
    need = int(wl.in_len.max() * 2)
    cfg = CoreConfigs(
        rows=rows,
        cols=cols,
        a_bits=np.full(n, 8),
        w_bits=np.full(n, 8),
        adder=np.zeros(n, dtype=np.int64),
        # margins: inputs start anywhere in a bus word, weight rows are cols rounded up to 2^k
        # bytes, a pass's outputs start anywhere in a bus word (core.core_params' geometry)
        if_bytes=rows * (need + 256) + rng.integers(0, 1 << 16, n),
        w_bytes=64 * 4608 + rng.integers(0, 1 << 20, n),
        o_bytes=cols * 12544 + 802816 + 256 + rng.integers(0, 1 << 20, n),
        clock_mhz=np.full(n, 200.0),
        bus_bytes=1 << rng.integers(2, 7, n),  # 4 .. 64 bytes
    )
    assert core_feasible(wl, cfg).all()
    evaluate_core(wl, cfg.take(np.arange(1000)), plat, per_layer=False)  # warm up
    w0, c0 = time.perf_counter(), time.process_time()
    for s in range(0, n, 4096):
        evaluate_core(wl, cfg.take(np.arange(s, min(s + 4096, n))), plat, per_layer=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"# {n} ResNet-18 designs x {len(wl)} layers: {wall:.2f} s wall, {cpu:.2f} s CPU")
    print(f"designs_per_s={n / wall:.0f}")
    print(f"designs_per_cpu_s={n / cpu:.0f}")
    if args.baseline_rev:
        compare_rev(args.baseline_rev, wl, cfg, plat, n)
    tiled_rate(wl, plat)

    # an exhaustive sweep of >= 1e5 designs through the search
    base = default_space(wl, plat)
    space = space_from_dict(
        {
            "rows": [1, 2, 3, 4, 5, 6, 8, 10, 12, 16],
            "cols": list(range(4, 65, 4)),
            "ifmap_kb": [2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576],
            "weight_kb": [16, 32, 64, 128, 256, 512, 1024, 2048],
            "ofmap_kb": [784, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384],
        },
        base,
    )
    t0 = time.perf_counter()
    # the first phase alone (tiled designs: tiled_rate above)
    res = explore(wl, plat, space, parse_budget(None, plat), "latency", samples=space.size,
                  progress=False, tiled_samples=0)  # fmt: skip
    sweep = time.perf_counter() - t0
    print(f"# sweep: {res.strategy}, {len(res.metrics['flat'])} designs fit, "
          f"{len(res.pareto)} on the Pareto front")  # fmt: skip
    print(f"sweep_designs={res.evaluated}")
    print(f"sweep_s={sweep:.2f}")

    if not args.no_suite:
        import json

        from explore_results import geomean, run_suite

        if args.suite_json:
            rows_ = json.loads(Path(args.suite_json).read_text())
        else:
            rows_ = run_suite(args.samples)
        ok = [r["speedup"] for r in rows_ if r.get("speedup")]
        print(f"# suite: {len(ok)} (model, platform) pairs with a feasible baseline")
        print(f"speedup_vs_best_baseline={geomean(ok):.3f}")


if __name__ == "__main__":
    main()

"""Speed of the predictor's vectorised batch API, and against SCALE-Sim on the same network.

Prints
  evals_per_s=<n>           layer x configuration evaluations per second (one numpy pass, one core)
  speedup_vs_scalesim=<x>   SCALE-Sim's whole-network time / autochip's, same topology and config,
                            measured in this run, after checking that the per-layer cycles match

Run: ``make bench`` or ``.venv/bin/python benchmarks/predictor_speed.py [--configs N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

from autochip.hw.platform import load_platform
from autochip.hw.spec import BufferSpec, DramSpec, HardwareSpec, PESpec
from autochip.predictor.batch import config_table, evaluate
from autochip.predictor.scalesim_io import (
    read_scalesim_config,
    read_scalesim_topology,
)
from autochip.predictor.scalesim_ref import run_scalesim, write_scalesim_config

# ResNet-20 for CIFAR-10 (32x32 input, padding folded into the ifmap as SCALE-Sim expects):
# stem, 3 stages x 3 basic blocks x 2 convs, two 1x1 downsampling shortcuts, and the classifier.
HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides,"
)


def resnet20_topology() -> list[str]:
    rows = ["conv1, 34, 34, 3, 3, 3, 16, 1,"]
    size, ch = 32, 16
    for stage, out_ch in enumerate((16, 32, 64), start=1):
        for block in range(3):
            stride = 2 if (stage > 1 and block == 0) else 1
            rows.append(
                f"s{stage}b{block}c1, {size + 2}, {size + 2}, 3, 3, {ch}, {out_ch}, {stride},"
            )
            if stride == 2:
                rows.append(f"s{stage}b{block}sc, {size}, {size}, 1, 1, {ch}, {out_ch}, 2,")
                size //= 2
            rows.append(f"s{stage}b{block}c2, {size + 2}, {size + 2}, 3, 3, {out_ch}, {out_ch}, 1,")
            ch = out_ch
    rows.append("fc, 1, 1, 1, 1, 64, 10, 1,")
    return rows


def design_space(n: int) -> list[HardwareSpec]:
    """``n`` accelerator configurations: array shapes x dataflows x buffer sizes x bandwidth."""
    dims = [4, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    kbs = [16, 32, 64, 128, 256, 512]
    bws = [4.0, 8.0, 16.0, 32.0]
    grid = itertools.product(dims, dims, ("os", "ws", "is"), kbs, kbs, bws)
    specs = []
    for i, (r, c, df, ikb, wkb, bw) in enumerate(itertools.cycle(grid)):
        if i >= n:
            break
        specs.append(
            HardwareSpec(
                f"d{i}",
                PESpec(),
                r,
                c,
                df,
                BufferSpec(ikb * 1024, 2, bw),
                BufferSpec(wkb * 1024, 2, bw),
                BufferSpec(64 * 1024, 2, bw),
                DramSpec(bw / 2),
                200.0,
            )
        )
    return specs


def best_of(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=20000, help="configurations in the batch")
    ap.add_argument("--array", type=int, nargs=2, default=(16, 16), metavar=("ROWS", "COLS"))
    ap.add_argument("--dataflow", default="ws", choices=("os", "ws", "is"))
    args = ap.parse_args()
    platform = load_platform("asic-45nm")

    with tempfile.TemporaryDirectory(prefix="autochip-bench-") as tmp:
        cfg_path = Path(tmp) / "bench.cfg"
        topo_path = Path(tmp) / "resnet20.csv"
        write_scalesim_config(cfg_path, args.array[0], args.array[1], args.dataflow)
        topo_path.write_text("\n".join([HEADER, *resnet20_topology()]) + "\n")

        # -- 1. batch throughput: configs x layers in one numpy pass ------------------------------
        wl = read_scalesim_topology(topo_path)
        specs = design_space(args.configs)
        t0 = time.perf_counter()
        table = config_table(specs, platform)
        t_table = time.perf_counter() - t0
        t_eval = best_of(lambda: evaluate(wl, table), 5)
        evals = len(specs) * len(wl)
        print(
            f"batch: {len(specs)} configurations x {len(wl)} layers = {evals} evaluations; "
            f"evaluate {t_eval * 1e3:.1f} ms, config table {t_table * 1e3:.1f} ms (one-off)"
        )
        print(f"evals_per_s={evals / t_eval:.0f}")
        print(f"evals_per_s_including_config_table={evals / (t_eval + t_table):.0f}")

        # -- 2. whole network against SCALE-Sim, same files --------------------------------------
        t0 = time.perf_counter()
        ref = run_scalesim(cfg_path, topo_path)
        t_scalesim = time.perf_counter() - t0

        def autochip_run() -> object:
            cfg = read_scalesim_config(cfg_path)
            w = read_scalesim_topology(topo_path)
            return evaluate(w, config_table([cfg.hw], platform))

        t_auto = best_of(autochip_run, 20)
        res = autochip_run()
        mine = [int(c) for c in res.cycles[0]]  # type: ignore[attr-defined]
        theirs = [s.cycles - s.stall_cycles for s in ref]
        if mine != theirs:
            print(f"cycle mismatch: autochip {mine} vs SCALE-Sim {theirs}", file=sys.stderr)
            return 1
        print(
            f"resnet20 on {args.array[0]}x{args.array[1]} {args.dataflow}: "
            f"{len(ref)} layers, {sum(theirs)} cycles in both; SCALE-Sim {t_scalesim:.2f} s, "
            f"autochip {t_auto * 1e3:.3f} ms (parse + evaluate)"
        )
        print(f"speedup_vs_scalesim={t_scalesim / t_auto:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

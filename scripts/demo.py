"""End-to-end demo: the built-in LeNet-style digits model through every autochip stage.

Run with ``make demo`` (which sets up ``.venv`` first). Each step is a real ``autochip`` command,
printed before it runs, so the output doubles as a walk-through of the CLI:

1. ``inspect``   the model's layer table (MACs, params, arithmetic)
2. ``compress``  FP32 training, then int8 quantisation-aware training on scikit-learn's digits,
                 integer export, and the integer model checked against the fake-quant one
3. ``inspect``   the compressed checkpoint: the IR now records int8 arithmetic
4. ``predict``   latency, energy and FPGA resources of a hand-written 8x8 int8 core on a PYNQ-Z2
5. ``explore``   the Chip Builder: the core's design space searched under the PYNQ-Z2's resources,
                 Pareto front, chosen design and expert baselines in the same budget
6. ``build``     ``--platform`` without ``--hw``: the search again, then the complete accelerator
                 core of the chosen design (RTL, program, DRAM image, testbench, ``hw.yaml``)
7. ``sim``       the whole network on 20 test digits in cocotb + Verilator, bit-exact against the
                 integer reference, measured cycles per layer beside the predicted ones
8. ``synth``     Yosys synthesis of that core for Xilinx 7-series (LUT/FF/DSP/BRAM, no latches)
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(step: str, args: list[str]) -> None:
    cmd = [sys.executable, "-m", "autochip", *args]
    shown = "autochip " + " ".join(shlex.quote(a) for a in args)
    print(f"\n=== {step}\n$ {shown}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, check=False)
    if proc.returncode != 0:
        print(f"demo: step '{step}' failed with exit code {proc.returncode}", file=sys.stderr)
        sys.exit(proc.returncode)
    print(f"--- {step}: {time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    parser.add_argument(
        "--epochs", type=int, default=30, help="FP32 and int8 training epochs (default 30)"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "lenet_digits_int8.pt"
    hw = "examples/hw/demo_os8x8_int8.yaml"
    core = out / "core"
    epochs = str(args.epochs)

    run("1. inspect the model", ["inspect", "lenet_digits"])
    run(
        "2. int8 quantisation-aware training on digits + integer export",
        [
            *("compress", "lenet_digits", "--method", "quant", "--bits", "8/8"),
            *("--data", "digits", "--epochs", epochs, "--fp32-epochs", epochs),
            *("--lr", "1e-3", "--batch-size", "32", "--no-kd"),  # digits: the demo's recipe
            *("--out", str(ckpt)),
        ],
    )
    run("3. inspect the compressed checkpoint", ["inspect", str(ckpt)])
    run(
        "4. predict its cost on a PYNQ-Z2",
        [
            *("predict", str(ckpt), "--platform", "pynq-z2", "--hw", hw),
            *("--plot", str(out / "predict.png")),
        ],
    )
    run(
        "5. search the core's design space for a PYNQ-Z2 (Chip Builder)",
        ["explore", str(ckpt), "--platform", "pynq-z2", "--plot", str(out / "explore.png")],
    )
    run(
        "6. build the searched core (writes its spec as hw.yaml)",
        ["build", str(ckpt), "--platform", "pynq-z2", "--out", str(core)],
    )
    run("7. simulate the whole network (Verilator)", ["sim", str(core)])
    run(
        "8. synthesise the core for Xilinx 7-series (Yosys)",
        ["synth", str(core), "--target", "xilinx"],
    )
    print(f"\ndemo finished; outputs in {out}/")


if __name__ == "__main__":
    main()

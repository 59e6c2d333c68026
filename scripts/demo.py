"""End-to-end demo: the built-in LeNet-style digits model through every autochip stage.

Run with ``make demo`` (which sets up ``.venv`` first). Each step is a real ``autochip`` command,
printed before it runs, so the output doubles as a walk-through of the CLI:

1. ``inspect``   the model's layer table (MACs, params, arithmetic)
2. ``compress``  int8 quantisation-aware training on scikit-learn's digits, integer export
3. ``inspect``   the compressed checkpoint: the IR now records int8 arithmetic
4. ``predict``   latency, energy and FPGA resources of an accelerator on a PYNQ-Z2 (XC7Z020)
5. ``emit``      Verilog of the PE array for that accelerator
6. ``synth``     Yosys synthesis of the emitted RTL (LUT/FF/DSP/BRAM, no latches, Fmax on ECP5)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "lenet_digits_int8.pt"
    hw = ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml"
    rtl = out / "accel"

    run("1. inspect the model", ["inspect", "lenet_digits"])
    run(
        "2. int8 quantisation-aware training on digits + integer export",
        ["compress", "lenet_digits", "--method", "quant", "--bits", "8/8", "--data", "digits",
         "--epochs", str(args.epochs), "--out", str(ckpt)],
    )
    run("3. inspect the compressed checkpoint", ["inspect", str(ckpt)])
    run("4. predict cost on a PYNQ-Z2", ["predict", str(ckpt), "--platform", "pynq-z2",
                                         "--hw", str(hw), "--plot", str(out / "predict.png")])
    run("5. emit the PE array's Verilog", ["emit", "--hw", str(hw), "--out", str(rtl)])
    run("6. synthesise for ECP5 (Yosys + nextpnr)", ["synth", str(rtl), "--target", "ecp5"])
    print(f"\ndemo finished; outputs in {out}/")


if __name__ == "__main__":
    main()

"""Speed of the integer reference (autochip.reference.run), the evaluator of every compressed
network (`autochip compress`, `autochip codesign`'s candidates, the RTL checks).

Prints
  reference_images_per_s=<n>    images per second of a whole-network run (one core)
  reference_speedup_vs_int64=<x>  the same run with the sums as int64 einsum (the exact float
                                product disabled) over the default, measured in this run
  reference_outputs_equal=<bool>  both paths gave the same integers

Default: ResNet-8 on Fashion-MNIST (models/resnet8_fashion.fp32.pt), int8 post-training
quantised on seeded synthetic inputs, 256 synthetic images.

Run: ``.venv/bin/python benchmarks/reference_speed.py [--model CKPT] [--images N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import autochip.reference as ref
from autochip.compress.checkpoint import load_checkpoint
from autochip.compress.ptq import ptq

ROOT = Path(__file__).resolve().parents[1]


def _timed(model: ref.IntegerModel, x: np.ndarray) -> tuple[float, np.ndarray]:
    t0 = time.process_time()
    out, _ = ref.run(model, x)
    return time.process_time() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "resnet8_fashion.fp32.pt"))
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, example = load_checkpoint(args.model)
    g = torch.Generator().manual_seed(0)
    cal = torch.rand((64, *example.shape[1:]), generator=g)
    integer = ptq(model.eval(), example, cal)
    x = ref.quantize_input(
        integer, torch.rand((args.images, *example.shape[1:]), generator=g).numpy()
    )
    fast_s, fast = _timed(integer, x)
    saved = ref._F64_EXACT
    ref._F64_EXACT = 0  # every sum through the int64 einsum fallback
    try:
        slow_s, slow = _timed(integer, x)
    finally:
        ref._F64_EXACT = saved
    print(f"reference_images_per_s={args.images / fast_s:.1f}")
    print(f"reference_speedup_vs_int64={slow_s / fast_s:.2f}")
    print(f"reference_outputs_equal={bool(np.array_equal(fast, slow))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

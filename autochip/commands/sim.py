"""Simulate a built accelerator core on whole networks, bit-exact against the reference.

  autochip sim DIR [--input X.npy] [--simulator verilator|icarus] [--dump] [--json]

DIR is a folder written by `autochip build`. The core runs in cocotb with an HDL AXI4 RAM
(templates/sim_axi_ram.v) as DRAM, once per input (default: DIR/inputs.npy, the quantised test
inputs of the build; --input takes float images [N, ...] to quantise, or integer ones as they
are). The compiled simulator is cached (see autochip.builder.sim.cached_build;
$AUTOCHIP_CACHE, default ~/.cache/autochip), so a second folder with the same core does not
recompile. Every layer's output tensor in DRAM is compared with autochip.reference; cycles are
measured per layer (from the core's cycle counter) and shown beside the predictor's figures.
Writes DIR/outputs.npy (the network's int8 outputs, one flattened row per input; multiply by
output_scale of DIR/model.npz for real values) and, with --dump, DIR/layers.npz (every layer's
output tensor, int8 [N, C, H, W] or [N, K], keyed by tensor name). Shows progress on stderr when
it is a terminal. Exit code 1 when any output differs. --json prints bit_exact, cycles_total
and layers (name, cycles_measured, cycles_predicted).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from autochip._builddir import design_problems
from autochip._npz import npy_problem
from autochip._progress import Counter
from autochip._safeio import atomic_write_bytes, output_dir_problems, raise_output_problems
from autochip.builder.core_sim import simulate_core
from autochip.builder.sim import SIMULATORS
from autochip.errors import SpecError
from autochip.reference import load_integer_model, quantize_input

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("build", metavar="DIR", help="folder written by `autochip build`")
    p.add_argument(
        "--input", metavar="X.npy", help="input images [N, ...] (default: DIR/inputs.npy)"
    )
    p.add_argument("--simulator", default="verilator", choices=SIMULATORS)
    p.add_argument(
        "--dump",
        action="store_true",
        help="also write every layer's output tensor to DIR/layers.npz",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _inputs(args: argparse.Namespace, root: Path, shape: tuple[int, ...]) -> np.ndarray:
    path = Path(args.input) if args.input else root / "inputs.npy"
    if not path.is_file():
        raise SpecError(str(path), ["expected a .npy file of input images, found no such file"])
    why = npy_problem(path)  # a forged header must not make numpy allocate gigabytes
    if why:
        raise SpecError(str(path), [why])
    try:
        x: np.ndarray = np.asarray(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise SpecError(str(path), [f"expected a .npy array, found: {exc}"]) from None
    if tuple(x.shape) == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise SpecError(
            str(path),
            [f"expected images of shape [N, {', '.join(map(str, shape))}], found {x.shape}"],
        )
    return x


def _save(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    root = Path(args.build)
    raise_output_problems("autochip sim", output_dir_problems("DIR", args.build))
    for name in ("plan.json", "model.npz", "files.f", "tb/tb_core.py"):
        if not (root / name).is_file():
            raise SpecError(
                str(root), [f"expected a folder written by `autochip build` ({name}), found none"]
            )
    raise_output_problems(str(root), design_problems(root, testbench=True))
    model = load_integer_model(root / "model.npz")
    x = _inputs(args, root, tuple(model.input_shape[1:]))
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)):
            raise SpecError(
                str(args.input or "--input"), ["expected finite values, found NaN or Inf"]
            )
        x = quantize_input(model, x)
    with Counter("simulating", "cycle") as progress:  # drawn only on a terminal
        rep = simulate_core(
            root, model, x, args.simulator, progress=progress if progress.drawn else None
        )
    _save(root / "outputs.npy", rep.outputs)
    if args.dump:
        buf = io.BytesIO()
        arrays: dict[str, Any] = dict(rep.tensors)
        np.savez(buf, **arrays)
        atomic_write_bytes(root / "layers.npz", buf.getvalue())
    if args.json:
        print(json.dumps(rep.as_dict(), indent=2, sort_keys=True))
        return 0 if rep.bit_exact else 1
    verdict = "bit-exact" if rep.bit_exact else "MISMATCH"
    print(f"{rep.images} inputs on {rep.simulator}: {verdict} against autochip.reference")
    print(f"{'layer':<24}{'outputs':>10}{'cycles measured':>17}{'predicted':>11}{'error':>8}")
    for lay in rep.layers:
        err = 100.0 * (lay.cycles_predicted - lay.cycles_measured) / max(1, lay.cycles_measured)
        ok = "exact" if lay.bit_exact else f"{lay.mismatches} diff"
        print(f"{lay.name:<24}{ok:>10}{lay.cycles_measured:>17}{lay.cycles_predicted:>11}"
              f"{err:>7.2f}%")  # fmt: skip
    err = 100.0 * (rep.cycles_predicted_total - rep.cycles_total) / max(1, rep.cycles_total)
    print(f"{'total':<34}{rep.cycles_total:>17}{rep.cycles_predicted_total:>11}{err:>7.2f}%")
    return 0 if rep.bit_exact else 1

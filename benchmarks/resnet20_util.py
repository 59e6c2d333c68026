"""ResNet-20's PE utilisation on the core, measured in simulation (part of core_performance.py).

``autochip build resnet20`` (post-training int8 from the zoo's float model, seeded synthetic
calibration) for ``examples/hw/core16x16_int8.yaml``, one seeded input simulated by
``autochip.builder.core_sim.simulate_core`` (bit-exactness checked), then per layer
``utilisation = MACs / (cycles * rows * cols)`` from the measured cycles:

* ``resnet20_conv3x3_util_min``: the lowest over ResNet-20's 3x3 convolutions;
* ``resnet20_util_network``: all MACs over all measured cycles (every descriptor counts,
  vector layers and the end of the program included).

  PYTHONPATH=. python benchmarks/resnet20_util.py [--hw SPEC.yaml] [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "examples" / "hw" / "core16x16_int8.yaml"


def layer_macs(model: Any) -> dict[str, tuple[int, tuple[int, int]]]:
    """Compute op name -> (MACs, kernel) of an integer model, from its weights and shapes."""
    from autochip.reference import ComputeOp, run

    x0 = np.zeros((1, *model.input_shape[1:]), dtype=np.int64)
    _, shapes = run(model, x0, dump=True)
    out: dict[str, tuple[int, tuple[int, int]]] = {}
    for op in model.ops:
        if not isinstance(op, ComputeOp):
            continue
        w = np.asarray(op.weight)
        pixels = int(np.prod(shapes[op.output].shape[2:])) if op.layer == "conv" else 1
        kernel = (int(w.shape[2]), int(w.shape[3])) if op.layer == "conv" else (1, 1)
        out[op.name] = (int(w.size) * pixels, kernel)
    return out


def resnet20_utilisation(hw: Path = CORE, work: Path | None = None) -> dict[str, float]:
    """Build, simulate one input, and return the utilisation figures (see the docstring)."""
    from autochip.builder.core_sim import simulate_core
    from autochip.cli import main
    from autochip.reference import load_integer_model

    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="resnet20_util_")
        work = Path(tmp.name)
    try:
        out = work / "resnet20"
        argv = ["build", "resnet20", "--hw", str(hw), "--out", str(out), "--images", "1", "--json"]
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            if main(argv) != 0:
                raise SystemExit(f"autochip build failed: {' '.join(argv)}")
        model = load_integer_model(out / "model.npz")
        x = np.load(out / "inputs.npy")[:1]
        rep = simulate_core(out, model, x)
        if not rep.bit_exact:
            raise SystemExit("ResNet-20 is not bit-exact on the core: figures not reported")
        import json

        core = json.loads((out / "manifest.json").read_text())["core"]
        pes = int(core["rows"]) * int(core["cols"])
        macs = layer_macs(model)
        utils = [
            macs[lay.name][0] / (lay.cycles_measured * pes)
            for lay in rep.layers
            if lay.name in macs and macs[lay.name][1] == (3, 3)
        ]
        total_macs = sum(m for m, _ in macs.values())
        return {
            "resnet20_conv3x3_util_min": min(utils),
            "resnet20_util_network": total_macs / (rep.cycles_total * pes),
            "resnet20_cycles_measured": float(rep.cycles_total),
            "resnet20_cycles_predicted": float(rep.cycles_predicted_total),
            "resnet20_macs": float(total_macs),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def print_resnet20_utilisation(hw: Path = CORE, work: Path | None = None) -> None:
    """Print the figures as ``name=value`` lines (the format of core_performance.py)."""
    for key, value in resnet20_utilisation(hw, work).items():
        text = f"{value:.4f}" if "util" in key else f"{value:.0f}"
        print(f"{key}={text}")
        sys.stdout.flush()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hw", type=Path, default=CORE)
    ap.add_argument("--work", type=Path, default=None, help="keep the build folder here")
    a = ap.parse_args()
    print_resnet20_utilisation(a.hw, a.work)

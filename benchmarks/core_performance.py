"""The accelerator core in simulation: simulator speed and the core model's cycle accuracy.

Builds a zoo network for a core spec with ``autochip build`` (a float model is quantised
post-training to int8, as a user would run it), simulates it with ``autochip.builder.core_sim``
(Verilator, the HDL DRAM model, the cached compiled model), checks it bit-exact against
``autochip.reference``, and prints ``name=value`` lines measured in this run:

  sim_cycles_per_s=<n>       core cycles simulated per second of wall time while the core runs
                             (all inputs; the simulator process from start to done: no compile,
                             no start-up, no DRAM load / read-back, no reference check)
  sim_cycles_per_cpu_s=<n>   the same per CPU second of the simulator process (the machine is
                             shared: wall time depends on its load, CPU time much less)
  sim_cycles_per_s_end_to_end=<n>  cycles / wall time of the whole simulate_core call (model
                             cached): simulator start-up (cocotb, Python), the DRAM image load,
                             every input's reload and read-back, the reference check included
  sim_cycles_per_cpu_s_end_to_end=<n>  the same per CPU second (user + system) of this process
                             and its children (the simulator) during that call
  cycle_error_max=<x>        max over every simulated layer of |predicted - measured| / measured
                             (autochip.predictor.core_model vs the core's cycle counter)
  bit_exact=<bool>           every layer's output equal to autochip.reference's
  resnet20_conv3x3_util_min=<x>  lowest PE utilisation MACs / (cycles * rows * cols) over the
                             model's 3x3 convolutions, from each layer's measured cycles
  resnet20_util_network=<x>  all MACs / (all measured cycles of one input * rows * cols):
                             every descriptor counts (vector layers, the end of the program)
  resnet18_conv3x3_util_min=<x>, resnet18_util_network=<x>, mobilenet_v2_util_network=<x>
                             the same from the core model (plan.json's predicted cycles of
                             `autochip build`, not simulated) at 224x224 on ``--zoo-hw``
                             (``examples/hw/core16x16_512k.yaml``: 16x16 int8, 128-bit bus,
                             512 KB of SRAM); a tiled layer's bands are summed; ``nan`` with a
                             ``#`` line giving the compiler's reason when the model does not build
  resnet18_layers_cycle_error_max=<x>, resnet18_stem_util_sim=<x>, resnet18_layer4_util_sim=<x>
                             with ``--resnet18-layers``: two full-size ResNet-18 layers (the stem,
                             7x7/2 of 3x224x224, and a last-stage 3x3 512 -> 512 at 7x7; seeded
                             random int8 parameters) built for ``--zoo-hw`` and simulated,
                             bit-exact, every band's cycles against the core model

The simulator is the profile-guided Verilator model (``simulate_core(..., pgo=True)``: trained
on the build's first input, see ``compile_testbench``); ``--no-pgo`` measures the plain one.

Default: ResNet-20 (CIFAR-10 size, seeded synthetic calibration) on
``examples/hw/core16x16_int8.yaml`` (16x16 int8, 128-bit bus), one input.
Each metric is a function of the run (:data:`METRICS`); add a function to add a line.

Run: ``.venv/bin/python benchmarks/core_performance.py [--model resnet20] [--hw HW.yaml]
[--images N] [--work DIR]`` (a first run compiles the Verilator model: minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autochip.builder.core_sim import SimReport, compile_testbench, simulate_core
from autochip.cli import main as autochip_main
from autochip.reference import load_integer_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HW = ROOT / "examples" / "hw" / "core16x16_int8.yaml"
ZOO_HW = ROOT / "examples" / "hw" / "core16x16_512k.yaml"


@dataclass(frozen=True)
class Run:
    """One build + simulation: what every metric is computed from."""

    build_dir: Path
    report: SimReport
    wall_seconds: float  # the whole simulate_core call
    cpu_seconds: float  # its user + system CPU time, this process and its children


def build(model: str, hw: Path, out: Path, images: int) -> Path:
    """``autochip build MODEL --hw HW --out OUT --images N`` (reused when OUT has a build)."""
    if (out / "plan.json").is_file() and (out / "inputs.npy").is_file():
        return out
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = autochip_main(
            ["build", model, "--hw", str(hw), "--out", str(out), "--images", str(images)]
        )
    if code != 0:
        raise SystemExit(f"autochip build {model} failed:\n{text.getvalue()}")
    return out


def simulate(build_dir: Path, images: int, pgo: bool) -> Run:
    model = load_integer_model(build_dir / "model.npz")
    x = np.load(build_dir / "inputs.npy")[:images]
    compile_testbench(build_dir, pgo=pgo)  # a first run compiles (minutes): not timed
    start, cpu = time.perf_counter(), _cpu_seconds()
    rep = simulate_core(build_dir, model, x, pgo=pgo)
    return Run(build_dir, rep, time.perf_counter() - start, _cpu_seconds() - cpu)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# -- metrics: one function per printed line ------------------------------------------------------
def sim_cycles_per_s(run: Run) -> str:
    return f"{run.report.cycles_run / run.report.run_seconds:.0f}"


def sim_cycles_per_cpu_s(run: Run) -> str:
    return f"{run.report.cycles_run / run.report.run_cpu_seconds:.0f}"


def sim_cycles_per_s_end_to_end(run: Run) -> str:
    return f"{run.report.cycles_run / run.wall_seconds:.0f}"


def sim_cycles_per_cpu_s_end_to_end(run: Run) -> str:
    return f"{run.report.cycles_run / run.cpu_seconds:.0f}"


def cycle_error_max(run: Run) -> str:
    errors = [
        abs(lay.cycles_predicted - lay.cycles_measured) / lay.cycles_measured
        for lay in run.report.layers
    ]
    return f"{max(errors):.4f}"


def bit_exact(run: Run) -> str:
    return str(run.report.bit_exact)


def layer_macs(build_dir: Path) -> dict[str, tuple[int, tuple[int, int]]]:
    """Compute layer name -> (MACs, kernel) of the build's integer model."""
    from autochip.reference import ComputeOp, run

    model = load_integer_model(build_dir / "model.npz")
    _, dumped = run(model, np.zeros((1, *model.input_shape[1:]), dtype=np.int64), dump=True)
    out: dict[str, tuple[int, tuple[int, int]]] = {}
    for op in model.ops:
        if isinstance(op, ComputeOp):
            w = np.asarray(op.weight)
            conv = op.layer == "conv"
            pixels = int(np.prod(dumped[op.output].shape[2:])) if conv else 1
            kernel = (int(w.shape[2]), int(w.shape[3])) if conv else (1, 1)
            out[op.name] = (int(w.size) * pixels, kernel)
    return out


def _pes(run: Run) -> int:
    core = json.loads((run.build_dir / "manifest.json").read_text())["core"]
    return int(core["rows"]) * int(core["cols"])


def resnet20_conv3x3_util_min(run: Run) -> str:
    macs = layer_macs(run.build_dir)
    cycles: dict[str, int] = {}  # a tiled layer's bands summed
    for lay in run.report.layers:
        cycles[_base(lay.name)] = cycles.get(_base(lay.name), 0) + lay.cycles_measured
    utils = [m / (cycles[n] * _pes(run)) for n, (m, k) in macs.items() if k == (3, 3)]
    return f"{min(utils):.4f}" if utils else "nan"


def resnet20_util_network(run: Run) -> str:
    total = sum(m for m, _ in layer_macs(run.build_dir).values())
    return f"{total / (run.report.cycles_total * _pes(run)):.4f}"


def _base(name: str) -> str:
    """A band's layer (``LAYER@k``, autochip.builder.tiling) -> LAYER."""
    return name.split("@")[0]


def model_utilisation(model: str, hw: Path, work: Path) -> tuple[float, float] | str:
    """(lowest 3x3-convolution utilisation, network utilisation) of ``model`` built for ``hw``,
    from the core model's predicted cycles (``plan.json``); the build's error when it fails."""
    out = work / model
    if not (out / "plan.json").is_file():
        text, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(err):
            code = autochip_main(["build", model, "--hw", str(hw), "--out", str(out)])
        if code != 0:
            lines = (err.getvalue() + text.getvalue()).strip().splitlines()
            return lines[-1] if lines else f"exit {code}"
    plan = json.loads((out / "plan.json").read_text())
    core = json.loads((out / "manifest.json").read_text())["core"]
    pes = int(core["rows"]) * int(core["cols"])
    macs = layer_macs(out)
    cycles: dict[str, int] = {}
    for lay in plan["layers"]:
        cycles[_base(lay["name"])] = cycles.get(_base(lay["name"]), 0) + lay["cycles_predicted"]
    utils = [m / (cycles[n] * pes) for n, (m, k) in macs.items() if k == (3, 3)]
    total = sum(m for m, _ in macs.values()) / (plan["cycles_predicted_total"] * pes)
    return (min(utils) if utils else float("nan")), total


def zoo_lines(hw: Path, work: Path) -> list[str]:
    """The model-based lines of ResNet-18 and MobileNet-V2 at 224x224."""
    lines: list[str] = []
    for model, names in (("resnet18", ("resnet18_conv3x3_util_min", "resnet18_util_network")),
                         ("mobilenet_v2", (None, "mobilenet_v2_util_network"))):  # fmt: skip
        res = model_utilisation(model, hw, work)
        if isinstance(res, str):
            lines.append(f"# {model} does not build on {hw.name}: {res}")
            res = (float("nan"), float("nan"))
        for name, value in zip(names, res, strict=True):
            if name:
                lines.append(f"{name}={value:.4f}")
    return lines


def resnet18_layer_lines(hw: Path, work: Path, pgo: bool) -> list[str]:
    """Simulate ResNet-18's stem and a last-stage 3x3 convolution at full size (random int8
    parameters: the cycles do not depend on the values) and compare with the core model."""
    from autochip.builder.core_build import build_core
    from autochip.hw import load_hardware_spec
    from autochip.reference import ComputeOp, IntegerModel, Requant

    rng = np.random.default_rng(3)
    lines: list[str] = []
    worst = 0.0
    for tag, k, c, kh, stride, pad, shape in (
        ("stem", 64, 3, 7, 2, 3, (1, 3, 224, 224)),
        ("layer4", 512, 512, 3, 1, 1, (1, 512, 7, 7)),
    ):
        w = rng.integers(-127, 128, size=(k, c, kh, kh)).astype(np.int64)
        req = Requant(rng.integers(1 << 14, 1 << 16, size=k).astype(np.int64),
                      np.full(k, 24, dtype=np.int64), 0, 127)  # fmt: skip
        op = ComputeOp("conv", "input", "conv", "mac", "conv", w,
                       rng.integers(-2000, 2000, size=k).astype(np.int64), requant=req,
                       stride=(stride, stride), padding=(pad, pad))  # fmt: skip
        model = IntegerModel("input", shape, 1 / 64, -128, 127, (op,), "conv", 1.0)
        x = rng.integers(-128, 128, size=(1, *shape[1:]))
        out = work / f"resnet18_{tag}"
        build_core(model, load_hardware_spec(hw), out, x)
        compile_testbench(out, pgo=pgo)
        rep = simulate_core(out, model, x, pgo=pgo)
        macs = int(w.size) * int(np.prod(rep.tensors["conv"].shape[2:]))
        pes = _pes(Run(out, rep, 0.0, 0.0))
        worst = max([worst, *(abs(la.cycles_predicted - la.cycles_measured) / la.cycles_measured
                              for la in rep.layers)])  # fmt: skip
        lines.append(f"# resnet18 {tag}: {len(rep.layers)} descriptor(s), {rep.cycles_total} "
                     f"cycles measured, {rep.cycles_predicted_total} predicted, "
                     f"bit_exact={rep.bit_exact}")  # fmt: skip
        lines.append(f"resnet18_{tag}_util_sim={macs / (rep.cycles_total * pes):.4f}")
    lines.append(f"resnet18_layers_cycle_error_max={worst:.4f}")
    return lines


METRICS: tuple[Callable[[Run], str], ...] = (
    sim_cycles_per_s,
    sim_cycles_per_cpu_s,
    sim_cycles_per_s_end_to_end,
    sim_cycles_per_cpu_s_end_to_end,
    cycle_error_max,
    bit_exact,
    resnet20_conv3x3_util_min,
    resnet20_util_network,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet20", help="zoo name, .py, .pt2 or integer .npz")
    ap.add_argument("--hw", type=Path, default=DEFAULT_HW, help="core hardware spec")
    ap.add_argument("--images", type=int, default=1, help="inputs to simulate")
    ap.add_argument("--work", type=Path, help="build folder to create or reuse")
    ap.add_argument("--no-pgo", action="store_true",
                    help="the plain Verilator model instead of the profile-guided one")  # fmt: skip
    ap.add_argument("--zoo-hw", type=Path, default=ZOO_HW,
                    help="core spec of the model-based ResNet-18 / MobileNet-V2 lines")  # fmt: skip
    ap.add_argument("--no-zoo", action="store_true", help="skip the model-based zoo lines")
    ap.add_argument("--resnet18-layers", action="store_true",
                    help="also simulate two full-size ResNet-18 layers (minutes)")  # fmt: skip
    ap.add_argument("--zoo-only", action="store_true",
                    help="only the model-based zoo lines (no simulation)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.zoo_only:
        with tempfile.TemporaryDirectory() as tmp:
            for line in zoo_lines(args.zoo_hw, args.work or Path(tmp)):
                print(line)
            if args.resnet18_layers:
                for line in resnet18_layer_lines(args.zoo_hw, args.work or Path(tmp),
                                                 not args.no_pgo):  # fmt: skip
                    print(line)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.work or Path(tmp) / "core"
        run = simulate(build(args.model, args.hw, out, args.images), args.images, not args.no_pgo)
        print(f"# {args.model} on {args.hw.name}: {run.report.images} input(s), "
              f"{run.report.cycles_run} cycles, {len(run.report.layers)} layers, "
              f"pgo={not args.no_pgo}")  # fmt: skip
        for metric in METRICS:
            print(f"{metric.__name__}={metric(run)}")
        if not args.no_zoo:
            for line in zoo_lines(args.zoo_hw, Path(tmp) / "zoo"):
                print(line)
        if args.resnet18_layers:
            for line in resnet18_layer_lines(args.zoo_hw, Path(tmp) / "zoo", not args.no_pgo):
                print(line)
    return 0 if run.report.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())

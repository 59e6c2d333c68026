"""The installable package: the wheel carries the model zoo and the Verilog templates.

Authority: a wheel built from a copy of the source tree and installed into a new virtual
environment (not the checkout: no PYTHONPATH, cwd outside the repository) runs ``inspect``,
``predict``, ``emit`` and ``build`` end to end. The new environment reuses the shared
environment's installed dependencies through a ``.pth`` line (nothing is downloaded).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from autochip.reference import save_integer_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "rtl_tests" / "core"))
from core_models import random_model  # noqa: E402

_COPY = ("pyproject.toml", "README.md", "autochip", "models", "templates")


def test_the_wheel_package_list_names_every_package_on_disk() -> None:
    """``[tool.setuptools] packages`` is an explicit list (it maps models/ and templates/ into
    the package); a sub-package or data folder added on disk but not listed would be missing
    from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = [ROOT / "autochip", *(ROOT / "autochip").rglob("*")]
    on_disk = {
        ".".join(p.relative_to(ROOT).parts)
        for p in folders
        if p.is_dir() and p.name != "__pycache__" and any(f.is_file() for f in p.iterdir())
    }
    assert on_disk - listed == set(), "add these packages to pyproject.toml"
    mapped = {k: v for k, v in config["package-dir"].items()}
    assert mapped == {"autochip._zoo": "models", "autochip._templates": "templates"}
    assert listed - on_disk == set(mapped)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{cmd}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in _COPY:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist", "./src"],
         tmp_path, env)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("autochip-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
         tmp_path, env)  # fmt: skip
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            tmp_path,
            env,
        ).stdout.strip()
    )
    # the dependencies (torch, numpy, ...) come from the shared environment, after the wheel
    (site / "zz_shared_env.pth").write_text(sysconfig.get_path("purelib") + "\n")

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import autochip; print(autochip.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    autochip = [str(venv / "bin" / "autochip")]

    version = _run([*autochip, "--version"], work, env).stdout
    assert version.strip() == "autochip 0.1.0"
    models = json.loads(_run([*autochip, "list", "models", "--json"], work, env).stdout)
    assert {"lenet_digits", "resnet18", "mobilenet_v2"} <= {m["name"] for m in models}

    layers = json.loads(_run([*autochip, "inspect", "lenet_digits", "--json"], work, env).stdout)
    assert layers["total_macs"] > 0
    pred = json.loads(
        _run(
            [*autochip, "predict", "lenet_digits", "--platform", "xc7z020", "--json"], work, env
        ).stdout
    )
    assert pred["total"]["cycles"] > 0

    hw = work / "hw.yaml"
    shutil.copy(ROOT / "examples" / "hw" / "demo_os8x8_int8.yaml", hw)
    _run([*autochip, "emit", "--hw", str(hw), "--out", "array"], work, env)
    assert (
        "module autochip_pe_array" in (work / "array" / "rtl" / "autochip_pe_array.v").read_text()
    )

    save_integer_model(random_model(), work / "m.npz")
    _run([*autochip, "build", "m.npz", "--hw", str(hw), "--out", "core", "--images", "1"],
         work, env)  # fmt: skip
    assert "module autochip_core" in (work / "core" / "rtl" / "autochip_core.v").read_text()
    assert (work / "core" / "dram.bin").stat().st_size > 0

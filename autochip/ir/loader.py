"""``load_model``: MODEL on the command line -> (module, example input, name).

MODEL is a zoo name (file stem in ``models/`` of the checkout), a ``.py`` file defining
``build_model()`` and ``example_input()``, a ``torch.export`` ``.pt2`` file, or a compressed
checkpoint ``.pt`` (read by ``autochip.compress.checkpoint.load_checkpoint``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import autochip
from autochip.errors import ModelLoadError
from autochip.ir._source import from_exception

__all__ = ["LoadedModel", "load_model", "zoo_dir", "zoo_names"]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to trace. ``program`` is the ``ExportedProgram`` of a ``.pt2`` file."""

    model: nn.Module
    example_input: Any
    name: str
    program: Any = None


def zoo_dir() -> Path:
    from autochip._resources import zoo_dir as _zoo_dir

    return _zoo_dir() or Path(autochip.__file__).resolve().parent / "_zoo"  # missing: empty zoo


def zoo_names() -> list[str]:
    d = zoo_dir()
    return (
        sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_")) if d.is_dir() else []
    )


def _why(exc: BaseException) -> str:
    loc = from_exception(exc)
    where = f" at {loc.long}" if loc else ""
    text = str(exc).strip().splitlines()
    return f"{where}: {type(exc).__name__}: {text[0] if text else ''}"


@contextlib.contextmanager
def _importable_from(directory: Path) -> Iterator[None]:
    """Let a model file import modules that sit next to it (as running it as a script would)."""
    entry = str(directory.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _load_py(path: Path) -> LoadedModel:
    with _importable_from(path.parent):
        return _load_py_module(path)


def _load_py_module(path: Path) -> LoadedModel:
    module_name = f"autochip_model_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"'{path}': expected an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ModelLoadError(f"'{path}': importing it failed{_why(exc)}") from None
    missing = [
        f for f in ("build_model", "example_input") if not callable(getattr(module, f, None))
    ]
    if missing:
        raise ModelLoadError(
            f"'{path}': expected functions build_model() and example_input(), "
            f"found no {' and no '.join(f + '()' for f in missing)}"
        )
    try:
        model = module.build_model()
    except Exception as exc:
        raise ModelLoadError(f"'{path}': build_model() failed{_why(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(
            f"'{path}': expected build_model() to return a torch.nn.Module, "
            f"found {type(model).__name__}"
        )
    try:
        x = module.example_input()
    except Exception as exc:
        raise ModelLoadError(f"'{path}': example_input() failed{_why(exc)}") from None
    items = x if isinstance(x, tuple | list) else (x,)
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise ModelLoadError(
            f"'{path}': expected example_input() to return a torch.Tensor (or a tuple of them), "
            f"found {type(x).__name__}"
        )
    return LoadedModel(model, x, path.stem)


def _load_pt2(path: Path) -> LoadedModel:
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"'{path}': expected a torch.export program saved by torch.export.save, "
            f"reading it failed: {type(exc).__name__}: {str(exc).strip().splitlines()[:1]}"
        ) from None
    from torch.export.graph_signature import InputKind

    inputs = []
    user = {s.arg.name for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT}
    for n in ep.graph.nodes:
        if n.op == "placeholder" and n.name in user:
            val = n.meta.get("val")
            if isinstance(val, torch.Tensor):
                inputs.append(torch.zeros(tuple(int(d) for d in val.shape), dtype=val.dtype))
    example = inputs[0] if len(inputs) == 1 else tuple(inputs)
    return LoadedModel(ep.module(), example, path.stem, program=ep)


def _load_checkpoint(path: Path) -> LoadedModel:
    try:
        checkpoint = importlib.import_module("autochip.compress.checkpoint")
    except ImportError as exc:
        raise ModelLoadError(
            f"'{path}': a .pt file is read as a compressed checkpoint, but "
            f"autochip.compress.checkpoint is not available ({exc})"
        ) from None
    model, x = checkpoint.load_checkpoint(path)
    return LoadedModel(model, x, path.stem)


def load_model(spec: str) -> LoadedModel:
    """Resolve MODEL (zoo name, ``.py``, ``.pt2``, ``.pt``) to a model and an example input."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in (".py", ".pt2", ".pt") or path.exists() or "/" in spec:
        if not path.is_file():
            hint = f" (the zoo has '{path.stem}')" if path.stem in zoo_names() else ""
            raise ModelLoadError(
                "expected MODEL to be a zoo name, a .py, .pt2 or .pt file; "
                f"found no file at '{spec}'{hint}"
            )
        if suffix == ".py":
            return _load_py(path)
        if suffix == ".pt2":
            return _load_pt2(path)
        if suffix == ".pt":
            return _load_checkpoint(path)
        raise ModelLoadError(
            f"'{spec}': expected a .py, .pt2 or .pt file, found a '{suffix or 'no'}' suffix"
        )
    zoo_file = zoo_dir() / f"{spec}.py"
    if spec.startswith("_") or not zoo_file.is_file():
        names = ", ".join(zoo_names()) or "(the zoo directory is missing)"
        raise ModelLoadError(
            f"unknown model '{spec}': expected a zoo name ({names}) or a path to a .py, .pt2 "
            "or .pt file"
        )
    return _load_py(zoo_file)

"""``load_model``: MODEL on the command line -> (module, example input, name).

MODEL is a zoo name (file stem in ``models/`` of the checkout), a ``.py`` file defining
``build_model()`` and ``example_input()``, a ``torch.export`` ``.pt2`` file, or a compressed
checkpoint ``.pt`` (read by the loader that ``autochip.compress.checkpoint`` registers with
:func:`register_loader`: the IR itself imports nothing above it).

A ``.py`` file is code and runs (the user names it knowingly); its prints go to stderr and a
``sys.exit`` in it is an error. A ``.pt2`` file is data: :mod:`autochip.ir._pt2` reads it
without unpickling Python objects or running code from it (see docs/security.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import autochip
from autochip._safeio import user_code
from autochip.errors import ModelLoadError
from autochip.ir._source import from_exception

__all__ = ["MAX_EXAMPLE_ELEMS", "LoadedModel", "load_model", "register_loader", "zoo_dir",
           "zoo_names"]  # fmt: skip

MAX_EXAMPLE_ELEMS = 1 << 26  # elements of one example input of a .pt2 program


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
    with _importable_from(path.parent), user_code(f"'{path}'"):
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
    from torch.export.graph_signature import InputKind

    from autochip.ir._pt2 import load_pt2

    ep = load_pt2(path)
    inputs = []
    user = {s.arg.name for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT}
    for n in ep.graph.nodes:
        if n.op == "placeholder" and n.name in user:
            val = n.meta.get("val")
            if isinstance(val, torch.Tensor):
                shape = tuple(int(d) for d in val.shape)
                if math.prod(shape) > MAX_EXAMPLE_ELEMS:
                    raise ModelLoadError(
                        f"'{path}': input '{n.name}' has shape {shape}, more than "
                        f"{MAX_EXAMPLE_ELEMS} elements (MAX_EXAMPLE_ELEMS)"
                    )
                inputs.append(torch.zeros(shape, dtype=val.dtype))
    example = inputs[0] if len(inputs) == 1 else tuple(inputs)
    try:
        module = ep.module()
    except Exception as exc:
        raise ModelLoadError(
            f"'{path}': the exported program cannot be rebuilt: {type(exc).__name__}: "
            f"{str(exc).strip()[:200]}"
        ) from None
    return LoadedModel(module, example, path.stem, program=ep)


# Loaders of other file kinds, registered by the layers above the IR (one-way flow: the IR
# imports nothing of them). ``autochip.compress.checkpoint`` registers ``.pt`` checkpoints.
_LOADERS: dict[str, Callable[[Path], LoadedModel]] = {}


def register_loader(suffix: str, loader: Callable[[Path], LoadedModel]) -> None:
    """Let ``load_model`` read files ending in ``suffix`` with ``loader`` (used by layers above
    the IR: ``autochip.compress.checkpoint`` registers ``.pt``)."""
    _LOADERS[suffix.lower()] = loader


def _load_registered(path: Path, suffix: str) -> LoadedModel:
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise ModelLoadError(
            f"'{path}': a {suffix} file is a compressed checkpoint, read by "
            "autochip.compress (import it, or use autochip.modelio.load_model as the CLI does)"
        )
    return loader(path)


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
            return _load_registered(path, suffix)
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

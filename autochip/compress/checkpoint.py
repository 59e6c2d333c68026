"""Compressed checkpoints: model spec + policy + state dict + metadata, no pickled code.

A checkpoint is a ``torch.save`` of plain data, read back with ``weights_only=True``::

    {"format": "autochip-checkpoint/1", "model": MODEL spec (zoo name or .py path),
     "policy": Policy.to_dict() or None (an uncompressed FP32 model), "state_dict": ...,
     "meta": {...}}

:func:`load_checkpoint` rebuilds the model with ``autochip.ir.load_model(spec)``, converts it with
the policy (conversion is deterministic) and loads the state dict. A checkpoint is data: when it
names a Python file, that file runs only when the user passes it (``--model-code``).
Importing this module registers ``.pt`` with ``autochip.ir.loader.register_loader`` (the IR
imports nothing of ``compress``: the flow is one-way).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autochip._safeio import atomic_path
from autochip.compress.convert import convert
from autochip.compress.policy import Policy
from autochip.errors import AutochipError, CompressionError

__all__ = ["FORMAT", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

FORMAT = "autochip-checkpoint/1"


def save_checkpoint(
    path: str | Path,
    model_spec: str,
    policy: Policy | None,
    model: nn.Module,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (a temporary file renamed into place)."""
    p = Path(path)
    spec = str(Path(model_spec).resolve()) if Path(model_spec).is_file() else model_spec
    data = {
        "format": FORMAT,
        "model": spec,
        "policy": policy.to_dict() if policy is not None else None,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    with atomic_path(p) as tmp:
        torch.save(data, tmp)


def _first_line(exc: BaseException) -> str:
    """The line of torch's (long, multi-line) message that says what was refused."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    refused = [ln for ln in lines if "Unsupported global" in ln]
    line = (refused or lines or [""])[0]
    line = line.removeprefix("WeightsUnpickler error: ")
    return line[:300] + (" (a pickled Python object: refused)" if refused else "")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's data, validated."""
    p = Path(path)
    if not p.is_file():
        raise CompressionError(f"expected a checkpoint file, found no file at '{p}'")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors for foreign files
        raise CompressionError(
            f"'{p}' is not an autochip checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CompressionError(
            f"'{p}' is not an autochip checkpoint: expected format '{FORMAT}', found {found!r}"
        )
    for key, typ in (("model", str), ("state_dict", dict), ("meta", dict)):
        if not isinstance(data.get(key), typ):
            raise CompressionError(f"checkpoint '{p}': field '{key}' is missing or malformed")
    return dict(data)


def _model_spec(path: str | Path, spec: str, model_code: str | Path | None) -> str:
    """The MODEL spec to rebuild: a zoo name or .pt2 as named, a .py only if the user gave it."""
    if spec.lower().endswith(".pt"):
        raise CompressionError(f"checkpoint '{path}': its model spec '{spec}' is a checkpoint")
    low = spec.lower()
    if model_code is not None:
        code = Path(model_code)
        if code.suffix.lower() != ".py" or not code.is_file():
            raise CompressionError(
                f"--model-code: expected the model's Python file, found no .py file at '{code}'"
            )
        return str(code)
    if low.endswith(".py"):
        raise CompressionError(
            f"checkpoint '{path}': it names the Python file '{spec}' as its model; a "
            "checkpoint is data and autochip never runs code a data file names: pass the "
            "model's .py file explicitly with --model-code FILE.py"
        )
    if low.endswith(".pt2") or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}", spec):
        return spec
    raise CompressionError(
        f"checkpoint '{path}': expected its model to be a zoo name or a .py/.pt2 file, "
        f"found {spec[:80]!r}"
    )


def load_checkpoint(
    path: str | Path, model_code: str | Path | None = None
) -> tuple[nn.Module, torch.Tensor]:
    """Rebuild the (compressed) model of a checkpoint: (model in eval mode, example input).

    The model is rebuilt from the zoo name (or ``.pt2``) the checkpoint names; when it names a
    Python file, that file runs only if the caller passes it as ``model_code`` (the user's
    explicit choice): a checkpoint is data, the code it names is not trusted.
    """
    from autochip.ir import load_model

    data = read_checkpoint(path)
    spec = _model_spec(path, str(data["model"]), model_code)
    try:
        loaded = load_model(spec)
    except AutochipError as exc:
        raise CompressionError(
            f"checkpoint '{path}': cannot rebuild model '{spec}': {exc}"
        ) from None
    model: nn.Module = loaded.model
    if "pruned" in data["meta"]:  # a pruned model: the original with smaller tensors
        from autochip.compress.prune import restructure

        model = restructure(model, data["meta"]["pruned"])
    if data.get("policy") is not None:
        if not isinstance(data["policy"], dict):
            raise CompressionError(f"checkpoint '{path}': field 'policy' is malformed")
        try:
            policy = Policy.from_dict(data["policy"])
        except (KeyError, ValueError, AttributeError) as exc:
            raise CompressionError(f"checkpoint '{path}': invalid policy: {exc}") from None
        model = convert(model, policy)
    state = data["state_dict"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CompressionError(
            f"checkpoint '{path}': expected tensors in the state dict, found {bad[0]!r}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise CompressionError(
            f"checkpoint '{path}': the state dict does not fit model '{spec}': "
            f"{first[0][:300] if first else type(exc).__name__}"
        ) from None
    model.eval()
    return model, loaded.example_input


def _as_loaded(path: Path) -> Any:
    from autochip.ir.loader import LoadedModel

    model, x = load_checkpoint(path)
    return LoadedModel(model, x, path.stem)


def _register() -> None:
    from autochip.ir.loader import register_loader

    register_loader(".pt", _as_loaded)


_register()

"""Compressed checkpoints: model spec + policy + state dict + metadata, no pickled code.

A checkpoint is a ``torch.save`` of plain data, read back with ``weights_only=True``::

    {"format": "autochip-checkpoint/1", "model": MODEL spec (zoo name or .py path),
     "policy": Policy.to_dict() or None (an uncompressed FP32 model), "state_dict": ...,
     "meta": {...}}

:func:`load_checkpoint` rebuilds the model with ``autochip.ir.load_model(spec)``, converts it with
the policy (conversion is deterministic) and loads the state dict.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

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
    tmp = p.with_name(p.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, p)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's data, validated."""
    p = Path(path)
    if not p.is_file():
        raise CompressionError(f"expected a checkpoint file, found no file at '{p}'")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors for foreign files
        raise CompressionError(
            f"'{p}' is not an autochip checkpoint ({type(exc).__name__}: {exc})"
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


def load_checkpoint(path: str | Path) -> tuple[nn.Module, torch.Tensor]:
    """Rebuild the (compressed) model of a checkpoint: (model in eval mode, example input)."""
    from autochip.ir import load_model

    data = read_checkpoint(path)
    spec = data["model"]
    if str(spec).endswith(".pt"):
        raise CompressionError(f"checkpoint '{path}': its model spec '{spec}' is a checkpoint")
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
        model = convert(model, Policy.from_dict(data["policy"]))
    try:
        model.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CompressionError(
            f"checkpoint '{path}': the state dict does not fit model '{spec}': {exc}"
        ) from None
    model.eval()
    return model, loaded.example_input

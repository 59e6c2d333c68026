"""The AccelGraph IR: node specs, the graph, tracing from PyTorch, passes and JSON I/O.

Importing :mod:`autochip.ir` does not import torch: the predictor reads saved graphs without it.
``trace``, ``load_model`` and ``graph_for`` import torch when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autochip.ir.graph import AccelGraph
from autochip.ir.node import Arithmetic, LoopDims, Node, OpKind
from autochip.ir.passes import (
    DEFAULT_FLOW,
    DropNoOps,
    FoldBatchNorm,
    FuseActivation,
    Pass,
    run_passes,
)
from autochip.ir.serialize import load_graph, save_graph
from autochip.ir.validate import validate

if TYPE_CHECKING:
    from autochip.ir.loader import LoadedModel

__all__ = [
    "DEFAULT_FLOW",
    "AccelGraph",
    "Arithmetic",
    "DropNoOps",
    "FoldBatchNorm",
    "FuseActivation",
    "LoadedModel",
    "LoopDims",
    "Node",
    "OpKind",
    "Pass",
    "graph_for",
    "load_graph",
    "load_model",
    "run_passes",
    "save_graph",
    "trace",
    "validate",
]


def trace(model: Any, example_input: Any = None, name: str | None = None) -> AccelGraph:
    """The raw AccelGraph of ``model`` run on ``example_input`` (before passes)."""
    from autochip.ir.tracer import trace as _trace

    return _trace(model, example_input, name)


def load_model(spec: str) -> LoadedModel:
    """Resolve MODEL (zoo name, ``.py``, ``.pt2`` or ``.pt``) to ``LoadedModel``."""
    from autochip.ir.loader import load_model as _load

    return _load(spec)


def graph_for(spec: str) -> AccelGraph:
    """Load + trace + the default pass flow. ``spec`` may also be a saved graph ``.json`` or an
    ONNX file (``.onnx``)."""
    if spec.lower().endswith(".json"):
        return run_passes(load_graph(spec), ())
    if spec.lower().endswith(".onnx"):  # data, not code: parsed by autochip.ir._onnx
        from autochip.ir._onnx import trace_onnx

        return run_passes(trace_onnx(spec))
    loaded = load_model(spec)
    model = loaded.program if loaded.program is not None else loaded.model
    return run_passes(trace(model, loaded.example_input, loaded.name))


def __getattr__(name: str) -> Any:
    if name == "LoadedModel":
        from autochip.ir.loader import LoadedModel

        return LoadedModel
    raise AttributeError(f"module 'autochip.ir' has no attribute {name!r}")

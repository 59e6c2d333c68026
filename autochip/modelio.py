"""MODEL on the command line -> a model or an AccelGraph: the loader above the IR.

:func:`load_model` dispatches a compressed checkpoint ``.pt`` to ``autochip.compress`` and every
other MODEL (zoo name, ``.py``, ``.pt2``) to :func:`autochip.ir.load_model` (``.onnx`` to
:func:`autochip.ir.graph_for`), so the IR never imports the layers above it. ``model_code`` is
the user's explicit ``--model-code FILE.py``: the only way a checkpoint that names a Python file
gets that file run (see docs/security.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autochip.ir.graph import AccelGraph

__all__ = ["graph_for", "load_model"]


def load_model(spec: str, model_code: str | None = None) -> Any:
    """``LoadedModel`` of MODEL; ``.pt`` checkpoints are rebuilt by ``autochip.compress``."""
    from autochip.ir import LoadedModel
    from autochip.ir import load_model as ir_load_model

    if spec.lower().endswith(".pt") and Path(spec).is_file():
        from autochip.compress.checkpoint import load_checkpoint

        model, x = load_checkpoint(spec, model_code=model_code)
        return LoadedModel(model, x, Path(spec).stem)
    return ir_load_model(spec)


def graph_for(spec: str, model_code: str | None = None) -> AccelGraph:
    """Load + trace + the default passes (a saved graph ``.json`` is loaded and validated)."""
    from autochip import ir

    if spec.lower().endswith(".json"):
        return ir.run_passes(ir.load_graph(spec), ())
    if spec.lower().endswith(".onnx"):  # data, not code: parsed by autochip.ir._onnx
        return ir.graph_for(spec)
    loaded = load_model(spec, model_code)
    model = loaded.program if loaded.program is not None else loaded.model
    return ir.run_passes(ir.trace(model, loaded.example_input, loaded.name))

"""``trace``: a PyTorch model and an example input -> the raw AccelGraph (before passes).

First ``torch.fx`` symbolic tracing (module hierarchy, leaf modules, shapes from running the
example input through the traced graph). Where fx cannot trace the model (data-dependent Python
control flow, untraceable calls), ``torch.export`` is tried and its ATen graph is lowered
instead; ``.pt2`` files take that path directly. Where neither works, one :class:`TraceError`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx, nn

from autochip.errors import AutochipError, TraceError
from autochip.ir._lower import Lowering, tensor_info
from autochip.ir._source import SourceLoc, caller, from_exception, from_stack_trace
from autochip.ir._values import Const, Meta, TensorInfo, Value
from autochip.ir.graph import AccelGraph
from autochip.ir.validate import EXPAND_OPS, NOOP_OPS, PAD_OPS, SLICE_OPS, VIEW_OPS

__all__ = ["trace", "trace_exported"]


def _summarize(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tensor_info(value)
    if isinstance(value, torch.Size):
        return tuple(int(d) for d in value)
    if isinstance(value, tuple | list):
        return type(value)(_summarize(v) for v in value)
    if isinstance(value, torch.SymInt | torch.SymFloat | torch.SymBool):
        return value.node.hint if hasattr(value.node, "hint") else value
    return value


# torch.nn modules built from mappable ops: their insides are traced rather than refused.
_COMPOSITE = (
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerEncoder,
    nn.TransformerDecoderLayer,
    nn.TransformerDecoder,
    nn.Transformer,
)


class _Tracer(fx.Tracer):
    """fx tracer whose leaves are torch.nn modules and autochip's compressed modules."""

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        node.meta["autochip_source"] = caller()
        scope = next(reversed(self.module_stack), "") if self.module_stack else ""
        node.meta["autochip_scope"] = str(scope)  # the module whose forward() made this node
        return node

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if hasattr(m, "autochip_arithmetic") or getattr(m, "autochip_identity", False) is True:
            return True
        if isinstance(m, _COMPOSITE):  # traced through (via torch.export: their Python branches)
            return False
        return bool(super().is_leaf_module(m, module_qualified_name))


class _Recorder(fx.Interpreter):
    """Runs the traced graph once and keeps every node's shape (tensors) or value (the rest)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # errors name the node and the user's line themselves
        self.info: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            loc = n.meta.get("autochip_source") or from_exception(exc)
            where = f" ({loc.long})" if loc else ""
            raise TraceError(
                f"running the model on its example input failed at node '{n.name}'{where}: "
                f"{_first_line(exc)}"
            ) from None
        self.info[n] = _summarize(result)
        return result


def _param_names(model: nn.Module) -> tuple[dict[str, int], dict[int, str]]:
    numel: dict[str, int] = {}
    by_id: dict[int, str] = {}
    for name, p in model.named_parameters():
        numel[name] = p.numel()
        by_id[id(p)] = name
    return numel, by_id


class _FxLowering(Lowering):
    frontend = "fx"

    def __init__(
        self, model: nn.Module, gm: fx.GraphModule, info: dict[fx.Node, Any], name: str
    ) -> None:
        numel, self._by_id = _param_names(model)
        super().__init__(name, numel, sum(p.numel() for p in model.parameters()))
        self.gm = gm
        self.info = info

    def summary(self, n: fx.Node) -> Any:
        return self.info.get(n)

    def placeholder(self, n: fx.Node) -> Any:
        info = self.info.get(n)
        if isinstance(info, TensorInfo):
            return self.add_input(n.name, info.shape)
        if isinstance(info, tuple | list) and info and all(isinstance(i, TensorInfo) for i in info):
            return tuple(self.add_input(f"{n.name}_{k}", i.shape) for k, i in enumerate(info))
        return Meta(info)

    def get_attr(self, n: fx.Node) -> Value:
        obj: Any = self.gm
        for part in str(n.target).split("."):
            obj = getattr(obj, part)
        if isinstance(obj, torch.Tensor):
            key = self._by_id.get(id(obj))
            return Const(tuple(obj.shape), frozenset({key} if key else ()))
        return Meta(obj)

    def module_of(self, n: fx.Node) -> nn.Module | None:
        return self.gm.get_submodule(str(n.target))

    def module_params(self, module: nn.Module, target: str) -> frozenset[str]:
        return frozenset(self._by_id[id(p)] for p in module.parameters() if id(p) in self._by_id)

    def preferred_name(self, n: fx.Node, op: str) -> str:
        """A module's path (``layer1.0.conv1``); a function inside a module's forward() gets
        that module's path as prefix (``blocks.0.attn.matmul``), so names read like the model."""
        if n.op == "call_module":
            return str(n.target)
        scope = n.meta.get("autochip_scope", "")
        return f"{scope}.{op or n.name}" if scope else n.name

    def source(self, n: fx.Node) -> SourceLoc | None:
        loc = n.meta.get("autochip_source")
        return loc if isinstance(loc, SourceLoc) else None


_DATA_MOVEMENT = VIEW_OPS | NOOP_OPS | SLICE_OPS | EXPAND_OPS | PAD_OPS


class _ExportLowering(Lowering):
    frontend = "export"

    def __init__(self, ep: torch.export.ExportedProgram, name: str) -> None:
        from torch.export.graph_signature import InputKind

        self._kinds: dict[str, tuple[Any, str | None]] = {}
        numel: dict[str, int] = {}
        state = ep.state_dict
        for spec in ep.graph_signature.input_specs:
            self._kinds[spec.arg.name] = (spec.kind, spec.target)
            if spec.kind == InputKind.PARAMETER and spec.target is not None:
                numel[spec.target] = int(state[spec.target].numel())
        super().__init__(name, numel, sum(numel.values()))
        self._user = InputKind.USER_INPUT
        self._param = InputKind.PARAMETER

    def summary(self, n: fx.Node) -> Any:
        return _summarize(n.meta.get("val"))

    def placeholder(self, n: fx.Node) -> Value:
        kind, target = self._kinds.get(n.name, (self._user, None))
        info = self.summary(n)
        if kind == self._user:
            if isinstance(info, TensorInfo):
                return self.add_input(n.name, info.shape)
            return Meta(info)
        shape = info.shape if isinstance(info, TensorInfo) else None
        keys = frozenset({target}) if kind == self._param and target else frozenset()
        return Const(shape, keys)

    def get_attr(self, n: fx.Node) -> Value:
        info = self.summary(n)
        return Const(info.shape if isinstance(info, TensorInfo) else None)

    def preferred_name(self, n: fx.Node, op: str) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        if not stack or op in _DATA_MOVEMENT:
            return n.name
        path, cls = list(stack.values())[-1]
        cls_name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
        if not cls_name.startswith("torch.nn.modules") or not path:
            return n.name
        path = re.sub(r"\[['\"]?(\w+)['\"]?\]", r".\1", str(path)).removeprefix("L.self.")
        return path.removeprefix("L['self'].")

    def source(self, n: fx.Node) -> SourceLoc | None:
        return from_stack_trace(n.meta.get("stack_trace"))

    def context(self, n: fx.Node) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        if not stack:
            return "source line unknown"
        path, cls = list(stack.values())[-1]
        cls_name = cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
        return f"inside module '{path or '<root>'}' of type {cls_name}; source line unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _where(exc: BaseException) -> str:
    loc = from_exception(exc)
    return f" at {loc.long}" if loc else ""


def trace_exported(ep: torch.export.ExportedProgram, name: str = "model") -> AccelGraph:
    """Lower the ATen graph of a ``torch.export`` program."""
    graph = _ExportLowering(ep, name).run(ep.graph)
    graph.attrs["frontend"] = "export"
    return graph


def _as_args(example_input: Any) -> tuple[Any, ...]:
    return tuple(example_input) if isinstance(example_input, tuple | list) else (example_input,)


def trace(model: Any, example_input: Any = None, name: str | None = None) -> AccelGraph:
    """Trace ``model`` on ``example_input`` into the raw AccelGraph (no passes applied).

    ``model`` is an ``nn.Module`` (traced in eval mode; its mode is restored afterwards) or a
    ``torch.export.ExportedProgram`` (``example_input`` is then not needed).
    """
    if isinstance(model, torch.export.ExportedProgram):
        return trace_exported(model, name or "model")
    if not isinstance(model, nn.Module):
        raise TraceError(f"expected a torch.nn.Module to trace, found {type(model).__name__}")
    name = name or type(model).__name__
    args = _as_args(example_input)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                gm = fx.GraphModule(model, _Tracer().trace(model), type(model).__name__)
            except AutochipError:
                raise
            except Exception as fx_exc:
                return _trace_via_export(model, args, name, fx_exc)
            recorder = _Recorder(gm)
            try:
                recorder.run(*args)
            except TraceError as exc:
                raise TraceError(f"model '{name}': {exc}") from None
            except Exception as exc:
                raise TraceError(
                    f"model '{name}': running it on its example input failed"
                    f"{_where(exc)}: {_first_line(exc)}"
                ) from None
        graph = _FxLowering(model, gm, recorder.info, name).run(gm.graph)
        graph.attrs["frontend"] = "fx"
        return graph
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.export logs graphs and guard warnings on failure; the user gets one message."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _trace_via_export(
    model: nn.Module, args: tuple[Any, ...], name: str, fx_exc: Exception
) -> AccelGraph:
    try:
        with _quiet():
            ep = torch.export.export(model, args)
    except Exception as exc:
        raise TraceError(
            f"model '{name}' cannot be traced: torch.fx failed{_where(fx_exc)} "
            f"({_first_line(fx_exc)}), and torch.export failed{_where(exc)} "
            f"({_first_line(exc)}); remove data-dependent control flow from forward()"
        ) from None
    return trace_exported(ep, name)

"""Walks a shape-annotated torch.fx graph and builds the AccelGraph.

Two front ends feed it: :mod:`autochip.ir.tracer` (``torch.fx`` symbolic trace of the module,
shapes from running the example input through it) and the ``torch.export`` path (ATen graph,
shapes from the fake tensors in ``node.meta['val']``). They differ only in how placeholders,
parameters, module calls and names are resolved; the ops are lowered by :mod:`autochip.ir._ops`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from autochip.errors import AutochipError, TraceError, UnsupportedOpError
from autochip.ir._source import SourceLoc
from autochip.ir._values import Const, Dyn, Meta, Pieces, TensorInfo, Value, iter_values
from autochip.ir.graph import AccelGraph
from autochip.ir.node import Arithmetic, LoopDims, Node, OpKind

__all__ = ["Call", "Lowering"]

_REQUIRED = object()


def has_tensor(summary: Any) -> bool:
    if isinstance(summary, TensorInfo):
        return True
    if isinstance(summary, tuple | list):
        return any(has_tensor(s) for s in summary)
    return False


@dataclass
class Call:
    """One call node being lowered, with its arguments already turned into values."""

    node: fx.Node
    op: str
    display: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: Any
    source: SourceLoc | None
    module: nn.Module | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def arg(self, index: int, key: str, default: Any = _REQUIRED) -> Any:
        if key in self.kwargs:
            return self.kwargs[key]
        if index < len(self.args):
            return self.args[index]
        if default is _REQUIRED:
            raise TraceError(
                f"node '{self.name}' ({self.display}): expected argument '{key}' "
                f"(position {index}), found none"
            )
        return default

    def plain(self, index: int, key: str, default: Any = _REQUIRED) -> Any:
        """An argument as a plain Python value (``Meta`` unwrapped, recursively)."""
        return unwrap(self.arg(index, key, default))

    @property
    def out_shape(self) -> tuple[int, ...]:
        out = self.out
        if isinstance(out, tuple | list) and out and isinstance(out[0], TensorInfo):
            out = out[0]
        if not isinstance(out, TensorInfo):
            raise TraceError(
                f"node '{self.name}' ({self.display}): expected a tensor result, found "
                f"{type(out).__name__}"
            )
        return out.shape

    @property
    def out_numel(self) -> int:
        return math.prod(self.out_shape)

    def dyn_args(self) -> list[Dyn]:
        return [v for v in iter_values((self.args, self.kwargs)) if isinstance(v, Dyn)]

    def const_args(self) -> list[Const]:
        return [v for v in iter_values((self.args, self.kwargs)) if isinstance(v, Const)]


def unwrap(obj: Any) -> Any:
    if isinstance(obj, Meta):
        return unwrap(obj.value)
    if isinstance(obj, tuple | list):
        return type(obj)(unwrap(o) for o in obj)
    return obj


class Lowering:
    """Base of the two front ends; subclasses resolve placeholders, attributes and modules."""

    frontend = "fx"

    def __init__(self, name: str, param_numel: dict[str, int], model_params: int) -> None:
        self.graph = AccelGraph(name, attrs={"model_params": model_params})
        self.param_numel = param_numel
        self.claimed: set[str] = set()
        self.values: dict[fx.Node, Any] = {}
        self._names: set[str] = set()

    # -- hooks for the front ends --------------------------------------------------------------
    def summary(self, n: fx.Node) -> Any:
        raise NotImplementedError

    def placeholder(self, n: fx.Node) -> Value:
        raise NotImplementedError

    def get_attr(self, n: fx.Node) -> Value:
        raise NotImplementedError

    def module_of(self, n: fx.Node) -> nn.Module | None:
        return None

    def module_params(self, module: nn.Module, target: str) -> frozenset[str]:
        return frozenset()

    def preferred_name(self, n: fx.Node, op: str) -> str:
        return n.name

    def source(self, n: fx.Node) -> SourceLoc | None:
        return None

    def op_name(self, n: fx.Node, module: nn.Module | None) -> tuple[str, str]:
        """(canonical name in the op table, name shown to the user) of a call node."""
        from autochip.ir import _ops

        return _ops.op_name(n, module)

    # -- naming, parameters, node creation ------------------------------------------------------
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._names.add(name)
        return name

    def claim(self, call: Call, extra: Iterable[str] = ()) -> int:
        """Parameters of the call's constant operands (and ``extra``) not yet counted elsewhere."""
        keys: set[str] = set(extra)
        for c in call.const_args():
            keys |= c.params
        fresh = keys - self.claimed
        self.claimed |= fresh
        return sum(self.param_numel.get(k, 0) for k in fresh)

    def add(
        self,
        call: Call,
        kind: OpKind,
        inputs: list[Dyn],
        *,
        dims: LoopDims | None = None,
        macs: int = 0,
        ops: int = 0,
        params: int | None = None,
        arithmetic: Arithmetic | None = None,
        sparsity: float = 0.0,
        attrs: dict[str, Any] | None = None,
        output_shape: tuple[int, ...] | None = None,
    ) -> Dyn:
        if params is None:
            params = self.claim(call)
        node = Node(
            name=call.name,
            kind=kind,
            inputs=tuple(d.name for d in inputs),
            input_shapes=tuple(d.shape for d in inputs),
            output_shape=output_shape if output_shape is not None else call.out_shape,
            dims=dims,
            macs=macs,
            ops=ops,
            params=params,
            arithmetic=arithmetic or Arithmetic(),
            sparsity=sparsity,
            attrs=dict(attrs or {}),
            source=call.source.short if call.source else "",
        )
        self.graph.add(node)
        return Dyn(node.name, node.output_shape)

    def context(self, n: fx.Node) -> str:
        """Where a node comes from when no line of user code is known."""
        return "source line unknown"

    def unsupported(self, call: Call, reason: str = "") -> UnsupportedOpError:
        where = call.source.long if call.source else self.context(call.node)
        return UnsupportedOpError(call.display, call.name, where, reason)

    # -- the walk ------------------------------------------------------------------------------
    def run(self, graph: fx.Graph) -> AccelGraph:
        for n in graph.nodes:
            if n.op == "placeholder":
                value: Any = self.placeholder(n)
            elif n.op == "get_attr":
                value = self.get_attr(n)
            elif n.op == "output":
                self._outputs(n)
                continue
            else:
                value = self._call(n)
            self.values[n] = value
        return self.graph

    def add_input(self, name: str, shape: tuple[int, ...]) -> Dyn:
        name = self.unique(name)
        node = Node(name=name, kind=OpKind.INPUT, inputs=(), input_shapes=(), output_shape=shape)
        self.graph.add(node)
        return Dyn(name, shape)

    def _outputs(self, n: fx.Node) -> None:
        outs = [v for v in iter_values(fx.node.map_arg(n.args, self.values.__getitem__))]
        dyn = [v for v in outs if isinstance(v, Dyn)]
        if not dyn:
            raise TraceError(
                f"model '{self.graph.name}': expected an output computed from the input, "
                "found only constants"
            )
        for d in dyn:
            name = self.unique("output")
            self.graph.add(
                Node(
                    name=name,
                    kind=OpKind.OUTPUT,
                    inputs=(d.name,),
                    input_shapes=(d.shape,),
                    output_shape=d.shape,
                )
            )

    def _materialize(self, obj: Any, n: fx.Node) -> Any:
        if isinstance(obj, Pieces):
            pieces = []
            for i, shape in enumerate(obj.shapes):
                name = self.unique(f"{obj.source.name}.{obj.op}{i}")
                self.graph.add(
                    Node(
                        name=name,
                        kind=OpKind.RESHAPE,
                        inputs=(obj.source.name,),
                        input_shapes=(obj.source.shape,),
                        output_shape=shape,
                        attrs={"op": obj.op, "index": i},
                        source=s.short if (s := self.source(n)) else "",
                    )
                )
                pieces.append(Dyn(name, shape))
            return tuple(pieces)
        if isinstance(obj, tuple | list):
            return type(obj)(self._materialize(o, n) for o in obj)
        if isinstance(obj, dict):
            return {k: self._materialize(v, n) for k, v in obj.items()}
        return obj

    def _call(self, n: fx.Node) -> Any:
        from autochip.ir import _ops

        args = fx.node.map_arg(n.args, self.values.__getitem__)
        kwargs = fx.node.map_arg(n.kwargs, self.values.__getitem__)
        out = self.summary(n)
        module = self.module_of(n) if n.op == "call_module" else None
        op, display = self.op_name(n, module)
        if op != "getitem":  # a split used whole (torch.cat(x.chunk(2))): one node per piece
            args, kwargs = self._materialize(args, n), self._materialize(kwargs, n)
        vals = list(iter_values((args, kwargs)))
        if not any(isinstance(v, Dyn | Pieces) for v in vals):
            keys: set[str] = set()
            for v in vals:
                if isinstance(v, Const):
                    keys |= v.params
            if module is not None:
                keys |= self.module_params(module, str(n.target))
            if isinstance(out, TensorInfo):
                return Const(out.shape, frozenset(keys))
            if has_tensor(out):
                return tuple(
                    Const(o.shape, frozenset(keys)) if isinstance(o, TensorInfo) else Meta(o)
                    for o in out
                )
            return Meta(out)
        call = Call(
            node=n,
            op=op,
            display=display,
            name="",
            args=tuple(args),
            kwargs=dict(kwargs),
            out=out,
            source=self.source(n),
            module=module,
        )
        if not has_tensor(out) and op in _ops.META_OPS:
            return Meta(out)
        handler = _ops.handler_for(op, module)
        if handler is None:
            call.name = n.name
            raise self.unsupported(call, _ops.why_unsupported(op, module))
        call.name = self.unique(self.preferred_name(n, op))
        if module is not None:
            call.extra["module_params"] = self.module_params(module, str(n.target))
        try:
            return handler(self, call)
        except AutochipError:
            raise
        except Exception as exc:  # an argument pattern the handler does not know
            first = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {first[0] if first else ''}"
            raise self.unsupported(call, f"this use of it is not mapped ({detail})") from exc


def tensor_info(t: torch.Tensor) -> TensorInfo:
    return TensorInfo(tuple(int(d) for d in t.shape), str(t.dtype).removeprefix("torch."))

"""The ONNX front end: an ``.onnx`` file -> the raw AccelGraph (before passes).

An ONNX file is data. It is parsed with the ``onnx`` package only (no onnxruntime, nothing in
it is executed); tensors stored in external files are never read (their shapes are in the
model, and autochip needs no weight values). Shapes come from ``onnx.shape_inference``.

Each ONNX node becomes one ``torch.fx`` call of the ATen operator with the same meaning, with
ONNX attributes turned into that operator's arguments, and the graph is lowered by the same
:class:`~autochip.ir._lower.Lowering` and op table (:mod:`autochip.ir._ops`) as the ``torch.fx``
and ``torch.export`` front ends. Nodes that only compute on constants (shape arithmetic,
``Identity`` of an initializer) are constants, as in the other front ends. An ONNX operator with
no entry in :data:`autochip.ir._onnx_ops.TABLE` is refused with its op type and node name; reading
and shape inference are in :mod:`autochip.ir._onnx_read`.

Parameters: float initializers, except the running statistics of ``BatchNormalization``
(buffers, not parameters, in PyTorch). An initializer that the exporter shared between nodes
(identical tensors) counts once.
"""

from __future__ import annotations

import math
import operator
import re
from pathlib import Path
from typing import Any

from torch import fx, nn

from autochip.errors import AutochipError, TraceError, UnsupportedOpError
from autochip.ir._lower import Call, Lowering
from autochip.ir._onnx_ops import ONNX_OPS, TABLE, WHY, OnnxNode
from autochip.ir._onnx_read import dtype_name, first_line, load_onnx
from autochip.ir._values import Const, Meta, TensorInfo, Value
from autochip.ir.graph import AccelGraph

__all__ = ["ONNX_OPS", "trace_onnx"]


def _onnx_constant(*args: Any) -> None:  # pragma: no cover - never called: a marker target
    """fx target of an ONNX node that computes on constants only (its value is a constant)."""


_SCOPE = re.compile(r"^[A-Za-z_][\w.]*$")


def _pretty(raw: str, op: str, index: int) -> str:
    """``/layer1/layer1.0/conv1/Conv`` (torch.onnx's scope names) -> ``layer1.0.conv1``, the
    module path the PyTorch tracer uses; other names are kept (unsafe characters -> ``_``)."""
    if not raw:
        return f"{op.lower()}_{index}"
    parts = [p for p in raw.split("/") if p]
    if raw.startswith("/") and len(parts) >= 2 and all(_SCOPE.match(p) for p in parts[:-1]):
        path, prev = "", ""  # a scope repeats its parent's name: conv, conv.0, conv.0.0
        for p in parts[:-1]:
            if prev and p.startswith(prev + "."):
                path = path[: len(path) - len(prev)] + p
            else:
                path = f"{path}.{p}" if path else p
            prev = p
        last = parts[-1].split("_")[0]
        module_ops = ("Conv", "ConvTranspose", "Gemm", "BatchNormalization", "LayerNormalization")
        if last in module_ops or path.rsplit(".", 1)[-1].lower() == last.lower():
            return path
        return f"{path}.{parts[-1].lower()}"
    if raw.startswith("/") and len(parts) == 1:  # a function at the top: /Transpose_1
        return parts[0].lower()
    return re.sub(r"[^\w.]", "_", raw.strip("/")) or f"{op.lower()}_{index}"


class _Builder:
    """Builds the fx graph of ATen calls from the inferred ONNX model."""

    def __init__(self, model: Any, path: Path) -> None:
        import onnx
        from onnx import numpy_helper

        self.model = model
        self.path = path
        self.where = f"ONNX file '{path.name}'"
        self.opset = next(
            (int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1
        )
        g = model.graph
        self.graph = fx.Graph()
        self.info: dict[str, Any] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            tt = vi.type.tensor_type
            if vi.type.HasField("tensor_type") and tt.HasField("shape"):
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
                self.info[vi.name] = TensorInfo(dims, dtype_name(tt.elem_type))
        self.inits = {t.name: t for t in g.initializer}
        for t in g.initializer:
            self.info[t.name] = TensorInfo(tuple(int(d) for d in t.dims), dtype_name(t.data_type))
        self.const_protos: dict[str, Any] = dict(self.inits)
        self.aliases: dict[str, str] = {}  # Identity outputs -> their constant source
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                for a in node.attribute:
                    if a.name == "value":
                        self.const_protos[node.output[0]] = a.t
                        self.info[node.output[0]] = TensorInfo(
                            tuple(int(d) for d in a.t.dims), dtype_name(a.t.data_type)
                        )
            elif node.op_type == "Identity" and node.input and node.output:
                self.aliases[node.output[0]] = node.input[0]
        self._numpy = numpy_helper
        self._onnx = onnx
        self.values: dict[str, fx.Node] = {}
        self.dyn: set[str] = set()
        self.inputs = [i for i in g.input if i.name not in self.inits]
        self.param_numel = self._parameters()

    # -- constants and parameters --------------------------------------------------------------
    def _source(self, name: str) -> str:
        seen = 0
        while name in self.aliases and seen < 10_000:
            name, seen = self.aliases[name], seen + 1
        return name

    def constant(self, name: str) -> Any:
        """A small constant tensor's value as a Python scalar or list; ``None`` otherwise."""
        proto = self.const_protos.get(self._source(name))
        if proto is None or math.prod(proto.dims) > 4096:
            return None
        if proto.data_location == self._onnx.TensorProto.EXTERNAL:
            return None
        try:
            value = self._numpy.to_array(proto).tolist()
        except Exception:
            return None
        return value

    def _parameters(self) -> dict[str, int]:
        """Float initializers except BatchNormalization's running mean and variance."""
        stats: set[str] = set()
        used: set[str] = set()
        for node in self.model.graph.node:
            for i, name in enumerate(node.input):
                src = self._source(name)
                if node.op_type == "BatchNormalization" and i in (3, 4):
                    stats.add(src)
                elif name:
                    used.add(src)
        out = {}
        for name, t in self.inits.items():
            is_float = dtype_name(t.data_type).startswith(("float", "bfloat"))
            if is_float and (name not in stats or name in used):
                out[name] = math.prod(int(d) for d in t.dims)
        return out

    # -- values --------------------------------------------------------------------------------
    def is_dyn(self, name: str) -> bool:
        return name in self.dyn

    def value(self, name: str, user: OnnxNode) -> fx.Node:
        if name in self.values:
            return self.values[name]
        if name in self.const_protos:
            p = self.graph.placeholder(f"const_{len(self.values)}")
            p.meta.update(onnx_kind="const", onnx_name=name, onnx_summary=self.info.get(name))
            self.values[name] = p
            return p
        raise TraceError(
            f"{self.where}: node '{user.proto.name or user.name}' ({user.op}) reads '{name}', "
            "which no earlier node produces (or which is an output autochip does not map)"
        )

    def _summary(self, n: OnnxNode, i: int) -> Any:
        info = self.info.get(n.proto.output[i])
        if not isinstance(info, TensorInfo) or any(d < 0 for d in info.shape):
            shown = list(info.shape) if isinstance(info, TensorInfo) else "unknown"
            raise TraceError(
                f"{self.where}: node '{n.proto.name or n.name}' ({n.op}): expected a known shape "
                f"with non-negative sizes for output '{n.proto.output[i]}', found {shown} after "
                "shape inference (-1: unknown); export the model with a fixed input size"
            )
        return info

    # -- the walk ------------------------------------------------------------------------------
    def build(self) -> fx.Graph:
        for inp in self.inputs:
            p = self.graph.placeholder(f"input_{len(self.values)}")
            info = self.info.get(inp.name)
            p.meta.update(onnx_kind="input", onnx_name=inp.name, onnx_summary=info)
            self.values[inp.name] = p
            self.dyn.add(inp.name)
        for index, proto in enumerate(self.model.graph.node):
            if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
                continue
            self._node(OnnxNode(self, proto, _pretty(proto.name, proto.op_type, index)))
        outs = [self.values[o.name] for o in self.model.graph.output if o.name in self.values]
        self.graph.output(tuple(outs))
        return self.graph

    def _node(self, n: OnnxNode) -> None:
        proto = n.proto
        if proto.domain not in ("", "ai.onnx"):
            raise n.refuse(f"operator of the custom domain '{proto.domain}'")
        live = [name for name in proto.input if name and name in self.dyn]
        if not live:  # computes on constants only (shape arithmetic, Identity of a weight)
            args = tuple(self.value(name, n) for name in proto.input if name)
            fn = self.graph.call_function(_onnx_constant, args)
            fn.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_summary=self._const_summary(n))
            for out in proto.output:
                if out:
                    self.values[out] = fn
            return
        translate = TABLE.get(n.op)
        if translate is None:
            raise n.refuse(WHY.get(n.op, "no mapping for this ONNX operator"))
        try:
            target, args = translate(n)
        except AutochipError:
            raise
        except Exception as exc:  # an attribute pattern the translation does not know
            raise n.refuse(
                f"this use of it is not mapped ({type(exc).__name__}: {first_line(exc)})"
            ) from None
        call = self.graph.call_function(target, args)
        outputs = [o for o in proto.output if o]
        call.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_raw=proto.name)
        if n.op == "Shape":
            shape = n.shape(0)
            start, end = n.attr("start", 0), n.attr("end", len(shape))
            call.meta["onnx_summary"] = tuple(shape[start:end])
            self.values[outputs[0]] = call
            return
        if n.op == "Size":
            call.meta["onnx_summary"] = math.prod(n.shape(0))
            self.values[outputs[0]] = call
            return
        if n.op == "Split":
            call.meta["onnx_summary"] = tuple(self._summary(n, i) for i in range(len(outputs)))
            for i, out in enumerate(outputs):
                item = self.graph.call_function(operator.getitem, (call, i))
                item.meta.update(onnx_op=n.op, onnx_name=n.name, onnx_raw=proto.name,
                                 onnx_summary=call.meta["onnx_summary"][i])  # fmt: skip
                self.values[out] = item
                self.dyn.add(out)
            return
        call.meta["onnx_summary"] = self._summary(n, 0)
        self.values[proto.output[0]] = call
        self.dyn.add(proto.output[0])  # further outputs (indices, mask, statistics): not mapped

    def _const_summary(self, n: OnnxNode) -> Any:
        info = self.info.get(n.proto.output[0]) if n.proto.output else None
        if isinstance(info, TensorInfo) and all(d >= 0 for d in info.shape):
            return info
        return None


class _OnnxLowering(Lowering):
    frontend = "onnx"

    def __init__(self, b: _Builder, name: str) -> None:
        super().__init__(name, b.param_numel, sum(b.param_numel.values()))
        self.b = b

    def summary(self, n: fx.Node) -> Any:
        return n.meta.get("onnx_summary")

    def placeholder(self, n: fx.Node) -> Value:
        info = n.meta.get("onnx_summary")
        name = str(n.meta.get("onnx_name", n.name))
        if n.meta.get("onnx_kind") == "input":
            if not isinstance(info, TensorInfo) or any(d < 0 for d in info.shape):
                raise TraceError(
                    f"{self.b.where}: expected input '{name}' to have a fixed shape, found "
                    f"{list(info.shape) if isinstance(info, TensorInfo) else 'none'}"
                )
            return self.add_input(re.sub(r"[^\w.]", "_", name) or "input", info.shape)
        src = self.b._source(name)
        keys = frozenset({src}) if src in self.param_numel else frozenset()
        return Const(info.shape if isinstance(info, TensorInfo) else None, keys)

    def get_attr(self, n: fx.Node) -> Value:  # pragma: no cover - the builder makes none
        return Meta(None)

    def op_name(self, n: fx.Node, module: nn.Module | None) -> tuple[str, str]:
        op, _ = super().op_name(n, module)
        return op, f"ONNX {n.meta.get('onnx_op', n.name)}"

    def preferred_name(self, n: fx.Node, op: str) -> str:
        return str(n.meta.get("onnx_name", n.name))

    def context(self, n: fx.Node) -> str:
        return self.b.where

    def unsupported(self, call: Call, reason: str = "") -> UnsupportedOpError:
        raw = call.node.meta.get("onnx_raw") or call.name
        return UnsupportedOpError(call.display, str(raw), self.b.where, reason)


def trace_onnx(path: str | Path, name: str | None = None) -> AccelGraph:
    """The raw AccelGraph of an ONNX file (no passes applied)."""
    path = Path(path)
    builder = _Builder(load_onnx(path), path)
    fx_graph = builder.build()
    graph = _OnnxLowering(builder, name or path.stem).run(fx_graph)
    graph.attrs["frontend"] = "onnx"
    return graph

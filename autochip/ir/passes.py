"""Graph passes: objects with one contract each; the graph is validated after every pass.

A pass never mutates its input: ``run(graph)`` returns a new :class:`AccelGraph`. The default
flow (:data:`DEFAULT_FLOW`) is what ``autochip inspect`` shows and the predictor costs:

1. :class:`DropNoOps` removes nodes that leave their input unchanged (dropout, identity,
   contiguous, dtype casts, same-shape views, activation fake-quantisers). A fake-quantiser's
   bit width is recorded on its producer as ``attrs['out_bits']``; parameters of a dropped node
   (a quantiser's scale) move to its producer, or to its first consumer when the producer is
   the graph's input.
2. :class:`FoldBatchNorm` folds a batch-norm into the conv2d/linear that alone feeds it and
   whose output channels it normalises (a linear's only on a 2-D output): the batch-norm node
   disappears, its parameters (scale and shift) are added to the producer's
   ``params`` and its name is recorded in ``attrs['folded_batchnorm']``. MACs are unchanged.
3. :class:`FuseActivation` fuses an activation into the conv2d/linear/matmul/add that alone feeds
   it: the node disappears, its function is recorded in the producer's ``attrs['activation']``,
   its ops and parameters (PReLU slopes) move to the producer.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from autochip.ir.graph import AccelGraph
from autochip.ir.node import COMPUTE_KINDS, Node, OpKind
from autochip.ir.validate import NOOP_OPS, validate

__all__ = [
    "DEFAULT_FLOW",
    "DropNoOps",
    "FoldBatchNorm",
    "FuseActivation",
    "Pass",
    "rebuild",
    "run_passes",
]

_SHAPE_KEEPING_VIEWS = frozenset({"view", "reshape", "unsafe_view", "flatten", "squeeze",
                                  "unsqueeze", "view_as", "reshape_as"})  # fmt: skip


def rebuild(graph: AccelGraph, removed: dict[str, str], updated: dict[str, Node]) -> AccelGraph:
    """A copy of ``graph`` without the ``removed`` nodes (each mapped to the node that replaces it
    as a producer) and with ``updated`` nodes swapped in. Removed nodes must keep shapes."""

    def resolve(name: str) -> str:
        while name in removed:
            name = removed[name]
        return name

    out = AccelGraph(graph.name, attrs=graph.attrs)
    for node in graph:
        if node.name in removed:
            continue
        node = updated.get(node.name, node)
        inputs = tuple(resolve(i) for i in node.inputs)
        out.add(dataclasses.replace(node, inputs=inputs) if inputs != node.inputs else node)
    return out


def _merge_attrs(node: Node, extra: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(node.attrs)
    attrs.update(extra)
    return attrs


class Pass(ABC):
    """One graph transformation: ``run(graph)`` returns a new, valid graph."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, graph: AccelGraph) -> AccelGraph: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class DropNoOps(Pass):
    name = "drop-no-ops"

    def run(self, graph: AccelGraph) -> AccelGraph:
        removed: dict[str, str] = {}
        updated: dict[str, Node] = {}
        # Parameters of a dropped node go to its producer; an input node holds no parameters
        # (it is not a layer), so there they go to the first consumer instead.
        pending: dict[str, int] = {}

        def add_to(name: str, params: int, attrs: dict[str, Any]) -> None:
            node = updated.get(name, graph[name])
            updated[name] = dataclasses.replace(
                node, params=node.params + params, attrs=_merge_attrs(node, attrs)
            )

        for node in graph:
            params = node.params + pending.pop(node.name, 0)
            if not self._drops(node):
                if params != node.params:
                    add_to(node.name, params - node.params, {})
                continue
            src = node.inputs[0]
            while src in removed:
                src = removed[src]
            removed[node.name] = src
            bits = node.attrs.get("a_bits")
            quant = node.attrs.get("op") == "quant_identity" and isinstance(bits, int)
            to_input = graph[src].kind is OpKind.INPUT
            if quant or (params and not to_input):
                add_to(src, 0 if to_input else params, {"out_bits": bits} if quant else {})
            if params and to_input:
                consumers = graph.consumers(node.name)
                if consumers:
                    pending[consumers[0].name] = pending.get(consumers[0].name, 0) + params
        return rebuild(graph, removed, updated)

    @staticmethod
    def _drops(node: Node) -> bool:
        if node.kind is not OpKind.RESHAPE or len(node.inputs) != 1:
            return False
        op = node.attrs.get("op")
        same = node.input_shapes[0] == node.output_shape
        return same and (op in NOOP_OPS or op in _SHAPE_KEEPING_VIEWS)


def _sole_producer(graph: AccelGraph, node: Node, kinds: frozenset[OpKind]) -> Node | None:
    if len(node.inputs) != 1:
        return None
    producer = graph[node.inputs[0]]
    if producer.kind not in kinds or len(graph.consumers(producer.name)) != 1:
        return None
    return producer


class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    into = frozenset({OpKind.CONV2D, OpKind.LINEAR})

    def run(self, graph: AccelGraph) -> AccelGraph:
        removed: dict[str, str] = {}
        updated: dict[str, Node] = {}
        for node in graph:
            if node.kind is not OpKind.BATCHNORM:
                continue
            producer = _sole_producer(graph, node, self.into)
            if producer is None or "folded_batchnorm" in producer.attrs:
                continue
            if producer.output_shape != node.output_shape or "activation" in producer.attrs:
                continue
            if not self._per_output_channel(producer, node):
                continue
            extra: dict[str, Any] = {"folded_batchnorm": node.name}
            if "out_bits" in node.attrs:
                extra["out_bits"] = node.attrs["out_bits"]
            updated[producer.name] = dataclasses.replace(
                producer, params=producer.params + node.params, attrs=_merge_attrs(producer, extra)
            )
            removed[node.name] = producer.name
        return rebuild(graph, removed, updated)

    @staticmethod
    def _per_output_channel(producer: Node, bn: Node) -> bool:
        """A batch-norm folds into the weights only if its channels (axis 1) are the producer's
        output channels: always for a conv, for a linear only on a 2-D (N, K) output."""
        dims = producer.dims
        if dims is None or bn.attrs.get("channels") != dims.K:
            return False
        return producer.kind is OpKind.CONV2D or len(producer.output_shape) == 2


class FuseActivation(Pass):
    name = "fuse-activation"
    into = COMPUTE_KINDS | {OpKind.ADD}

    def run(self, graph: AccelGraph) -> AccelGraph:
        removed: dict[str, str] = {}
        updated: dict[str, Node] = {}
        for node in graph:
            if node.kind is not OpKind.ACTIVATION:
                continue
            producer = _sole_producer(graph, node, frozenset(self.into))
            if producer is None or "activation" in producer.attrs:
                continue
            producer = updated.get(producer.name, producer)
            extra: dict[str, Any] = {
                "activation": node.attrs.get("function", "unknown"),
                "fused_activation": node.name,
            }
            for key in ("negative_slope", "out_bits"):
                if key in node.attrs:
                    extra[key] = node.attrs[key]
            updated[producer.name] = dataclasses.replace(
                producer,
                ops=producer.ops + node.ops,
                params=producer.params + node.params,
                attrs=_merge_attrs(producer, extra),
            )
            removed[node.name] = producer.name
        return rebuild(graph, removed, updated)


DEFAULT_FLOW: tuple[type[Pass], ...] = (DropNoOps, FoldBatchNorm, FuseActivation)


def run_passes(graph: AccelGraph, passes: Sequence[Pass | type[Pass]] = DEFAULT_FLOW) -> AccelGraph:
    """Validate ``graph``, then run each pass and validate its result."""
    validate(graph)
    for p in passes:
        instance = p() if isinstance(p, type) else p
        graph = validate(instance.run(graph))
    return graph

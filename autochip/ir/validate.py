"""Invariants of an AccelGraph, checked after every pass and on every load.

:func:`validate` collects every broken invariant and raises one :class:`GraphError` listing them:
unique names and edges that match each node's ``inputs``; each input shape equal to its
producer's output; shapes consistent with the node's kind and loop dimensions; MACs equal to
the loop nest's product; non-negative counts; JSON-compatible attributes.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from autochip.errors import GraphError, problem_text
from autochip.ir.graph import AccelGraph
from autochip.ir.node import COMPUTE_KINDS, Node, OpKind

__all__ = ["EXPAND_OPS", "NOOP_OPS", "SLICE_OPS", "VIEW_OPS", "validate"]

VIEW_OPS = frozenset(
    {
        "view",
        "reshape",
        "unsafe_view",
        "flatten",
        "unflatten",
        "transpose",
        "permute",
        "t",
        "squeeze",
        "unsqueeze",
        "swapaxes",
        "movedim",
        "view_as",
        "reshape_as",
        "roll",
        "flip",
        "pixel_shuffle",
        "pixel_unshuffle",
        "channel_shuffle",
        "native_channel_shuffle",
    }
)
NOOP_OPS = frozenset(
    {
        "type",
        "double",
        "half",
        "bfloat16",
        "contiguous",
        "clone",
        "detach",
        "alias",
        "dropout",
        "feature_dropout",
        "alpha_dropout",
        "feature_alpha_dropout",
        "identity",
        "to",
        "float",
        "type_as",
        "to_copy",
        "lift_fresh_copy",
        "quant_identity",
        "dropout1d",
        "dropout2d",
        "dropout3d",
    }
)
SLICE_OPS = frozenset(
    {
        "getitem",
        "slice",
        "select",
        "narrow",
        "split",
        "chunk",
        "unbind",
        "tensor_split",
        "split_with_sizes",
    }
)
EXPAND_OPS = frozenset(
    {
        "expand",
        "expand_as",
        "repeat",
        "broadcast_to",
        "upsample",
    }
)
# Padding grows or, with negative amounts (PyTorch crops then), shrinks each dimension.
PAD_OPS = frozenset({"pad", "constant_pad_nd", "zero_pad"})

_SAME_SHAPE = {OpKind.BATCHNORM, OpKind.LAYERNORM, OpKind.ACTIVATION, OpKind.SOFTMAX}
_POOLS = {OpKind.MAXPOOL, OpKind.AVGPOOL}


def _json_ok(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if value is None or isinstance(value, str | int | bool):
        return True
    if isinstance(value, list):
        return all(_json_ok(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ok(v) for k, v in value.items())
    return False


def _broadcast(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        sizes = {s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0} - {1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _conv_extent(size: int, pad: int, dil: int, kernel: int, stride: int) -> int:
    return (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1


def _pool_extent(size: int, pad: int, dil: int, kernel: int, stride: int, ceil: bool) -> int:
    """PyTorch's pooling output size; in ceil mode the last window must start inside the
    input or its left padding."""
    span = size + 2 * pad - dil * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _check_kind(node: Node, problems: list[str]) -> None:
    def bad(msg: str) -> None:
        problems.append(f"node '{node.name}' ({node.kind.value}): {msg}")

    ins, out, d, kind = node.input_shapes, node.output_shape, node.dims, node.kind
    numel = math.prod(out)
    if kind is OpKind.INPUT:
        if node.inputs:
            bad(f"expected no inputs, found {list(node.inputs)}")
        return
    if not node.inputs:
        bad("expected at least one input, found none")
        return
    x = ins[0]
    if (kind in COMPUTE_KINDS or kind in _POOLS) and d is None:
        bad("expected loop dimensions, found none")
        return
    if kind is OpKind.CONV2D and d is not None:
        one_d = node.attrs.get("conv1d") is True  # (N, C, W) -> (N, K, Q) with H = P = R = 1
        in_dims = (d.N, d.C, d.W) if one_d else (d.N, d.C, d.H, d.W)
        out_dims = (d.N, d.K, d.Q) if one_d else (d.N, d.K, d.P, d.Q)
        if len(x) != len(in_dims) or len(out) != len(out_dims):
            bad(f"expected {len(in_dims)}-D input and output, found {list(x)} -> {list(out)}")
        elif one_d and (d.H, d.P, d.R) != (1, 1, 1):
            bad(f"a 1-D convolution needs H = P = R = 1, found {d.H}, {d.P}, {d.R}")
        elif x != in_dims or out != out_dims:
            bad(
                f"shapes {list(x)} -> {list(out)} do not match dims N={d.N} C={d.C} H={d.H} "
                f"W={d.W} K={d.K} P={d.P} Q={d.Q}"
            )
        elif node.attrs.get("padding") != "same" and (
            _conv_extent(d.H, d.pad_h, d.dil_h, d.R, d.stride_h) != d.P
            or _conv_extent(d.W, d.pad_w, d.dil_w, d.S, d.stride_w) != d.Q
        ):
            bad(
                f"output {d.P}x{d.Q} does not follow from input {d.H}x{d.W}, kernel "
                f"{d.R}x{d.S}, stride {d.stride_h}, padding {d.pad_h}, dilation {d.dil_h}"
            )
        if d.C % d.groups or d.K % d.groups:
            bad(f"channels C={d.C}, K={d.K} are not divisible by groups={d.groups}")
    elif kind is OpKind.LINEAR and d is not None:
        left = node.attrs.get("weight_side") == "left" or "equation" in node.attrs
        if numel != d.N * d.K:
            bad(f"N*K = {d.N}*{d.K} does not match the output {list(out)}")
        if not left and (x[-1:] != (d.C,) or out[-1:] != (d.K,)):
            bad(
                f"expected input [..., {d.C}] and output [..., {d.K}], found {list(x)} -> "
                f"{list(out)}"
            )
    elif kind is OpKind.MATMUL and d is not None:
        if len(ins) != 2 or not d.dynamic_weights:
            bad("expected two activation operands (dynamic_weights)")
        if numel != d.N * d.K or (x[-1:] != (d.C,) and "equation" not in node.attrs):
            bad(
                f"dims N={d.N} K={d.K} C={d.C} do not match {[list(s) for s in ins]} -> {list(out)}"
            )
    elif kind in _POOLS and d is not None:
        one_d = node.attrs.get("pool1d") is True
        in_dims = (d.N, d.C, d.W) if one_d else (d.N, d.C, d.H, d.W)
        out_dims = (d.N, d.C, d.Q) if one_d else (d.N, d.C, d.P, d.Q)
        ceil = node.attrs.get("ceil_mode") is True
        if x != in_dims or out != out_dims:
            bad(
                f"shapes {list(x)} -> {list(out)} do not match dims N={d.N} C={d.C} "
                f"{d.H}x{d.W} -> {d.P}x{d.Q}"
            )
        elif not node.attrs.get("adaptive") and (
            _pool_extent(d.H, d.pad_h, d.dil_h, d.R, d.stride_h, ceil) != d.P
            or _pool_extent(d.W, d.pad_w, d.dil_w, d.S, d.stride_w, ceil) != d.Q
        ):
            bad(
                f"output {d.P}x{d.Q} does not follow from input {d.H}x{d.W}, window "
                f"{d.R}x{d.S}, stride {d.stride_h}, padding {d.pad_h}, ceil_mode {ceil}"
            )
    elif kind in _SAME_SHAPE or kind is OpKind.OUTPUT:
        if out != x:
            bad(f"expected the output shape to equal the input {list(x)}, found {list(out)}")
    elif kind in (OpKind.ADD, OpKind.MUL):
        consts = [tuple(s) for s in node.attrs.get("const_shapes", [])]
        if _broadcast([*ins, *consts]) != out:
            bad(f"output {list(out)} is not the broadcast of the operands {[list(s) for s in ins]}")
    elif kind is OpKind.CONCAT:
        parts = [*ins, *(tuple(s) for s in node.attrs.get("const_shapes", []))]
        if sum(math.prod(s) for s in parts) != numel:
            bad(f"output {list(out)} does not hold exactly the operands {[list(s) for s in parts]}")
    elif kind is OpKind.MEAN:
        if numel > math.prod(x):
            bad(f"a reduction cannot grow {list(x)} to {list(out)}")
    elif kind is OpKind.RESHAPE:
        op = node.attrs.get("op", "view")
        n_in = math.prod(x)
        if op in NOOP_OPS and out != x:
            bad(f"'{op}' must keep the shape {list(x)}, found {list(out)}")
        elif op in VIEW_OPS and numel != n_in:
            bad(f"'{op}' must keep {n_in} elements, found {list(x)} -> {list(out)}")
        elif op in SLICE_OPS and numel > n_in:
            bad(f"slice '{op}' cannot grow {list(x)} to {list(out)}")
        elif op in EXPAND_OPS and numel < n_in:
            bad(f"'{op}' cannot shrink {list(x)} to {list(out)}")
        elif op in PAD_OPS and len(out) != len(x):
            bad(f"'{op}' must keep the rank of {list(x)}, found {list(out)}")


def validate(graph: AccelGraph) -> AccelGraph:
    """Check every invariant; raise one :class:`GraphError` listing all problems. Returns graph."""
    problems: list[str] = []
    g = graph.nx
    if not nx.is_directed_acyclic_graph(g):
        problems.append(f"the graph has a cycle: {nx.find_cycle(g)}")
    seen_outputs = 0
    for name in g.nodes:
        node: Node = g.nodes[name]["node"]
        where = f"node '{name}'"
        if node.name != name:
            problems.append(f"{where}: stored under a different name '{node.name}'")
        preds = set(g.predecessors(name))
        if preds != set(node.inputs):
            problems.append(
                f"{where}: edges from {sorted(preds)} do not match inputs {list(node.inputs)}"
            )
        if len(node.input_shapes) != len(node.inputs):
            problems.append(
                f"{where}: {len(node.inputs)} inputs but {len(node.input_shapes)} input shapes"
            )
            continue
        for src, shape in zip(node.inputs, node.input_shapes, strict=True):
            if src in g and g.nodes[src]["node"].output_shape != shape:
                found = list(g.nodes[src]["node"].output_shape)
                problems.append(
                    f"{where}: input '{src}' has shape {found}, recorded as {list(shape)}"
                )
        for field_name in ("macs", "ops", "params"):
            value = getattr(node, field_name)
            if not isinstance(value, int) or value < 0:
                problems.append(
                    f"{where}: {field_name} must be a non-negative integer, not {value!r}"
                )
        if not 0.0 <= node.sparsity <= 1.0:
            problems.append(f"{where}: sparsity must be in [0, 1], not {node.sparsity}")
        if any(dim < 0 for dim in node.output_shape):
            problems.append(f"{where}: negative output shape {list(node.output_shape)}")
        if node.is_compute:
            if node.dims is not None and node.macs != node.dims.macs:
                problems.append(
                    f"{where}: macs {node.macs} differ from the loop nest's {node.dims.macs}"
                )
        elif node.macs:
            problems.append(f"{where}: only conv2d/linear/matmul count MACs, found {node.macs}")
        if not _json_ok(node.attrs):
            problems.append(
                f"{where}: attrs must hold JSON values (str, int, finite float, bool, None, "
                f"list, dict), found {node.attrs!r}"
            )
        seen_outputs += node.kind is OpKind.OUTPUT
        _check_kind(node, problems)
    if len(graph) and not seen_outputs:
        problems.append("expected at least one output node, found none")
    if problems:
        raise GraphError(problem_text(f"graph '{graph.name}'", problems))
    return graph

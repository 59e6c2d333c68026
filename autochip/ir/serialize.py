"""Lossless JSON for AccelGraph: ``load_graph(save_graph(g))`` has equal nodes, edges and attrs.

Format (``format: autochip.accelgraph``, ``version: 1``): the graph's name and attrs, and the
nodes in topological order, each with every field of :class:`~autochip.ir.node.Node`.
Loading checks every field (what was expected, what was found, which node) and then validates
the graph.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from autochip._safeio import atomic_write_text
from autochip.errors import GraphError
from autochip.ir.graph import AccelGraph
from autochip.ir.node import Arithmetic, LoopDims, Node, OpKind
from autochip.ir.validate import validate

__all__ = ["FORMAT", "VERSION", "graph_from_dict", "graph_to_dict", "load_graph", "save_graph"]

FORMAT = "autochip.accelgraph"
VERSION = 1
# Upper bounds of what a graph file may hold (named in the messages).
MAX_GRAPH_BYTES = 1 << 26  # 64 MiB of JSON
MAX_NODES = 100_000
MAX_DIM = 1 << 31  # one tensor dimension or loop bound
MAX_RANK = 8  # dimensions of one tensor
MAX_COUNT = 1 << 53  # macs, ops, params of one node
MAX_BITS = 64  # w_bits, a_bits, acc_bits
_NODE_FIELDS = [f.name for f in dataclasses.fields(Node)]
_DIM_FIELDS = {f.name: f.type for f in dataclasses.fields(LoopDims)}
_ARITH_FIELDS = [f.name for f in dataclasses.fields(Arithmetic)]


def _node_to_dict(node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "kind": node.kind.value,
        "inputs": list(node.inputs),
        "input_shapes": [list(s) for s in node.input_shapes],
        "output_shape": list(node.output_shape),
        "dims": dataclasses.asdict(node.dims) if node.dims is not None else None,
        "macs": node.macs,
        "ops": node.ops,
        "params": node.params,
        "arithmetic": dataclasses.asdict(node.arithmetic),
        "sparsity": node.sparsity,
        "attrs": node.attrs,
        "source": node.source,
    }


def graph_to_dict(graph: AccelGraph) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "attrs": graph.attrs,
        "nodes": [_node_to_dict(n) for n in graph],
    }


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise ValueError(f"expected a list of non-negative integers, found {value!r}"[:300])
    if len(value) > MAX_RANK or any(d > MAX_DIM for d in value):
        raise ValueError(
            f"expected at most {MAX_RANK} dimensions (MAX_RANK) of at most {MAX_DIM} (MAX_DIM), "
            f"found {value!r}"[:300]
        )
    return tuple(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"expected an integer in [0, {MAX_COUNT}] (MAX_COUNT), found {value!r}")
    return value


def _node_from_dict(d: Any, where: str) -> Node:
    if not isinstance(d, dict):
        raise ValueError(f"expected an object, found {type(d).__name__}")
    missing = [f for f in _NODE_FIELDS if f not in d]
    unknown = sorted(set(d) - set(_NODE_FIELDS))
    if missing or unknown:
        raise ValueError(
            f"expected the fields {_NODE_FIELDS}; missing {missing}, unknown {unknown}"
        )
    dims = d["dims"]
    if dims is not None:
        if not isinstance(dims, dict) or set(dims) != set(_DIM_FIELDS):
            raise ValueError(f"dims: expected the fields {sorted(_DIM_FIELDS)}, found {dims!r}")
        for k, v in dims.items():
            ok = (
                isinstance(v, bool)
                if k == "dynamic_weights"
                else (isinstance(v, int) and not isinstance(v, bool))
            )
            if ok and not isinstance(v, bool) and not 0 <= v <= MAX_DIM:
                ok = False
            if not ok:
                expected = "a bool" if k == "dynamic_weights" else f"an integer in [0, {MAX_DIM}]"
                raise ValueError(f"dims.{k}: expected {expected}, found {v!r}")
        dims = LoopDims(**dims)
    arith = d["arithmetic"]
    if not isinstance(arith, dict) or set(arith) != set(_ARITH_FIELDS):
        raise ValueError(f"arithmetic: expected the fields {_ARITH_FIELDS}, found {arith!r}")
    for k in ("w_bits", "a_bits", "acc_bits"):
        bits = arith[k]
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
            raise ValueError(f"arithmetic.{k}: expected 1..{MAX_BITS} (MAX_BITS), found {bits!r}")
    if not all(isinstance(arith[k], str) for k in ("kind", "dtype")):
        raise ValueError(f"arithmetic: expected kind and dtype as text, found {arith!r}")
    sparsity = d["sparsity"]
    if (
        not isinstance(sparsity, int | float)
        or isinstance(sparsity, bool)
        or not 0 <= sparsity <= 1
    ):
        raise ValueError(f"sparsity: expected a number in [0, 1], found {sparsity!r}")
    if not isinstance(d["name"], str) or not d["name"]:
        raise ValueError(f"name: expected a non-empty string, found {d['name']!r}")
    if not isinstance(d["attrs"], dict) or not isinstance(d["source"], str):
        raise ValueError("attrs: expected an object and source: a string")
    if not isinstance(d["inputs"], list) or not all(isinstance(i, str) for i in d["inputs"]):
        raise ValueError(f"inputs: expected a list of node names, found {d['inputs']!r}")
    if not isinstance(d["input_shapes"], list):
        raise ValueError(f"input_shapes: expected a list of shapes, found {d['input_shapes']!r}")
    try:
        kind = OpKind(d["kind"])
    except ValueError:
        raise ValueError(
            f"kind: expected one of {[k.value for k in OpKind]}, found {d['kind']!r}"
        ) from None
    return Node(
        name=str(d["name"]),
        kind=kind,
        inputs=tuple(d["inputs"]),
        input_shapes=tuple(_shape(s) for s in d["input_shapes"]),
        output_shape=_shape(d["output_shape"]),
        dims=dims,
        macs=_int(d["macs"]),
        ops=_int(d["ops"]),
        params=_int(d["params"]),
        arithmetic=Arithmetic(**arith),
        sparsity=float(sparsity) if isinstance(sparsity, int) else sparsity,
        attrs=d["attrs"],
        source=d["source"],
    )


def graph_from_dict(data: Any, source: str = "<dict>") -> AccelGraph:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise GraphError(f"{source}: expected an AccelGraph JSON object with format "
                         f"'{FORMAT}', found {found!r}")  # fmt: skip
    if data.get("version") != VERSION:
        raise GraphError(f"{source}: expected version {VERSION}, found {data.get('version')!r}")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not isinstance(data.get("attrs", {}), dict):
        raise GraphError(f"{source}: expected 'nodes' to be a list and 'attrs' an object")
    if len(nodes) > MAX_NODES:
        raise GraphError(f"{source}: expected at most {MAX_NODES} nodes (MAX_NODES), "
                         f"found {len(nodes)}")  # fmt: skip
    graph = AccelGraph(str(data.get("name", "model")), attrs=data.get("attrs", {}))
    problems = []
    broken: set[str] = set()  # nodes that failed, so their consumers are skipped, not reported
    for i, d in enumerate(nodes):
        name = d.get("name", f"#{i}") if isinstance(d, dict) else f"#{i}"
        where = f"nodes[{i}] ('{name}')"
        try:
            node = _node_from_dict(d, where)
        except (ValueError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            broken.add(str(name))
            continue
        if broken.intersection(node.inputs):
            broken.add(node.name)
            continue
        try:
            graph.add(node)
        except GraphError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise GraphError(f"{source}: {len(problems)} problem(s):\n{lines}")
    try:
        return validate(graph)
    except GraphError as exc:
        raise GraphError(f"{source}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
        # a combination of fields the validator's own checks did not foresee: still bad input
        raise GraphError(f"{source}: invalid graph: {type(exc).__name__}: {exc}"[:400]) from None


def save_graph(graph: AccelGraph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` as JSON (atomically: nothing is left half-written on failure)."""
    text = json.dumps(graph_to_dict(graph), indent=1, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"expected finite numbers, found {text[:40]}")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"expected finite numbers, found {text}")


def load_graph(path: str | os.PathLike[str]) -> AccelGraph:
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"expected an AccelGraph JSON file, found no file at '{p}'")
    size = p.stat().st_size
    if size > MAX_GRAPH_BYTES:
        raise GraphError(
            f"{p}: expected at most {MAX_GRAPH_BYTES} bytes (MAX_GRAPH_BYTES), found {size}"
        )
    try:
        data = json.loads(
            p.read_text(encoding="utf-8"), parse_float=_finite, parse_constant=_no_constant
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise GraphError(f"{p}: invalid JSON: {str(exc)[:200]}") from None
    except OSError as exc:
        raise GraphError(f"{p}: expected a readable file, found: {exc.strerror}") from None
    return graph_from_dict(data, str(p))

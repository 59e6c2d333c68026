"""Lossless JSON for AccelGraph: ``load_graph(save_graph(g))`` has equal nodes, edges and attrs.

Format (``format: autochip.accelgraph``, ``version: 1``): the graph's name and attrs, and the
nodes in topological order, each with every field of :class:`~autochip.ir.node.Node`.
Loading checks every field (what was expected, what was found, which node) and then validates
the graph.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from autochip.errors import GraphError
from autochip.ir.graph import AccelGraph
from autochip.ir.node import Arithmetic, LoopDims, Node, OpKind
from autochip.ir.validate import validate

__all__ = ["FORMAT", "VERSION", "graph_from_dict", "graph_to_dict", "load_graph", "save_graph"]

FORMAT = "autochip.accelgraph"
VERSION = 1
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
    if not isinstance(value, list) or not all(isinstance(d, int) and d >= 0 for d in value):
        raise ValueError(f"expected a list of non-negative integers, found {value!r}")
    return tuple(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, found {value!r}")
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
            if not ok:
                expected = "a bool" if k == "dynamic_weights" else "an integer"
                raise ValueError(f"dims.{k}: expected {expected}, found {v!r}")
        dims = LoopDims(**dims)
    arith = d["arithmetic"]
    if not isinstance(arith, dict) or set(arith) != set(_ARITH_FIELDS):
        raise ValueError(f"arithmetic: expected the fields {_ARITH_FIELDS}, found {arith!r}")
    sparsity = d["sparsity"]
    if not isinstance(sparsity, int | float) or isinstance(sparsity, bool):
        raise ValueError(f"sparsity: expected a number, found {sparsity!r}")
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


def save_graph(graph: AccelGraph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` as JSON (atomically: nothing is left half-written on failure)."""
    p = Path(path)
    text = json.dumps(graph_to_dict(graph), indent=1, allow_nan=False) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def load_graph(path: str | os.PathLike[str]) -> AccelGraph:
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"expected an AccelGraph JSON file, found no file at '{p}'")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraphError(f"{p}: invalid JSON: {exc}") from None
    return graph_from_dict(data, str(p))

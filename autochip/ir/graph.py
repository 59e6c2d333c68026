"""AccelGraph: a DAG of :class:`Node` on networkx, in a deterministic topological order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx

from autochip.errors import GraphError
from autochip.ir.node import Node

__all__ = ["AccelGraph"]


class AccelGraph:
    """The workload: nodes keyed by unique name, edges from producer to consumer.

    Nodes are immutable; passes build a new graph (or replace nodes with :meth:`replace`).
    """

    def __init__(self, name: str = "model", attrs: dict[str, Any] | None = None) -> None:
        self.name = name
        #: graph-level facts with JSON-compatible values, e.g. ``model_params`` (the PyTorch
        #: model's parameter count before any folding) and ``frontend`` (``fx`` or ``export``).
        self.attrs: dict[str, Any] = dict(attrs or {})
        self._g: nx.DiGraph = nx.DiGraph()

    # -- construction -------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.name in self._g:
            raise GraphError(f"graph '{self.name}': duplicate node name '{node.name}'")
        for src in node.inputs:
            if src not in self._g:
                raise GraphError(
                    f"graph '{self.name}': node '{node.name}' reads '{src}', "
                    "which is not in the graph yet (nodes must be added in dataflow order)"
                )
        self._g.add_node(node.name, node=node, order=self._g.number_of_nodes())
        for i, src in enumerate(node.inputs):
            self._g.add_edge(src, node.name, operand=i)
        return node

    def replace(self, node: Node) -> None:
        """Swap the node of the same name (same inputs) for ``node``."""
        old = self[node.name]
        if old.inputs != node.inputs:
            raise GraphError(
                f"graph '{self.name}': replace() of '{node.name}' must keep its inputs "
                f"{old.inputs}, got {node.inputs}"
            )
        self._g.nodes[node.name]["node"] = node

    # -- access -------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Node:
        try:
            node: Node = self._g.nodes[name]["node"]
        except KeyError:
            raise GraphError(f"graph '{self.name}' has no node '{name}'") from None
        return node

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __len__(self) -> int:
        return int(self._g.number_of_nodes())

    def __iter__(self) -> Iterator[Node]:
        """Nodes in topological order, ties broken by insertion order (deterministic)."""
        order = nx.lexicographical_topological_sort(
            self._g, key=lambda n: self._g.nodes[n]["order"]
        )
        for name in order:
            yield self._g.nodes[name]["node"]

    def nodes(self) -> list[Node]:
        return list(self)

    def consumers(self, name: str) -> list[Node]:
        return [self[c] for c in sorted(self._g.successors(name), key=self._order)]

    def producers(self, name: str) -> list[Node]:
        return [self[p] for p in self[name].inputs]

    def _order(self, name: str) -> int:
        order: int = self._g.nodes[name]["order"]
        return order

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of all conv, linear and matmul nodes."""
        return sum(n.macs for n in self)

    @property
    def total_params(self) -> int:
        """The PyTorch model's parameter count (``attrs['model_params']``), else the nodes' sum."""
        value = self.attrs.get("model_params")
        return int(value) if isinstance(value, int) else sum(n.params for n in self)

    def outputs(self) -> list[Node]:
        """Nodes of kind ``output``, in order."""
        return [n for n in self if n.kind.value == "output"]

    def __repr__(self) -> str:
        return f"AccelGraph({self.name!r}, {len(self)} nodes, {self.total_macs} MACs)"

    @property
    def nx(self) -> nx.DiGraph:
        """The underlying networkx graph (read-only use)."""
        return self._g

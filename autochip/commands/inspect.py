"""Show a model's AccelGraph: per-layer shapes, MACs, parameters and arithmetic.

MODEL is a zoo name (see models/), a .py file defining build_model() and example_input(),
a torch.export .pt2 file, an ONNX .onnx file, a compressed checkpoint .pt, or a saved
AccelGraph .json.
The graph is shown after the default passes (batch-norm folded, activations fused, no-ops
dropped) unless --raw is given. MACs count conv, linear and matmul layers; total_params is the
PyTorch model's parameter count before folding.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

from autochip._safeio import (
    atomic_write_text,
    output_file_problems,
    raise_output_problems,
    user_code,
)
from autochip.errors import SpecError
from autochip.ir.graph import AccelGraph
from autochip.ir.node import Node, OpKind

__all__ = ["add_arguments", "layer_records", "run", "summary"]

_HIDDEN = (OpKind.INPUT, OpKind.OUTPUT)
_CSV_COLUMNS = ("name", "kind", "input_shapes", "output_shape", "macs", "ops", "params",
                "arithmetic", "activation", "sparsity", "source")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="zoo name, .py, .pt2, .pt or .json file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--csv", metavar="FILE", help="also write the layer table as CSV")
    parser.add_argument("--save", metavar="FILE", help="also save the AccelGraph as JSON")
    parser.add_argument("--raw", action="store_true", help="show the traced graph before passes")
    parser.add_argument(
        "--model-code",
        metavar="FILE.py",
        help="the model's Python file, when a checkpoint names one",
    )


def _layers(graph: AccelGraph) -> list[Node]:
    return [n for n in graph if n.kind not in _HIDDEN]


def layer_records(graph: AccelGraph) -> list[dict[str, Any]]:
    """One JSON-ready record per layer (input and output nodes are not layers)."""
    records = []
    for n in _layers(graph):
        records.append(
            {
                "name": n.name,
                "kind": n.kind.value,
                "macs": n.macs,
                "params": n.params,
                "ops": n.ops,
                "input_shapes": [list(s) for s in n.input_shapes],
                "output_shape": list(n.output_shape),
                "inputs": list(n.inputs),
                "arithmetic": n.arithmetic.label if n.is_compute else None,
                "sparsity": n.sparsity,
                "attrs": n.attrs,
                "source": n.source,
            }
        )
    return records


def summary(graph: AccelGraph) -> dict[str, Any]:
    """What ``--json`` prints."""
    inputs = [list(n.output_shape) for n in graph if n.kind is OpKind.INPUT]
    return {
        "model": graph.name,
        "frontend": graph.attrs.get("frontend", ""),
        "input_shapes": inputs,
        "total_macs": graph.total_macs,
        "total_params": graph.total_params,
        "layers": layer_records(graph),
    }


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _notes(n: Node) -> str:
    parts = []
    if "folded_batchnorm" in n.attrs:
        parts.append("+bn")
    if "activation" in n.attrs:
        parts.append(f"+{n.attrs['activation']}")
    if n.dims is not None and n.kind is OpKind.CONV2D:
        d = n.dims
        parts.append(f"k{d.R}x{d.S} s{d.stride_h}")
        if d.dil_h > 1 or d.dil_w > 1:
            parts.append(f"d{d.dil_h}")
        if d.groups > 1:
            parts.append("dw" if n.attrs.get("depthwise") else f"g{d.groups}")
    if n.attrs.get("ceil_mode"):
        parts.append("ceil")
    if n.kind is OpKind.ACTIVATION:
        parts.append(str(n.attrs.get("function", "")))
    if n.kind is OpKind.RESHAPE:
        parts.append(str(n.attrs.get("op", "")))
    if n.sparsity:
        parts.append(f"sparsity {n.sparsity:.2f}")
    return " ".join(parts)


def _row(n: Node) -> list[str]:
    return [
        n.name,
        n.kind.value,
        ", ".join(_shape(s) for s in n.input_shapes),
        _shape(n.output_shape),
        f"{n.macs:,}",
        f"{n.params:,}",
        n.arithmetic.label if n.is_compute else "-",
        _notes(n),
    ]


def render_table(graph: AccelGraph) -> str:
    head = ["layer", "kind", "input", "output", "MACs", "params", "arith", "notes"]
    rows = [_row(n) for n in _layers(graph)]
    total = ["total", "", "", "", f"{graph.total_macs:,}", f"{graph.total_params:,}", "", ""]
    right = {4, 5}
    widths = [max(len(r[i]) for r in [head, *rows, total]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    inputs = ", ".join(_shape(n.output_shape) for n in graph if n.kind is OpKind.INPUT)
    layer_params = sum(n.params for n in graph)
    lines = [
        f"model {graph.name}  input {inputs}  traced with {graph.attrs.get('frontend', '?')}",
        "",
        line(head),
        rule,
        *(line(r) for r in rows),
        rule,
        line(total),
        "",
        f"{len(rows)} layers, {_si(graph.total_macs)} MACs (conv, linear, matmul), "
        f"{_si(graph.total_params)} parameters",
    ]
    if layer_params != graph.total_params:
        lines.append(
            f"note: layers account for {layer_params:,} parameters; the rest are not used "
            "by forward()"
        )
    return "\n".join(lines) + "\n"


def _check_path(path_arg: str, what: str) -> None:
    path = Path(path_arg)
    if path.is_dir():
        raise SpecError(f"--{what}", [f"expected a file path, found the directory '{path}'"])
    if not path.parent.is_dir():
        raise SpecError(
            f"--{what}",
            [f"expected the directory '{path.parent}' of '{path}' to exist, found none"],
        )


def _write_text(path_arg: str, text: str) -> None:
    atomic_write_text(path_arg, text)


def render_csv(graph: AccelGraph) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for n in _layers(graph):
        writer.writerow([
            n.name, n.kind.value, " ".join(_shape(s) for s in n.input_shapes),
            _shape(n.output_shape), n.macs, n.ops, n.params,
            n.arithmetic.label if n.is_compute else "", n.attrs.get("activation", ""),
            n.sparsity, n.source,
        ])  # fmt: skip
    return buf.getvalue()


def _graph(args: argparse.Namespace) -> AccelGraph:
    from autochip import ir, modelio

    spec = str(args.model)
    if spec.lower().endswith(".json"):
        return ir.run_passes(ir.load_graph(spec), ())
    if not args.raw:
        return modelio.graph_for(spec, args.model_code)
    if spec.lower().endswith(".onnx"):
        from autochip.ir._onnx import trace_onnx

        return ir.validate(trace_onnx(spec))
    loaded = modelio.load_model(spec, args.model_code)
    model = loaded.program if loaded.program is not None else loaded.model
    return ir.validate(ir.trace(model, loaded.example_input, loaded.name))


def run(args: argparse.Namespace) -> int:
    from autochip.ir.serialize import graph_to_dict

    for what in ("csv", "save"):
        if getattr(args, what):
            _check_path(getattr(args, what), what)
            raise_output_problems(
                f"--{what}", output_file_problems(f"--{what}", getattr(args, what))
            )
    with user_code(f"MODEL '{args.model}'"):
        graph = _graph(args)
    # Prepare every output first, so that nothing is written if one of them fails.
    csv_text = render_csv(graph) if args.csv else None
    graph_text = (
        json.dumps(graph_to_dict(graph), indent=1, allow_nan=False) + "\n" if args.save else None
    )
    if args.csv and csv_text is not None:
        _write_text(args.csv, csv_text)
    if args.save and graph_text is not None:
        _write_text(args.save, graph_text)
    if args.json:
        print(json.dumps(summary(graph), allow_nan=False))
    else:
        print(render_table(graph), end="")
        for what, path in (("layer table", args.csv), ("graph", args.save)):
            if path:
                print(f"wrote {what} to {path}")
    return 0


def _si(value: int) -> str:
    """``35,880`` -> ``35.88 k``; ``1,814,073,344`` -> ``1.814 G`` (4 significant digits)."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.4g} {prefix}"
    return str(value)

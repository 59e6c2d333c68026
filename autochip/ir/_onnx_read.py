"""Reading an ONNX file as data, and its shapes: the first half of the ONNX front end.

``load_onnx(path)``: ``onnx.load_model`` without external data (never opened), names checked
to be text, values of large initializers dropped (only dims and types are read), a symbolic
batch dimension fixed to 1, the first unmapped operator on the input's dataflow refused, and
shapes inferred with the input-independent integer arithmetic folded (bounded, standard
operators only, evaluated by ``onnx.reference``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from autochip.errors import ModelLoadError, TraceError, UnsupportedOpError
from autochip.ir._onnx_ops import TABLE, WHY

__all__ = ["MAX_BYTES", "dtype_name", "first_line", "load_onnx"]

#: Largest ONNX file read (protobuf's own limit is 2 GiB).
MAX_BYTES = 2**31 - 1


def _read(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise ModelLoadError(f"expected an ONNX model file, found no file at '{path}'")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ModelLoadError(
            f"'{path}': expected an ONNX file of at most {MAX_BYTES} bytes (protobuf limit), "
            f"found {size} bytes"
        )
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(
            f"'{path}': expected an ONNX model (protobuf ModelProto), reading it failed: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelLoadError(f"'{path}': expected an ONNX model with a graph, found none")
    _check_text(model, path)
    _drop_weight_values(model)
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception as exc:
            raise ModelLoadError(
                f"'{path}': inlining the model's local functions failed: {first_line(exc)}"
            ) from None
    return model


def _drop_weight_values(model: Any) -> None:
    """Free the values of large initializers: only their dims and type are ever read, and
    shape inference then copies a model of kilobytes instead of the weights (VGG-16: 553 MB)."""
    for t in model.graph.initializer:
        if math.prod(t.dims) > _FOLD_LIMIT:
            for name in ("raw_data", "float_data", "double_data", "int32_data", "int64_data",
                         "uint64_data", "string_data"):  # fmt: skip
                t.ClearField(name)


def _check_text(model: Any, path: Path) -> None:
    """Every name autochip reads must be text (protobuf hands over bytes that are not UTF-8)."""
    g = model.graph
    fields: list[tuple[str, Any]] = [("graph input", v.name) for v in g.input]
    fields += [("graph output", v.name) for v in g.output]
    fields += [("initializer", t.name) for t in g.initializer]
    for i, node in enumerate(g.node):
        where = f"node {i}"
        fields += [(where, node.name), (where, node.op_type), (where, node.domain)]
        fields += [(where, v) for v in (*node.input, *node.output)]
        fields += [(where, a.name) for a in node.attribute]
    fields += [("opset import", o.domain) for o in model.opset_import]
    for where, value in fields:
        if not isinstance(value, str):
            raise ModelLoadError(
                f"'{path}': expected UTF-8 text for every name, found {value[:40]!r} in {where}"
            )


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _static_inputs(model: Any, path: Path) -> None:
    """Symbolic batch dimensions (``dim_param``) of the inputs become 1; others are an error."""
    inits = {t.name for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or not tt.HasField("shape"):
            raise TraceError(
                f"'{path}': expected input '{inp.name}' to be a tensor of known rank, found "
                "no shape"
            )
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if i == 0:
                d.Clear()
                d.dim_value = 1
                continue
            raise TraceError(
                f"'{path}': expected input '{inp.name}' to have a fixed size in dimension {i} "
                f"(only the batch dimension may be symbolic), found "
                f"'{d.dim_param or '?'}'; export the model with a fixed input size"
            )


def _check_operators(model: Any, path: Path) -> None:
    """Refuse, before anything else, the first operator on the input's dataflow that has no
    mapping (custom domains, control flow, operators missing from :data:`TABLE`)."""
    inits = {t.name for t in model.graph.initializer}
    live = {i.name for i in model.graph.input if i.name not in inits}
    for index, node in enumerate(model.graph.node):
        std = node.domain in ("", "ai.onnx")
        if std and node.op_type in ("Shape", "Size"):
            continue  # metadata of the input: constants from here on
        if not any(i in live for i in node.input if i) and (std or node.input):
            continue  # computes on constants only
        reason = ""
        if not std:
            reason = f"operator of the custom domain '{node.domain}'"
        elif node.op_type not in TABLE:
            reason = WHY.get(node.op_type, "no mapping for this ONNX operator")
        if reason:
            name = node.name or f"{node.op_type.lower()}_{index}"
            raise UnsupportedOpError(
                f"ONNX {node.op_type}", name, f"ONNX file '{path.name}'", reason
            )
        live.update(o for o in node.output if o)


def _infer(model: Any, path: Path) -> Any:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as exc:
        raise TraceError(f"'{path}': ONNX shape inference failed: {first_line(exc)}") from None


#: Largest shape-arithmetic result folded into a constant (elements).
_FOLD_LIMIT = 65536


# Shape arithmetic that may be folded, with how its output size follows from its inputs: no
# operator outside this list is evaluated, and none whose output would exceed _FOLD_LIMIT.
_FOLD_SAME = frozenset(
    {"Cast", "Identity", "Neg", "Abs", "Sign", "Floor", "Ceil", "Not", "Squeeze", "Unsqueeze",
     "Reshape", "Flatten", "Transpose", "Slice", "ReduceProd", "ReduceSum", "ReduceMax",
     "ReduceMin", "Size", "Constant"}
)  # fmt: skip
_FOLD_BROADCAST = frozenset(
    {"Add", "Sub", "Mul", "Div", "Mod", "Min", "Max", "Equal", "Less", "Greater",
     "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where"}
)  # fmt: skip


def _fold_size(op: str, args: list[Any]) -> int | None:
    """Elements the folded node would produce (an upper bound), ``None`` if it is not folded."""
    import numpy as np

    try:
        if op in _FOLD_SAME:
            return max([1, *(int(a.size) for a in args)])
        if op in _FOLD_BROADCAST:
            return math.prod(np.broadcast_shapes(*(a.shape for a in args)))
        if op == "Concat":
            return sum(int(a.size) for a in args)
        if op == "Gather":
            return int(args[0].size) * max(1, int(args[1].size))
        if op == "ConstantOfShape":
            return math.prod(max(0, int(d)) for d in args[0].reshape(-1))
        if op == "Range":
            start, limit, delta = (int(a.reshape(-1)[0]) for a in args)
            return max(0, -(-(limit - start) // delta)) if delta else None
        if op == "Expand":
            return math.prod(np.broadcast_shapes(args[0].shape, tuple(args[1].reshape(-1))))
        if op == "Tile":
            return int(args[0].size) * math.prod(max(0, int(r)) for r in args[1].reshape(-1))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return None


def _fold_shapes(model: Any, path: Path) -> Any:
    """Shape inference, with the input-independent integer arithmetic folded to constants.

    ``torch.onnx`` computes some shapes at run time (``Shape -> Gather -> Concat -> Slice``);
    ONNX shape inference cannot always follow that, so such integer values (``Shape`` of a
    tensor of known shape, and shape-arithmetic nodes whose inputs are all known small integer
    constants and whose result is small) are evaluated with ``onnx.reference`` (numpy, standard
    operators only), become ``Constant`` nodes,
    and inference runs again. Float tensors and everything that depends on the input's values
    are never evaluated.
    """
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = _infer(model, path)
    weights = {t.name for t in model.graph.initializer}  # parameters: never folded into others
    for _ in range(16):
        g = model.graph
        static: dict[str, tuple[int, ...]] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            dims = vi.type.tensor_type.shape.dim
            if vi.type.HasField("tensor_type") and all(d.HasField("dim_value") for d in dims):
                static[vi.name] = tuple(int(d.dim_value) for d in dims)
        known: dict[str, Any] = {}
        for t in g.initializer:
            if 0 <= math.prod(t.dims) <= _FOLD_LIMIT and t.data_location != 1:
                try:
                    value = numpy_helper.to_array(t)
                except Exception:  # data that does not match its dims: not a usable constant
                    continue
                if value.dtype.kind in "iub" or (value.dtype.kind == "f" and t.name not in weights):
                    known[t.name] = value
        folded: dict[str, Any] = {}
        for node in g.node:
            if node.domain not in ("", "ai.onnx") or any(a.type in (5, 10) for a in node.attribute):
                continue  # custom operators and subgraphs (If/Loop/Scan) are never evaluated
            inputs = [i for i in node.input if i]
            if node.op_type == "Shape" and inputs and inputs[0] in static:
                shape = static[inputs[0]]
                start, end = 0, len(shape)
                for a in node.attribute:
                    start = int(a.i) if a.name == "start" else start
                    end = int(a.i) if a.name == "end" else end
                values: Any = [np.array(shape[start:end], dtype=np.int64)]
            elif (not inputs and node.op_type != "Constant") or any(i not in known for i in inputs):
                continue
            elif (
                not 0 <= (_fold_size(node.op_type, [known[i] for i in inputs]) or -1) <= _FOLD_LIMIT
            ):
                continue  # not shape arithmetic, or a result too large to evaluate
            else:
                try:
                    single = helper.make_model(
                        helper.make_graph([node], "fold", [], []), opset_imports=model.opset_import
                    )
                    values = ReferenceEvaluator(single).run(
                        list(node.output), {i: known[i] for i in inputs}
                    )
                except Exception:
                    continue
            arrays = [np.asarray(v) for v in values]
            # float results (Resize scales made by Concat of Constants) only from Constant
            # nodes and folded values, never from the file's initializers (the weights)
            floats_ok = not any(i in weights for i in inputs)
            kinds = "iubf" if floats_ok else "iub"
            if any(a.dtype.kind not in kinds or a.size > _FOLD_LIMIT for a in arrays):
                continue
            for out, a in zip(node.output, arrays, strict=False):
                if out:
                    known[out] = a
                    if node.op_type != "Constant":  # already a constant: kept as it is
                        folded[out] = a
        if not folded:
            return model
        keep = [n for n in g.node if not all(o in folded for o in n.output if o)]
        used = {i for n in keep for i in n.input} | {o.name for o in g.output}
        # folded values become Constant nodes, not initializers: they are not parameters
        consts = [
            helper.make_node("Constant", [], [name], value=numpy_helper.from_array(a, name))
            for name, a in folded.items()
            if name in used
        ]
        del g.node[:]
        g.node.extend([*consts, *keep])
        del g.value_info[:]
        model = _infer(model, path)
    return model


def dtype_name(elem_type: int) -> str:
    import onnx

    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return "unknown"


def load_onnx(path: Path) -> Any:
    """The checked, shape-inferred ``ModelProto`` of an ONNX file (see the module docstring)."""
    model = _read(path)
    _static_inputs(model, path)
    _check_operators(model, path)
    return _fold_shapes(model, path)

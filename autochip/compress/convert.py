"""``convert(model, policy)``: swap conv/linear layers for compressed kinds, insert quantisers.

The model is traced with ``torch.fx``; the result is a ``GraphModule`` with

* every ``nn.Conv2d`` / ``nn.Linear`` replaced by :class:`QuantConv2d` / :class:`QuantLinear`
  (``mac``), :class:`BinaryConv2d` / :class:`BinaryLinear` (``binary``) or
  :class:`AdderConv2d` / :class:`AdderLinear` (``adder``), weights copied;
* an activation quantiser wherever the integer model stores a tensor: on the input of every
  compute layer (a :class:`QuantAct` with the layer's ``a_bits``, or a :class:`BinaryAct` for a
  binary layer), on the inputs of average pooling and residual additions, and on the model output
  (``policy.output_bits``). A tensor that feeds several consumers gets one quantiser per kind.
  Quantisers of tensors that are non-negative (after a ReLU) use the non-negative half;
* a batch-norm after every adder layer that has none (adder outputs are all <= 0), and with
  ``policy.binary_bn`` after every compute layer whose output a binary layer binarises (through
  ReLUs, max pooling and flattening) and that has none: the binariser then thresholds at a
  learned per-channel centre, which the export folds into the integer threshold (and sign flip);
* ReLUs that only feed a binariser removed (``b(relu(v)) == b(v)``; the ReLU would only zero the
  gradient of negative inputs).

The conversion is deterministic, so a checkpoint is rebuilt from (model spec, policy, state dict).
"""

from __future__ import annotations

import copy
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from autochip.compress._epilogue import link
from autochip.compress.adder import AdderConv2d, AdderLinear
from autochip.compress.binary import BinaryAct, BinaryConv2d, BinaryLinear
from autochip.compress.policy import LayerPolicy, Policy
from autochip.compress.quant import QuantAct, QuantConv2d, QuantLinear
from autochip.errors import CompressionError

__all__ = [
    "ADD_FUNCS",
    "AVGPOOL_FUNCS",
    "PASS_FUNCS",
    "RELU_FUNCS",
    "convert",
    "is_add",
    "is_avgpool",
    "is_cat",
    "is_relu",
    "relu_cap",
]

RELU_FUNCS = (F.relu, torch.relu, torch.relu_)
ADD_FUNCS = (operator.add, operator.iadd, torch.add)
AVGPOOL_FUNCS = (F.avg_pool2d, F.adaptive_avg_pool2d, torch.mean)
PASS_FUNCS = (F.max_pool2d, torch.flatten, F.dropout, F.pad, operator.getitem)
_PASS_METHODS = ("flatten", "view", "reshape", "contiguous")
_PASS_MODULES = (nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    mod: nn.Module = gm.get_submodule(str(node.target))
    return mod


def is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    m = _module(gm, node)
    if m is not None:
        return isinstance(m, nn.ReLU)
    if node.op == "call_function":
        return node.target in RELU_FUNCS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def relu_cap(gm: fx.GraphModule, node: fx.Node) -> float | None:
    """The upper bound of a ReLU6 / ``hardtanh(0, top)`` node (a capped ReLU), else None."""
    m = _module(gm, node)
    if isinstance(m, nn.ReLU6):
        return 6.0
    if isinstance(m, nn.Hardtanh):
        return float(m.max_val) if float(m.min_val) == 0.0 else None
    if node.op == "call_function" and node.target is F.relu6:
        return 6.0
    if node.op == "call_function" and node.target is F.hardtanh:
        args: list[Any] = [*node.args[1:], -1.0, 1.0]
        kw: dict[str, Any] = dict(node.kwargs)
        lo = float(kw.get("min_val", args[0]))
        hi = float(kw.get("max_val", args[1]))
        return hi if lo == 0.0 else None
    return None


def is_cat(gm: fx.GraphModule, node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (torch.cat, torch.concat)


def is_avgpool(gm: fx.GraphModule, node: fx.Node) -> bool:
    m = _module(gm, node)
    if m is not None:
        return isinstance(m, nn.AvgPool2d | nn.AdaptiveAvgPool2d)
    if node.op == "call_function":
        return node.target in AVGPOOL_FUNCS
    return node.op == "call_method" and node.target == "mean"


def is_add(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in ADD_FUNCS:
        return True
    return node.op == "call_method" and node.target in ("add", "add_")


def _is_pass(gm: fx.GraphModule, node: fx.Node) -> bool:
    m = _module(gm, node)
    if m is not None:
        return isinstance(m, _PASS_MODULES)
    if node.op == "call_function":
        return node.target in PASS_FUNCS
    return node.op == "call_method" and node.target in _PASS_METHODS


def _nonneg(gm: fx.GraphModule, node: fx.Node) -> bool:
    """True if the tensor of ``node`` is known to be >= 0 (a ReLU output, pooled or reshaped)."""
    if is_relu(gm, node) or relu_cap(gm, node) is not None:
        return True
    if is_cat(gm, node):
        srcs = node.args[0] if isinstance(node.args[0], list | tuple) else []
        return bool(srcs) and all(isinstance(a, fx.Node) and _nonneg(gm, a) for a in srcs)
    m = _module(gm, node)
    if isinstance(m, QuantAct):
        return not m.signed
    if _is_pass(gm, node) or is_avgpool(gm, node):
        src = node.args[0]
        return isinstance(src, fx.Node) and _nonneg(gm, src)
    if is_add(gm, node):
        srcs = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        return len(srcs) == 2 and all(_nonneg(gm, s) for s in srcs)
    return False


def _check_conv(name: str, m: nn.Conv2d) -> None:
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise CompressionError(
            f"layer '{name}': expected numeric zero padding, found padding={m.padding!r}, "
            f"padding_mode={m.padding_mode!r}"
        )


def _make_layer(name: str, m: nn.Module, lp: LayerPolicy, estimator: str) -> nn.Module:
    new: nn.Module
    if isinstance(m, nn.Conv2d):
        _check_conv(name, m)
        args: dict[str, Any] = {
            "in_channels": m.in_channels,
            "out_channels": m.out_channels,
            "kernel_size": m.kernel_size,
            "stride": m.stride,
            "padding": m.padding,
            "dilation": m.dilation,
            "groups": m.groups,
            "bias": m.bias is not None,
        }
        if lp.kind == "mac":
            new = QuantConv2d(**args, w_bits=lp.w_bits, a_bits=lp.a_bits)
        elif lp.kind == "binary":
            new = BinaryConv2d(**args, estimator=estimator)
        else:
            new = AdderConv2d(**args, bits=lp.w_bits)
    else:
        assert isinstance(m, nn.Linear)
        largs: dict[str, Any] = {
            "in_features": m.in_features,
            "out_features": m.out_features,
            "bias": m.bias is not None,
        }
        if lp.kind == "mac":
            new = QuantLinear(**largs, w_bits=lp.w_bits, a_bits=lp.a_bits)
        elif lp.kind == "binary":
            new = BinaryLinear(**largs, estimator=estimator)
        else:
            new = AdderLinear(**largs, bits=lp.w_bits)
    with torch.no_grad():
        new.weight.copy_(m.weight)
        if m.bias is not None and isinstance(new.bias, torch.Tensor):
            new.bias.copy_(m.bias)
    if isinstance(new, QuantConv2d | QuantLinear):
        new.w_quant.init_from(new.weight)
    return new


def _set_module(gm: fx.GraphModule, target: str, new: nn.Module) -> None:
    parent_name, _, leaf = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, leaf, new)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        root = copy.deepcopy(model)
        tracer = fx.Tracer()
        tracer.record_stack_traces = True  # errors can then name the model's source line
        graph = tracer.trace(root)
        name = type(root).__name__
        return fx.GraphModule(tracer.root, graph, name)
    except Exception as exc:  # fx raises many kinds; the user gets one message
        raise CompressionError(
            f"convert: the model could not be traced with torch.fx ({type(exc).__name__}: "
            f"{exc}); compressed conversion needs a model without data-dependent control flow"
        ) from None


def _unique_name(gm: fx.GraphModule, base: str) -> str:
    names = {n for n, _ in gm.named_modules()}
    name, i = base, 1
    while name in names:
        i += 1
        name = f"{base}_{i}"
    return name


def convert(model: nn.Module, policy: Policy) -> fx.GraphModule:
    """Return a compressed copy of ``model`` as laid down by ``policy`` (``model`` is untouched)."""
    gm = _trace(model)
    graph = gm.graph
    for node in graph.nodes:
        if node.op == "call_function" and node.target in (F.conv2d, F.linear, torch.matmul):
            raise CompressionError(
                f"convert: node '{node.name}' calls {node.target.__name__} directly; only "
                "nn.Conv2d / nn.Linear modules can be compressed"
            )
    compute = [
        n
        for n in graph.nodes
        if isinstance(_module(gm, n), nn.Conv2d | nn.Linear)
        and type(_module(gm, n)) in (nn.Conv2d, nn.Linear)
    ]
    if not compute:
        raise CompressionError("convert: the model has no nn.Conv2d or nn.Linear layer to compress")
    targets = [str(n.target) for n in compute]
    if len(set(targets)) != len(targets):
        dup = sorted({t for t in targets if targets.count(t) > 1})
        raise CompressionError(
            f"convert: layer(s) {', '.join(dup)} are called more than once; each compressed "
            "layer needs its own module"
        )
    known = set(targets)
    unknown = [name for name, _ in policy.layers if name not in known]
    if unknown:
        raise CompressionError(
            f"policy names layer(s) {', '.join(unknown)} that are not conv/linear layers of the "
            f"model; its layers are: {', '.join(targets)}"
        )
    kinds: dict[str, LayerPolicy] = {}
    for i, node in enumerate(compute):
        target = str(node.target)
        lp = policy.for_layer(target, i, len(compute))
        kinds[node.name] = lp
        new = _make_layer(target, gm.get_submodule(target), lp, policy.estimator)
        _set_module(gm, target, new)
        if lp.kind == "adder":
            _ensure_bn(gm, node, new)
    if policy.binary_bn:
        for node in compute:
            if kinds[node.name].kind == "binary":
                _binariser_bn(gm, node, {n.name for n in compute})

    # which tensors need a quantiser, and of which kind
    sites: list[tuple[fx.Node, int, tuple[str, int]]] = []  # (consumer, arg index, (kind, bits))
    act_default = policy.default.a_bits if policy.default.kind != "binary" else 8
    for node in list(graph.nodes):
        if node.name in kinds:
            lp = kinds[node.name]
            key = ("binary", 1) if lp.kind == "binary" else ("int", lp.a_bits)
            sites.append((node, 0, key))
        elif is_avgpool(gm, node):
            sites.append((node, 0, ("int", act_default)))
        elif is_add(gm, node):
            for i, a in enumerate(node.args[:2]):
                if isinstance(a, fx.Node):
                    sites.append((node, i, ("int", act_default)))
        elif node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise CompressionError(
                    "convert: the model must return one tensor (the logits), found "
                    f"{type(node.args[0]).__name__}"
                )
            sites.append((node, 0, ("int", policy.output_bits)))

    made: dict[tuple[str, str, int], fx.Node] = {}
    for consumer, idx, (kind, bits) in sites:
        src = consumer.args[idx]
        assert isinstance(src, fx.Node)
        made_key = (src.name, kind, bits)
        if made_key not in made:
            if kind == "binary":
                _drop_relus(gm, src)
                src = consumer.args[idx]
                assert isinstance(src, fx.Node)
                stem = src.name
                if not _from_compute(gm, src, set(kinds)):
                    # A sum, a pooled or concatenated tensor: the integer model stores it
                    # (an int quantiser of its own kind), and the binariser reads that.
                    int_key = (src.name, "int", act_default)
                    if int_key not in made:
                        made[int_key] = _insert_after(gm, src, *_int_act(gm, src, act_default))
                    src = made[int_key]
                made[made_key] = _insert_after(
                    gm, src, _unique_name(gm, f"bq_{stem}"), BinaryAct(policy.estimator)
                )
            else:
                made[made_key] = _insert_after(gm, src, *_int_act(gm, src, bits))
        args = list(consumer.args)
        args[idx] = made[made_key]
        consumer.args = tuple(args)
    for node in graph.nodes:
        if node.name in kinds:
            _link(gm, node)
    if policy.steps == "static":
        for name, p in gm.named_parameters():
            if name.endswith("scale"):
                p.requires_grad_(False)
    graph.lint()
    gm.recompile()
    return gm


def _int_act(gm: fx.GraphModule, src: fx.Node, bits: int) -> tuple[str, QuantAct]:
    """A free name and an integer activation quantiser for ``src``'s tensor."""
    name = _unique_name(gm, f"aq_{src.name}" if bits == 8 else f"aq{bits}_{src.name}")
    return name, QuantAct(bits, signed=not _nonneg(gm, src))


def _insert_after(gm: fx.GraphModule, src: fx.Node, name: str, mod: nn.Module) -> fx.Node:
    """Add ``mod`` to ``gm`` as ``name`` and call it on ``src`` right after ``src``."""
    gm.add_submodule(name, mod)
    with gm.graph.inserting_after(src):
        return gm.graph.call_module(name, (src,))


def _link(gm: fx.GraphModule, node: fx.Node) -> None:
    """Tell a compute layer its input quantiser, its batch-norm and whether it is requantised."""
    layer = gm.get_submodule(str(node.target))
    src = node.args[0]
    q = _module(gm, src) if isinstance(src, fx.Node) else None
    users = list(node.users)
    bn = _module(gm, users[0]) if len(users) == 1 else None
    if not isinstance(bn, nn.BatchNorm2d | nn.BatchNorm1d):
        bn = None
    grid = True
    cur = node
    while len(cur.users) == 1:
        nxt = next(iter(cur.users))
        m = _module(gm, nxt)
        if isinstance(m, BinaryAct):
            grid = False
            break
        if isinstance(m, QuantAct) or not (
            is_relu(gm, nxt)
            or relu_cap(gm, nxt) is not None
            or _is_pass(gm, nxt)
            or isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)
        ):
            break
        cur = nxt
    link(layer, q, bn, grid)


def _ensure_bn(gm: fx.GraphModule, node: fx.Node, layer: nn.Module) -> None:
    users = list(node.users)
    if len(users) == 1 and isinstance(_module(gm, users[0]), nn.BatchNorm2d | nn.BatchNorm1d):
        return
    assert isinstance(layer, nn.Conv2d | nn.Linear)
    k = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
    bn: nn.Module = nn.BatchNorm2d(k) if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d(k)
    name = _unique_name(gm, f"{node.name}_bn")
    gm.add_submodule(name, bn)
    with gm.graph.inserting_after(node):
        bn_node = gm.graph.call_module(name, (node,))
    node.replace_all_uses_with(bn_node, delete_user_cb=lambda u: u is not bn_node)


def _binariser_bn(gm: fx.GraphModule, node: fx.Node, compute: set[str]) -> None:
    """A batch-norm after the compute layer that feeds binary layer ``node``, if it has none.

    Walks back from ``node``'s input over single-user ReLUs and layout ops (max pooling, flatten)
    to a compute layer with one user; anything else (an add, a concatenation, the model input, a
    tensor with several users) is left as it is. Per-channel batch-norm before max pooling is
    exact under binarisation: ``sign(max(y)) = max(sign(y))`` for the folded threshold, and with
    a negative scale the export flips the bit before the (monotone) pooling.
    """
    src = node.args[0]
    while isinstance(src, fx.Node) and len(src.users) == 1:
        if src.name in compute:
            layer = gm.get_submodule(str(src.target))
            _ensure_bn(gm, src, layer)
            return
        if isinstance(_module(gm, src), nn.BatchNorm2d | nn.BatchNorm1d):
            return
        if not (is_relu(gm, src) or _is_pass(gm, src)):
            return
        src = src.args[0]


def _from_compute(gm: fx.GraphModule, src: fx.Node, compute: set[str]) -> bool:
    """True if ``src`` is a compute layer's output through batch-norms, ReLUs and layout ops
    (max pooling, flatten): the export folds its binarisation into that layer's threshold.
    Anything else (an add, average pooling, a concatenation) is binarised from its stored
    integer tensor (``bit = x > 0``; :func:`convert` puts an int quantiser before the
    binariser)."""
    node: Any = src
    while isinstance(node, fx.Node):
        if node.name in compute:
            return True
        m = _module(gm, node)
        if not (
            is_relu(gm, node)
            or relu_cap(gm, node) is not None
            or _is_pass(gm, node)
            or isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)
        ):
            return False
        node = node.args[0]
    return False


def _drop_relus(gm: fx.GraphModule, src: fx.Node) -> None:
    """Remove ReLUs on the single-user chain that ends in ``src`` (they feed a binariser)."""
    node: Any = src
    while isinstance(node, fx.Node):
        if is_relu(gm, node) and len(node.users) == 1:
            inp = node.args[0]
            assert isinstance(inp, fx.Node)
            node.replace_all_uses_with(inp)
            gm.graph.erase_node(node)
            node = inp
            continue
        if (_is_pass(gm, node)) and len(node.users) == 1:
            node = node.args[0]
            continue
        return

"""Post-training quantisation (PTQ): a float model -> an int8 :class:`IntegerModel`, no training.

PTQ is the compression library's quantisation path without the training step:
:func:`~autochip.compress.convert.convert` with an int8 :class:`~autochip.compress.policy.Policy`
(per-output-channel weights, per-tensor activations, zero-point 0: DESIGN "Integer semantics"),
then one calibration pass over inputs that sets every activation step
(:func:`~autochip.compress.quant.calibrate_scale`, ``minmax`` by default), then
:func:`~autochip.compress.export.export_integer`.

Unlike :func:`autochip.compress.train.calibrate` (which prepares quantisation-aware training and
re-estimates batch-norm statistics), PTQ keeps the float model as it is: its batch-norms stay in
eval mode with their running statistics, so the integer model approximates exactly the float
model the user gave.

Calibration inputs (:func:`calibration_inputs`): ``digits``, ``cifar10:PATH`` (the python
batches), ``fashion-mnist`` and dataset folders through :func:`autochip.compress.data.load_data`,
an ``.npy`` of float inputs ``[N, *input shape]``, or, without data, seeded synthetic inputs
(uniform in [0, 1), the range of the loaders' images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx, nn

from autochip.compress.convert import convert
from autochip.compress.data import load_cifar10, load_data
from autochip.compress.export import BiasRangeError, export_integer
from autochip.compress.policy import Policy
from autochip.compress.quant import QuantAct, calibrate_scale
from autochip.errors import CompressionError
from autochip.reference import IntegerModel

__all__ = [
    "CALIBRATION_SAMPLES",
    "SYNTHETIC_SEED",
    "Calibration",
    "calibration_inputs",
    "export_fitting",
    "lift_exported",
    "ptq",
    "sample_budget",
]

CALIBRATION_SAMPLES = 512  # inputs of the calibration pass (as `autochip compress`)
CHECK_INPUTS = 256  # held-out inputs the integer model is compared on
SYNTHETIC_SEED = 0
ACTIVATION_BUDGET = 2**26  # float elements of the largest activation over one batch (256 MB)
CHECK_MACS_BUDGET = 2**31  # MACs of integer reference work to check the quantised model


@dataclass(frozen=True)
class Calibration:
    """Calibration inputs and where they came from (stated in build reports).

    ``x`` feeds the calibration pass; ``x_test`` / ``y_test`` are held-out inputs and labels
    when the source has a test split (``y_test`` is None otherwise).
    """

    source: str  # "digits", "cifar10:PATH", "file.npy", "synthetic (seed 0, uniform [0, 1))"
    x: Tensor
    x_test: Tensor
    y_test: Tensor | None
    synthetic: bool


def _npy(path: Path, shape: tuple[int, ...]) -> Tensor:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CompressionError(f"--calibrate '{path}': not a readable .npy file ({exc})") from None
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape:
        raise CompressionError(
            f"--calibrate '{path}': expected an array of shape (N, {', '.join(map(str, shape))}), "
            f"found {tuple(arr.shape)}"
        )
    if not np.issubdtype(arr.dtype, np.number) or arr.shape[0] < 1:
        raise CompressionError(
            f"--calibrate '{path}': expected at least one numeric input, found dtype {arr.dtype} "
            f"and {arr.shape[0]} inputs"
        )
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def calibration_inputs(
    spec: str | None, shape: tuple[int, ...], samples: int = CALIBRATION_SAMPLES
) -> Calibration:
    """The calibration inputs named by ``spec`` (None: seeded synthetic) for input ``shape``."""
    shape = tuple(int(d) for d in shape)
    if spec is None:
        g = torch.Generator().manual_seed(SYNTHETIC_SEED)
        x = torch.rand((samples, *shape), generator=g)
        xt = torch.rand((samples, *shape), generator=g)
        src = f"synthetic (seed {SYNTHETIC_SEED}, {samples} inputs uniform in [0, 1))"
        return Calibration(src, x, xt, None, True)
    if spec.endswith(".npy"):
        x = _npy(Path(spec), shape)
        return Calibration(spec, x[:samples], x, None, False)
    if spec.startswith("cifar10:"):
        data = load_cifar10(spec.split(":", 1)[1])
        if data.sample_shape != shape:
            raise CompressionError(
                f"--calibrate {spec}: samples have shape {data.sample_shape}, but the model "
                f"expects {shape}"
            )
    else:
        data = load_data(spec, shape)
    return Calibration(spec, data.x_train[:samples], data.x_test, data.y_test, False)


def sample_budget(model: nn.Module, example: Tensor) -> tuple[int, int]:
    """(calibration inputs, check inputs) for ``model``, from one forward pass of ``example``.

    The calibration pass runs as one batch, so its size is capped by the largest activation
    (:data:`ACTIVATION_BUDGET` elements over the batch, at least 8 inputs); the check of the
    integer model against the float one by :data:`CHECK_MACS_BUDGET` MACs (at least 16 inputs):
    LeNet gets 512 / 256, ResNet-20 512 / 52, ResNet-18 at 224 83 / 16.
    """
    largest, macs = 1, 0

    def hook(m: nn.Module, inp: tuple[Any, ...], out: Any) -> None:
        nonlocal largest, macs
        if isinstance(out, Tensor):
            largest = max(largest, out[0].numel())
            if isinstance(m, nn.Conv2d | nn.Linear):
                pixels = out[0].numel() // out.shape[1]
                macs += m.weight.numel() * pixels

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(hook) for m in leaves]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    calib = max(8, min(CALIBRATION_SAMPLES, ACTIVATION_BUDGET // largest))
    check = max(16, min(CHECK_INPUTS, CHECK_MACS_BUDGET // max(1, macs)))
    return calib, check


def _calibrate(gm: nn.Module, x: Tensor, method: str) -> None:
    """One pass over ``x`` setting every activation step; batch-norms keep their statistics."""
    quants = [m for m in gm.modules() if isinstance(m, QuantAct)]

    def observe(q: nn.Module, inp: tuple[Tensor, ...]) -> None:
        assert isinstance(q, QuantAct)
        q.scale.fill_(calibrate_scale(inp[0], q.qp, method, qn=q.qn))

    hooks = [q.register_forward_pre_hook(observe) for q in quants]
    gm.eval()
    grid = [m for m in gm.modules() if "_grid_bias" in m.__dict__]
    for m in grid:
        m.train()  # float bias while the steps downstream are measured (as train.calibrate)
    try:
        with torch.no_grad():
            gm(x)
    finally:
        for h in hooks:
            h.remove()
        gm.eval()


def ptq(
    model: nn.Module,
    example: Tensor,
    x: Tensor,
    policy: Policy | None = None,
    notes: list[str] | None = None,
) -> IntegerModel:
    """Quantise float ``model`` post-training on calibration inputs ``x``; ``model`` untouched.

    ``policy`` defaults to int8 everywhere (per-channel weights, per-tensor activations).

    A layer's folded bias must fit the 32-bit accumulator at its input's step
    (``bias / (step_in * step_w)``). Where activations nearly vanish (untrained weights,
    synthetic calibration) it does not: the step of the activation quantiser feeding that layer
    is then made coarser until the bias fits in half the accumulator
    (:data:`~autochip.compress.export.BIAS_LIMIT`), at most once per quantiser; each change is
    appended to ``notes``. The integer model stays exactly the fake-quantised model with those
    steps, so this only trades resolution the activations did not use.
    """
    pol = policy or Policy()
    if any(lp.kind != "mac" for _, lp in pol.layers) or pol.default.kind != "mac":
        raise CompressionError(
            "ptq: post-training quantisation makes integer MAC layers; binary and adder layers "
            "need training (autochip compress)"
        )
    was = model.training
    model.eval()
    try:
        gm = convert(model, pol)
    finally:
        model.train(was)
    _calibrate(gm, x, pol.calibration)
    return export_fitting(gm, example, notes)


def export_fitting(
    gm: fx.GraphModule, example: Tensor, notes: list[str] | None = None
) -> IntegerModel:
    """:func:`export_integer` of the calibrated ``gm``, making an activation step coarser where
    a folded bias does not fit the accumulator (see :func:`ptq`); changes ``gm``'s steps."""
    raised: set[int] = set()
    while True:
        try:
            return export_integer(gm, example)
        except BiasRangeError as exc:
            q = exc.quant
            if not isinstance(q, QuantAct) or id(q) in raised:
                raise CompressionError(str(exc)) from None
            raised.add(id(q))
            old = float(q.scale.detach())
            with torch.no_grad():
                q.scale.mul_(exc.factor)
            if notes is not None:
                notes.append(
                    f"layer '{exc.layer}': its folded bias did not fit the 32-bit accumulator; "
                    f"its input's activation step {old:.3g} -> {float(q.scale.detach()):.3g}"
                )


# -- torch.export programs ----------------------------------------------------------------------
_INT64_MAX = 2**63 - 1


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent = root
    *heads, leaf = path.split(".")
    for h in heads:
        if not hasattr(parent, h):
            parent.add_module(h, nn.Module())
        parent = getattr(parent, h)
    parent.add_module(leaf, module)


def opt(args: list[Any], i: int, default: Any) -> Any:
    """Positional argument ``i`` of an ATen call, or its default when it is left out."""
    return args[i] if len(args) > i and args[i] is not None else default


def lift_exported(program: Any) -> nn.Module:
    """A ``torch.export`` program (``.pt2``) as an ``fx.GraphModule`` of ``nn.Conv2d`` /
    ``nn.Linear`` / ``nn.BatchNorm`` modules (named after their weights, as in the original
    model) and the functions :func:`convert` knows, so that it can be quantised.

    Covers the ATen ops of CNNs: conv2d, linear, batch_norm, relu, hardtanh / relu6, add,
    max / average / adaptive average pooling, mean over H and W, flatten / view / reshape,
    strided slicing of H and W, constant padding, cat, dropout; any other op is refused by name.
    """
    import operator

    import torch.nn.functional as F
    from torch import fx

    src: fx.GraphModule = program.module()
    root = nn.Module()
    graph = fx.Graph()
    env: dict[str, Any] = {}
    consts: dict[str, Tensor] = {}
    slices: dict[str, tuple[Any, list[Any]]] = {}  # source slice node -> (input, index)

    def fetch(target: str) -> Tensor:
        obj: Any = src
        for part in target.split("."):
            obj = getattr(obj, part)
        return torch.as_tensor(obj).detach().clone()

    def arg(a: Any) -> Any:
        if isinstance(a, fx.Node):
            return consts[a.name] if a.name in consts else env[a.name]
        if isinstance(a, list | tuple):
            return type(a)(arg(x) for x in a)
        return a

    def weight_path(a: Any, suffix: str) -> str:
        target = str(a.target) if isinstance(a, fx.Node) and a.op == "get_attr" else ""
        return target[: -len(suffix)] if target.endswith(suffix) else ""

    def module(node: fx.Node, path: str, m: nn.Module, x: Any) -> Any:
        name = path or node.name
        _set_submodule(root, name, m)
        return graph.call_module(name, (x,))

    aten = torch.ops.aten
    for node in src.graph.nodes:
        a = list(node.args)
        if node.op == "placeholder":
            env[node.name] = graph.placeholder(node.name)
            continue
        if node.op == "get_attr":
            consts[node.name] = fetch(str(node.target))
            continue
        if node.op == "call_module" and str(node.target).startswith("_guards"):
            continue
        if node.op == "output":
            outs = a[0] if isinstance(a[0], list | tuple) else [a[0]]
            if len(outs) != 1:
                raise CompressionError(
                    f".pt2: expected a program with one output, found {len(outs)}"
                )
            graph.output(arg(outs[0]))
            continue
        t = node.target
        kw = dict(node.kwargs)
        if node.op != "call_function":
            raise CompressionError(f".pt2: node '{node.name}' ({node.op} {t}) is not an ATen call")
        if t is aten.conv2d.default:
            w = consts[a[1].name]
            b = consts[a[2].name] if len(a) > 2 and isinstance(a[2], fx.Node) else None
            stride, pad, dil, groups = (
                opt(a, 3, None),
                opt(a, 4, None),
                opt(a, 5, None),
                opt(a, 6, 1),
            )
            conv = nn.Conv2d(
                int(w.shape[1]) * int(groups or 1), int(w.shape[0]),
                (int(w.shape[2]), int(w.shape[3])),
                stride=tuple(stride or (1, 1)), padding=tuple(pad or (0, 0)),
                dilation=tuple(dil or (1, 1)), groups=int(groups or 1), bias=b is not None,
            )  # fmt: skip
            with torch.no_grad():
                conv.weight.copy_(w)
                if b is not None and conv.bias is not None:
                    conv.bias.copy_(b)
            env[node.name] = module(node, weight_path(a[1], ".weight"), conv, arg(a[0]))
        elif t is aten.linear.default:
            w = consts[a[1].name]
            b = consts[a[2].name] if len(a) > 2 and isinstance(a[2], fx.Node) else None
            lin = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None and lin.bias is not None:
                    lin.bias.copy_(b)
            env[node.name] = module(node, weight_path(a[1], ".weight"), lin, arg(a[0]))
        elif t is aten.batch_norm.default:
            mean, var = consts[a[3].name], consts[a[4].name]
            eps = float(a[7]) if len(a) > 7 else 1e-5
            rank = node.meta["val"].dim() if "val" in node.meta else 4
            bn: nn.Module = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(len(mean), eps=eps)
            with torch.no_grad():
                for attr, val in (("weight", a[1]), ("bias", a[2])):
                    if isinstance(val, fx.Node):
                        getattr(bn, attr).copy_(consts[val.name])
                bn.running_mean.copy_(mean)  # type: ignore[operator]
                bn.running_var.copy_(var)  # type: ignore[operator]
            bn.eval()
            env[node.name] = module(node, weight_path(a[3], ".running_mean"), bn, arg(a[0]))
        elif t in (aten.relu.default, aten.relu_.default):
            env[node.name] = graph.call_function(F.relu, (arg(a[0]),))
        elif t in (aten.hardtanh.default, aten.hardtanh_.default):
            lo, hi = opt(a, 1, -1.0), opt(a, 2, 1.0)
            env[node.name] = graph.call_function(F.hardtanh, (arg(a[0]), float(lo), float(hi)))
        elif t is aten.add.Tensor and "alpha" not in kw and len(a) == 2:
            env[node.name] = graph.call_function(operator.add, (arg(a[0]), arg(a[1])))
        elif t is aten.max_pool2d.default:
            k, s, p, d, ceil = (
                opt(a, i, v) for i, v in ((1, None), (2, None), (3, 0), (4, 1), (5, False))
            )
            env[node.name] = graph.call_function(
                F.max_pool2d, (arg(a[0]), tuple(k), tuple(s or k), p, d, bool(ceil))
            )
        elif t is aten.avg_pool2d.default:
            k, s, p = opt(a, 1, None), opt(a, 2, None), opt(a, 3, 0)
            env[node.name] = graph.call_function(F.avg_pool2d, (arg(a[0]), tuple(k), s or k, p))
        elif t is aten.adaptive_avg_pool2d.default:
            env[node.name] = graph.call_function(F.adaptive_avg_pool2d, (arg(a[0]), a[1]))
        elif t is aten.mean.dim:
            keep = bool(a[2]) if len(a) > 2 else bool(kw.get("keepdim", False))
            env[node.name] = graph.call_function(
                torch.mean, (arg(a[0]), list(a[1])), {"keepdim": keep}
            )
        elif t is aten.flatten.using_ints:
            start, end = opt(a, 1, 0), opt(a, 2, -1)
            env[node.name] = graph.call_function(torch.flatten, (arg(a[0]), start, end))
        elif t in (aten.view.default, aten.reshape.default, aten._unsafe_view.default):
            env[node.name] = graph.call_method("reshape", (arg(a[0]), *a[1]))
        elif t is aten.slice.Tensor:
            dim, start, end, step = opt(a, 1, 0), opt(a, 2, None), opt(a, 3, None), opt(a, 4, 1)
            if dim not in (2, 3) or start not in (None, 0) or end not in (None, _INT64_MAX):
                raise CompressionError(
                    f".pt2: node '{node.name}': only strided slicing x[:, :, ::s, ::s] is "
                    f"supported, found slice(dim={dim}, start={start}, end={end}, step={step})"
                )
            full = slice(None, None, None)
            base, idx = arg(a[0]), [full] * 4
            first = a[0]
            if (
                isinstance(first, fx.Node)
                and first.name in slices
                and len(first.users) == 1
                and slices[first.name][1][dim] == full
            ):  # x[:, :, ::a] then [..., ::b]: one subsampling
                base, idx = slices[first.name][0], list(slices[first.name][1])
                graph.erase_node(env[first.name])
            idx[dim] = slice(None, None, int(step))
            env[node.name] = graph.call_function(operator.getitem, (base, tuple(idx)))
            slices[node.name] = (base, idx)
        elif t in (aten.pad.default, aten.constant_pad_nd.default):
            value = a[3] if t is aten.pad.default and len(a) > 3 else (a[2] if len(a) > 2 else 0)
            env[node.name] = graph.call_function(
                F.pad, (arg(a[0]), list(a[1])), {"mode": "constant", "value": value or 0.0}
            )
        elif t is aten.cat.default:
            env[node.name] = graph.call_function(torch.cat, (arg(a[0]), a[1] if len(a) > 1 else 0))
        elif t in (aten.dropout.default, aten.clone.default, aten.contiguous.default):
            env[node.name] = arg(a[0])
        else:
            raise CompressionError(
                f".pt2: node '{node.name}' calls {t}, which autochip cannot quantise (supported: "
                "conv2d, linear, batch_norm, relu, hardtanh, add, pooling, mean, flatten/view, "
                "strided slicing, constant pad, cat, dropout)"
            )
    graph.lint()
    return fx.GraphModule(root, graph, "LiftedProgram")

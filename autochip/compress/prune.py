"""Structured pruning that physically shrinks a network: filters (L1, hardware-aware) and blocks.

The model is traced once with ``torch.fx`` and a channel-dependency analysis finds the *channel
groups*: sets of conv/linear outputs that must keep the same channels because they meet in a
residual add (or any elementwise op between tensors). Channels travel through batch-norms,
activations, pooling and flatten (one channel = H x W features of the following linear layer),
depthwise convolutions follow their input, and concatenations along the channel dimension place
each part at its offset. The network input, the model output and anything the analysis does not
understand (a view that mixes channels, a grouped convolution, a functional conv with its own
weights) are *fixed*: never pruned.

A :class:`PrunePlan` keeps a subset of channels of some groups; :func:`apply_plan` cuts every
producer's filters, every consumer's input channels (at their offsets), the batch-norms' and the
depthwise convolutions' entries, and replaces removed residual blocks by ``nn.Identity``. The
module names and the class's ``forward`` stay the same, so a pruned model is the original model
with smaller tensors: :func:`restructure` rebuilds it from the structure recorded in a
checkpoint's metadata (:meth:`PrunePlan.to_meta`).

Criteria (``docs/compression.md``):

* ``l1``: Li et al., "Pruning filters for efficient ConvNets" (ICLR 2017): in every prunable
  group the same fraction of channels goes, those with the smallest L1 norm of their filters
  (summed over the group's producers), the fraction found by bisection for a MAC target;
* ``hw``: hardware-aware filter pruning: greedily remove the channels whose removal lowers the
  predicted latency (``autochip.predictor.predict`` on the traced, smaller graph) most per unit of
  lost importance (the removed filters' share of their layer's L1 norm), until a latency budget,
  a MAC target or a ratio holds; with an energy budget, the predicted energy per inference;
* ``block``: discrimination-based block pruning: a linear probe (softmax regression) on the
  globally pooled features before and after every identity residual block; the blocks whose
  output improves the probe's accuracy least are replaced by their shortcut;
* early-bird tickets (You et al., ICLR 2020): during dense pre-training, the L1 pruning mask is
  compared between epochs (normalised Hamming distance); training stops once the distance stays
  below a threshold for a window of epochs.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from autochip.compress.data import Dataset
from autochip.compress.train import TrainConfig, batches
from autochip.errors import CompressionError

__all__ = [
    "ChannelAnalysis",
    "PrunePlan",
    "analyse",
    "apply_plan",
    "block_candidates",
    "block_scores",
    "early_bird_train",
    "group_stages",
    "hw_plan",
    "l1_importance",
    "l1_plan",
    "mask_distance",
    "plan_for_macs",
    "restructure",
    "traced_macs",
    "zero_pruned",
]

META_KEY = "pruned"


@dataclass(frozen=True)
class Seg:
    """``length`` channels of group ``group``, each ``mult`` consecutive features wide."""

    group: int
    length: int
    mult: int = 1


Layout = tuple[Seg, ...]

_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Hardtanh,
    nn.Dropout,
    nn.Identity,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_ELEMENTWISE_FUNCS: tuple[Any, ...] = (
    F.relu,
    torch.relu,
    torch.relu_,
    F.relu6,
    F.leaky_relu,
    F.hardtanh,
    F.dropout,
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
    F.adaptive_max_pool2d,
    torch.clamp,
)
_ELEMENTWISE_METHODS = ("relu", "relu_", "contiguous", "clamp", "clone")
_BINARY_FUNCS: tuple[Any, ...] = (
    operator.add,
    operator.iadd,
    operator.mul,
    operator.sub,
    torch.add,
    torch.mul,
    torch.sub,
)
_CAT_FUNCS: tuple[Any, ...] = (torch.cat, torch.concat)


@dataclass
class ChannelAnalysis:
    """The channel groups of a model and, per prunable module, where its channels come from.

    ``producers``: conv (groups 1) / linear module -> the group of its outputs;
    ``inputs``: conv / linear / batch-norm / depthwise conv module -> the layout of its input;
    ``depthwise``: depthwise convs (outputs follow the input); ``size``: channels of each group;
    ``fixed``: root groups that are never pruned; ``macs_other``: MACs of the traced graph that
    the conv/linear modules do not account for (matmuls between activations).
    """

    parent: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    fixed_raw: set[int] = field(default_factory=set)
    producers: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, Layout] = field(default_factory=dict)
    depthwise: set[str] = field(default_factory=set)
    out_hw: dict[str, int] = field(default_factory=dict)  # spatial positions of each output
    batch: dict[str, int] = field(default_factory=dict)  # rows of each linear's input

    def new_group(self, size: int, fixed: bool = False) -> int:
        g = len(self.parent)
        self.parent.append(g)
        self.size.append(size)
        if fixed:
            self.fixed_raw.add(g)
        return g

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def fix(self, layout: Layout | None) -> None:
        for s in layout or ():
            self.fixed_raw.add(s.group)

    @property
    def fixed(self) -> set[int]:
        return {self.find(g) for g in self.fixed_raw}

    def prunable(self) -> list[int]:
        """Root groups that may lose channels (produced by conv/linear, not fixed, size > 1)."""
        fixed = self.fixed
        roots = sorted({self.find(g) for g in self.producers.values()})
        return [g for g in roots if g not in fixed and self.size[g] > 1]

    def members(self, root: int) -> list[str]:
        """The producer modules of a root group."""
        return [m for m, g in self.producers.items() if self.find(g) == root]


@dataclass(frozen=True)
class PrunePlan:
    """Channels kept per root group (sorted indices) and residual blocks replaced by identity."""

    keep: dict[int, tuple[int, ...]] = field(default_factory=dict)
    removed_blocks: tuple[str, ...] = ()

    def with_keep(self, root: int, kept: tuple[int, ...]) -> PrunePlan:
        return PrunePlan({**self.keep, root: kept}, self.removed_blocks)

    def to_meta(self, model: nn.Module) -> dict[str, Any]:
        """The pruned structure as plain data (for a checkpoint's metadata)."""
        shapes: dict[str, dict[str, int]] = {}
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                shapes[name] = {
                    "in": m.in_channels,
                    "out": m.out_channels,
                    "groups": m.groups,
                }
            elif isinstance(m, nn.Linear):
                shapes[name] = {"in": m.in_features, "out": m.out_features}
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                shapes[name] = {"features": m.num_features}
        return {"modules": shapes, "removed_blocks": list(self.removed_blocks)}


# ----------------------------------------------------------------------------- analysis


def _layout_width(layout: Layout) -> int:
    return sum(s.length * s.mult for s in layout)


def _fresh(an: ChannelAnalysis, shape: torch.Size | None, fixed: bool = True) -> Layout | None:
    if shape is None or len(shape) < 2:
        return None
    return (Seg(an.new_group(int(shape[1]), fixed), int(shape[1])),)


def _shape(node: Any) -> torch.Size | None:
    if not isinstance(node, fx.Node):
        return None
    tm = node.meta.get("tensor_meta")
    shape = getattr(tm, "shape", None)
    return shape if isinstance(shape, torch.Size) else None


def _unify(an: ChannelAnalysis, a: Layout, b: Layout) -> bool:
    """Union the groups of two layouts of the same channels; False if they do not line up."""
    if len(a) != len(b) or any(
        x.length != y.length or x.mult != y.mult for x, y in zip(a, b, strict=True)
    ):
        return False
    for x, y in zip(a, b, strict=True):
        an.union(x.group, y.group)
    return True


def _flatten(layout: Layout, shape_in: torch.Size | None, start: int) -> Layout | None:
    if shape_in is None or start != 1:
        return None
    spatial = math.prod(int(d) for d in shape_in[2:])
    return tuple(Seg(s.group, s.length, s.mult * spatial) for s in layout)


def _trace(model: nn.Module, example: Tensor) -> fx.GraphModule:
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds of errors on untraceable code
        raise CompressionError(
            f"pruning: the model cannot be traced with torch.fx ({type(exc).__name__}: {exc}); "
            "pruning needs a traceable forward"
        ) from None
    was = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    model.train(was)
    return gm


def analyse(model: nn.Module, example: Tensor) -> ChannelAnalysis:
    """The channel groups of ``model`` (traced with torch.fx on ``example``)."""
    gm = _trace(model, example)
    an = ChannelAnalysis()
    env: dict[fx.Node, Layout | None] = {}
    seen: dict[str, Layout | None] = {}
    modules = dict(gm.named_modules())

    def lay(a: Any) -> Layout | None:
        return env.get(a) if isinstance(a, fx.Node) else None

    def opaque(node: fx.Node) -> Layout | None:
        for a in node.all_input_nodes:
            an.fix(env.get(a))
        return _fresh(an, _shape(node))

    for node in gm.graph.nodes:
        shape = _shape(node)
        out: Layout | None
        if node.op in ("placeholder", "get_attr"):
            out = _fresh(an, shape)
        elif node.op == "output":
            for a in node.all_input_nodes:
                an.fix(env.get(a))
            continue
        elif node.op == "call_module":
            name = str(node.target)
            mod = modules[name]
            x = lay(node.args[0]) if node.args else None
            xs = _shape(node.args[0]) if node.args else None
            if name in seen or x is None:
                an.fix(seen.get(name))
                an.fix(an.inputs.get(name))
                out = opaque(node)
                if name in an.producers:
                    an.fixed_raw.add(an.producers[name])
                an.inputs.pop(name, None)
                an.depthwise.discard(name)
            elif isinstance(mod, nn.Conv2d) and xs is not None and len(xs) == 4:
                hw = math.prod(int(d) for d in shape[2:]) if shape is not None else 1
                an.out_hw[name] = hw
                if mod.groups == 1:
                    an.inputs[name] = x
                    g = an.new_group(mod.out_channels)
                    an.producers[name] = g
                    out = (Seg(g, mod.out_channels),)
                elif mod.groups == mod.in_channels == mod.out_channels and all(
                    s.mult == 1 for s in x
                ):
                    an.inputs[name] = x
                    an.depthwise.add(name)
                    out = x
                else:
                    out = opaque(node)
            elif isinstance(mod, nn.Linear) and xs is not None and len(xs) == 2:
                if _layout_width(x) != mod.in_features:
                    out = opaque(node)
                else:
                    an.inputs[name] = x
                    an.batch[name] = int(xs[0])
                    g = an.new_group(mod.out_features)
                    an.producers[name] = g
                    out = (Seg(g, mod.out_features),)
            elif isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d) and all(s.mult == 1 for s in x):
                an.inputs[name] = x
                out = x
            elif isinstance(mod, _ELEMENTWISE_MODULES):
                out = x
            elif isinstance(mod, nn.Flatten):
                out = _flatten(x, xs, mod.start_dim) if mod.end_dim == -1 else None
                if out is None:
                    out = opaque(node)
            else:
                out = opaque(node)
            seen[name] = out
        elif node.op == "call_function" and node.target in _ELEMENTWISE_FUNCS:
            out = lay(node.args[0])
            if out is None:
                out = opaque(node)
        elif node.op == "call_method" and node.target in _ELEMENTWISE_METHODS:
            out = lay(node.args[0]) or opaque(node)
        elif node.op == "call_function" and node.target in _BINARY_FUNCS:
            tensors = [a for a in node.args if isinstance(a, fx.Node) and lay(a) is not None]
            sh = [_shape(a) for a in tensors]
            if len(tensors) == 1 and shape is not None and sh[0] == shape:
                out = lay(tensors[0])  # tensor with a scalar
            elif (
                len(tensors) == 2
                and shape is not None
                and all(s is not None and len(s) == len(shape) and s[1] == shape[1] for s in sh)
                and _unify(an, lay(tensors[0]) or (), lay(tensors[1]) or ())
            ):
                out = lay(tensors[0])
            else:
                out = opaque(node)
        elif node.op == "call_function" and node.target in _CAT_FUNCS:
            parts = node.args[0] if node.args else node.kwargs.get("tensors")
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            layouts = [lay(p) for p in parts] if isinstance(parts, list | tuple) else [None]
            if (
                shape is not None
                and len(shape) >= 2
                and dim in (1, 1 - len(shape))
                and all(lt is not None and all(s.mult == 1 for s in lt) for lt in layouts)
            ):
                out = tuple(s for lt in layouts for s in (lt or ()))
            else:
                out = opaque(node)
        elif node.op in ("call_function", "call_method") and node.target in (
            torch.flatten,
            "flatten",
        ):
            x = lay(node.args[0])
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            xs = _shape(node.args[0])
            if xs is not None and len(xs) == 2 and x is not None:
                out = x
            else:
                out = _flatten(x, xs, int(start)) if x is not None and end == -1 else None
            if out is None:
                out = opaque(node)
        elif node.op in ("call_function", "call_method") and node.target in (torch.mean, "mean"):
            x = lay(node.args[0])
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            dims_t = tuple(dims) if isinstance(dims, list | tuple) else (dims,)
            xs = _shape(node.args[0])
            spatial = all(isinstance(d, int) and d % 4 in (2, 3) for d in dims_t)
            if x is not None and xs is not None and len(xs) == 4 and spatial:
                out = x
            else:
                out = opaque(node)
        elif node.op in ("call_function", "call_method") and node.target in (
            "view",
            "reshape",
            torch.reshape,
        ):
            x = lay(node.args[0])
            xs = _shape(node.args[0])
            if x is not None and xs is not None and shape is not None and len(shape) == 2:
                out = _flatten(x, xs, 1) if int(shape[0]) == int(xs[0]) else None
            else:
                out = None
            if out is None:
                out = opaque(node)
        elif node.op == "call_method" and node.target == "size":
            out = None
        elif node.op == "call_function" and node.target in (getattr, operator.getitem):
            src = node.args[0]
            if isinstance(src, fx.Node) and env.get(src) is not None and shape is not None:
                out = opaque(node)
            else:
                out = None
        else:
            out = opaque(node)
        env[node] = out
    return an


# ----------------------------------------------------------------------------- plans


def _index(an: ChannelAnalysis, layout: Layout, plan: PrunePlan) -> Tensor:
    """Kept feature indices of a tensor with ``layout`` under ``plan``."""
    idx: list[Tensor] = []
    offset = 0
    for s in layout:
        kept = plan.keep.get(an.find(s.group))
        chans = torch.arange(s.length) if kept is None else torch.tensor(kept, dtype=torch.long)
        feats = (chans[:, None] * s.mult + torch.arange(s.mult)[None, :]).reshape(-1)
        idx.append(feats + offset)
        offset += s.length * s.mult
    return torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long)


def _kept_count(an: ChannelAnalysis, root: int, plan: PrunePlan) -> int:
    kept = plan.keep.get(root)
    return an.size[root] if kept is None else len(kept)


def _width(an: ChannelAnalysis, layout: Layout, plan: PrunePlan) -> int:
    return sum(_kept_count(an, an.find(s.group), plan) * s.mult for s in layout)


def analytic_macs(model: nn.Module, an: ChannelAnalysis, plan: PrunePlan) -> int:
    """MACs of the conv/linear modules under ``plan`` (removed blocks count zero)."""
    modules = dict(model.named_modules())
    gone = plan.removed_blocks
    total = 0
    for name in list(an.producers) + sorted(an.depthwise):
        if any(name == b or name.startswith(b + ".") for b in gone):
            continue
        mod = modules[name]
        cin = _width(an, an.inputs[name], plan)
        if name in an.depthwise:
            assert isinstance(mod, nn.Conv2d)
            total += cin * mod.kernel_size[0] * mod.kernel_size[1] * an.out_hw[name]
            continue
        cout = _kept_count(an, an.find(an.producers[name]), plan)
        if isinstance(mod, nn.Conv2d):
            total += cout * cin * mod.kernel_size[0] * mod.kernel_size[1] * an.out_hw[name]
        else:
            total += cout * cin * an.batch[name]
    return total


def l1_importance(model: nn.Module, an: ChannelAnalysis) -> dict[int, Tensor]:
    """Per prunable root group: each channel's filter L1 norm as a share of its layer's total,
    summed over the group's producers (a channel's *information* in the HFP criterion)."""
    modules = dict(model.named_modules())
    out: dict[int, Tensor] = {}
    for root in an.prunable():
        acc = torch.zeros(an.size[root])
        for name in an.members(root):
            w = getattr(modules[name], "weight")  # noqa: B009 (conv or linear)
            norms = w.detach().abs().reshape(w.shape[0], -1).sum(dim=1).float()
            acc += norms / norms.sum().clamp_min(1e-12)
        out[root] = acc
    return out


def _lowest_kept(imp: Tensor, n_keep: int) -> tuple[int, ...]:
    order = torch.argsort(imp, descending=True, stable=True)[:n_keep]
    return tuple(sorted(int(i) for i in order))


def group_stages(an: ChannelAnalysis, stages: int) -> dict[int, int]:
    """Each prunable group's stage: the groups in the order the network computes them (their
    first producer's), split into ``stages`` contiguous runs of (nearly) equal count. For a
    ResNet of three stages with ``stages=3`` these are its stages; in general early, middle and
    late layers."""
    order = {name: i for i, name in enumerate(an.producers)}
    roots = sorted(an.prunable(), key=lambda r: min(order[m] for m in an.members(r)))
    n = max(len(roots), 1)
    return {r: min(stages - 1, i * stages // n) for i, r in enumerate(roots)}


def l1_plan(
    an: ChannelAnalysis,
    imp: dict[int, Tensor],
    fraction: float,
    weights: tuple[float, ...] = (),
) -> PrunePlan:
    """Remove ``fraction`` of the channels of every prunable group (smallest L1 first); with
    stage ``weights`` (:func:`group_stages`), ``fraction * weights[stage]`` of each group's
    (at least one channel kept)."""
    stage = group_stages(an, len(weights)) if weights else {}
    keep: dict[int, tuple[int, ...]] = {}
    for root in an.prunable():
        f = fraction * weights[stage[root]] if weights else fraction
        n = an.size[root]
        k = max(1, min(n, round(n * (1.0 - min(f, 1.0)))))
        if k < n:
            keep[root] = _lowest_kept(imp[root], k)
    return PrunePlan(keep)


def plan_for_macs(
    model: nn.Module, an: ChannelAnalysis, imp: dict[int, Tensor], target: int
) -> tuple[PrunePlan, float]:
    """The L1 plan with the smallest uniform fraction whose MACs are <= ``target``."""
    lo, hi = 0.0, 1.0
    if analytic_macs(model, an, l1_plan(an, imp, hi)) > target:
        raise CompressionError(
            f"pruning: a target of {target} MACs is out of reach; with every prunable layer cut "
            f"to one channel the network keeps {analytic_macs(model, an, l1_plan(an, imp, hi))}"
        )
    for _ in range(40):
        mid = (lo + hi) / 2
        if analytic_macs(model, an, l1_plan(an, imp, mid)) <= target:
            hi = mid
        else:
            lo = mid
    return l1_plan(an, imp, hi), hi


def minimal_plan(an: ChannelAnalysis) -> PrunePlan:
    """Every prunable group cut to one channel: the smallest network filter pruning reaches."""
    return PrunePlan({root: (0,) for root in an.prunable()})


def value_floors(an: ChannelAnalysis, out_values: int) -> dict[int, int]:
    """Fewest channels of each prunable group whose output still carries ``out_values`` values
    per sample (the network output's width; a conv channel carries its H x W positions, a linear
    unit one value per input row). A narrower layer is a rank bottleneck on the logits: the
    digits LeNet with ``classifier.1`` cut to one unit classifies at 27 % (docs/compression.md).
    A group narrower than that to start with is not cut at all."""
    floors = {}
    for root in an.prunable():
        per = min(an.out_hw.get(m, an.batch.get(m, 1)) for m in an.members(root))
        floors[root] = min(an.size[root], max(1, -(-out_values // max(per, 1))))
    return floors


def floor_plan(an: ChannelAnalysis, floors: dict[int, int]) -> PrunePlan:
    """Every prunable group cut to its floor (:func:`value_floors`)."""
    return PrunePlan({root: tuple(range(floors[root])) for root in an.prunable()})


# ----------------------------------------------------------------------------- apply


def _cut(t: Tensor, idx: Tensor, dim: int) -> nn.Parameter:
    return nn.Parameter(t.detach().index_select(dim, idx).clone(), requires_grad=t.requires_grad)


def apply_plan(model: nn.Module, an: ChannelAnalysis, plan: PrunePlan) -> nn.Module:
    """A copy of ``model`` with the plan's channels and blocks physically removed."""
    new = copy.deepcopy(model)
    modules = dict(new.named_modules())
    for name, layout in an.inputs.items():
        mod = modules[name]
        idx_in = _index(an, layout, plan)
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            n = len(idx_in)
            if mod.weight is not None and mod.bias is not None:
                mod.weight = _cut(mod.weight, idx_in, 0)
                mod.bias = _cut(mod.bias, idx_in, 0)
            if mod.running_mean is not None and mod.running_var is not None:
                mod.running_mean = mod.running_mean.index_select(0, idx_in).clone()
                mod.running_var = mod.running_var.index_select(0, idx_in).clone()
            mod.num_features = n
            continue
        if name in an.depthwise:
            assert isinstance(mod, nn.Conv2d)
            mod.weight = _cut(mod.weight, idx_in, 0)
            if mod.bias is not None:
                mod.bias = _cut(mod.bias, idx_in, 0)
            mod.in_channels = mod.out_channels = mod.groups = len(idx_in)
            continue
        root = an.find(an.producers[name])
        kept = plan.keep.get(root)
        idx_out = torch.arange(an.size[root]) if kept is None else torch.tensor(kept)
        w = mod.weight
        assert isinstance(w, Tensor)
        mod.weight = _cut(_cut(w, idx_out, 0), idx_in, 1)
        b = mod.bias
        if isinstance(b, Tensor):
            mod.bias = _cut(b, idx_out, 0)
        if isinstance(mod, nn.Conv2d):
            mod.in_channels, mod.out_channels = len(idx_in), len(idx_out)
        elif isinstance(mod, nn.Linear):
            mod.in_features, mod.out_features = len(idx_in), len(idx_out)
    for block in plan.removed_blocks:
        _replace(new, block, nn.Identity())
    return new


def _replace(model: nn.Module, name: str, mod: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, mod)


@torch.no_grad()
def zero_pruned(model: nn.Module, an: ChannelAnalysis, plan: PrunePlan) -> nn.Module:
    """A copy of ``model`` (unpruned shapes) whose pruned channels are zero where they are made:
    the producers' filters and biases, and the batch-norms' and depthwise convs' entries of those
    channels. With activations that map 0 to 0, it computes what the pruned network computes."""
    new = copy.deepcopy(model)
    modules = dict(new.named_modules())
    for name, layout in an.inputs.items():
        mod = modules[name]
        full = _index(an, layout, PrunePlan())
        kept = _index(an, layout, plan)
        gone = torch.tensor(sorted(set(full.tolist()) - set(kept.tolist())), dtype=torch.long)
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d) or name in an.depthwise:
            for t in (mod.weight, mod.bias):
                if isinstance(t, Tensor) and len(gone):
                    t.index_fill_(0, gone, 0.0)
            continue
        root = an.find(an.producers[name])
        k = plan.keep.get(root)
        if k is None:
            continue
        out_gone = torch.tensor(sorted(set(range(an.size[root])) - set(k)), dtype=torch.long)
        for t in (mod.weight, mod.bias):
            if isinstance(t, Tensor) and len(out_gone):
                t.index_fill_(0, out_gone, 0.0)
    return new


def restructure(model: nn.Module, meta: Any) -> nn.Module:
    """Shrink a freshly built model to the pruned structure of a checkpoint's ``meta['pruned']``
    (module shapes and removed blocks), ready for its state dict."""
    if not isinstance(meta, dict) or not isinstance(meta.get("modules"), dict):
        raise CompressionError(
            "checkpoint: 'pruned' metadata must be a mapping with 'modules' and 'removed_blocks'"
        )
    modules = dict(model.named_modules())
    blocks = meta.get("removed_blocks", [])
    if not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks):
        raise CompressionError("checkpoint: 'pruned.removed_blocks' must be a list of names")
    for b in blocks:
        if b not in modules or not b:
            raise CompressionError(f"checkpoint: removed block '{b}' is not a module of the model")
        _replace(model, b, nn.Identity())
    modules = dict(model.named_modules())
    for name, shape in meta["modules"].items():
        mod = modules.get(name)
        if mod is None:
            continue
        vals = list(shape.values()) if isinstance(shape, dict) else [None]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in vals):
            raise CompressionError(f"checkpoint: pruned shape of '{name}' is malformed: {shape}")
        assert isinstance(shape, dict)
        limit = _sizes(mod)
        if any(shape.get(k, 0) > v for k, v in limit.items()):
            raise CompressionError(
                f"checkpoint: pruned shape of '{name}' {shape} is larger than the model's "
                f"{limit}; pruning only removes channels"
            )
        try:
            if isinstance(mod, nn.Conv2d):
                _reshape_conv(mod, shape["in"], shape["out"], shape["groups"])
            elif isinstance(mod, nn.Linear):
                mod.in_features, mod.out_features = shape["in"], shape["out"]
                mod.weight = nn.Parameter(torch.empty(shape["out"], shape["in"]))
                if mod.bias is not None:
                    mod.bias = nn.Parameter(torch.empty(shape["out"]))
            elif isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
                n = shape["features"]
                mod.num_features = n
                if mod.weight is not None:
                    mod.weight = nn.Parameter(torch.empty(n))
                    mod.bias = nn.Parameter(torch.empty(n))
                if mod.running_mean is not None:
                    mod.running_mean = torch.zeros(n)
                    mod.running_var = torch.ones(n)
        except KeyError as exc:
            raise CompressionError(f"checkpoint: pruned shape of '{name}' lacks {exc}") from None
    return model


def _sizes(mod: nn.Module) -> dict[str, int]:
    if isinstance(mod, nn.Conv2d):
        return {"in": mod.in_channels, "out": mod.out_channels, "groups": mod.groups}
    if isinstance(mod, nn.Linear):
        return {"in": mod.in_features, "out": mod.out_features}
    if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
        return {"features": mod.num_features}
    return {}


def _reshape_conv(mod: nn.Conv2d, cin: int, cout: int, groups: int) -> None:
    if cin % groups or cout % groups:
        raise CompressionError(
            f"checkpoint: pruned conv shape in={cin} out={cout} groups={groups} is inconsistent"
        )
    mod.in_channels, mod.out_channels, mod.groups = cin, cout, groups
    kh, kw = mod.kernel_size
    mod.weight = nn.Parameter(torch.empty(cout, cin // groups, kh, kw))
    if mod.bias is not None:
        mod.bias = nn.Parameter(torch.empty(cout))


# ----------------------------------------------------------------------------- measures


def traced_macs(model: nn.Module, example: Tensor) -> int:
    """MACs of the model's AccelGraph (the IR's own count)."""
    from autochip.ir import trace

    return int(trace(model, example).total_macs)


LatencyFn = Callable[[nn.Module], float]  # a predicted cost of a model: latency or energy


def latency_fn(hw: Any, platform: Any, example: Tensor) -> LatencyFn:
    """Predicted latency (seconds) of a model's traced graph on ``hw`` placed on ``platform``."""
    return _predicted(hw, platform, example, lambda t: t.latency_s)


def energy_fn(hw: Any, platform: Any, example: Tensor) -> LatencyFn:
    """Predicted energy per inference (joules) of a model's traced graph on ``hw``."""
    return _predicted(hw, platform, example, lambda t: t.energy_pj * 1e-12)


def _predicted(hw: Any, platform: Any, example: Tensor, pick: Callable[[Any], float]) -> LatencyFn:
    from autochip.ir import run_passes, trace
    from autochip.predictor import predict

    def cost(model: nn.Module) -> float:
        model.eval()
        return float(pick(predict(run_passes(trace(model, example)), hw, platform).total))

    return cost


def hw_plan(
    model: nn.Module,
    an: ChannelAnalysis,
    imp: dict[int, Tensor],
    latency: LatencyFn,
    done: Callable[[nn.Module, PrunePlan], bool],
    steps_per_group: int = 8,
    floors: dict[int, int] | None = None,
) -> PrunePlan:
    """Hardware-aware filter pruning: grow the plan greedily until ``done(pruned, plan)``.

    Each round costs, for every prunable group, removing its next ``size / steps_per_group``
    least important channels (more when that alone does not lower the predicted latency, e.g.
    inside one array tile), and takes the candidate with the largest latency drop per unit of
    lost importance (then the largest MAC drop per unit, when no candidate lowers latency).
    ``latency`` may be any predicted cost to lower: :func:`energy_fn` for an energy budget.
    No group goes below its entry in ``floors`` (default 1 channel).
    """
    plan = PrunePlan()
    current = model
    lat_now = latency(current)
    macs_now = analytic_macs(model, an, plan)
    while not done(current, plan):
        best: tuple[float, float, PrunePlan, nn.Module, float] | None = None
        for root, scores in imp.items():
            n_keep = _kept_count(an, root, plan)
            least = floors.get(root, 1) if floors else 1
            if n_keep <= least:
                continue
            step = max(1, round(an.size[root] / steps_per_group))
            order = torch.argsort(scores, descending=True, stable=True).tolist()
            remove = min(step, n_keep - least)
            while True:
                kept = tuple(sorted(order[: n_keep - remove]))
                cand = plan.with_keep(root, kept)
                pruned = apply_plan(model, an, cand)
                lat = latency(pruned)
                if lat < lat_now or remove >= n_keep - least:
                    break
                remove = min(remove * 2, n_keep - least)
            lost = float(scores[list(set(order[:n_keep]) - set(kept))].sum())
            macs = analytic_macs(model, an, cand)
            key = ((lat_now - lat) / max(lost, 1e-9), (macs_now - macs) / max(lost, 1e-9))
            if best is None or key > (best[0], best[1]):
                best = (key[0], key[1], cand, pruned, lat)
        if best is None:
            break
        _, _, plan, current, lat_now = best
        macs_now = analytic_macs(model, an, plan)
    return plan


# ----------------------------------------------------------------------------- blocks


def block_candidates(model: nn.Module, example: Tensor) -> list[str]:
    """Sub-modules that are identity residual blocks: called once, output shape = input shape,
    and an add in their forward takes the block's input directly (through ``nn.Identity``)."""
    shapes: dict[str, list[tuple[torch.Size, torch.Size]]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if not name:
            continue

        def hook(m: nn.Module, inp: Any, out: Any, name: str = name) -> None:
            if len(inp) == 1 and isinstance(inp[0], Tensor) and isinstance(out, Tensor):
                shapes.setdefault(name, []).append((inp[0].shape, out.shape))
            else:
                shapes.setdefault(name, []).append((torch.Size([-1]), torch.Size([-2])))

        hooks.append(mod.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    out = []
    for name, mod in model.named_modules():
        calls = shapes.get(name, [])
        if len(calls) != 1 or calls[0][0] != calls[0][1] or len(list(mod.children())) == 0:
            continue
        try:
            g = fx.symbolic_trace(mod)
        except Exception:  # a sub-module fx cannot trace is not a candidate
            continue
        if _has_identity_add(g):
            out.append(name)
    return out


def _has_identity_add(gm: fx.GraphModule) -> bool:
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        return False
    x = placeholders[0]
    modules = dict(gm.named_modules())

    def source(n: Any) -> Any:
        while (
            isinstance(n, fx.Node)
            and n.op == "call_module"
            and isinstance(modules.get(str(n.target)), nn.Identity)
        ):
            n = n.args[0]
        return n

    return any(
        n.op == "call_function"
        and n.target in (operator.add, operator.iadd, torch.add)
        and any(source(a) is x for a in n.args)
        for n in gm.graph.nodes
    )


def _pooled(t: Tensor) -> Tensor:
    return t.mean(dim=(2, 3)) if t.dim() == 4 else t.reshape(len(t), -1)


def _probe_accuracy(
    f_train: Tensor, y_train: Tensor, f_test: Tensor, y_test: Tensor, classes: int, seed: int
) -> float:
    """Accuracy of a softmax-regression probe (full-batch L-BFGS) on standardised features."""
    mu, sd = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    a, b = (f_train - mu) / sd, (f_test - mu) / sd
    gen = torch.Generator().manual_seed(seed)
    lin = nn.Linear(a.shape[1], classes)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 0.01)
        lin.bias.zero_()
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=50, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(lin(a), y_train) + 1e-4 * lin.weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        return float((lin(b).argmax(1) == y_test).float().mean())


@torch.no_grad()
def _features(model: nn.Module, blocks: list[str], x: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    feats: dict[str, tuple[list[Tensor], list[Tensor]]] = {b: ([], []) for b in blocks}
    hooks = []
    for b in blocks:

        def hook(m: nn.Module, inp: Any, out: Any, b: str = b) -> None:
            feats[b][0].append(_pooled(inp[0]))
            feats[b][1].append(_pooled(out))

        hooks.append(model.get_submodule(b).register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        for i in range(0, len(x), 256):
            model(x[i : i + 256])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return {b: (torch.cat(i), torch.cat(o)) for b, (i, o) in feats.items()}


def block_scores(
    model: nn.Module, blocks: list[str], data: Dataset, samples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Discrimination gain of every block: probe accuracy on its output minus on its input.

    The probes train on the first ``samples`` training images and are scored on the next
    ``samples // 2`` (held out from the probe, not from the network)."""
    n = min(len(data.x_train), samples + samples // 2)
    n_fit = max(1, (2 * n) // 3)
    x, y = data.x_train[:n], data.y_train[:n]
    feats = _features(model, blocks, x)
    k = len(data.classes)
    out = {}
    for b, (fin, fout) in feats.items():
        acc_in = _probe_accuracy(fin[:n_fit], y[:n_fit], fin[n_fit:], y[n_fit:], k, seed)
        acc_out = _probe_accuracy(fout[:n_fit], y[:n_fit], fout[n_fit:], y[n_fit:], k, seed)
        out[b] = acc_out - acc_in
    return out


# ----------------------------------------------------------------------------- early bird


def mask_distance(a: Tensor, b: Tensor) -> float:
    """Normalised Hamming distance of two boolean channel masks."""
    return float((a != b).float().mean()) if len(a) else 0.0


def channel_mask(model: nn.Module, an: ChannelAnalysis, counts: dict[int, int]) -> Tensor:
    """The boolean keep-mask over all prunable channels: the ``counts[root]`` channels of every
    group with the largest L1 norm."""
    imp = l1_importance(model, an)
    parts = []
    for root in sorted(counts):
        m = torch.zeros(an.size[root], dtype=torch.bool)
        m[list(_lowest_kept(imp[root], counts[root]))] = True
        parts.append(m)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)


def early_bird_train(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    an: ChannelAnalysis,
    counts: dict[int, int],
    threshold: float,
    window: int = 3,
) -> tuple[int, list[float]]:
    """Dense training (Adam, cosine decay over ``cfg.epochs``) that stops at an early-bird ticket:
    once the mask distance between consecutive epochs stayed below ``threshold`` for ``window``
    epochs. Returns (epochs run, the distances)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = (len(data.x_train) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * per_epoch))
    prev = channel_mask(model, an, counts)
    dists: list[float] = []
    epochs = 0
    for epoch in range(cfg.epochs):
        model.train()
        for xb, yb in _epoch(data, cfg, epoch):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
        epochs += 1
        mask = channel_mask(model, an, counts)
        dists.append(mask_distance(prev, mask))
        prev = mask
        if len(dists) >= window and max(dists[-window:]) < threshold:
            break
    model.eval()
    return epochs, dists


def _epoch(data: Dataset, cfg: TrainConfig, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
    return batches(data.x_train, data.y_train, cfg.batch_size, cfg.seed, epoch)


# ----------------------------------------------------------------------------- one call


CRITERIA = ("l1", "hw", "block")


@dataclass(frozen=True)
class PruneTarget:
    """What to reach: a MAC count, a predicted latency (seconds) or energy per inference
    (joules), or a number of removed blocks."""

    criterion: str
    macs: int | None = None
    latency_s: float | None = None
    blocks: int | None = None
    energy_j: float | None = None
    # l1: relative pruning per stage (group_stages), e.g. (0.5, 1, 1.5) prunes late layers
    # three times as hard as early ones; () is uniform
    stage_weights: tuple[float, ...] = ()

    @property
    def budget(self) -> bool:
        return self.latency_s is not None or self.energy_j is not None


@dataclass
class PruneResult:
    model: nn.Module
    plan: PrunePlan
    macs_before: int
    macs_after: int
    latency_before_s: float | None = None
    latency_after_s: float | None = None
    energy_before_j: float | None = None
    energy_after_j: float | None = None
    block_scores: dict[str, float] = field(default_factory=dict)


class Pruner:
    """The analysis of one model and the checks and plans of the command line."""

    def __init__(
        self,
        model: nn.Module,
        example: Tensor,
        latency: LatencyFn | None,
        energy: LatencyFn | None = None,
    ) -> None:
        self.model = model.eval()
        self.example = example
        self.latency = latency
        self.energy = energy
        self.an = analyse(self.model, example)
        self.macs_before = traced_macs(self.model, example)
        self.macs_other = self.macs_before - analytic_macs(self.model, self.an, PrunePlan())
        self.blocks = block_candidates(self.model, example)
        with torch.no_grad():
            out = self.model(example)
        self.floors = value_floors(self.an, int(out[0].numel()))

    def macs(self, plan: PrunePlan) -> int:
        return analytic_macs(self.model, self.an, plan) + self.macs_other

    def _lat(self, plan: PrunePlan) -> float:
        assert self.latency is not None
        return self.latency(apply_plan(self.model, self.an, plan))

    def _energy(self, plan: PrunePlan) -> float:
        assert self.energy is not None
        return self.energy(apply_plan(self.model, self.an, plan))

    def check(self, target: PruneTarget) -> None:
        """Refuse a target no pruning of this criterion reaches (before any training)."""
        if target.criterion == "block":
            if not self.blocks:
                raise CompressionError(
                    "--criterion block: expected identity residual blocks (sub-modules whose "
                    "input is added to their output), found none in this model"
                )
            floor = PrunePlan(removed_blocks=tuple(self.blocks))
            what = f"removing all {len(self.blocks)} residual blocks ({', '.join(self.blocks)})"
            if target.blocks is not None and target.blocks > len(self.blocks):
                raise CompressionError(
                    f"--blocks {target.blocks}: the model has only {len(self.blocks)} removable "
                    f"residual blocks ({', '.join(self.blocks)})"
                )
        else:
            if not self.an.prunable():
                raise CompressionError(
                    "pruning: the model has no prunable channels (every conv/linear output "
                    "feeds the model output or an operation that mixes channels)"
                )
            if target.criterion == "hw":
                floor = floor_plan(self.an, self.floors)
                what = (
                    "every prunable layer at its floor (no layer's output narrower than the "
                    "network's output)"
                )
            elif target.stage_weights:
                stage = group_stages(self.an, len(target.stage_weights))
                floor = PrunePlan({r: (0,) for r in self.an.prunable()
                                   if target.stage_weights[stage[r]] > 0})  # fmt: skip
                what = "every prunable layer of the stages with a weight above 0 cut to one channel"
            else:
                floor = minimal_plan(self.an)
                what = "every prunable layer cut to one channel"
        if target.macs is not None and self.macs(floor) > target.macs:
            raise CompressionError(
                f"pruning: a target of {target.macs} MACs is out of reach; with {what} the "
                f"network keeps {self.macs(floor)} MACs (of {self.macs_before})"
            )
        budgets = (
            ("a latency", "latency", target.latency_s, self._lat, "s"),
            ("an energy", "energy", target.energy_j, self._energy, "J"),
        )
        for article, quantity, budget, cost, unit in budgets:
            if budget is not None and (low := cost(floor)) > budget:
                raise CompressionError(
                    f"pruning: {article} budget of {budget:.6g} {unit} is out of reach; with "
                    f"{what} the predicted {quantity} is {low:.6g} {unit} (unpruned "
                    f"{cost(PrunePlan()):.6g} {unit})"
                )

    def _met(self, target: PruneTarget, plan: PrunePlan, pruned: nn.Module | None = None) -> bool:
        if target.macs is not None and self.macs(plan) > target.macs:
            return False
        budgets = [
            (budget, cost)
            for budget, cost in ((target.latency_s, self.latency), (target.energy_j, self.energy))
            if budget is not None
        ]
        if not budgets:
            return True
        model = pruned if pruned is not None else apply_plan(self.model, self.an, plan)
        for budget, cost in budgets:
            assert cost is not None
            if cost(model) > budget:
                return False
        return True

    def plan(
        self, target: PruneTarget, data: Dataset, seed: int = 0
    ) -> tuple[PrunePlan, dict[str, float]]:
        """The plan of ``target.criterion`` that meets the target (checked by :meth:`check`)."""
        imp = l1_importance(self.model, self.an)
        if target.criterion == "block":
            scores = block_scores(self.model, self.blocks, data, seed=seed)
            order = sorted(self.blocks, key=lambda b: (scores[b], b))
            removed: list[str] = []
            for b in order:
                plan = PrunePlan(removed_blocks=tuple(removed))
                if target.blocks is not None and len(removed) >= target.blocks:
                    break
                if target.blocks is None and self._met(target, plan):
                    break
                removed.append(b)
            return PrunePlan(removed_blocks=tuple(removed)), scores
        if target.criterion == "hw":
            # The cost the greedy lowers: the budget's (energy for an energy budget), else latency.
            cost = self.energy if target.energy_j is not None else self.latency
            assert cost is not None
            plan = hw_plan(
                self.model,
                self.an,
                imp,
                cost,
                lambda m, p: self._met(target, p, m),
                floors=self.floors,
            )
            if not target.budget:
                # At a MAC target the criterion's aim is the lowest predicted latency. The greedy
                # compares one group's step at a time, so it can miss a cut spread over all
                # groups: the uniform L1 plan is a candidate too (docs/compression.md, Criteria).
                uniform = self._uniform(target, imp)
                if self._lat(uniform) < self._lat(plan):
                    plan = uniform
            return plan, {}
        return self._uniform(target, imp), {}

    def _uniform(self, target: PruneTarget, imp: dict[int, Tensor]) -> PrunePlan:
        """The L1 plan (uniform, or by ``target.stage_weights``) with the smallest fraction
        that meets ``target`` (bisection)."""
        wts = target.stage_weights
        lo, hi = 0.0, 1.0 / min((w for w in wts if w > 0), default=1.0)
        for _ in range(24 if target.budget else 40):
            mid = (lo + hi) / 2
            if self._met(target, l1_plan(self.an, imp, mid, wts)):
                hi = mid
            else:
                lo = mid
        return l1_plan(self.an, imp, hi, wts)

    def result(self, plan: PrunePlan, scores: dict[str, float]) -> PruneResult:
        pruned = apply_plan(self.model, self.an, plan)
        res = PruneResult(
            pruned,
            plan,
            self.macs_before,
            traced_macs(pruned, self.example),
            block_scores=scores,
        )
        if self.latency is not None:
            res.latency_before_s = self.latency(self.model)
            res.latency_after_s = self.latency(pruned)
        if self.energy is not None:
            res.energy_before_j = self.energy(self.model)
            res.energy_after_j = self.energy(pruned)
        return res

    def early_bird_counts(self, target: PruneTarget) -> dict[int, int]:
        """Channels kept per group in the early-bird mask: the uniform L1 plan of a MAC target,
        else half of every group."""
        imp = {r: torch.zeros(self.an.size[r]) for r in self.an.prunable()}
        frac = 0.5
        if target.macs is not None and self.macs(minimal_plan(self.an)) <= target.macs:
            _, frac = plan_for_macs(self.model, self.an, imp, target.macs - self.macs_other)
        plan = l1_plan(self.an, imp, frac)
        return {r: len(plan.keep.get(r, range(self.an.size[r]))) for r in self.an.prunable()}

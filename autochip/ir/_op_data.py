"""Op handlers of zero-cost data movement: views, slices, splits, padding, nearest
upsampling, no-ops and activation fake-quantisers; constants made like an activation."""

from __future__ import annotations

from typing import Any

from torch import nn

from autochip.ir._lower import Call, Lowering, unwrap
from autochip.ir._op_util import Handler, module_param_count, need_dyn
from autochip.ir._values import Const, Dyn, Meta, Pieces, TensorInfo
from autochip.ir.node import Arithmetic, OpKind
from autochip.ir.validate import EXPAND_OPS, NOOP_OPS, VIEW_OPS

__all__ = ["FUNCTIONS", "MODULES", "quant_identity"]


# -- zero-cost data movement -------------------------------------------------------------------
def _reshape(lo: Lowering, call: Call) -> Any:
    x = call.arg(0, "input")
    if isinstance(x, Pieces):
        raise lo.unsupported(call, "reshaping a tuple of tensors")
    x = need_dyn(call, x, "input")
    op = call.op
    if call.module is not None:
        op = {
            nn.Flatten: "flatten",
            nn.Unflatten: "unflatten",
            nn.Identity: "identity",
            nn.PixelShuffle: "pixel_shuffle",
            nn.PixelUnshuffle: "pixel_unshuffle",
            nn.ChannelShuffle: "channel_shuffle",
        }.get(type(call.module), "dropout")
    return lo.add(call, OpKind.RESHAPE, [x], attrs={"op": op})


def _pad(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    mode = call.plain(2, "mode", "constant")
    if call.module is not None:
        mode = {
            "ReflectionPad": "reflect",
            "ReplicationPad": "replicate",
            "CircularPad": "circular",
        }
        mode = next(
            (v for k, v in mode.items() if type(call.module).__name__.startswith(k)), "constant"
        )
    attrs: dict[str, Any] = {"op": "pad", "mode": str(mode)}
    pads = (
        getattr(call.module, "padding", None)
        if call.module is not None
        else call.plain(1, "pad", None)
    )
    if isinstance(pads, list | tuple) and all(isinstance(v, int) for v in pads):
        attrs["pads"] = [int(v) for v in pads]  # torch order: last dim first (F.pad)
    return lo.add(call, OpKind.RESHAPE, [x], attrs=attrs)


def _upsample(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    if call.module is not None:
        mode = str(getattr(call.module, "mode", "nearest"))
    elif call.op.startswith("upsample_"):
        mode = call.op.removeprefix("upsample_").rstrip("123d")
    else:
        mode = str(call.plain(3, "mode", "nearest"))
    if mode != "nearest":
        raise lo.unsupported(
            call, f"'{mode}' interpolation (nearest-neighbour upsampling is mapped)"
        )
    return lo.add(call, OpKind.RESHAPE, [x], attrs={"op": "upsample", "mode": mode})


def _getattr(lo: Lowering, call: Call) -> Any:
    """``.values`` / ``.indices`` of a (values, indices) result such as ``x.max(dim=1)``."""
    base, attr = call.args[0], unwrap(call.args[1])
    if isinstance(base, tuple) and attr in ("values", "indices"):
        return base[0 if attr == "values" else 1]
    raise lo.unsupported(call, f"attribute '{attr}' of an activation")


def _getitem(lo: Lowering, call: Call) -> Any:
    base, index = call.args[0], call.args[1]
    if isinstance(base, tuple | list):
        return base[unwrap(index)]
    if isinstance(base, Pieces):
        i = int(unwrap(index))
        call.out = TensorInfo(base.shapes[i])
        return lo.add(call, OpKind.RESHAPE, [base.source], attrs={"op": base.op, "index": i})
    if isinstance(base, Meta):
        return Meta(base.value[unwrap(index)])
    if any(isinstance(v, Dyn) for v in _flat(index)):
        raise lo.unsupported(call, "indexing with an index computed from the input")
    return lo.add(call, OpKind.RESHAPE, [need_dyn(call, base, "input")], attrs={"op": "slice"})


def _flat(obj: Any) -> list[Any]:
    if isinstance(obj, tuple | list):
        return [x for o in obj for x in _flat(o)]
    return [obj]


def _split(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    out = call.out
    if not isinstance(out, tuple | list) or not all(isinstance(o, TensorInfo) for o in out):
        raise lo.unsupported(call, "expected a tuple of tensors")
    return Pieces(x, call.op, tuple(o.shape for o in out))


def _quant_identity(lo: Lowering, call: Call) -> Any:
    x = need_dyn(call, call.arg(0, "input"), "input")
    attrs: dict[str, Any] = {"op": "quant_identity"}
    arith = getattr(call.module, "autochip_arithmetic", None)
    if isinstance(arith, Arithmetic):
        attrs["a_bits"] = arith.a_bits
        attrs["dtype"] = arith.dtype
    return lo.add(call, OpKind.RESHAPE, [x], attrs=attrs, params=module_param_count(lo, call))


def _like(lo: Lowering, call: Call) -> Any:
    """zeros_like(x) and friends: a constant of x's shape, not data from x."""
    return Const(call.out_shape)


def _embedding(lo: Lowering, call: Call) -> Any:
    """A table lookup: rows of the weight selected by the (integer) input; no arithmetic."""
    indices = next((v for v in call.args[:2] if isinstance(v, Dyn)), None)
    if indices is None:
        raise lo.unsupported(call, "an embedding whose table is computed from the input")
    params = module_param_count(lo, call)
    return lo.add(call, OpKind.RESHAPE, [indices], attrs={"op": "embedding"}, params=params)


def quant_identity(lo: Lowering, call: Call) -> Any:
    """An ``autochip_identity`` module (activation fake-quantiser)."""
    return _quant_identity(lo, call)


FUNCTIONS: dict[str, Handler] = {
    "getitem": _getitem,
    "getattr": _getattr,
    "split": _split,
    "chunk": _split,
    "unbind": _split,
    "tensor_split": _split,
    "split_with_sizes": _split,
    "embedding": _embedding,
    "pad": _pad,
    "constant_pad_nd": _pad,
    "interpolate": _upsample,
    "upsample_nearest2d": _upsample,
    "upsample_bilinear2d": _upsample,
}
FUNCTIONS.update({name: _reshape for name in VIEW_OPS | NOOP_OPS | EXPAND_OPS})
FUNCTIONS.update({name: _reshape for name in ("slice", "select", "narrow")})
FUNCTIONS.update(
    {name: _like for name in ("zeros_like", "ones_like", "full_like", "empty_like", "rand_like",
                              "randn_like", "new_zeros", "new_ones", "new_full", "new_empty")}
)  # fmt: skip

MODULES: tuple[tuple[tuple[type[nn.Module], ...], Handler], ...] = (
    ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), _pad),
    ((nn.Upsample,), _upsample),
    ((nn.Embedding,), _embedding),
    ((nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd), _reshape),
    ((nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle), _reshape),
)

"""Compression policy: which conv/linear layers become which compressed kind, with which bits.

A :class:`Policy` is data (a frozen dataclass, round-trips through a plain dict for checkpoints).
Layers are addressed by their module name (``features.0``) or by position (``first``, ``last``);
per-layer overrides give mixed precision. First and last layers stay int8 MAC by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from autochip.errors import CompressionError

__all__ = ["KINDS", "LayerPolicy", "Policy", "parse_bits", "policy_for_method"]

KINDS = ("mac", "binary", "adder")
MIN_BITS, MAX_BITS = 2, 8
ESTIMATORS = ("ste", "fda")
CALIBRATIONS = ("minmax", "percentile", "mse")
STEPS = ("lsq", "static")


@dataclass(frozen=True)
class LayerPolicy:
    """How one conv/linear layer is compressed. ``binary`` ignores the bits (±1)."""

    kind: str = "mac"
    w_bits: int = 8
    a_bits: int = 8

    def problems(self, where: str) -> list[str]:
        out: list[str] = []
        if self.kind not in KINDS:
            out.append(f"{where}: kind must be one of {', '.join(KINDS)}, found {self.kind!r}")
            return out
        if self.kind == "binary":
            return out
        for name in ("w_bits", "a_bits"):
            b = getattr(self, name)
            if not isinstance(b, int) or isinstance(b, bool) or not MIN_BITS <= b <= MAX_BITS:
                out.append(
                    f"{where}: {name} must be an integer {MIN_BITS}..{MAX_BITS}, found {b!r}"
                )
        if self.kind == "adder" and self.w_bits != self.a_bits:
            out.append(
                f"{where}: adder layers share one scale for inputs and weights, so w_bits must "
                f"equal a_bits, found {self.w_bits}/{self.a_bits}"
            )
        return out


INT8 = LayerPolicy("mac", 8, 8)


@dataclass(frozen=True)
class Policy:
    """Per-layer compression of a model.

    ``default`` applies to every conv/linear layer not named in ``layers``; ``first`` / ``last``
    (int8 MAC unless given) apply to the first and last compute layer in execution order.
    ``output_bits`` is the width of the model's output (the logits). ``estimator`` is the
    binarisation gradient (``ste`` or ``fda``); ``calibration`` the post-training calibration of
    activation steps (``minmax`` or ``percentile``); ``steps`` whether the quantiser steps are
    learned during training (``lsq``, the default) or stay at their calibrated values
    (``static``: fake-quant training with straight-through gradients only). ``binary_bn``
    inserts a batch-norm after the compute layer whose output a binary layer binarises, where
    there is none (binary activations need a learned per-channel centre; ``convert``); it folds
    into the integer thresholds exactly, so the integer model is unchanged in kind.
    """

    default: LayerPolicy = INT8
    first: LayerPolicy | None = INT8
    last: LayerPolicy | None = INT8
    layers: tuple[tuple[str, LayerPolicy], ...] = field(default=())
    output_bits: int = 8
    estimator: str = "ste"
    calibration: str = "minmax"
    steps: str = "lsq"
    binary_bn: bool = False

    def __post_init__(self) -> None:
        problems = self.default.problems("default")
        if self.first is not None:
            problems += self.first.problems("first")
        if self.last is not None:
            problems += self.last.problems("last")
        for name, lp in self.layers:
            problems += lp.problems(f"layers.{name}")
        if not isinstance(self.output_bits, int) or not MIN_BITS <= self.output_bits <= 16:
            problems.append(f"output_bits must be an integer 2..16, found {self.output_bits!r}")
        if self.estimator not in ESTIMATORS:
            problems.append(
                f"estimator must be one of {', '.join(ESTIMATORS)}, found {self.estimator!r}"
            )
        if self.calibration not in CALIBRATIONS:
            problems.append(
                f"calibration must be one of {', '.join(CALIBRATIONS)}, found {self.calibration!r}"
            )
        if self.steps not in STEPS:
            problems.append(f"steps must be one of {', '.join(STEPS)}, found {self.steps!r}")
        if not isinstance(self.binary_bn, bool):
            problems.append(f"binary_bn must be true or false, found {self.binary_bn!r}")
        if problems:
            raise CompressionError("invalid compression policy:\n  - " + "\n  - ".join(problems))

    def for_layer(self, name: str, index: int, count: int) -> LayerPolicy:
        """The policy of compute layer ``name``, the ``index``-th of ``count`` in order."""
        for lname, lp in self.layers:
            if lname == name:
                return lp
        if index == 0 and self.first is not None:
            return self.first
        if index == count - 1 and self.last is not None:
            return self.last
        return self.default

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = {name: asdict(lp) for name, lp in self.layers}
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Policy:
        try:

            def lp(v: Any) -> LayerPolicy | None:
                return None if v is None else LayerPolicy(**v)

            layers = tuple((str(k), LayerPolicy(**v)) for k, v in dict(d.get("layers", {})).items())
            return Policy(
                default=lp(d.get("default", asdict(INT8))) or INT8,
                first=lp(d.get("first", asdict(INT8))),
                last=lp(d.get("last", asdict(INT8))),
                layers=layers,
                output_bits=d.get("output_bits", 8),
                estimator=d.get("estimator", "ste"),
                calibration=d.get("calibration", "minmax"),
                steps=d.get("steps", "lsq"),
                binary_bn=d.get("binary_bn", False),  # checkpoints written before it: none
            )
        except TypeError as exc:
            raise CompressionError(f"invalid compression policy {dict(d)!r}: {exc}") from None


def parse_bits(text: str) -> tuple[int, int]:
    """``"W/A"`` (e.g. ``4/4``) or ``"B"`` -> (w_bits, a_bits)."""
    parts = text.split("/")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2):
        raise CompressionError(
            f"--bits: expected W/A with integers {MIN_BITS}..{MAX_BITS} (e.g. 4/4), found {text!r}"
        )
    w, a = (vals[0], vals[0]) if len(vals) == 1 else (vals[0], vals[1])
    bad = [b for b in (w, a) if not MIN_BITS <= b <= MAX_BITS]
    if bad:
        raise CompressionError(
            f"--bits: expected W/A with integers {MIN_BITS}..{MAX_BITS} (e.g. 4/4), found {text!r}"
        )
    return w, a


def policy_for_method(
    method: str, bits: tuple[int, int] = (8, 8), estimator: str = "ste", binary_bn: bool = True
) -> Policy:
    """The CLI's policies: ``quant`` (W/A bits), ``binary`` (with ``binary_bn``) and ``adder``;
    first/last int8."""
    w, a = bits
    if method == "quant":
        return Policy(default=LayerPolicy("mac", w, a), estimator=estimator)
    if method == "binary":
        return Policy(default=LayerPolicy("binary", 1, 1), estimator=estimator, binary_bn=binary_bn)
    if method == "adder":
        if w != a:
            raise CompressionError(
                f"--bits: adder layers share one scale for inputs and weights, so W must equal "
                f"A, found {w}/{a}"
            )
        return Policy(default=LayerPolicy("adder", w, a), estimator=estimator)
    raise CompressionError(f"--method must be one of quant, binary, adder, found {method!r}")

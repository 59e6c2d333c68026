"""Node specs of the AccelGraph: frozen dataclasses, no torch, no hardware.

A node is one operator the hardware executes. Compute nodes (conv2d, linear, matmul) carry the
loop dimensions of the canonical 7-D convolution loop nest, which the predictor maps onto an array:

    for n < N, k < K, c < C/groups, p < P, q < Q, r < R, s < S:
        out[n, k, p, q] += in[n, g*C/groups + c, p*stride_h + r*dil_h - pad_h, ...] * w[k, c, r, s]

Linear layers are convolutions with P = Q = R = S = 1 and N = product of the leading dims
(batch x tokens for 3-D inputs); a matmul of two dynamic operands A[.., M, C] @ B[.., C, K] has
N = batch x M, both operands activations (``dims.dynamic_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["COMPUTE_KINDS", "ZERO_COST_KINDS", "Arithmetic", "LoopDims", "Node", "OpKind"]


class OpKind(str, Enum):  # noqa: UP042 - str() and JSON values are relied upon
    """What a node computes. The value is the name used in JSON and tables."""

    INPUT = "input"
    CONV2D = "conv2d"
    LINEAR = "linear"
    MATMUL = "matmul"
    BATCHNORM = "batchnorm"
    LAYERNORM = "layernorm"
    ACTIVATION = "activation"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADD = "add"
    MUL = "mul"
    CONCAT = "concat"
    MEAN = "mean"
    SOFTMAX = "softmax"
    RESHAPE = "reshape"
    OUTPUT = "output"


COMPUTE_KINDS = frozenset({OpKind.CONV2D, OpKind.LINEAR, OpKind.MATMUL})
ZERO_COST_KINDS = frozenset({OpKind.INPUT, OpKind.RESHAPE, OpKind.OUTPUT})

ARITH_KINDS = ("mac", "adder", "xnor")
DTYPES = ("int", "float")


@dataclass(frozen=True)
class Arithmetic:
    """How a compute node multiplies-accumulates.

    ``kind``: ``mac`` (a*w), ``adder`` (AdderNet, -|a - w|) or ``xnor`` (binary +-1, xnor-popcount).
    ``dtype``: ``int`` or ``float``; float32 is the default of an uncompressed model.
    """

    kind: str = "mac"
    dtype: str = "float"
    w_bits: int = 32
    a_bits: int = 32
    acc_bits: int = 32

    def __post_init__(self) -> None:
        if self.kind not in ARITH_KINDS:
            raise ValueError(f"arithmetic kind must be one of {ARITH_KINDS}, not {self.kind!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"arithmetic dtype must be one of {DTYPES}, not {self.dtype!r}")
        for name in ("w_bits", "a_bits", "acc_bits"):
            bits = getattr(self, name)
            if not isinstance(bits, int) or bits < 1:
                raise ValueError(f"{name} must be a positive integer, not {bits!r}")

    @property
    def label(self) -> str:
        """Short human label: ``fp32``, ``int8``, ``w4a8``, ``adder-int8``, ``xnor``."""
        if self.kind == "xnor":
            return "xnor"
        if self.dtype == "float":
            base = f"fp{self.w_bits}"
        elif self.w_bits == self.a_bits:
            base = f"int{self.w_bits}"
        else:
            base = f"w{self.w_bits}a{self.a_bits}"
        return base if self.kind == "mac" else f"{self.kind}-{base}"


@dataclass(frozen=True)
class LoopDims:
    """Loop bounds of a conv/linear/matmul (and the window of a pooling) node."""

    N: int = 1
    K: int = 1
    C: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    H: int = 1
    W: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dil_h: int = 1
    dil_w: int = 1
    groups: int = 1
    dynamic_weights: bool = False

    @property
    def macs(self) -> int:
        """Multiply-accumulates: N*K*P*Q * (C/groups)*R*S."""
        return self.N * self.K * self.P * self.Q * (self.C // self.groups) * self.R * self.S


@dataclass(frozen=True)
class Node:
    """One operator of the AccelGraph.

    ``inputs`` names the producer nodes in operand order. ``macs`` counts multiply-accumulates of
    conv/linear/matmul only (0 elsewhere); ``ops`` counts the other elementwise/reduction work
    (comparisons of a pooling, additions of an add). ``params`` is the PyTorch parameter count of
    the module(s) this node stands for. ``sparsity`` is the fraction of zero weights.
    ``attrs`` holds kind-specific details (activation function, ceil_mode, fused activation, ...)
    with JSON-compatible values. ``source`` is ``file:line`` of the model code, where known.
    """

    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    dims: LoopDims | None = None
    macs: int = 0
    ops: int = 0
    params: int = 0
    arithmetic: Arithmetic = field(default_factory=Arithmetic)
    sparsity: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""

    @property
    def is_compute(self) -> bool:
        return self.kind in COMPUTE_KINDS

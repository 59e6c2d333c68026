"""Python/numpy golden models of autochip's PEs and PE array (the bit-exact reference).

PE kinds (DESIGN.md, integer semantics): mac acc += a*w; adder acc -= |a - w| (a, w on one
scale); xnor acc += V - 2*popcount(a ^ w) for V packed +-1 lanes (bit 1 = +1). Accumulators are
``acc_bits`` two's complement and wrap.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["gemm", "pe_step", "pe_term", "to_signed", "value_range", "wrap"]


def wrap(value: int, bits: int) -> int:
    """``value`` as a ``bits``-wide two's complement number."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def to_signed(raw: int, bits: int) -> int:
    return wrap(raw, bits)


def value_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def pe_term(kind: str, a: int, w: int, vector: int = 1) -> int:
    """One PE's contribution; a, w are signed ints (mac, adder) or V-bit words (xnor)."""
    if kind == "mac":
        return a * w
    if kind == "adder":
        return -abs(a - w)
    return vector - 2 * bin((a ^ w) & ((1 << vector) - 1)).count("1")


def pe_step(
    kind: str,
    acc: int,
    acc_bits: int,
    *,
    rst: int,
    en: int,
    clr: int,
    valid: int,
    a: int,
    w: int,
    vector: int = 1,
) -> int:
    """The accumulator after one clock edge (the PE's control semantics)."""
    if rst:
        return 0
    if not en:
        return acc
    if clr:
        return wrap(pe_term(kind, a, w, vector), acc_bits) if valid else 0
    if valid:
        return wrap(acc + pe_term(kind, a, w, vector), acc_bits)
    return acc


def gemm(
    kind: str, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], vector: int = 1
) -> npt.NDArray[np.int64]:
    """Output-stationary tile result: out[i, j] = sum_k term(a[i, k], b[k, j])."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    if kind == "mac":
        return a @ b
    if kind == "adder":
        return -np.abs(a[:, :, None] - b[None, :, :]).sum(axis=1)
    x = np.bitwise_xor(a[:, :, None], b[None, :, :])
    ones = np.zeros_like(x)
    for bit in range(vector):
        ones += (x >> bit) & 1
    return (vector - 2 * ones).sum(axis=1)

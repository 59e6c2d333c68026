"""The core's layer descriptor: 64 little-endian 32-bit words, the fields of :data:`FIELDS` then
zero padding (256 bytes: a whole number of bus words for every AXI data width).

The word order is the contract with ``templates/core_main.v`` (its ``D_*`` localparams; a test
checks both agree). Word 0 packs the operation:

* bits 1:0 ``op``: 0 end of program, 1 compute (conv / linear), 2 vector (pool / rescale / add)
* bit 2 PE mode: 1 = AdderNet datapath (``acc -= |a - w|``), 0 = integer MAC
* bit 3 epilogue: 1 = binary threshold (``(acc >= T) xor flip`` as +-1), 0 = requantisation
* bits 5:4 vector mode: 0 max pooling, 1 window sum + rescale, 2 two-input rescale (add)
* bit 6 no bounds check (the add's window spans two tensors)
* bit 7 keep weights (compute): the weight and parameter buffers still hold this descriptor's
  one pass of weight tiles (the previous band's): both loads are empty commands
* bit 8 forward: every ofmap write also goes to the ifmap copies, at ifmap byte ``fwd_ofs`` +
  the output's offset from the bus word of ``out_addr`` (feature-map residency,
  ``autochip/builder/residency.py``)
* bit 9 resident input, bit 10 resident second input (an add's): no load, the tensor is in the
  ifmap where an earlier layer forwarded it
* bit 11 ofmap wait: a resident first input still waits for the previous posted write-back
  (the layer writes the ofmap half that write-back reads)
* bit 12 weight prefetch (compute): the weight and parameter buffers have two slots (slot 1 at
  weight row ``w_slot`` and parameter tile ``p_slot``); pass p computes on slot p mod 2 while
  the controller loads pass p + 1's weight tiles and parameter records into the other one
* bit 13 cross-layer prefetch (compute): during its last pass the controller also loads the
  next compute layer's first pass (``x_w_len`` weight bytes at ``x_w_addr``, ``x_p_len``
  parameter bytes at ``x_p_addr``) into the weight buffer from row ``x_w_row`` and the
  parameter buffer from word ``x_p_word`` (:data:`X_FIELDS`; ``tiling.cross_prefetch``)
* bit 14 first pass prefetched (compute): the layer before loaded this layer's first pass
  (no loads); bit 15 start slot: the first pass computes on slot 1 (at ``w_slot`` /
  ``p_slot``), pass p on slot (1 + p) mod 2 with bit 12
* bit 16 load watermark (compute, an untiled input of one group loaded from DRAM): the load
  engine loads the input beside the compute, in row groups: for each group of ``in_grp``
  bytes per channel (the last group what is left of the channel's ``hw`` bytes), one run per
  channel (``cg`` channels, ``hw`` bytes apart in DRAM and in the ifmap); a pixel tile starts
  once every channel's rows its windows read are loaded (``autochip/builder/watermark.py``)

A compute descriptor's cross-layer prefetch fields (:data:`X_FIELDS`) share the words of
fields only vector descriptors read (the rescale multipliers and the vector lanes' carries);
its load watermark's row group ``in_grp`` and ``in_need`` = ``kr w`` (the bytes of a window's
rows; bit 16) the words of the second input's address and of the vector lanes' row step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "DESC_BYTES",
    "DESC_WORDS",
    "FIELDS",
    "OP_COMPUTE",
    "OP_END",
    "OP_VECTOR",
    "PARAM_RECORD_BYTES",
    "VMODE_ADD",
    "VMODE_MAX",
    "VMODE_SUM",
    "X_FIELDS",
    "encode_descriptor",
    "op_word",
]

FIELDS = (
    "op", "in_addr", "in_len", "in2_addr", "out_addr", "w_addr", "p_addr", "h", "w", "hw",
    "cg_hw", "t", "kr", "ks", "pad", "pq", "q", "a1_x", "a1_ox", "a1_oy", "a1_base", "ar_x",
    "ar_ox", "ar_oy", "ar_base", "wrap_ox", "sh", "wrap_base", "oy0", "ox0", "base0",
    "ntiles", "kt", "kg", "tpp", "lo", "hi", "mult0", "mult1", "shift", "c", "p", "wstep",
    "sw", "tile_w", "npt", "cg", "c_pq", "last_pq", "in2_ofs", "v_oyw", "v_cwrap", "v_last",
    "in_runs", "in_stride", "in_bstride", "out_run", "out_stride", "o_pitch", "fwd_ofs",
    "in_ifofs", "o_base", "w_slot", "p_slot",
)  # fmt: skip
# a compute descriptor's cross-layer prefetch (op bit 13): name -> the vector-only field whose
# word it takes (core_main.v X_* localparams)
X_FIELDS = {
    "x_w_addr": "mult0", "x_p_addr": "mult1", "x_w_len": "v_oyw", "x_p_len": "v_cwrap",
    "x_w_row": "v_last", "x_p_word": "in2_ofs", "in_grp": "in2_addr", "in_need": "wstep",
}  # fmt: skip
DESC_WORDS = 64  # FIELDS, then zero words: a descriptor is 256 bytes, whole bus words of any width
DESC_BYTES = 4 * DESC_WORDS
PARAM_RECORD_BYTES = 16  # bias (4, LE), multiplier or threshold (4, LE), shift (1), flip (1)
OP_END, OP_COMPUTE, OP_VECTOR = 0, 1, 2
VMODE_MAX, VMODE_SUM, VMODE_ADD = 0, 1, 2


def op_word(
    op: int,
    adder: bool = False,
    threshold: bool = False,
    vmode: int = 0,
    nobounds: bool = False,
    keep: bool = False,
    fwd: bool = False,
    res_a: bool = False,
    res_b: bool = False,
    owait: bool = False,
    pf: bool = False,
    xpf: bool = False,
    xin: bool = False,
    s0: bool = False,
    wm: bool = False,
) -> int:
    return (
        op | int(adder) << 2 | int(threshold) << 3 | vmode << 4 | int(nobounds) << 6
        | int(keep) << 7 | int(fwd) << 8 | int(res_a) << 9 | int(res_b) << 10 | int(owait) << 11
        | int(pf) << 12 | int(xpf) << 13 | int(xin) << 14 | int(s0) << 15 | int(wm) << 16
    )  # fmt: skip


def encode_descriptor(values: Mapping[str, int]) -> bytes:
    """The 256-byte descriptor; missing fields are 0, signed values are two's complement; a
    cross-layer prefetch field (:data:`X_FIELDS`) goes to its word, which must not be given
    under its own name as well."""
    unknown = sorted(set(values) - set(FIELDS) - set(X_FIELDS))
    both = sorted(x for x, f in X_FIELDS.items() if x in values and values.get(f, 0))
    if unknown or both:
        raise ValueError(f"unknown descriptor fields {unknown}, or given twice {both}")
    merged = dict(values)
    merged.update({X_FIELDS[x]: v for x, v in values.items() if x in X_FIELDS})
    words = np.zeros(DESC_WORDS, dtype="<u4")
    words[: len(FIELDS)] = [int(merged.get(f, 0)) & 0xFFFFFFFF for f in FIELDS]
    return words.tobytes()

"""The compression half of the joint space: candidates and the space they come from.

A :class:`Candidate` is one compressed network: the PE kind and widths of its inner compute
layers, the widths of its first and last layers, and a filter (or residual-block) pruning of a
fraction of its MACs. Its :meth:`Candidate.policy` is the :class:`autochip.compress.Policy`
that ``autochip compress`` would train.

Why the widths are per network and not per layer: the core autochip builds has one PE width
and one kind for every layer (the widest any layer needs), and stores every value in one byte
of DRAM, so a layer narrower than the others runs in the same cycles and moves the same bytes
(docs/CONTRACTS.md, Co-design). A per-layer mix is therefore dominated on this core by the
uniform network at its widest width (the same hardware, no less accuracy), and the space
searches the inner width, the edge (first/last) width and the kind instead. Pruning is per
layer: the plan of ``criterion`` (L1 filter pruning over the prunable channel groups, or whole
residual blocks) at the candidate's MAC fraction; L1 either uniform or weighted per stage
(``stages``: relative pruning of the early, middle, late layers, ``prune.group_stages``), the
fraction found for the MAC target either way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from autochip.compress.policy import LayerPolicy, Policy
from autochip.errors import SpecError

__all__ = ["KINDS", "Candidate", "JointSpace", "digest", "load_joint_space"]

KINDS = ("mac", "adder", "binary")
CRITERIA = ("l1", "block")
_KEYS = ("kind", "bits", "edge_bits", "prune", "criterion", "stage_weights")
SAME = (0, 0)  # edge_bits: the inner layers' widths


@dataclass(frozen=True, order=True)
class Candidate:
    """One compression of the network (see the module doc)."""

    kind: str = "mac"  # inner compute layers: mac, adder or binary (xnor, +-1)
    w_bits: int = 8  # inner layers (binary: ignored, +-1)
    a_bits: int = 8
    edge_w_bits: int = 8  # first and last compute layers (int8 MAC by default)
    edge_a_bits: int = 8
    prune: float = 0.0  # fraction of the MACs removed (0: dense)
    criterion: str = "l1"
    stages: tuple[float, ...] = ()  # l1: relative pruning per stage (): uniform

    def policy(self) -> Policy:
        if self.kind == "binary":
            inner = LayerPolicy("binary", 1, 1)
        else:
            inner = LayerPolicy(self.kind, self.w_bits, self.a_bits)
        edge = LayerPolicy("mac", self.edge_w_bits, self.edge_a_bits)
        # int8 logits: no PE reads them (stored as bytes), so they never widen the core
        return Policy(default=inner, first=edge, last=edge, binary_bn=self.kind == "binary")

    @property
    def core_bits(self) -> tuple[int, int]:
        """(w, a): the PE widths a core needs for this network (its widest layer)."""
        if self.kind == "binary":
            return self.edge_w_bits, self.edge_a_bits
        return max(self.w_bits, self.edge_w_bits), max(self.a_bits, self.edge_a_bits)

    @property
    def label(self) -> str:
        bits = "+-1" if self.kind == "binary" else f"w{self.w_bits}a{self.a_bits}"
        edge = (
            ""
            if (self.edge_w_bits, self.edge_a_bits) == (8, 8)
            else (f" edge w{self.edge_w_bits}a{self.edge_a_bits}")
        )
        cut = f" prune {self.criterion} {self.prune:.2f}" if self.prune > 0 else ""
        if self.stages:
            cut += " stages " + "/".join(f"{w:g}" for w in self.stages)
        return f"{self.kind} {bits}{edge}{cut}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.stages:  # uniform: the dict (and the cache key) of before stages existed
            del d["stages"]
        else:
            d["stages"] = list(self.stages)
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Candidate:
        vals = {k: d[k] for k in Candidate.__dataclass_fields__ if k in d}
        vals["stages"] = tuple(float(w) for w in vals.get("stages", ()))
        return Candidate(**vals)


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class JointSpace:
    """The compression dimensions (the hardware's are the Chip Builder's space)."""

    kinds: tuple[str, ...] = ("mac",)
    bits: tuple[tuple[int, int], ...] = ((8, 8), (6, 6), (4, 4))  # inner (w, a)
    # first/last layers: (w, a), or SAME (the inner layers' widths: the whole network narrow)
    edge_bits: tuple[tuple[int, int], ...] = ((8, 8), SAME)
    prune: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)
    criterion: tuple[str, ...] = ("l1",)
    # l1 pruning per stage: () uniform, else relative weights of the stages
    stage_weights: tuple[tuple[float, ...], ...] = ((),)

    def candidates(self) -> list[Candidate]:
        """Every distinct candidate worth training, in a fixed order.

        Skipped (:meth:`skipped` counts them): adder layers with w != a (one shared scale),
        and MAC/adder networks whose inner layers are narrower than their edge layers, which
        on this core run on the edge width's PEs (the same core, lower accuracy)."""
        return self._enumerate()[0]

    def skipped(self) -> int:
        return self._enumerate()[1]

    def _enumerate(self) -> tuple[list[Candidate], int]:
        out: set[Candidate] = set()
        skipped = 0
        for kind, (w, a), edge, p, crit, stages in itertools.product(
            self.kinds, self.bits, self.edge_bits, self.prune, self.criterion, self.stage_weights
        ):
            ew, ea = (w, a) if edge == SAME else edge
            if kind == "binary":
                w = a = 8
                ew, ea = (8, 8) if edge == SAME else edge
            elif (kind == "adder" and w != a) or w < ew or a < ea:
                skipped += 1
                continue
            if p == 0.0:
                crit = "l1"
            if p == 0.0 or crit != "l1":
                stages = ()
            out.add(Candidate(kind, w, a, ew, ea, float(p), crit, tuple(stages)))
        return sorted(out, key=_order), skipped

    def describe(self) -> dict[str, Any]:
        return {
            "kind": list(self.kinds),
            "bits": [f"{w}/{a}" for w, a in self.bits],
            "edge_bits": ["same" if e == SAME else f"{e[0]}/{e[1]}" for e in self.edge_bits],
            "prune": list(self.prune),
            "criterion": list(self.criterion),
            "stage_weights": [list(w) if w else "uniform" for w in self.stage_weights],
            "candidates": len(self.candidates()),
            "skipped": self.skipped(),
        }


def _order(c: Candidate) -> tuple[Any, ...]:
    return (KINDS.index(c.kind), -c.w_bits, -c.a_bits, -c.edge_w_bits, -c.edge_a_bits,
            c.prune, c.criterion, c.stages)  # fmt: skip


REFERENCE = Candidate()  # uniform int8, dense: what the knee is compared with


def _bits(raw: Any, where: str, problems: list[str]) -> tuple[int, int] | None:
    text = str(raw)
    parts = text.split("/")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if isinstance(raw, bool) or len(vals) not in (1, 2) or not all(2 <= v <= 8 for v in vals):
        problems.append(f"{where}: expected W/A with integers 2..8 (e.g. 4/4), found {raw!r}")
        return None
    return (vals[0], vals[-1])


def joint_space_from_dict(data: Any, source: str) -> JointSpace:
    """A joint space from a mapping (the ``--space`` YAML's ``compression`` keys); every
    problem in one :class:`SpecError`."""
    if not isinstance(data, Mapping):
        raise SpecError(source, [f"expected a mapping of {list(_KEYS)}, found {data!r}"])
    problems: list[str] = []
    unknown = sorted(set(map(str, data)) - set(_KEYS))
    if unknown:
        problems.append(f"unknown keys {unknown}: expected some of {list(_KEYS)}")
    base = JointSpace()
    vals: dict[str, Any] = {}
    for key in _KEYS:
        if key not in data:
            continue
        raw = data[key]
        if not isinstance(raw, list) or not raw:
            problems.append(f"{key}: expected a non-empty list, found {raw!r}")
            continue
        if key == "kind":
            bad = [v for v in raw if v not in KINDS]
            if bad:
                problems.append(f"kind: expected values of {list(KINDS)}, found {bad}")
            vals["kinds"] = tuple(dict.fromkeys(raw))
        elif key in ("bits", "edge_bits"):
            got = [SAME if key == "edge_bits" and v == "same" else
                   _bits(v, f"{key}[{i}]", problems) for i, v in enumerate(raw)]  # fmt: skip
            vals[key] = tuple(dict.fromkeys(g for g in got if g is not None))
        elif key == "prune":
            ok = [v for v in raw if isinstance(v, int | float) and not isinstance(v, bool)
                  and 0.0 <= float(v) < 0.95]  # fmt: skip
            if len(ok) != len(raw):
                problems.append(f"prune: expected MAC fractions 0 <= p < 0.95, found {raw!r}")
            vals["prune"] = tuple(dict.fromkeys(float(v) for v in ok))
        elif key == "stage_weights":
            got_w: list[tuple[float, ...]] = []
            for i, v in enumerate(raw):
                if v == "uniform":
                    got_w.append(())
                elif (isinstance(v, list) and 1 <= len(v) <= 8
                      and all(isinstance(x, int | float) and not isinstance(x, bool)
                              and 0 <= x <= 10 for x in v) and max(v) > 0):  # fmt: skip
                    got_w.append(tuple(float(x) for x in v))
                else:
                    problems.append(f"stage_weights[{i}]: expected 'uniform' or a list of 1..8 "
                                    f"weights 0..10, not all 0 (e.g. [0.5, 1, 1.5]), found "
                                    f"{v!r}")  # fmt: skip
            vals["stage_weights"] = tuple(dict.fromkeys(got_w))
        else:
            bad = [v for v in raw if v not in CRITERIA]
            if bad:
                problems.append(f"criterion: expected values of {list(CRITERIA)}, found {bad}")
            vals["criterion"] = tuple(dict.fromkeys(raw))
    if problems:
        raise SpecError(source, problems)
    space = JointSpace(**{**asdict(base), **vals})
    if not any(k != "adder" or w == a for k in space.kinds for w, a in space.bits):
        raise SpecError(source, ["kind adder: needs bits with W == A (adder layers share one "
                                 "scale), found none"])  # fmt: skip
    return space


def load_joint_space(path: str | None) -> tuple[JointSpace, dict[str, Any]]:
    """(compression space, the hardware part of the YAML) from ``--space FILE``: its
    ``compression`` mapping and its ``hardware`` mapping (the ``autochip explore --space``
    schema); defaults without a file."""
    if path is None:
        return JointSpace(), {}
    from autochip._safeio import load_yaml_file

    data, source = load_yaml_file(path, "a co-design space")
    if not isinstance(data, Mapping):
        raise SpecError(source, [f"expected a mapping with 'compression' and/or 'hardware', "
                                 f"found {type(data).__name__}"])  # fmt: skip
    unknown = sorted(set(map(str, data)) - {"compression", "hardware"})
    if unknown:
        raise SpecError(source, [f"unknown keys {unknown}: expected 'compression' and/or "
                                 "'hardware'"])  # fmt: skip
    problems: list[str] = []
    comp = JointSpace()
    try:
        comp = joint_space_from_dict(data.get("compression", {}), f"{source}: compression")
    except SpecError as exc:
        problems += [f"{exc.source}: {p}" for p in exc.problems]
    hw = data.get("hardware", {})
    if not isinstance(hw, Mapping):
        problems.append(f"{source}: hardware: expected a mapping (autochip explore --space "
                        f"keys), found {hw!r}")  # fmt: skip
    elif hw:
        from autochip.builder.space import PARAMETERS, DesignSpace, space_from_dict

        try:  # the keys and values alone (the model's own space is not known yet)
            space_from_dict(dict(hw), DesignSpace(tuple((1.0,) for _ in PARAMETERS)),
                            f"{source}: hardware")  # fmt: skip
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
    if problems:
        raise SpecError(source, problems)
    return comp, dict(hw)

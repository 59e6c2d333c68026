"""Property-based fuzzing of every reader of untrusted input and of the CLI (docs/security.md).

Property: any input gives a result or an ``AutochipError`` (the CLI: exit 0/1/2 and no other
exception), never another exception, within a time bound (hypothesis ``deadline``) and a memory
bound (the address space may grow by at most ``MEMORY_HEADROOM`` while a target runs).

The runs are CI-sized and reproducible: one fixed profile (``derandomize``, no example
database) and ``max_examples`` per target from ``EXAMPLES`` (recorded in docs/security.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import resource
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autochip import cli
from autochip._safeio import load_yaml_text
from autochip.errors import AutochipError
from autochip.hw import hardware_spec_from_dict, load_platform, platform_names
from autochip.ir.serialize import graph_from_dict, load_graph
from autochip.predictor.scalesim_io import read_scalesim_config, read_scalesim_topology
from autochip.reference import (
    ComputeOp,
    FlattenOp,
    IntegerModel,
    MaxPoolOp,
    Requant,
    load_integer_model,
    save_integer_model,
)

EXAMPLES = {
    "yaml_text": 500,
    "hw_spec": 500,
    "platform": 150,
    "scalesim_config": 400,
    "scalesim_topology": 400,
    "graph_dict": 400,
    "graph_text": 200,
    "npz": 300,
    "cli": 150,
    "cli_graph": 150,
    "predict_spec": 200,
}
MEMORY_HEADROOM = 2 << 30  # bytes of address space a target may add
settings.register_profile(
    "autochip-fuzz",
    derandomize=True,
    database=None,
    deadline=20_000,  # ms per example: the time bound (generous: CI machines are shared)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=False,
)
FUZZ = settings.get_profile("autochip-fuzz")


def _examples(target: str) -> settings:
    return settings(FUZZ, max_examples=EXAMPLES[target])


@contextlib.contextmanager
def _memory_bound() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    limit = pages * resource.getpagesize() + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _result_or_error(fn: Callable[[], Any]) -> None:
    with _memory_bound():
        try:
            fn()
        except AutochipError as exc:
            assert str(exc).strip()


# -- value strategies ------------------------------------------------------------------------
_NUMS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 4, 8, 16, 64, 4096, 4097, 2**31, 2**53 + 1]),
)
_LEAVES = st.one_of(st.none(), st.booleans(), _NUMS, st.text(max_size=12))
_SPEC_KEYS = ["name", "pe", "array", "dataflow", "buffers", "dram", "clock_mhz", "kind", "dtype",
              "w_bits", "a_bits", "acc_bits", "vector", "rows", "cols", "ifmap", "weight",
              "ofmap", "size_kb", "banks", "bandwidth", "os", "ws", "is", "mac", "adder",
              "xnor", "int", "float"]  # fmt: skip
_TREES = st.recursive(
    _LEAVES | st.sampled_from(_SPEC_KEYS),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(_SPEC_KEYS) | st.text(max_size=6), kids, max_size=5)
    ),
    max_leaves=25,
)
_YAML_BITS = ["a:", " &x", " *x", "[", "]", "{", "}", "- ", "\n", "  ", "rows: 4", ", ",
              "!!python/name:os.system", "<<: *x", ".nan", "1e309", ": ", "'", '"', "#",
              "%YAML 1.1\n", "---\n", "!!binary ", "? ", "array:", "\t", "\x00", "é", "&a",
              "*a", "!!set ", "!!omap ", "2001-12-14", "0x10", "~"]  # fmt: skip
_YAML_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_YAML_BITS), max_size=30).map("".join),
    _TREES.map(lambda t: yaml.safe_dump(t, default_flow_style=True)),
)


@_examples("yaml_text")
@given(_YAML_TEXT)
def test_fuzz_yaml_and_hw_spec_text(text: str) -> None:
    def target() -> None:
        data = load_yaml_text(text, "fuzz.yaml")
        hardware_spec_from_dict(data, "fuzz.yaml")

    _result_or_error(target)


@_examples("hw_spec")
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": _LEAVES,
            "pe": _TREES,
            "array": st.fixed_dictionaries({}, optional={"rows": _NUMS, "cols": _NUMS}) | _TREES,
            "dataflow": st.sampled_from(["os", "ws", "is", "xx"]) | _LEAVES,
            "buffers": _TREES,
            "dram": st.fixed_dictionaries({}, optional={"bandwidth": _NUMS}) | _TREES,
            "clock_mhz": _NUMS,
        },
    )
    | _TREES
)
def test_fuzz_hw_spec_dict(data: Any) -> None:
    _result_or_error(lambda: hardware_spec_from_dict(data, "fuzz.yaml"))


@_examples("platform")
@given(st.sampled_from(platform_names()) | st.text(max_size=20))
def test_fuzz_platform_names(name: str) -> None:
    _result_or_error(lambda: load_platform(name))


# -- SCALE-Sim ---------------------------------------------------------------------------------
_CFG_KEYS = ["ArrayHeight", "ArrayWidth", "IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB",
             "Dataflow", "Bandwidth", "InterfaceBandwidth", "IfmapSRAMBankBandwidth",
             "FilterSRAMBankBandwidth", "run_name", "Other"]  # fmt: skip
_CFG_VALUES = st.one_of(
    st.integers(-5, 2**40).map(str),
    st.sampled_from(
        [
            "os",
            "ws",
            "is",
            "CALC",
            "USER",
            "nan",
            "inf",
            "-1",
            "1e400",
            "8, 8",
            "",
            "%(x)s",
            "x\ny",
            "a b",
        ]
    ),
    st.text(max_size=10),
)
_SECTION = st.tuples(
    st.sampled_from(["general", "architecture_presets", "run_presets", "layout", "x"]),
    st.lists(st.tuples(st.sampled_from(_CFG_KEYS), _CFG_VALUES), max_size=12),
)


def _cfg_text(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{k}: {v}\n" for k, v in items) for name, items in sections
    )


@_examples("scalesim_config")
@given(st.lists(_SECTION, max_size=5).map(_cfg_text) | st.text(max_size=100))
def test_fuzz_scalesim_config(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("cfg") / "x.cfg"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _result_or_error(lambda: read_scalesim_config(path))


_CELL = st.one_of(
    st.integers(-3, 2**34).map(str),
    st.sampled_from(["", " ", "x", "DP1", "1.5", "nan", '"a,b"', "0"]),
    st.text(max_size=6),
)
_ROW = st.lists(_CELL, max_size=10).map(lambda cells: ", ".join(cells) + ",")
_HEADERS = ["Layer, M, N, K,", "Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
            "Channels, Num Filter, Strides,", "x"]  # fmt: skip


@_examples("scalesim_topology")
@given(
    st.sampled_from(_HEADERS),
    st.lists(_ROW, max_size=6),
    st.sampled_from([None, True, False]),
)
def test_fuzz_scalesim_topology(
    tmp_path_factory: pytest.TempPathFactory, header: str, rows: list[str], gemm: bool | None
) -> None:
    path = tmp_path_factory.mktemp("topo") / "t.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8", errors="surrogateescape")
    _result_or_error(lambda: read_scalesim_topology(path, gemm))


# -- graph JSON --------------------------------------------------------------------------------
def _good_graph() -> dict[str, Any]:
    from autochip.ir.serialize import graph_to_dict

    return graph_to_dict(load_graph_fixture())


def load_graph_fixture() -> Any:
    import torch

    from autochip import ir

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 4, 3, padding=1, groups=2)
            self.fc = torch.nn.Linear(4 * 4 * 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv(x))
            return self.fc(torch.flatten(torch.nn.functional.max_pool2d(y, 2), 1))

    return ir.run_passes(ir.trace(Net(), torch.zeros(1, 2, 8, 8), "net"))


_GRAPH = _good_graph()
_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**66), 2**66),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=10,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


_GRAPH_PATHS = _paths(_GRAPH)[1:]


def _mutate(base: Any, edits: list[tuple[tuple[Any, ...], Any]]) -> Any:
    doc = json.loads(json.dumps(base))
    for path, value in edits:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@_examples("graph_dict")
@given(st.lists(st.tuples(st.sampled_from(_GRAPH_PATHS), _JSON), min_size=1, max_size=4))
def test_fuzz_graph_json_fields(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = _mutate(_GRAPH, edits)
    _result_or_error(lambda: graph_from_dict(doc, "fuzz.json"))


@_examples("graph_text")
@given(
    st.one_of(
        st.text(max_size=60),
        _JSON.map(json.dumps),
        st.builds(
            lambda s: json.dumps(_GRAPH).replace("1", s, 3),
            st.sampled_from(["NaN", "1e999", "-0", "[", "}", "1" * 400]),
        ),
    )
)
def test_fuzz_graph_json_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("graph") / "g.json"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _result_or_error(lambda: load_graph(path))


# -- integer model .npz ------------------------------------------------------------------------
def _int_model() -> IntegerModel:
    rng = np.random.default_rng(0)
    w = rng.integers(-8, 8, size=(4, 2, 3, 3)).astype(np.int64)
    req = Requant(np.full(4, 1 << 14, np.int64), np.full(4, 16, np.int64), 0, 127)
    conv = ComputeOp("c", "input", "c", "mac", "conv", w, np.zeros(4, np.int64), padding=(1, 1),
                     requant=req)  # fmt: skip
    pool = MaxPoolOp("p", "c", "p", (2, 2), (2, 2))
    flat = FlattenOp("f", "p", "f")
    w2 = rng.integers(-8, 8, size=(3, 4 * 3 * 3)).astype(np.int64)
    req2 = Requant(np.full(3, 1 << 14, np.int64), np.full(3, 16, np.int64), -128, 127)
    fc = ComputeOp("fc", "f", "fc", "mac", "linear", w2, np.zeros(3, np.int64), requant=req2)
    return IntegerModel("input", (1, 2, 6, 6), 1 / 64, -128, 127, (conv, pool, flat, fc), "fc", 1.0)


def _npz_parts() -> tuple[dict[str, Any], dict[str, bytes]]:
    from autochip.reference import _flatten

    arrays: dict[str, np.ndarray] = {}
    header = _flatten("m", _int_model(), arrays)
    members = {}
    for k, a in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a)
        members[f"{k}.npy"] = buf.getvalue()
    return header, members


_HEADER, _MEMBERS = _npz_parts()
_HEADER_PATHS = _paths(_HEADER)[1:]
_ARRAYS = st.one_of(
    st.builds(
        lambda shape, dtype, v: np.full(shape, v).astype(dtype),
        st.lists(st.integers(0, 5), max_size=4).map(tuple),
        st.sampled_from([np.int64, np.int8, np.uint8, np.bool_, np.float32]),
        st.integers(-2, 2),
    ),
)


@_examples("npz")
@given(
    st.lists(
        st.tuples(st.sampled_from(_HEADER_PATHS), _JSON | st.sampled_from(["NaN", 1e308])),
        max_size=3,
    ),
    st.lists(st.tuples(st.sampled_from(sorted(_MEMBERS)), _ARRAYS), max_size=2),
    st.sampled_from([None, (10**6, 10**6), (2**62,), (3, -1)]),
)
def test_fuzz_integer_model_npz(
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[tuple[Any, ...], Any]],
    replaced: list[tuple[str, np.ndarray]],
    forged_shape: tuple[int, ...] | None,
) -> None:
    header = _mutate(_HEADER, edits)
    members = dict(_MEMBERS)
    for name, array in replaced:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array)
        members[name] = buf.getvalue()
    if forged_shape is not None:
        name = sorted(members)[0]
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": "<i8", "fortran_order": False, "shape": forged_shape}
        )
        members[name] = buf.getvalue() + b"\0" * 64
    text = json.dumps(header).replace('"NaN"', "NaN")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(text.encode(), dtype=np.uint8))
    members["__header__.npy"] = buf.getvalue()
    path = tmp_path_factory.mktemp("npz") / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)

    def target() -> None:
        from autochip import reference

        model = load_integer_model(path)
        if math.prod(model.input_shape[1:]) <= 4096:  # small: the reference can run it
            reference.run(model, np.zeros((1, *model.input_shape[1:]), dtype=np.int64))

    _result_or_error(target)


# -- the CLI -----------------------------------------------------------------------------------
_TOKENS = ["inspect", "predict", "emit", "build", "--json", "--csv", "--plot", "--hw", "--out",
           "--platform", "zedboard", "asic-45nm", "xc7z020", "--fidelity", "rtl", "analytic",
           "--raw", "--images", "0", "-1", "--depth", "--lint", "--scalesim-config",
           "--scalesim-topology", "--scalesim-format", "gemm", "--model-code", "--help",
           "HW", "GRAPH", "NPZ", "CFG", "TOPO", "OUT", "mlp", "", "-", "--", "nan"]  # fmt: skip


@_examples("cli")
@given(
    st.tuples(
        st.sampled_from(["inspect", "predict", "emit", "build"]),
        st.sampled_from(["GRAPH", "NPZ", "mlp", "HW", "--hw", "x.pt2", "--scalesim-config"]),
        st.lists(st.sampled_from(_TOKENS) | st.text(max_size=6), max_size=6),
    ).map(lambda t: [t[0], t[1], *t[2]]),
    _YAML_TEXT,
    st.lists(st.tuples(st.sampled_from(_GRAPH_PATHS), _JSON), max_size=2),
)
def test_fuzz_cli(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    hw_text: str,
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    d = tmp_path_factory.mktemp("cli")
    files = {
        "HW": (d / "hw.yaml", hw_text),
        "GRAPH": (d / "g.json", json.dumps(_mutate(_GRAPH, edits))),
        "CFG": (d / "c.cfg", "[architecture_presets]\nArrayHeight: 4\nArrayWidth: 4\n"),
        "TOPO": (d / "t.csv", "Layer, M, N, K,\ng, 4, 4, 4,\n"),
    }
    for path, text in files.values():
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    save_integer_model(_int_model(), d / "m.npz")
    subst = {k: str(p) for k, (p, _) in files.items()} | {"NPZ": str(d / "m.npz"),
                                                         "OUT": str(d / "out")}  # fmt: skip
    args = [subst.get(a, a) for a in argv]
    if args[0] in ("build", "emit") and "--out" not in args:
        args += ["--out", str(d / "out")]

    with _memory_bound():
        code = cli.main(args)
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (args, code)
    assert "Traceback" not in err
    if code == 0 and "--json" in args and "--help" not in args and "-h" not in args:
        json.loads(out)
    if code == 2 and err and not err.startswith("usage:"):
        assert err.startswith("autochip"), err


@_examples("cli_graph")
@given(
    st.sampled_from(
        [
            ["inspect", "--json"],
            ["inspect", "--csv", "OUT.csv"],
            ["predict", "--platform", "zedboard", "--json"],
            ["predict", "--platform", "asic-45nm", "--fidelity", "rtl"],
            ["predict", "--hw", "HW", "--csv", "OUT.csv"],
        ]
    ),
    st.lists(st.tuples(st.sampled_from(_GRAPH_PATHS), _JSON | _NUMS), min_size=1, max_size=3),
)
def test_fuzz_cli_on_graphs(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """Mutated graphs that the reader accepts go on to the predictor and the tables."""
    d = tmp_path_factory.mktemp("cli")
    graph = d / "g.json"
    graph.write_text(json.dumps(_mutate(_GRAPH, edits)).replace("NaN", '"nan"'))
    (d / "hw.yaml").write_text("array: {rows: 4, cols: 8}\ndataflow: ws\n")
    subst = {"HW": str(d / "hw.yaml"), "OUT.csv": str(d / "out.csv")}
    args = [argv[0], str(graph), *(subst.get(a, a) for a in argv[1:])]
    with _memory_bound():
        code = cli.main(args)
    out, err = capsys.readouterr()
    assert code in (0, 2), (args, err)
    if code == 0 and "--json" in args:
        json.loads(out)
    else:
        assert code == 0 or err.startswith(f"autochip {argv[0]}: error: "), err


_SPEC_NUMS = st.one_of(
    st.sampled_from([1, 2, 3, 4, 16, 64, 1024, 4096, 0.001, 1 / 1024, 2**20]),
    st.floats(min_value=1 / 1024, max_value=2**20),
    st.integers(1, 4096),
)


@_examples("predict_spec")
@given(
    st.fixed_dictionaries(
        {
            "array": st.fixed_dictionaries(
                {"rows": st.integers(1, 4096), "cols": st.integers(1, 4096)}
            )
        },
        optional={
            "pe": st.fixed_dictionaries(
                {},
                optional={
                    "kind": st.sampled_from(["mac", "adder", "xnor"]),
                    "dtype": st.sampled_from(["int", "float"]),
                    "w_bits": st.integers(1, 32),
                    "a_bits": st.integers(1, 32),
                    "acc_bits": st.integers(2, 64),
                    "vector": st.integers(1, 1024),
                },
            ),
            "dataflow": st.sampled_from(["os", "ws", "is"]),
            "buffers": st.dictionaries(
                st.sampled_from(["ifmap", "weight", "ofmap"]),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "size_kb": _SPEC_NUMS,
                        "banks": st.integers(1, 1024),
                        "bandwidth": _SPEC_NUMS,
                    },
                ),
            ),
            "dram": st.fixed_dictionaries({"bandwidth": _SPEC_NUMS}),
            "clock_mhz": st.floats(min_value=0.001, max_value=100_000),
        },
    ),
    st.sampled_from(["zedboard", "asic-45nm", "asic-16nm"]),
    st.sampled_from(["analytic", "rtl"]),
)
def test_fuzz_valid_specs_predict_sane_numbers(data: Any, platform: str, fidelity: str) -> None:
    """Every spec the reader accepts gives finite, non-negative predictions (no -9.2e18 cycles)."""
    from autochip.predictor.estimate import predict

    def target() -> None:
        hw = hardware_spec_from_dict(data, "fuzz.yaml")
        est = predict(graph_from_dict(_GRAPH), hw, load_platform(platform), fidelity)
        t = est.total
        for v in (t.cycles, t.latency_s, t.energy_pj, t.power_w):
            assert math.isfinite(float(v)) and float(v) >= 0, (data, t)

    _result_or_error(target)


def test_profile_is_fixed() -> None:
    assert FUZZ.derandomize and FUZZ.database is None
    assert sum(EXAMPLES.values()) >= 1000 and all(n > 0 for n in EXAMPLES.values())
    assert math.isfinite(FUZZ.deadline.total_seconds())  # type: ignore[union-attr]

"""Malicious and malformed inputs against every command: exit 2, one message, nothing written,
no code run (docs/security.md). One table; each case builds its input in a fresh folder.

A case's input that would run code (a crafted .pt2, a checkpoint naming a .py file, a pickle)
writes the marker file ``PWNED`` when that code runs; the marker must never appear. Each case
also asserts that the command wrote nothing: the folder holds exactly the inputs it made.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from autochip import cli
from autochip.reference import ComputeOp, IntegerModel, Requant, save_integer_model

MARK = "PWNED"
UNWRITABLE = "/proc"  # no one, root included, may create files in /proc


# -- crafting helpers -------------------------------------------------------------------------
class _Evil:
    """Pickles to a call that writes the marker file (the classic pickle attack)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


def _evil_pickle(d: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"x": _Evil(d / MARK)}, buf)
    return buf.getvalue()


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


@pytest.fixture(scope="module")
def good_pt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(torch.export.export(_Tiny(), (torch.zeros(1, 4),)), str(path))
    return path


def _rewrite_pt2(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    with zipfile.ZipFile(src) as z:
        items = {n: z.read(n) for n in z.namelist()}
    edit(items)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for name, data in items.items():
            out.writestr(name, data)


def _key(items: dict[str, bytes], suffix: str) -> str:
    return next(n for n in items if n.endswith(suffix))


def _pt2_sample_inputs(d: Path, src: Path) -> Path:
    """The always-present sample inputs, which torch retries with weights_only=False."""

    def edit(items: dict[str, bytes]) -> None:
        items[_key(items, "sample_inputs/model.pt")] = _evil_pickle(d)

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_pickled_weight(d: Path, src: Path) -> Path:
    """A weight marked use_pickle: read with torch.load(weights_only=False) by torch."""

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "weights_config.json")
        cfg = json.loads(items[k])
        cfg["config"]["fc.weight"]["use_pickle"] = True
        items[k] = json.dumps(cfg).encode()
        items[_key(items, "weights/weight_0")] = _evil_pickle(d)

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_opaque_constant(d: Path, src: Path) -> Path:
    """An opaque constant: read with pickle.loads by torch."""

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "constants_config.json")
        entry = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}
        items[k] = json.dumps({"config": {"c": {**entry, "tensor_meta": None}}}).encode()
        base = k.rsplit("/", 1)[0]
        items[f"{base}/opaque_obj_0"] = _evil_pickle(d)

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_sympy_eval(d: Path, src: Path) -> Path:
    """A symbolic size whose expression torch hands to sympy.sympify (which calls eval)."""
    code = f"exec(\\\"open('{d / MARK}', 'w')\\\") or 4"

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "models/model.json")
        text = items[k].decode()
        expr = '{"as_expr": {"expr_str": "' + code + '", "hint": {"as_int": 4}}}'
        items[k] = text.replace('{"as_int": 4}', expr, 1).encode()

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_guard_code(d: Path, src: Path) -> Path:
    """An input guard: ep.module() compiles it into Python that runs on every call."""

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "models/model.json")
        doc = json.loads(items[k])
        doc["guards_code"] = [f"__import__('builtins').open({str(d / MARK)!r}, 'w') != 0"]
        items[k] = json.dumps(doc).encode()

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_os_target(d: Path, src: Path) -> Path:
    """A call target resolved by getattr on torch: torch.os.system."""

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "models/model.json")
        items[k] = items[k].replace(b"torch.ops.aten.relu.default", b"torch.os.system")

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_pytree_import(d: Path, src: Path) -> Path:
    """A defaultdict in the input spec names its factory's module: torch imports it."""
    (d / "autochip_pt2_evil.py").write_text(f"open({str(d / MARK)!r}, 'w')\nx = list\n")
    ctx = {"default_factory_module": "autochip_pt2_evil", "default_factory_name": "x",
           "dict_context": []}  # fmt: skip
    leaf = {"type": None, "context": None, "children_spec": []}
    spec = [1, {"type": "builtins.tuple", "context": "null", "children_spec": [
        {"type": "builtins.tuple", "context": "null", "children_spec": [leaf]},
        {"type": "collections.defaultdict", "context": ctx, "children_spec": []}]}]  # fmt: skip

    def edit(items: dict[str, bytes]) -> None:
        k = _key(items, "models/model.json")
        doc = json.loads(items[k])
        doc["graph_module"]["module_call_graph"][0]["signature"]["in_spec"] = json.dumps(spec)
        items[k] = json.dumps(doc).encode()

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_aoti(d: Path, src: Path) -> Path:
    def edit(items: dict[str, bytes]) -> None:
        base = _key(items, "archive_version").rsplit("/", 1)[0]
        items[f"{base}/data/aotinductor/model/evil.so"] = b"\x7fELF"

    _rewrite_pt2(src, d / "m.pt2", edit)
    return d / "m.pt2"


def _pt2_legacy(d: Path, src: Path) -> Path:
    path = d / "m.pt2"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("version", "8.0")
        z.writestr("serialized_exported_program.json", "{}")
        z.writestr("serialized_state_dict.pt", _evil_pickle(d))
    return path


def _evil_py(d: Path, body: str = "") -> Path:
    path = d / "evil.py"
    path.write_text(f"open({str(d / MARK)!r}, 'w').write('x')\n{body}")
    return path


def _checkpoint(d: Path, model: object, state: object = None, policy: object = None) -> Path:
    path = d / "c.pt"
    data = {"format": "autochip-checkpoint/1", "model": model, "policy": policy,
            "state_dict": {} if state is None else state, "meta": {}}  # fmt: skip
    torch.save(data, path)
    return path


def _ckpt_names_py(d: Path) -> Path:
    return _checkpoint(d, str(_evil_py(d)))


def _write(d: Path, name: str, text: str | bytes) -> Path:
    path = d / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


HW_OK = "array: {rows: 4, cols: 4}\n"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def _int_model() -> IntegerModel:
    w = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    req = Requant(np.full(3, 1 << 14, dtype=np.int64), np.full(3, 16, dtype=np.int64), -128, 127)
    op = ComputeOp("fc", "input", "fc", "mac", "linear", w, np.zeros(3, np.int64), requant=req)
    return IntegerModel("input", (1, 4), 1 / 64, -128, 127, (op,), "fc", 1.0)


def _npz(d: Path, edit: Callable[[dict[str, bytes]], None] | None = None) -> Path:
    path = d / "m.npz"
    save_integer_model(_int_model(), path)
    if edit is not None:
        with zipfile.ZipFile(path) as z:
            items = {n: z.read(n) for n in z.namelist()}
        edit(items)
        with zipfile.ZipFile(path, "w") as z:
            for name, data in items.items():
                z.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def _huge_shape(items: dict[str, bytes]) -> None:
    k = next(n for n in items if "weight" in n)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<i8", "fortran_order": False, "shape": (90_000, 100_000)}
    )
    items[k] = buf.getvalue() + np.zeros(12, np.int64).tobytes()


def _forged_npy() -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<i8", "fortran_order": False, "shape": (90_000, 100_000)}
    )
    return buf.getvalue() + bytes(64)


def _object_array(items: dict[str, bytes]) -> None:
    k = next(n for n in items if "weight" in n)
    items[k] = _npy(np.array([_Evil(Path("/nonexistent/x"))], dtype=object))


def _header(change: Callable[[dict[str, object]], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(items: dict[str, bytes]) -> None:
        raw = np.load(io.BytesIO(items["__header__.npy"]))
        header = json.loads(bytes(raw).decode())
        change(header)
        text = json.dumps(header).replace('"NAN"', "NaN")
        items["__header__.npy"] = _npy(np.frombuffer(text.encode(), dtype=np.uint8))

    return edit


def _op(h: dict[str, object]) -> dict[str, object]:
    ops = h["ops"]
    assert isinstance(ops, list)
    op = ops[0]
    assert isinstance(op, dict)
    return op


def _graph_json(d: Path, text: str) -> Path:
    return _write(d, "g.json", text)


def _good_graph() -> dict[str, object]:
    from autochip import ir
    from autochip.ir.serialize import graph_to_dict

    return graph_to_dict(ir.trace(_Tiny(), torch.zeros(1, 4), "tiny"))


def _graph_with(change: Callable[[dict[str, object]], None]) -> str:
    g = _good_graph()
    change(g)
    return json.dumps(g)


def _set_dim(g: dict[str, object]) -> None:
    nodes = g["nodes"]
    assert isinstance(nodes, list)
    nodes[0]["output_shape"] = [1, 2**40]


def _build_dir(d: Path, model_npz: Path) -> Path:
    b = d / "b"
    (b / "tb").mkdir(parents=True)
    for name in ("plan.json", "files.f", "tb/tb_core.py"):
        (b / name).write_text("")
    os.replace(model_npz, b / "model.npz")
    return b


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real build folder (tiny linear model) to tamper with."""
    d = tmp_path_factory.mktemp("built")
    out = d / "b"
    assert cli.main(["build", str(_npz(d)), "--platform", "zedboard", "--out", str(out),
                     "--images", "1", "--json"]) == 0  # fmt: skip
    return out


_BUILT: list[Path] = []  # set by the test from the fixture (the table's lambdas take (d, g))


def _tampered(d: Path, edit: Callable[[Path], None]) -> Path:
    b = d / "b"
    shutil.copytree(_BUILT[0], b)
    edit(b)
    return b


def _rtl_system(b: Path) -> None:
    rtl = next((b / "rtl").glob("*.v"))
    rtl.write_text(rtl.read_text() + f'\nmodule evil; initial $system("touch {b.parent / MARK}"); '
                   "endmodule\n")  # fmt: skip


def _tb_code(b: Path) -> None:
    (b / "tb" / "tb_core.py").write_text(f"open({str(b.parent / MARK)!r}, 'w')\n")


def _files_outside(b: Path) -> None:
    (b / "files.f").write_text("../../../../etc/passwd\n")


def _top_injection(b: Path) -> None:
    m = json.loads((b / "manifest.json").read_text())
    m["top"] = "autochip_core\nshell touch PWNED"
    (b / "manifest.json").write_text(json.dumps(m))


# -- the table --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path, Path], list[str]]  # (folder, good .pt2) -> argv
    match: str  # in the message


CASES = [
    # crafted .pt2 files: every unpickler and eval torch.export.load would use
    Case("pt2-sample-inputs-pickle", lambda d, g: ["inspect", str(_pt2_sample_inputs(d, g))],
         "refusing to load a pickled Python object"),
    Case("pt2-sample-inputs-predict", lambda d, g: ["predict", str(_pt2_sample_inputs(d, g)),
         "--platform", "zedboard", "--json"], "refusing to load a pickled Python object"),
    Case("pt2-pickled-weight", lambda d, g: ["inspect", str(_pt2_pickled_weight(d, g)),
         "--json"], "refusing to load a pickled Python object"),
    Case("pt2-opaque-constant", lambda d, g: ["inspect", str(_pt2_opaque_constant(d, g))],
         "refusing to load a pickled Python object"),
    Case("pt2-sympy-eval", lambda d, g: ["inspect", str(_pt2_sympy_eval(d, g)), "--json"],
         "not a shape formula"),
    Case("pt2-guard-code", lambda d, g: ["inspect", str(_pt2_guard_code(d, g))],
         "refusing the input guard"),
    Case("pt2-os-system-target", lambda d, g: ["inspect", str(_pt2_os_target(d, g))],
         "system"),
    Case("pt2-pytree-import", lambda d, g: ["inspect", str(_pt2_pytree_import(d, g))],
         "refusing to load the Python module 'autochip_pt2_evil'"),
    Case("pt2-aotinductor-so", lambda d, g: ["inspect", str(_pt2_aoti(d, g))],
         "refusing compiled code"),
    Case("pt2-legacy-zip", lambda d, g: ["inspect", str(_pt2_legacy(d, g))],
         "the older format is not read"),
    Case("pt2-not-a-zip", lambda d, g: ["inspect", str(_write(d, "m.pt2", "junk"))],
         "expected a torch.export program"),
    Case("pt2-compress", lambda d, g: ["compress", str(_pt2_sample_inputs(d, g)), "--method",
         "quant", "--out", str(d / "o.pt")], "refusing to load a pickled Python object"),
    # checkpoints
    Case("ckpt-names-py-inspect", lambda d, g: ["inspect", str(_ckpt_names_py(d))],
         "pass the model's .py file explicitly with --model-code"),
    Case("ckpt-names-py-predict", lambda d, g: ["predict", str(_ckpt_names_py(d)),
         "--platform", "zedboard"], "never runs code a data file names"),
    Case("ckpt-names-py-compress", lambda d, g: ["compress", str(_ckpt_names_py(d)), "--method",
         "quant", "--out", str(d / "o.pt")], "never runs code a data file names"),
    Case("ckpt-pickled-object", lambda d, g: ["inspect", str(_write(d, "c.pt",
         _evil_pickle(d)))], "is not an autochip checkpoint"),
    Case("ckpt-path-spec", lambda d, g: ["inspect", str(_checkpoint(d, "../../x/model"))],
         "expected its model to be a zoo name"),
    Case("ckpt-bad-state", lambda d, g: ["inspect", str(_checkpoint(d, "mlp",
         state={"fc.weight": "x"}))], "expected tensors in the state dict"),
    Case("ckpt-model-code-not-py", lambda d, g: ["inspect", str(_ckpt_names_py(d)),
         "--model-code", str(_write(d, "x.txt", "x"))], "--model-code: expected the model's"),
    # hardware specs
    Case("spec-name-newline-emit", lambda d, g: ["emit", "--hw", str(_write(d, "h.yaml",
         'name: "x\\nmodule evil; endmodule //"\n' + HW_OK)), "--out", str(d / "o")],
         "name: expected a name"),
    Case("spec-name-newline-predict", lambda d, g: ["predict", "mlp", "--hw", str(_write(d,
         "h.yaml", 'name: "a\\nb"\n' + HW_OK))], "name: expected a name"),
    Case("spec-name-newline-build", lambda d, g: ["build", str(_npz(d)), "--hw", str(_write(d,
         "h.yaml", 'name: "a\\nb"\n' + HW_OK)), "--out", str(d / "o")], "name: expected"),
    Case("spec-nan", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         HW_OK + "dram: {bandwidth: .nan}\n"))], "expected a finite number, found nan"),
    Case("spec-inf", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         HW_OK + "clock_mhz: .inf\n"))], "expected a finite number, found inf"),
    Case("spec-alias-bomb", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         ALIAS_BOMB))], "anchors and aliases are not accepted"),
    Case("spec-alias-emit", lambda d, g: ["emit", "--hw", str(_write(d, "h.yaml",
         "array: &a {rows: 4, cols: 4}\n")), "--out", str(d / "o")], "anchor '&a'"),
    Case("spec-duplicate-key", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         HW_OK + "array: {rows: 2, cols: 2}\n"))], "line 2: duplicate key 'array'"),
    Case("spec-huge-buffer", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         HW_OK + "buffers: {ifmap: {size_kb: 1.0e+12}}\n"))], "(MAX_BUFFER_KB)"),
    Case("spec-huge-int", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         f"array: {{rows: {10**30}, cols: 4}}\n"))], "(MAX_INT)"),
    Case("spec-not-utf8", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         b"\xff\xfe\x00name"))], "expected a UTF-8 text file"),
    Case("spec-too-big", lambda d, g: ["emit", "--hw", str(_write(d, "h.yaml",
         "#" * (1 << 21))), "--out", str(d / "o")], "(MAX_YAML_BYTES)"),
    Case("spec-deep-nesting", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         "a: " + "[" * 200 + "]" * 200 + "\n"))], "(MAX_YAML_DEPTH)"),
    Case("spec-python-tag", lambda d, g: ["predict", "mlp", "--hw", str(_write(d, "h.yaml",
         "name: !!python/object/apply:os.system ['touch PWNED']\n" + HW_OK))], "invalid YAML"),
    # SCALE-Sim files
    Case("scalesim-huge-dims", lambda d, g: ["predict", "--scalesim-config", str(_write(d,
         "c.cfg", "[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 64\n"
         "FilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: os\n")), "--scalesim-topology",
         str(_write(d, "t.csv", "Layer, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
         "Channels, Num Filter, Strides,\nc1, 99999999999, 99999999999, 3, 3, 3, 64, 1,\n"))],
         "(MAX_DIM)"),
    Case("scalesim-dp-channels", lambda d, g: ["predict", "--scalesim-config", str(_write(d,
         "c.cfg", "[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 64\n"
         "FilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: os\n")), "--scalesim-topology",
         str(_write(d, "t.csv", "Layer, H, W, R, S, C, K, St,\n"
                                "DP1, 8, 8, 3, 3, 1000000, 1, 1,\n"))],
         "(MAX_LAYERS"),
    Case("scalesim-nan-bandwidth", lambda d, g: ["predict", "--scalesim-config", str(_write(d,
         "c.cfg", "[run_presets]\nInterfaceBandwidth: USER\n[architecture_presets]\n"
         "ArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\n"
         "OfmapSramSzkB: 64\nDataflow: os\nBandwidth: nan\n")), "--scalesim-topology",
         str(_write(d, "t.csv", "Layer, M, N, K,\ng, 8, 8, 8,\n"))], "positive finite words"),
    Case("scalesim-huge-array", lambda d, g: ["predict", "--scalesim-config", str(_write(d,
         "c.cfg", "[architecture_presets]\nArrayHeight: 100000000\nArrayWidth: 8\n"
         "IfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: os\n")),
         "--scalesim-topology", str(_write(d, "t.csv", "Layer, M, N, K,\ng, 8, 8, 8,\n"))],
         "(MAX_ARRAY_DIM)"),
    Case("scalesim-huge-field", lambda d, g: ["predict", "--scalesim-config", str(_write(d,
         "c.cfg", "[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 64\n"
         "FilterSramSzkB: 64\nOfmapSramSzkB: 64\nDataflow: os\n")), "--scalesim-topology",
         str(_write(d, "t.csv", "Layer, M, N, K,\n" + "g" * 200_000 + ", 8, 8, 8,\n"))],
         "not a CSV row"),
    # graph JSON
    Case("graph-nan", lambda d, g: ["inspect", str(_graph_json(d, _graph_with(
         lambda x: x.update(name="NAN")).replace('"NAN"', "NaN")))], "expected finite numbers"),
    Case("graph-inf-literal", lambda d, g: ["predict", str(_graph_json(d, _graph_with(
         lambda x: x.update(name="INF")).replace('"INF"', "1e999"))), "--platform", "zedboard"],
         "expected finite numbers"),
    Case("graph-deep-nesting", lambda d, g: ["inspect", str(_graph_json(d,
         "[" * 100_000 + "]" * 100_000))], "invalid JSON"),
    Case("graph-huge-dim", lambda d, g: ["inspect", str(_graph_json(d, _graph_with(_set_dim)))],
         "(MAX_RANK)"),
    # integer-model .npz
    Case("npz-huge-shape", lambda d, g: ["build", str(_npz(d, _huge_shape)), "--platform",
         "zedboard", "--out", str(d / "o")], "(MAX_ARRAY_ELEMS)"),
    Case("npz-object-array", lambda d, g: ["build", str(_npz(d, _object_array)), "--platform",
         "zedboard", "--out", str(d / "o")], "expected an integer or boolean array"),
    Case("npz-unknown-type", lambda d, g: ["build", str(_npz(d, _header(
         lambda h: _op(h).update(__type__="os.system")))), "--platform", "zedboard", "--out",
         str(d / "o")], "expected one of"),
    Case("npz-nan-scale", lambda d, g: ["build", str(_npz(d, _header(
         lambda h: h.update(input_scale="NAN")))), "--platform", "zedboard", "--out",
         str(d / "o")], "expected finite numbers"),
    Case("npz-bad-stride", lambda d, g: ["build", str(_npz(d, _header(
         lambda h: _op(h).update(layer="conv")))), "--platform", "zedboard", "--out",
         str(d / "o")], "expected a C x H x W input"),
    Case("npz-name-newline", lambda d, g: ["build", str(_npz(d, _header(
         lambda h: _op(h).update(name="fc\nmodule evil")))), "--platform", "zedboard", "--out",
         str(d / "o")], "expected a name"),
    Case("npz-sim-tampered", lambda d, g: ["sim", str(_build_dir(d, _npz(d, _huge_shape)))],
         "(MAX_ARRAY_ELEMS)"),
    Case("npy-sim-input-huge", lambda d, g: ["sim", str(_build_dir(d, _npz(d))), "--input",
         str(_write(d, "x.npy", _forged_npy()))], "(MAX_ARRAY_ELEMS)"),
    Case("npy-sim-input-nan", lambda d, g: ["sim", str(_build_dir(d, _npz(d))), "--input",
         str(_write(d, "x.npy", _npy(np.full((1, 4), np.nan, np.float32))))],
         "expected finite values"),
    # design and build folders: RTL and the testbench run in a simulator
    Case("sim-rtl-system-task", lambda d, g: ["sim", str(_tampered(d, _rtl_system))],
         "refusing RTL that uses '$system'"),
    Case("sim-testbench-replaced", lambda d, g: ["sim", str(_tampered(d, _tb_code))],
         "tb/tb_core.py: expected the testbench autochip writes"),
    Case("synth-files-outside", lambda d, g: ["synth", str(_tampered(d, _files_outside)),
         "--target", "ice40"], "expected paths inside the folder"),
    Case("synth-top-injection", lambda d, g: ["synth", str(_tampered(d, _top_injection)),
         "--target", "xilinx"], "top: expected a Verilog identifier"),
    # output paths, checked before any work
    Case("out-csv-unwritable", lambda d, g: ["predict", "mlp", "--platform", "zedboard",
         "--csv", f"{UNWRITABLE}/x.csv"], "not writable"),
    Case("out-plot-under-file", lambda d, g: ["predict", "mlp", "--platform", "zedboard",
         "--plot", str(_write(d, "f", "x") / "p.png")], "where a folder is needed"),
    Case("out-inspect-csv-unwritable", lambda d, g: ["inspect", "mlp", "--csv",
         f"{UNWRITABLE}/x.csv"], "not writable"),
    Case("out-compress-unwritable", lambda d, g: ["compress", "mlp", "--method", "quant",
         "--out", f"{UNWRITABLE}/x.pt"], "not writable"),
    Case("out-emit-is-file", lambda d, g: ["emit", "--hw", str(_write(d, "h.yaml", HW_OK)),
         "--out", str(_write(d, "o", "x"))], "expected a folder, found a file"),
    Case("out-build-unwritable", lambda d, g: ["build", str(_npz(d)), "--platform", "zedboard",
         "--out", f"{UNWRITABLE}/b"], "not writable"),
    # model code that ends the process
    Case("model-sys-exit-0", lambda d, g: ["inspect", str(_write(d, "m.py",
         "import sys\nsys.exit(0)\n")), "--json"], "called sys.exit(0)"),
    Case("model-sys-exit-in-build-model", lambda d, g: ["predict", str(_write(d, "m.py",
         "import sys\ndef build_model():\n    sys.exit(0)\ndef example_input():\n    pass\n")),
         "--platform", "zedboard", "--json"], "called sys.exit(0)"),
    # model code that fails on its own example input: the node and line, not a traceback
    Case("model-forward-fails-in-build", lambda d, g: ["build", str(_write(d, "m.py",
         "import torch\nclass M(torch.nn.Module):\n    def __init__(self):\n"
         "        super().__init__()\n        self.fc = torch.nn.Linear(5, 3)\n"
         "    def forward(self, x):\n        return self.fc(x)\n"
         "def build_model():\n    return M()\n"
         "def example_input():\n    return torch.zeros(1, 4)\n")),
         "--platform", "zedboard", "--out", str(d / "b")], "failed at node 'fc'"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_message_exit_2_nothing_written_no_code_run(
    case: Case,
    good_pt2: Path,
    built: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _BUILT[:] = [built]
    d = tmp_path / "case"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))  # a module beside the input is importable, as from cwd
    argv = case.make(d, good_pt2)
    before = sorted(str(p) for p in d.rglob("*"))
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(d)  # a relative 'touch PWNED' would land here too
    try:
        code = cli.main(argv)
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith(f"autochip {argv[0]}: error: "), err
    assert all(line.startswith("  - ") for line in lines[1:]), err  # the problems of one spec
    assert "Traceback" not in err
    assert case.match in err, err
    assert not (d / MARK).exists(), "code from the input ran"
    assert sorted(str(p) for p in d.rglob("*")) == before, "something was written"


def test_a_model_that_prints_keeps_json_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _write(tmp_path, "m.py", (
        "import torch\nprint('import noise')\n"
        "def build_model():\n    print('build noise')\n    return torch.nn.Linear(4, 2)\n"
        "def example_input():\n    print('input noise')\n    return torch.zeros(1, 4)\n"
    ))  # fmt: skip
    for argv in (["inspect", str(model), "--json"],
                 ["predict", str(model), "--platform", "zedboard", "--json"]):  # fmt: skip
        assert cli.main(argv) == 0
        out, err = capsys.readouterr()
        json.loads(out)  # stdout is the JSON document alone
        assert "import noise" in err and "build noise" in err and "input noise" in err


def test_model_code_given_explicitly_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _write(tmp_path, "net.py", (
        "import torch\ndef build_model():\n    return torch.nn.Linear(4, 2)\n"
        "def example_input():\n    return torch.zeros(1, 4)\n"
    ))  # fmt: skip
    state = {k: v.clone() for k, v in nn.Linear(4, 2).state_dict().items()}
    ckpt = _checkpoint(tmp_path, str(code), state=state)
    assert cli.main(["inspect", str(ckpt), "--json"]) == 2
    assert "--model-code" in capsys.readouterr().err
    assert cli.main(["inspect", str(ckpt), "--json", "--model-code", str(code)]) == 0
    assert json.loads(capsys.readouterr().out)["total_macs"] == 8


def test_good_pt2_still_loads(good_pt2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["inspect", str(good_pt2), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_macs"] == 12


def test_dynamic_shape_pt2_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """torch writes symbolic sizes as sympy reprs (``Symbol('s0', positive=True, ...)``,
    ``Mul(Integer(4), Pow(...))``): the restricted loader accepts exactly that grammar."""
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(_Tiny(), (torch.zeros(2, 4),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(ep, str(tmp_path / "dyn.pt2"))
    assert (
        "Symbol("
        in zipfile.ZipFile(tmp_path / "dyn.pt2")
        .read(next(n for n in zipfile.ZipFile(tmp_path / "dyn.pt2").namelist() if "models/" in n))
        .decode()
    )
    assert cli.main(["inspect", str(tmp_path / "dyn.pt2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 15


def test_ir_does_not_import_compress() -> None:
    """DESIGN.md's one-way flow: the IR's loader names nothing of autochip.compress."""
    import autochip.ir.loader as loader

    text = Path(str(loader.__file__)).read_text()
    assert "import autochip.compress" not in text and "from autochip.compress" not in text

"""Reading ``torch.export`` ``.pt2`` archives without running code from them.

``torch.export.load`` (torch 2.13) executes code from the archive in several places:

* ``data/sample_inputs/<model>.pt`` (always present), legacy ``data/weights/<model>.pt`` /
  ``data/constants/<model>.pt`` files and the pre-2.8 zip format go through
  ``deserialize_torch_artifact``, which retries ``torch.load(weights_only=False)`` (a full
  unpickler: any callable can be invoked) when the restricted load fails;
* weights and tensor constants marked ``use_pickle`` are read with
  ``torch.load(weights_only=False)``; ``opaque_obj*`` constants with ``pickle.loads``;
  ``custom_obj*`` constants with the TorchScript unpickler;
* ``data/aotinductor/`` holds compiled shared libraries that are loaded (``dlopen``);
* symbolic shapes (``expr_str`` and range-constraint keys in ``models/<model>.json``) are parsed
  with ``sympy.sympify``, which calls ``eval``;
* call targets named ``torch.<anything>`` are resolved with ``getattr`` (``torch.os.system``);
* ``guards_code`` strings are compiled into Python by ``ep.module()`` (run on every call);
* pytree specs (``in_spec``/``out_spec``) name modules that ``importlib.import_module`` imports
  (a ``defaultdict`` factory, an enum): a module beside the archive or in the working folder runs.

:func:`load_pt2` refuses all of these: it checks the archive's entries first, then runs
``torch.export.load`` with every unpickler restricted to tensors (``weights_only=True``), the
other unpicklers and the AOTInductor loader replaced by a refusal, and ``sympify`` given only
strings from a small grammar (shape symbols, integers, arithmetic, the sympy functions torch
uses); finally every call target must be an ATen/higher-order operator or from ``operator`` /
``math``, and every input guard a comparison of input sizes and integers. A refusal is a
:class:`ModelLoadError` that says what was found and where.
"""

from __future__ import annotations

import contextlib
import operator
import re
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from autochip.errors import ModelLoadError

__all__ = ["MAX_PT2_BYTES", "MAX_PT2_ENTRIES", "MAX_SYMBOLIC_EXPR", "load_pt2"]

MAX_PT2_BYTES = 1 << 31  # 2 GiB of uncompressed archive members
MAX_PT2_ENTRIES = 100_000
MAX_SYMBOLIC_EXPR = 400  # characters of one symbolic shape expression
_LOCK = threading.Lock()

_EXPR_CHARS = re.compile(r"[A-Za-z0-9_\s+\-*/%(),.<>=!&|~]*")
_SYMBOL = re.compile(r"[a-z]{1,5}[0-9]{1,7}")
_SYMPY_NAMES = frozenset(
    [
        "FloorDiv",
        "ModularIndexing",
        "Where",
        "PythonMod",
        "Mod",
        "CleanDiv",
        "CeilToInt",
        "FloorToInt",
        "CeilDiv",
        "LShift",
        "RShift",
        "PowByNatural",
        "FloatPow",
        "FloatTrueDiv",
        "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator",
        "TruncToFloat",
        "TruncToInt",
        "RoundToInt",
        "RoundDecimal",
        "ToFloat",
        "Identity",
        "OpaqueUnaryFn_sqrt",
        "BitwiseFn_bitwise_and",
        "BitwiseFn_bitwise_or",
        "Max",
        "Min",
        "Abs",
        "Eq",
        "Ne",
        "Lt",
        "Le",
        "Gt",
        "Ge",
        "And",
        "Or",
        "Not",
        "oo",
        "True",
        "False",
        "Integer",
        "floor",
        "ceiling",
        "Symbol",
        "Mul",
        "Add",
        "Pow",
        "Rational",
        "positive",
        "negative",
        "nonnegative",
        "nonpositive",
        "integer",
        "real",
        "finite",
        "zero",
        "even",
        "odd",
    ]
)
_SPEC_MODULES = frozenset({"builtins", "collections", "enum", "torch"})
_QUOTED_SYMBOL = re.compile(r"'([a-z]{1,5}[0-9]{1,7})'")
_UNSAFE_ENTRY = re.compile(r"(^|/)data/aotinductor/|\.(so|dll|dylib|pyd)$")


class _Refused(ModelLoadError):
    pass


def _refuse(what: str) -> _Refused:
    return _Refused(what)


def _pow_exponents(text: str) -> list[str]:
    """The second argument of every ``Pow(base, exponent)`` in ``text``."""
    out = []
    for m in re.finditer(r"\bPow\(", text):
        depth, start, comma = 1, m.end(), -1
        for i in range(start, len(text)):
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    out.append(text[comma + 1 : i].strip() if comma >= 0 else "")
                    break
            elif ch == "," and depth == 1:
                comma = i
    return out


def _check_expr(text: str) -> None:
    """Accept only what torch writes for a symbolic shape: ``s0 + 1``, ``2*s77``,
    ``Symbol('s0', positive=True, integer=True)``, ``Mul(Integer(3), Pow(Symbol(...),
    Integer(2)))``, ``FloorDiv(s0, 2)`` ... (sympify would ``eval`` anything else)."""
    if len(text) > MAX_SYMBOLIC_EXPR:
        raise _refuse(
            f"a symbolic shape expression of {len(text)} characters (more than "
            f"MAX_SYMBOLIC_EXPR={MAX_SYMBOLIC_EXPR})"
        )
    plain = _QUOTED_SYMBOL.sub(r"\1", text)  # Symbol('s0', ...) names its symbol in quotes
    bad_name = next(
        (
            t
            for t in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", plain)
            if t not in _SYMPY_NAMES and not _SYMBOL.fullmatch(t)
        ),
        None,
    )
    shown = text if len(text) <= 60 else text[:60] + "..."
    attribute = re.search(r"(?<![0-9])\.|\.(?![0-9])", plain)  # a dot only inside a number
    if not _EXPR_CHARS.fullmatch(plain) or bad_name is not None or attribute:
        why = f" (the name '{bad_name}')" if bad_name else ""
        raise _refuse(
            f"the symbolic shape expression {shown!r}{why}, which is not a shape formula "
            "(symbols, integers and arithmetic only)"
        )
    small = re.compile(r"\s*(Integer\(\s*-?\d{1,2}\s*\)|-?\d{1,2})\s*")
    powers = re.findall(r"\*\*\s*(\(|[^\s(]+)", plain)
    if (
        re.search(r"\d{21,}", plain)
        or len(powers) + plain.count("Pow(") > 3
        or any(not re.fullmatch(r"-?\d{1,2}", p) for p in powers)
        or any(not small.fullmatch(e) for e in _pow_exponents(plain))
    ):
        raise _refuse(f"the symbolic shape expression {shown!r} with a large number or power")


@contextlib.contextmanager
def _restricted(refusals: list[str]) -> Iterator[None]:
    import sympy
    import torch
    from torch.export.pt2_archive import _package

    orig_load = torch.load
    orig_sympify = sympy.sympify
    orig_pickle = getattr(_package, "pickle")  # noqa: B009 (not re-exported by torch)
    orig_aoti = _package._load_aoti
    orig_script = torch._C._pickle_load_obj
    from torch.utils import _pytree

    orig_importlib = getattr(_pytree, "importlib")  # noqa: B009 (not re-exported by torch)

    class _Imports:
        """``importlib`` for pytree specs: only modules already imported (no code runs)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(orig_importlib, name)

        @staticmethod
        def import_module(name: str, package: str | None = None) -> Any:
            root = name.split(".")[0]
            if name in sys.modules and root in _SPEC_MODULES:
                return sys.modules[name]
            what = f"the Python module '{name[:60]}' a pytree spec names (importing it runs it)"
            refusals.append(what)
            raise _refuse(what)

    def fail(what: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            refusals.append(what)
            raise _refuse(what)

        return refuse

    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is False:
            what = "a pickled Python object (torch.load with weights_only=False)"
            refusals.append(what)
            raise _refuse(what)
        kwargs["weights_only"] = True
        return orig_load(f, *args, **kwargs)

    def sympify(a: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(a, str):
            try:
                _check_expr(a)
            except _Refused as exc:
                refusals.append(str(exc))
                raise
        return orig_sympify(a, *args, **kwargs)

    class _NoPickle:
        loads = staticmethod(fail("a pickled Python object (an opaque constant)"))
        load = loads

    with _LOCK:
        torch.load = load
        sympy.sympify = sympify
        setattr(_package, "pickle", _NoPickle)  # noqa: B010
        _package._load_aoti = fail("compiled AOTInductor code")
        torch._C._pickle_load_obj = fail("a TorchScript custom object")
        setattr(_pytree, "importlib", _Imports())  # noqa: B010
        try:
            yield
        finally:
            torch.load = orig_load
            sympy.sympify = orig_sympify
            setattr(_package, "pickle", orig_pickle)  # noqa: B010
            _package._load_aoti = orig_aoti
            torch._C._pickle_load_obj = orig_script
            setattr(_pytree, "importlib", orig_importlib)  # noqa: B010


def _prescan(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"'{path}': expected a torch.export program saved by torch.export.save (a zip "
            f"archive), found: {exc}"
        ) from None
    if len(infos) > MAX_PT2_ENTRIES:
        raise ModelLoadError(
            f"'{path}': expected at most {MAX_PT2_ENTRIES} archive entries (MAX_PT2_ENTRIES), "
            f"found {len(infos)}"
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_PT2_BYTES:
        raise ModelLoadError(
            f"'{path}': expected at most {MAX_PT2_BYTES} bytes of archive content "
            f"(MAX_PT2_BYTES), found {total}"
        )
    names = [i.filename for i in infos]
    unsafe = [n for n in names if _UNSAFE_ENTRY.search(n)]
    if unsafe:
        raise ModelLoadError(
            f"'{path}': refusing compiled code in the archive ('{unsafe[0]}'); autochip reads "
            "only the exported program of a .pt2 file"
        )
    if not any(n == "archive_version" or n.endswith("/archive_version") for n in names):
        raise ModelLoadError(
            f"'{path}': expected a .pt2 archive written by torch.export.save (torch >= 2.8, with "
            "an archive_version entry); the older format is not read because it unpickles "
            "Python objects"
        )


_GUARD_VALUE = re.compile(
    r"L(\[('[A-Za-z_][A-Za-z0-9_]*'|\"[A-Za-z_][A-Za-z0-9_]*\"|\d+)\])+"
    r"(\.(size|stride)\(\)\[\d+\]|\.(storage_offset|dim)\(\))?"
)
_GUARD_REST = re.compile(r"(v|\d{1,12}|\s|[-+*/%<>=!()]|\band\b|\bor\b|\bnot\b)*")


def _guard_ok(code: str) -> bool:
    """A runtime input guard ``ep.module()`` compiles into Python: only input sizes, integers
    and comparisons (``L['x'].size()[3] == L['x'].size()[2]``), nothing that could call code."""
    return len(code) <= MAX_SYMBOLIC_EXPR and bool(
        _GUARD_REST.fullmatch(_GUARD_VALUE.sub("v", code))
    )


def _allowed_target(target: Any) -> bool:
    import torch

    if isinstance(target, torch._ops.OpOverload | torch._ops.HigherOrderOperator):
        return True
    module = getattr(target, "__module__", None)
    if module in ("_operator", "operator", "math") and callable(target):
        return target is getattr(operator, getattr(target, "__name__", ""), None) or (
            module == "math"
        )
    name = getattr(target, "__name__", "")
    return module == "torch" and (name.startswith("sym_") or name.startswith("_sym_"))


def load_pt2(path: str | Path) -> Any:
    """The ``ExportedProgram`` of a ``.pt2`` file, read without running code from it."""
    import torch

    p = Path(path)
    _prescan(p)
    refusals: list[str] = []
    try:
        with _restricted(refusals):
            ep = torch.export.load(str(p))
    except _Refused:
        pass
    except Exception as exc:
        if not refusals:
            text = str(exc).strip().splitlines()
            raise ModelLoadError(
                f"'{p}': expected a torch.export program saved by torch.export.save, reading "
                f"it failed: {type(exc).__name__}: {text[0][:200] if text else ''}"
            ) from None
    if refusals:
        raise ModelLoadError(
            f"'{p}': refusing to load {refusals[0]} from the archive; autochip reads .pt2 files "
            "as data (tensors and the graph), never as code (see docs/security.md)"
        )
    bad_guard = next((g for g in getattr(ep, "_guards_code", []) if not _guard_ok(str(g))), None)
    if bad_guard is not None:
        raise ModelLoadError(
            f"'{p}': refusing the input guard {str(bad_guard)[:60]!r}: ep.module() would compile "
            "it into Python; expected input sizes, integers and comparisons only"
        )
    for node in ep.graph.nodes:
        if node.op == "call_function" and not _allowed_target(node.target):
            raise ModelLoadError(
                f"'{p}': node '{node.name}' calls {node.target!r}, which is not an ATen "
                "operator; refusing the program"
            )
    return ep

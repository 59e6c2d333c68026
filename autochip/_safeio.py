"""Safe reading and writing shared by every loader and command (see docs/security.md).

* :func:`load_yaml_text` / :func:`load_yaml_file`: YAML parsed with a safe loader that refuses
  anchors and aliases (no expansion bombs), reports duplicate keys, bounds the size and nesting
  depth, and turns every problem into one :class:`SpecError`.
* :data:`MAX_INT`: the largest integer a spec field holds (NaN/Inf are refused by the readers).
* :func:`name_problem` / :func:`safe_name`: names that reach generated Verilog, reports, files.
* :func:`output_file_problems` / :func:`output_dir_problems`: output paths checked before work.
* :func:`atomic_write_text` / :func:`atomic_write_bytes` / :func:`atomic_path`: temp + rename.
* :func:`user_code`: runs model code with its stdout sent to stderr and ``sys.exit`` refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from autochip.errors import ModelLoadError, SpecError

__all__ = [
    "MAX_INT",
    "MAX_NAME_LEN",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_yaml_file",
    "load_yaml_text",
    "name_problem",
    "output_dir_problems",
    "output_file_problems",
    "raise_output_problems",
    "safe_name",
    "user_code",
]

MAX_YAML_BYTES = 1 << 20  # 1 MiB: a hardware spec or platform file is a few hundred bytes
MAX_YAML_DEPTH = 32  # nesting levels of mappings / sequences
MAX_INT = 1 << 53  # the largest integer any spec field may hold (exact in a float64)
MAX_NAME_LEN = 64
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]*")


# -- YAML -----------------------------------------------------------------------------------------
class _YamlRefused(Exception):
    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.mark = mark


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without anchors/aliases, with duplicate-key and depth checks."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self.duplicates: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _YamlRefused(
                f"expected plain data, found the alias '*{event.anchor}' (anchors and aliases "
                "are not accepted)",
                event.start_mark,
            )
        if getattr(event, "anchor", None) is not None:
            raise _YamlRefused(
                f"expected plain data, found the anchor '&{event.anchor}' (anchors and aliases "
                "are not accepted)",
                event.start_mark,
            )
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlRefused(
                f"expected at most {MAX_YAML_DEPTH} levels of nesting (MAX_YAML_DEPTH), found more",
                event.start_mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if dup:
                line = key_node.start_mark.line + 1
                self.duplicates.append(f"line {line}: duplicate key {key!r}")
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML ``text`` safely; any problem is one :class:`SpecError` naming ``source``."""
    if len(text) > MAX_YAML_BYTES:
        raise SpecError(
            source,
            [f"expected a YAML file of at most {MAX_YAML_BYTES} bytes (MAX_YAML_BYTES), "
             f"found {len(text)} characters"],
        )  # fmt: skip
    loader: _SafeLoader | None = None
    try:
        loader = _SafeLoader(text)
        data = loader.get_single_data()
    except _YamlRefused as exc:
        where = _mark(exc.mark)
        raise SpecError(source, [f"{where}{exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, [f"invalid YAML{_mark(mark, ' at')}: {problem}"]) from None
    except (RecursionError, ValueError, OverflowError) as exc:  # e.g. huge ints, deep nesting
        raise SpecError(source, [f"invalid YAML: {type(exc).__name__}: {exc}"[:200]]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.duplicates:
        raise SpecError(source, loader.duplicates)
    return data


def _mark(mark: Any, prefix: str = "") -> str:
    if mark is None:
        return ""
    text = f"line {mark.line + 1}, column {mark.column + 1}"
    return f"{prefix} {text}" if prefix else f"{text}: "


def load_yaml_file(path: str | Path, what: str = "a YAML file") -> tuple[Any, str]:
    """Read and parse a YAML file: (data, source name). Missing/unreadable files are errors."""
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise SpecError(source, [f"expected {what}, found no file at '{p}'"])
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SpecError(
                source,
                [f"expected a YAML file of at most {MAX_YAML_BYTES} bytes (MAX_YAML_BYTES), "
                 f"found {size} bytes"],
            )  # fmt: skip
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            source, [f"expected a UTF-8 text file, found bytes that are not: {exc}"]
        ) from None
    except OSError as exc:
        raise SpecError(source, [f"expected a readable file, found: {exc.strerror}"]) from None
    return load_yaml_text(text, source), source


# -- numbers and names ----------------------------------------------------------------------------
def name_problem(name: Any) -> str | None:
    """Why ``name`` is not a safe name, or None. Safe: 1..64 of ``[A-Za-z0-9_.+-]``, no leading
    ``.``, ``+`` or ``-`` (names reach Verilog comments, reports and file names)."""
    if not isinstance(name, str):
        return f"expected a name (text), found {type(name).__name__}"
    if not name or len(name) > MAX_NAME_LEN or not _NAME.fullmatch(name):
        shown = name if len(name) <= MAX_NAME_LEN else name[:MAX_NAME_LEN] + "..."
        return (
            f"expected a name of 1 to {MAX_NAME_LEN} characters from letters, digits and "
            f"'_.+-' (not starting with '.', '+' or '-'), found {shown!r}"
        )
    return None


def safe_name(text: str) -> str:
    """``text`` with every character a safe name may not hold replaced by ``_``."""
    out = re.sub(r"[^A-Za-z0-9_.+\-]", "_", text)[:MAX_NAME_LEN]
    return out if out and out[0] not in ".+-" else f"_{out}"[:MAX_NAME_LEN]


# -- output paths ---------------------------------------------------------------------------------
def _writable_dir_problem(d: Path) -> str | None:
    if not d.exists():
        return f"found no folder '{d}'"
    if not d.is_dir():
        return f"found a file at '{d}' where a folder is needed"
    try:  # the one reliable test (root ignores permission bits; /proc refuses everyone)
        fd, probe = tempfile.mkstemp(dir=d, prefix=".autochip-probe.")
    except OSError as exc:
        return f"found the folder '{d}' not writable ({exc.strerror})"
    os.close(fd)
    os.unlink(probe)
    return None


def output_file_problems(flag: str, value: str | os.PathLike[str] | None) -> list[str]:
    """Problems of an output file path (empty list: it can be written)."""
    if value is None or value == "":
        return [] if value is None else [f"{flag}: expected a file name, found ''"]
    p = Path(value)
    if p.is_dir():
        return [f"{flag} {value}: expected a file name, found a folder"]
    if p.exists() and not os.access(p, os.W_OK):
        return [f"{flag} {value}: expected a writable file, found it read-only"]
    why = _writable_dir_problem(p.parent)
    return [f"{flag} {value}: expected a writable folder for it, {why}"] if why else []


def output_dir_problems(flag: str, value: str | os.PathLike[str] | None) -> list[str]:
    """Problems of an output folder path: it is (or can be created as) a writable folder."""
    if value is None:
        return []
    if str(value) == "":
        return [f"{flag}: expected a folder name, found ''"]
    p = Path(value)
    if p.exists():
        if not p.is_dir():
            return [f"{flag} {value}: expected a folder, found a file"]
        why = _writable_dir_problem(p)
        return [f"{flag} {value}: expected a writable folder, {why}"] if why else []
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    why = _writable_dir_problem(parent)
    return [f"{flag} {value}: expected a folder that can be created, {why}"] if why else []


def raise_output_problems(source: str, problems: list[str]) -> None:
    if problems:
        raise SpecError(source, problems)


# -- atomic writes --------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block succeeds, removed
    when it fails. The temporary keeps ``path``'s suffix (writers that add one stay happy)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


# -- model code -----------------------------------------------------------------------------------
@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run a model's own code: its prints go to stderr (``--json`` stays clean) and a
    ``sys.exit`` inside it is a :class:`ModelLoadError`, not the end of autochip."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        raise ModelLoadError(
            f"{what}: the model code called sys.exit({exc.code!r}); expected it to return"
        ) from None

"""Chip Builder: render, lint, simulate and synthesise autochip's RTL."""

from autochip.builder.emit import EmitResult, emit_design
from autochip.builder.params import ArrayParams, array_params, max_reduction_depth
from autochip.builder.tools import prepare_toolchain_path, templates_dir

__all__ = [
    "ArrayParams",
    "EmitResult",
    "array_params",
    "emit_design",
    "max_reduction_depth",
    "prepare_toolchain_path",
    "templates_dir",
]

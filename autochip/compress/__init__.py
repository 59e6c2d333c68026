"""Compression: LSQ quantisation, binarisation (STE / FDA), AdderNet layers, distillation,
conversion of a model by a policy, integer export, training and checkpoints.

The integer semantics the export targets live in :mod:`autochip.reference`. See
``docs/compression.md``.
"""

from autochip.compress.checkpoint import load_checkpoint, save_checkpoint
from autochip.compress.convert import convert
from autochip.compress.export import export_integer
from autochip.compress.policy import LayerPolicy, Policy, policy_for_method

__all__ = [
    "LayerPolicy",
    "Policy",
    "convert",
    "export_integer",
    "load_checkpoint",
    "policy_for_method",
    "save_checkpoint",
]

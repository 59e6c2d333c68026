"""A reduced ResNet-20 for the core's tests: the zoo's ResNet-20 (``models/resnet20.py``: 3x3
convolutions with batch-norm and ReLU, basic blocks with option-A shortcuts, i.e. strided
subsampling and zero channel padding, global average pooling, a linear layer) with 4-8-16
channels, one block per stage and a 3x16x16 input, so that it simulates in seconds.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from autochip._resources import zoo_dir


def _zoo_resnet20() -> type[nn.Module]:
    root = zoo_dir()
    assert root is not None, "the zoo's models/ folder is not found"
    spec = importlib.util.spec_from_file_location("autochip_zoo_resnet20", root / "resnet20.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type[nn.Module] = module.ResNet20
    return cls


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return _zoo_resnet20()(n=1, widths=(4, 8, 16))


def example_input() -> torch.Tensor:
    return torch.randn(1, 3, 16, 16)

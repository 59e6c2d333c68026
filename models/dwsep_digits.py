"""A depthwise-separable network for the 8x8 UCI digits in the style of MobileNet-V1 (Howard
et al., 2017: a 3x3 depthwise convolution and a 1x1 pointwise convolution, each followed by
batch-norm and ReLU): a 3x3 stem, a stride-1 and a stride-2 depthwise-separable block, 2x2
average pooling and a 10-way linear layer. Exercises grouped convolutions (groups = channels)
and 1x1 convolutions on the core.
"""

from __future__ import annotations

import torch
from torch import nn


def _dwsep(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


class DwSepDigits(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            *_dwsep(8, 16, 1),
            *_dwsep(16, 24, 2),
            nn.AvgPool2d(2),
        )
        self.fc = nn.Linear(24 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


def build_model() -> nn.Module:
    return DwSepDigits()


def example_input() -> torch.Tensor:
    return torch.randn(1, 1, 8, 8)

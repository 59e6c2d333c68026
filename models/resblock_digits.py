"""A small residual network for the 8x8 UCI digits (``sklearn.datasets.load_digits``): a 3x3
stem convolution, one basic block in the style of He et al. (CVPR 2016: two 3x3 convolutions
with batch-norm, identity shortcut, ReLU after the add), a stride-2 3x3 convolution, global
average pooling and a 10-way linear layer. Exercises the core's residual add, stride 2,
padding and average pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlockDigits(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 12) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.stem(x)))
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = F.relu(x + y)
        x = F.relu(self.bn3(self.down(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def build_model() -> nn.Module:
    return ResBlockDigits()


def example_input() -> torch.Tensor:
    return torch.randn(1, 1, 8, 8)

"""A small network with the zoo's other operators, for the core's tests: SqueezeNet's
ceil-mode 3x3/2 max pooling and a Fire module (1x1 squeeze, 1x1 and 3x3 expands, channel
concatenation), MobileNet-V2's ReLU6 and a depthwise 3x3 convolution with batch-norm, global
average pooling and a linear layer, on a 3x12x12 input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Fire(nn.Module):
    def __init__(self, c_in: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class ZooOpsTiny(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)  # SqueezeNet's pooling: 12x12 -> 6x6
        self.fire = Fire(8, 4, 6)
        self.dw = nn.Sequential(
            nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False), nn.BatchNorm2d(12), nn.ReLU6()
        )
        self.pw = nn.Conv2d(12, 16, 1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fire(self.pool(self.stem(x)))
        x = F.relu(self.pw(self.dw(x)))
        return self.fc(x.mean((2, 3)))


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return ZooOpsTiny()


def example_input() -> torch.Tensor:
    return torch.randn(1, 3, 12, 12)

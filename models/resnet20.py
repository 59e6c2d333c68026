"""ResNet-20 for CIFAR-10 (He et al., CVPR 2016, section 4.2): a 3x3 convolution with 16
channels, three stages of n = 3 basic blocks with 16-32-64 channels (stride 2 at the start of
stages 2 and 3), global average pooling and a 10-way linear layer: 6n + 2 = 20 layers.
Shortcuts are option A of the paper: identity, with spatial subsampling and zero-padded extra
channels where the shape changes, so they add no parameters.
Published size: 0.27 M parameters, 41 M MACs at 32x32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.pad = c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.pad:  # option A: subsample, zero-pad the new channels
            shortcut = x[:, :, :: self.stride, :: self.stride]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    def __init__(
        self, num_classes: int = 10, n: int = 3, widths: tuple[int, ...] = (16, 32, 64)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks = []
        c_in = widths[0]
        for i, c_out in enumerate(widths):
            for b in range(n):
                blocks.append(BasicBlock(c_in, c_out, 2 if (b == 0 and i > 0) else 1))
                c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


def build_model() -> nn.Module:
    return ResNet20()


def example_input() -> torch.Tensor:
    return torch.randn(1, 3, 32, 32)

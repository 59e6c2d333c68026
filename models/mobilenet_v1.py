"""MobileNet-V1 1.0 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for
Mobile Vision Applications", arXiv:1704.04861, Table 1): a 3x3/2 convolution with 32 channels,
thirteen depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, each followed by batch-norm
and ReLU), global average pooling and a 1000-way linear layer.
Published size (Table 8): 4.2 M parameters, 569 M mult-adds at 224x224.
"""

from __future__ import annotations

import torch
from torch import nn

# (pointwise output channels, depthwise stride) of the 13 separable blocks in Table 1.
BLOCKS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    + [(512, 1)] * 5
    + [
        (1024, 2),
        (1024, 1),
    ]
)


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers = [conv_bn_relu(3, 32, 3, 2)]
        c_in = 32
        for c_out, stride in BLOCKS:
            layers.append(conv_bn_relu(c_in, c_in, 3, stride, groups=c_in))  # depthwise
            layers.append(conv_bn_relu(c_in, c_out, 1, 1))  # pointwise
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def build_model() -> nn.Module:
    return MobileNetV1()


def example_input() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224)

"""A LeNet-style CNN (LeCun et al., "Gradient-based learning applied to document recognition",
Proc. IEEE 1998: convolution, subsampling, convolution, subsampling, three fully connected
layers) scaled to the 8x8 grey-scale digits of the UCI optical digits set
(``sklearn.datasets.load_digits``): 3x3 convolutions with 6 and 16 channels, 2x2 max pooling,
then 64-120-84-10 fully connected layers.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNetDigits(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 2 * 2, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model() -> nn.Module:
    return LeNetDigits()


def example_input() -> torch.Tensor:
    return torch.randn(1, 1, 8, 8)

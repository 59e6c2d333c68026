"""LeNet-5 (LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE
1998) for the 28x28 grey-scale images of Fashion-MNIST: a 5x5 convolution with 6 channels (padding
2, as for the 32x32 inputs of the original), 2x2 max pooling, a 5x5 convolution with 16 channels,
2x2 max pooling, then 400-120-84-10 fully connected layers; ReLU activations.
"""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model() -> nn.Module:
    return LeNet5()


def example_input() -> torch.Tensor:
    return torch.randn(1, 1, 28, 28)

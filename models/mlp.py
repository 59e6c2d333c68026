"""LeNet-300-100 (LeCun et al., Proc. IEEE 1998): a multi-layer perceptron for 28x28 MNIST
digits with 300 and 100 hidden units and ReLU. 266,610 parameters and 266,200 MACs
(784*300 + 300*100 + 100*10), the figure Han et al. report for it in "Deep Compression"
(ICLR 2016, Table 2: 267 K weights).
"""

from __future__ import annotations

import torch
from torch import nn


def build_model() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )


def example_input() -> torch.Tensor:
    return torch.randn(1, 1, 28, 28)

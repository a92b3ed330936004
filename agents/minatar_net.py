"""DQN's Q-network for MinAtar (Young & Tian 2019, §4 and the minatar repository's examples/dqn.py)."""

from __future__ import annotations

import torch
from torch import nn

from agents.conv import ThreadInvariantConv2d
from agents.nature_cnn import DuelingHead
from agents.precision import OutputLinear

MINATAR_CONV_CHANNELS = 16
MINATAR_GRID = 10


def init_layer(m: nn.Module) -> None:
    """PyTorch's default initialisation of one Conv/Linear layer, as in the authors' code; also what ReDo
    re-draws dormant units from."""
    m.reset_parameters()


class MinAtarQNetwork(nn.Module):
    """uint8 0/1 object maps (B, channels, 10, 10) -> Q-values (B, num_actions).

    The paper's network: one 3x3 conv, 16 channels, stride 1, no padding, ReLU (the `encoder`), then a
    `head` of Linear(16 * 8 * 8 -> hidden = 128), ReLU, Linear(-> actions), or a dueling head. PyTorch's
    default initialisation, as in the authors' code. Same `encoder`/`head` split as agents.nature_cnn's
    QNetwork, so every intervention addresses it the same way.
    """

    def __init__(self, num_actions: int, in_channels: int, hidden: int = 128, dueling: bool = False):
        super().__init__()
        self.encoder = nn.Sequential(ThreadInvariantConv2d(in_channels, MINATAR_CONV_CHANNELS, kernel_size=3, stride=1),
                                     nn.ReLU(), nn.Flatten())
        features = MINATAR_CONV_CHANNELS * (MINATAR_GRID - 2) ** 2
        if dueling:
            self.head = DuelingHead(features, hidden, num_actions)
        else:
            self.head = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), OutputLinear(hidden, num_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs.float()))

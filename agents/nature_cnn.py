"""DQN's Q-network: the Nature CNN encoder (Mnih et al. 2015) with a plain or dueling Q head."""

from __future__ import annotations

import torch
from torch import nn

from agents.conv import ThreadInvariantConv2d
from agents.precision import OutputLinear

NATURE_FEATURES = 64 * 7 * 7  # encoder output for 84x84 inputs


class NatureCNN(nn.Sequential):
    """(B, stack, 84, 84) float in [0, 1] -> (B, 3136) features: 32@8x8/4, 64@4x4/2, 64@3x3/1, ReLU."""

    def __init__(self, in_channels: int = 4):
        super().__init__(
            ThreadInvariantConv2d(in_channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            ThreadInvariantConv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            ThreadInvariantConv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )


class DuelingHead(nn.Module):
    """Q = V + A - mean(A) (Wang et al. 2016), each stream an MLP with one hidden layer."""

    def __init__(self, features: int, hidden: int, num_actions: int):
        super().__init__()
        self.value = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), OutputLinear(hidden, 1))
        self.advantage = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), OutputLinear(hidden, num_actions))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


def init_layer(m: nn.Module) -> None:
    """Xavier-uniform weights, zero biases (the FIRE/ReDo DQN initialisation), for one Conv/Linear layer;
    also what ReDo re-draws dormant units from."""
    nn.init.xavier_uniform_(m.weight)
    nn.init.zeros_(m.bias)


class QNetwork(nn.Module):
    """uint8 frame stacks (B, stack, 84, 84) -> Q-values (B, num_actions).

    Submodules `encoder` (the convolutions) and `head` (the Linear layers) are the units the
    interventions address: FIRE orthogonalises the encoder, resets the head; plasticity injection
    replaces `head`. Every layer initialised by init_layer.
    """

    def __init__(self, num_actions: int, in_channels: int = 4, hidden: int = 512, dueling: bool = False):
        super().__init__()
        self.encoder = NatureCNN(in_channels)
        if dueling:
            self.head = DuelingHead(NATURE_FEATURES, hidden, num_actions)
        else:
            self.head = nn.Sequential(nn.Linear(NATURE_FEATURES, hidden), nn.ReLU(), OutputLinear(hidden, num_actions))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init_layer(m)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs.float().div_(255.0)))

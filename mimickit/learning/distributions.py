"""Diagonal Gaussian action distribution and the policy head that outputs it."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor
from torch.distributions import Independent, Normal


class DiagGaussian:
    """Gaussian with diagonal covariance over ``[batch, action_dim]`` actions.

    Args:
        mean: ``[batch, action_dim]``.
        std: ``[batch, action_dim]`` or ``[action_dim]``, > 0.
    """

    def __init__(self, mean: Tensor, std: Tensor):
        self.mean = mean
        self.std = std.expand_as(mean)
        self._dist = Independent(Normal(self.mean, self.std, validate_args=False), 1, validate_args=False)

    @property
    def mode(self) -> Tensor:
        """``[batch, action_dim]`` most likely action (the mean): the deterministic policy."""
        return self.mean

    def sample(self) -> Tensor:
        """``[batch, action_dim]`` action drawn with torch's global generator (no gradient)."""
        return self._dist.sample()

    def log_prob(self, action: Tensor) -> Tensor:
        """``[batch]`` log density of ``action`` ``[batch, action_dim]``, summed over dims."""
        return self._dist.log_prob(action)

    def entropy(self) -> Tensor:
        """``[batch]`` differential entropy (nats), summed over dims."""
        return self._dist.entropy()


class GaussianPolicyHead(nn.Module):
    """Linear layer to the mean of a :class:`DiagGaussian`; std fixed or learned.

    The mean layer starts with weights uniform in ``[-init_scale, init_scale]`` and zero
    bias, so a new policy's mean is near 0. With ``learn_std`` the std is
    ``exp(log_std)`` with a learned, state-independent ``log_std`` ``[action_dim]``;
    otherwise it stays ``init_std``.

    Args:
        in_dim: size of the features ``[batch, in_dim]``.
        action_dim: size of the actions.
        init_std: initial (or fixed) std, > 0, in the units of the actions.
        learn_std: whether the std is trained.
        init_scale: bound of the mean layer's initial weights.
    """

    def __init__(self, in_dim: int, action_dim: int, init_std: float, learn_std: bool,
                 init_scale: float = 0.01):
        super().__init__()
        self.mean_layer = nn.Linear(in_dim, action_dim)
        nn.init.uniform_(self.mean_layer.weight, -init_scale, init_scale)
        nn.init.zeros_(self.mean_layer.bias)
        log_std = torch.full((action_dim,), math.log(init_std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def forward(self, features: Tensor) -> DiagGaussian:
        """``[batch, in_dim]`` features -> distribution over ``[batch, action_dim]`` actions."""
        return DiagGaussian(self.mean_layer(features), self.log_std.exp())

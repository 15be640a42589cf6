"""PPO's networks: a Gaussian policy (actor) and a state-value function (critic).

Both take normalised observations (the agent's observation normalisers run first): the
actor ``[batch, obs_dim]``, the critic ``[batch, critic_obs_dim]``, its own (privileged)
observation in an asymmetric actor-critic, else the same. They have separate bodies, so
the two losses and their optimisers do not share parameters. Actions are in the policy's normalised units (see
:class:`mimickit.learning.base_agent.ActionScaling`).
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from mimickit.learning.distributions import DiagGaussian, GaussianPolicyHead
from mimickit.learning.networks import build_network, run_body


class PPOModel(nn.Module):
    """Actor ``pi(a | s)`` and critic ``V(s)``.

    Args:
        obs_dim: size of an observation.
        action_dim: size of an action.
        actor_net, critic_net: body names for :func:`mimickit.learning.networks.build_network`.
        action_std: initial (or fixed) policy std, normalised action units.
        learn_action_std: whether the std is trained.
        source: config file, for error messages about the network names.
        critic_obs_dim: size of the critic's input; None: ``obs_dim``.
        matmul_dtype: dtype of the bodies' matrix products (:func:`mimickit.learning.networks.run_body`);
            the heads run in float32.

    Raises:
        MimicKitError: on an unknown network name.
    """

    def __init__(self, obs_dim: int, action_dim: int, actor_net: str, critic_net: str,
                 action_std: float, learn_action_std: bool, source: str = "agent config",
                 critic_obs_dim: Optional[int] = None, matmul_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.matmul_dtype = matmul_dtype
        self.actor_body, actor_out = build_network(actor_net, obs_dim, "{}: key 'actor_net'".format(source))
        self.actor_head = GaussianPolicyHead(actor_out, action_dim, action_std, learn_action_std)
        self.critic_body, critic_out = build_network(critic_net, obs_dim if critic_obs_dim is None else critic_obs_dim,
                                                   "{}: key 'critic_net'".format(source))
        self.critic_head = nn.Linear(critic_out, 1)

    def actor(self, norm_obs: Tensor) -> DiagGaussian:
        """``[batch, obs_dim]`` normalised observations -> action distribution ``[batch, action_dim]``."""
        return self.actor_head(run_body(self.actor_body, norm_obs, self.matmul_dtype))

    def critic(self, norm_obs: Tensor) -> Tensor:
        """``[batch, critic_obs_dim]`` normalised (critic) observations -> state values ``[batch]`` (return units)."""
        return self.critic_head(run_body(self.critic_body, norm_obs, self.matmul_dtype)).squeeze(-1)

    def actor_parameters(self) -> List[nn.Parameter]:
        """Parameters trained by the actor loss (body, mean layer, learned log std)."""
        return list(self.actor_body.parameters()) + list(self.actor_head.parameters())

    def critic_parameters(self) -> List[nn.Parameter]:
        """Parameters trained by the critic loss."""
        return list(self.critic_body.parameters()) + list(self.critic_head.parameters())

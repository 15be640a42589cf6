"""An agent without a policy: it acts with the neutral action and does not learn.

It drives environments that ignore actions, such as the motion viewer, through the same
runner as a learning agent (test mode only).
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.base_agent import BaseAgent, BaseAgentConfig
from mimickit.util.config import from_dict
from mimickit.util.errors import MimicKitError


@register_agent("DUMMY")
class DummyAgent(BaseAgent):
    """Acts with zeros in normalised units, i.e. the action space's neutral action; refuses to train or load.

    Args:
        config: the agent YAML mapping without ``agent_name`` (the :class:`BaseAgentConfig` keys).
        config_file: its path, for messages.
        env: the environments.
        device: torch device.
    """

    NAME = "DUMMY"
    TRAINS = False

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        super().__init__(from_dict(BaseAgentConfig, config, config_file), config_file, env, device)

    def _act(self, norm_obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        return torch.zeros(norm_obs.shape[0], self.action_dim, device=norm_obs.device), {}

    def _update(self) -> Dict[str, float]:
        raise MimicKitError("--mode train: the dummy agent does not learn; use --mode test")

    def _model_state(self) -> Dict[str, Any]:
        return {}

    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        raise MimicKitError("the dummy agent has no model to load")

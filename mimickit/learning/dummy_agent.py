"""An agent without a policy: zero actions. Drives environments that ignore actions,
such as the motion viewer, through the same run modes as a learning agent."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import torch

from mimickit.envs.base_env import BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.evaluation import run_test_episodes
from mimickit.util.config import from_dict
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class DummyAgentConfig:
    pass


@register_agent("dummy")
class DummyAgent:
    """Acts with zeros; ``train_model`` is refused, ``test_model`` plays episodes."""

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        from_dict(DummyAgentConfig, config, config_file)
        self.env = env
        self._action_dim = env.get_action_space().shape[0]

    def load(self, path: str) -> None:
        raise MimicKitError("--model_file {}: the dummy agent has no model to load".format(path))

    def train_model(self, max_samples: Optional[int], out_dir: str, logger: str) -> None:
        raise MimicKitError("--mode train: the dummy agent does not learn; use --mode test")

    def test_model(self, num_episodes: int) -> Dict[str, float]:
        """Play ``num_episodes`` episodes with zero actions; see :func:`run_test_episodes`."""
        def act(obs):
            return torch.zeros(obs.shape[0], self._action_dim, device=obs.device)
        return run_test_episodes(self.env, act, num_episodes)

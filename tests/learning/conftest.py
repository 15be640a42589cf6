"""The PPO agent and runner factories shared by the learning tests (data/agents/ppo_toy_agent.yaml on a point mass)."""
import os

import pytest

from mimickit.learning.ppo_agent import PPOAgent
from mimickit.learning.runner import Runner
from mimickit.util.config import load_yaml
from tests.learning.toy_envs import PointMassEnv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY_AGENT_FILE = os.path.join(REPO, "data", "agents", "ppo_toy_agent.yaml")


def toy_agent_config():
    """The mapping of data/agents/ppo_toy_agent.yaml without ``agent_name``."""
    config = load_yaml(TOY_AGENT_FILE)
    assert config.pop("agent_name") == "PPO"
    return config


@pytest.fixture
def make_agent():
    """``make_agent(num_envs=16, env=None, **config_overrides) -> PPOAgent`` on a PointMassEnv."""
    def make(num_envs=16, env=None, **overrides):
        config = toy_agent_config()
        config.update(overrides)
        env = env if env is not None else PointMassEnv(num_envs)
        return PPOAgent(config=config, config_file=TOY_AGENT_FILE, env=env, device="cpu")
    return make


@pytest.fixture
def make_runner(make_agent):
    """``make_runner(num_envs=16, env=None, **config_overrides) -> Runner`` of a ``make_agent`` agent."""
    def make(num_envs=16, env=None, **overrides):
        agent = make_agent(num_envs, env, **overrides)
        return Runner(agent, agent.env, "cpu")
    return make

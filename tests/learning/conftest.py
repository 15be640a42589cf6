"""The PPO agent and runner factories shared by the learning tests (data/agents/ppo_toy_agent.yaml on a point mass)."""
import os

import pytest
import torch

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


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one thread is faster, and much faster when other processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def agent_config(agent_file, agent_name, **overrides):
    """The mapping of ``agent_file`` without ``agent_name`` (checked to be ``agent_name``), with ``overrides``."""
    config = load_yaml(agent_file)
    assert config.pop("agent_name") == agent_name
    config.update(overrides)
    return config

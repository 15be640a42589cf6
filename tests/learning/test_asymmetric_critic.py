"""Asymmetric actor-critic: with actor_obs in the env YAML the critic trains on the env's privileged
observation with its own normaliser (AMP and ASE too), checkpoints keep it, and checkpoints that do not
fit (one from before actor_obs, or a privileged low level for HRL) are refused naming the cause."""
import pytest
import torch
import yaml

from mimickit.envs.env_builder import build_env
from mimickit.learning.amp_agent import AMPAgent
from mimickit.learning.ase_agent import ASEAgent
from mimickit.learning.hrl_agent import HRLAgent
from mimickit.learning.runner import Runner
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import REPO, agent_config

ENGINE = REPO + "/data/engines/mujoco_engine.yaml"
SMALL = dict(steps_per_iter=8, actor_net="fc_1layers_32units", critic_net="fc_1layers_32units",
             disc_net="fc_1layers_32units", disc_batch_size=16, actor_batch_size=16, critic_batch_size=16,
             actor_epochs=1, critic_epochs=1, test_episodes=0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env(tmp_path, base, num_envs=4, **changes):
    cfg = yaml.safe_load(open(REPO + "/" + base))
    cfg.update(changes)
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return build_env(str(path), ENGINE, num_envs, "cpu", False)


@pytest.fixture
def deploy_env(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    env = _env(tmp_path, "data/envs/amp_quadruped_command_deploy_env.yaml")
    yield env
    env.close()


def _amp_agent(env):
    return AMPAgent(agent_config(REPO + "/data/agents/amp_command_agent.yaml", "AMP", **SMALL), "agent.yaml",
                    env, "cpu")


def test_critic_trains_on_the_privileged_observation_with_its_own_normaliser(deploy_env):
    agent = _amp_agent(deploy_env)
    critic_dim = deploy_env.get_critic_obs_layout()[-1].end
    assert agent.critic_obs_dim == critic_dim > agent.obs_dim == deploy_env.get_obs_space().shape[0]
    assert agent.model.actor_body[0].in_features == agent.obs_dim
    assert agent.model.critic_body[0].in_features == critic_dim
    runner = Runner(agent, deploy_env, "cpu")
    info = runner.train_iter()
    assert float(agent.critic_obs_norm.count) == 8 * 4 == float(agent.obs_norm.count)
    # the stored critic observations are the env's of the same states: the next state's is the next step's
    critic, next_critic = agent.buffer.get("critic_obs"), agent.buffer.get("next_critic_obs")
    running = agent.buffer.get("done")[:-1] == 0
    torch.testing.assert_close(next_critic[:-1][running], critic[1:][running], rtol=0, atol=0)
    assert torch.isfinite(torch.tensor(info["critic_loss"]))
    # the values come from the critic observation: changing it changes the update's critic loss
    with torch.no_grad():
        value = agent.model.critic(agent.norm_buffer_obs("obs", critic=True))
        other = agent.model.critic(agent.critic_obs_norm.normalize(agent.buffer.get_flat("critic_obs") + 1.0))
    assert not torch.allclose(value, other)


def test_checkpoint_keeps_the_critic_normaliser_and_refuses_one_saved_without_it(deploy_env, tmp_path):
    agent = _amp_agent(deploy_env)
    Runner(agent, deploy_env, "cpu").train_iter()
    state = agent.state_dict()
    assert state["critic_obs_dim"] == agent.critic_obs_dim
    other = _amp_agent(deploy_env)
    other.load_state_dict(state, "model.pt")
    for key in ("count", "mean", "var"):
        torch.testing.assert_close(getattr(other.critic_obs_norm, key), getattr(agent.critic_obs_norm, key))
    old = {k: v for k, v in state.items() if k not in ("critic_obs_dim", "critic_obs_norm")}
    with pytest.raises(MimicKitError) as e:
        other.load_state_dict(old, "old.pt")
    assert "old.pt" in str(e.value) and "actor_obs" in str(e.value) and "actor's observation" in str(e.value)
    symmetric_env = _env(tmp_path, "data/envs/amp_quadruped_command_env.yaml")
    try:
        symmetric = _amp_agent(symmetric_env)
        assert symmetric.critic_obs_norm is None and "critic_obs" not in symmetric.buffer.names()
        assert "critic_obs_norm" not in symmetric.state_dict()
    finally:
        symmetric_env.close()


def test_ase_critic_takes_the_privileged_observation_and_the_latent_and_hrl_refuses_it_as_low_level(
        tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    env = _env(tmp_path, "data/envs/amp_duckling_env.yaml", actor_obs="deployable")
    try:
        config = agent_config(REPO + "/data/agents/ase_humanoid_agent.yaml", "ASE", latent_dim=4,
                              enc_net="fc_1layers_32units", enc_batch_size=16, **SMALL)
        agent = ASEAgent(config, "ase.yaml", env, "cpu")
        assert agent.model.actor_body[0].in_features == agent.obs_dim + 4
        assert agent.model.critic_body[0].in_features == agent.critic_obs_dim + 4
        runner = Runner(agent, env, "cpu")
        runner.train_iter()
        path = str(tmp_path / "llc.pt")
        runner.save(path)
        hrl = agent_config(REPO + "/data/agents/hrl_humanoid_agent.yaml", "HRL", llc_model_file=path)
        with pytest.raises(MimicKitError) as e:
            HRLAgent(hrl, "hrl.yaml", env, "cpu")
        assert "llc.pt" in str(e.value) and "actor_obs" in str(e.value)
    finally:
        env.close()

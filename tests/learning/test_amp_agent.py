"""AMP agent on a toy environment: the reward PPO trains on, the discriminator loss terms,
what is logged, checkpoints and config errors."""
import copy

import pytest
import torch

from mimickit.learning.amp_agent import AMPAgent, bce_style_reward, lsq_style_reward
from mimickit.learning.runner import Runner
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import REPO, agent_config
from tests.learning.toy_envs import PointMassAMPEnv, PointMassEnv

AGENT_FILE = REPO + "/data/agents/amp_humanoid_agent.yaml"
SMALL = dict(steps_per_iter=8, actor_net="fc_1layers_32units", critic_net="fc_1layers_32units",
             disc_net="fc_2layers_32units", actor_batch_size=64, critic_batch_size=64, disc_batch_size=32,
             disc_buffer_size=100, test_episodes=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(num_envs=8, env=None, **overrides):
    config = agent_config(AGENT_FILE, "AMP", **dict(SMALL, **overrides))
    return AMPAgent(config=config, config_file=AGENT_FILE, env=env or PointMassAMPEnv(num_envs), device="cpu")


@pytest.mark.parametrize("disc_loss, style_fn", [("bce", bce_style_reward), ("lsq", lsq_style_reward)])
def test_ppo_trains_on_task_w_times_task_reward_plus_disc_w_times_scaled_style_reward(disc_loss, style_fn):
    torch.manual_seed(0)
    agent = make_agent(disc_loss=disc_loss, task_reward_w=0.3, disc_reward_w=0.7, disc_reward_scale=2.0)
    runner = Runner(agent, agent.env, "cpu")
    runner.train_iter()  # the AMP normaliser now has statistics
    disc, norm = copy.deepcopy(agent.disc), copy.deepcopy(agent.amp_obs_norm)  # as during the next rollout
    info = runner.train_iter()
    buf = agent.buffer
    amp_obs = buf.get("amp_obs")
    torch.testing.assert_close(amp_obs, buf.get("next_obs"))  # the toy's AMP obs is its next obs
    with torch.no_grad():
        style = 2.0 * style_fn(disc(norm.normalize(amp_obs)))
    task = torch.exp(-buf.get("next_obs")[..., :2].square().sum(-1) / 0.1)  # the toy's reward
    torch.testing.assert_close(buf.get("reward"), 0.3 * task + 0.7 * style)
    assert info["style_reward"] == pytest.approx(float(style.mean()), rel=1e-5)
    assert info["task_reward"] == pytest.approx(float(task.mean()), rel=1e-5)


def test_disc_loss_adds_grad_penalty_logit_reg_and_weight_decay_to_the_adversarial_loss():
    torch.manual_seed(1)
    agent = make_agent(disc_grad_penalty=3.0, disc_logit_reg=0.2, disc_weight_decay=0.01)
    demo, policy = torch.randn(16, 4), torch.randn(16, 4) + 1.0
    loss, parts = agent.disc_loss(demo, policy)
    linears = [m for m in agent.disc.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3 and linears[-1] is agent.disc.logit_layer
    logit_reg = (agent.disc.logit_layer.weight ** 2).sum()
    decay = sum((m.weight ** 2).sum() for m in linears)
    expected = parts["disc_adv_loss"] + 3.0 * parts["disc_grad_penalty"] + 0.2 * logit_reg + 0.01 * decay
    torch.testing.assert_close(loss.detach(), expected.detach())
    with torch.no_grad():
        demo_logit, agent_logit = agent.disc(demo), agent.disc(policy)
    torch.testing.assert_close(parts["disc_demo_logit"], demo_logit.mean())
    torch.testing.assert_close(parts["disc_agent_pred"], torch.sigmoid(agent_logit).mean())
    torch.testing.assert_close(parts["disc_demo_acc"], (demo_logit > 0).float().mean())


def test_training_logs_the_discriminator_and_separates_demonstrations_from_the_agent():
    torch.manual_seed(2)
    agent = make_agent(disc_optimizer={"type": "Adam", "learning_rate": 3e-3}, disc_epochs=2)
    runner = Runner(agent, agent.env, "cpu")
    for _ in range(15):
        info = runner.train_iter()
    for key in ("disc_loss", "disc_adv_loss", "disc_grad_penalty", "disc_demo_logit", "disc_agent_logit",
                "disc_demo_pred", "disc_agent_pred", "style_reward", "task_reward"):
        assert key in info and info[key] == info[key], key  # present and not NaN
    # The untrained point mass drifts; the demonstrations rest at the origin.
    assert info["disc_demo_acc"] > 0.9 and info["disc_agent_acc"] > 0.9
    assert info["disc_demo_logit"] > info["disc_agent_logit"]
    assert info["disc_demo_pred"] > info["disc_agent_pred"]
    assert len(agent.replay_buffer) == agent.replay_buffer.capacity


def test_failed_envs_get_zero_reward_and_stay_out_of_the_discriminator():
    torch.manual_seed(3)

    class FailingEnv(PointMassAMPEnv):
        def step(self, action):
            obs, reward, done, info = super().step(action)
            info["amp_obs"][1] = float("nan")
            return obs, reward, done, dict(info, failed_envs=torch.tensor([1]))

    agent = make_agent(env=FailingEnv(4))
    runner = Runner(agent, agent.env, "cpu")
    info = runner.train_iter()
    assert torch.equal(agent.buffer.get("reward")[:, 1], torch.zeros(8))
    assert torch.isfinite(agent.buffer.get("reward")).all()
    assert info["disc_loss"] == info["disc_loss"] and info["style_reward"] == info["style_reward"]
    assert torch.isfinite(agent.amp_obs_norm.mean).all()


def test_checkpoint_restores_the_discriminator_and_amp_normaliser(tmp_path):
    torch.manual_seed(4)
    agent = make_agent()
    runner = Runner(agent, agent.env, "cpu")
    runner.train_iter()
    runner.save(str(tmp_path / "model.pt"))
    other = make_agent()
    other_runner = Runner(other, other.env, "cpu")
    other_runner.load(str(tmp_path / "model.pt"))
    for a, b in zip(agent.disc.state_dict().values(), other.disc.state_dict().values()):
        assert torch.equal(a, b)
    torch.testing.assert_close(other.amp_obs_norm.mean, agent.amp_obs_norm.mean)
    x = torch.randn(5, 4)
    torch.testing.assert_close(other.style_reward(x), agent.style_reward(x))


def test_unknown_disc_loss_is_an_error_naming_the_key():
    with pytest.raises(MimicKitError, match="disc_loss.*bce, lsq"):
        make_agent(disc_loss="wgan")


def test_an_env_without_amp_observations_is_an_error():
    with pytest.raises(MimicKitError, match="env_name: amp"):
        make_agent(env=PointMassEnv(4))

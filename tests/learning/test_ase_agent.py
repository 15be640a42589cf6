"""ASE agent on a toy environment: the encoder's likelihood, reward and loss and the diversity loss
against direct numpy computations, the reward PPO trains on, latent hold times and resets, the
fixed test latent, checkpoints, export refusal, config errors, a short learning run, and run.py
end to end on the shipped humanoid configs."""
import copy
import importlib.util
import json
import math
import re

import numpy as np
import pytest
import torch

from mimickit.learning.ase_agent import (ASEAgent, clipped_enc_reward, diversity_loss, enc_fit_loss,
                                         latent_hold_steps, sample_latents, vmf_log_likelihood)
from mimickit.learning.runner import Runner
from mimickit.run import main
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import REPO, agent_config
from tests.learning.toy_envs import PointMassAMPEnv, PointMassEnv

AGENT_FILE = REPO + "/data/agents/ase_humanoid_agent.yaml"
SMALL = dict(steps_per_iter=8, actor_net="fc_1layers_32units", critic_net="fc_1layers_32units",
             disc_net="fc_2layers_32units", enc_net="fc_2layers_32units", actor_batch_size=64,
             critic_batch_size=64, disc_batch_size=32, enc_batch_size=64, disc_buffer_size=100, test_episodes=0,
             latent_dim=2, latent_time_min=0.5, latent_time_max=1.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(num_envs=8, env=None, **overrides):
    config = agent_config(AGENT_FILE, "ASE", **dict(SMALL, **overrides))
    return ASEAgent(config=config, config_file=AGENT_FILE, env=env or PointMassAMPEnv(num_envs), device="cpu")


def unit_rows(rng, n, d):
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------------- the formulas
def test_vmf_log_likelihood_enc_reward_and_enc_loss_match_numpy():
    rng = np.random.default_rng(0)
    mu, z = unit_rows(rng, 50, 5), unit_rows(rng, 50, 5)
    dots = np.einsum("nd,nd->n", mu, z)
    t_mu, t_z = torch.tensor(mu), torch.tensor(z)
    np.testing.assert_allclose(vmf_log_likelihood(t_mu, t_z, 3.0).numpy(), 3.0 * dots, rtol=1e-12)
    np.testing.assert_allclose(clipped_enc_reward(t_mu, t_z, 2.5).numpy(), 2.5 * np.maximum(dots, 0.0), rtol=1e-12)
    assert float(enc_fit_loss(t_mu, t_z)) == pytest.approx(-dots.mean(), rel=1e-12)
    # The reward is the likelihood's unnormalised part / kappa, clipped at 0: highest when mu = z.
    assert torch.allclose(clipped_enc_reward(t_z, t_z, 1.0), torch.ones(50, dtype=torch.float64))


def test_diversity_loss_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    z, z2 = unit_rows(rng, 40, 4), unit_rows(rng, 40, 4)
    d_a = ((a - b) ** 2).mean(axis=1)
    d_z = 0.5 * (1.0 - np.einsum("nd,nd->n", z, z2))
    expected = ((d_a / (d_z + 1e-5) - 0.7) ** 2).mean()
    got = diversity_loss(*(torch.tensor(x) for x in (a, b, z, z2)), target=0.7)
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_latents_are_unit_vectors_spread_over_the_sphere():
    torch.manual_seed(0)
    z = sample_latents(20000, 3)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(20000))
    assert z.mean(dim=0).abs().max() < 0.02  # uniform on the sphere: mean 0, each coordinate's variance 1/3
    torch.testing.assert_close(z.square().mean(dim=0), torch.full((3,), 1.0 / 3.0), atol=0.01, rtol=0)


def test_hold_steps_convert_the_time_range_with_control_dt():
    assert latent_hold_steps(0.5, 1.5, 0.1) == (5, 15)
    assert latent_hold_steps(0.0, 5.0, 1.0 / 30.0) == (1, 150)  # a latent acts at least one step
    assert latent_hold_steps(0.2, 0.2, 0.1) == (2, 2)


# ---------------------------------------------------------------------- the agent
def test_networks_take_the_normalised_observation_and_the_latent():
    torch.manual_seed(2)
    agent = make_agent(num_envs=4)
    obs = torch.randn(4, 4)
    latents = agent.latents
    action, extras = agent.act(obs, deterministic=True)
    expected = agent.model.actor(torch.cat([agent.obs_norm.normalize(obs), latents], dim=-1)).mean
    torch.testing.assert_close(action, expected)
    assert torch.equal(extras["latent"], latents)
    assert agent.model.actor_body[0].in_features == 4 + 2


def test_latents_are_held_within_the_configured_range_and_redrawn_at_resets():
    torch.manual_seed(3)
    agent = make_agent(num_envs=64, latent_time_min=0.3, latent_time_max=0.8)  # 3..8 steps of 0.1 s
    assert agent.hold_steps == (3, 8)
    obs = torch.zeros(64, 4)
    held = []
    for _ in range(60):
        held.append(agent.act(obs, deterministic=False)[1]["latent"])
    held = torch.stack(held)  # [60, 64, latent_dim]
    changed = (held[1:] != held[:-1]).any(dim=-1)  # [59, 64]: a new latent at step t + 1
    lengths = []
    for env in range(64):
        switches = changed[:, env].nonzero().flatten().tolist()
        lengths += [b - a for a, b in zip(switches, switches[1:])]  # complete holds only
        assert switches and switches[0] + 1 <= 8  # the first hold also ends within the range
    assert min(lengths) == 3 and max(lengths) == 8  # every hold in range, both ends reached
    # A reset redraws the latents (and hold times) of its envs and leaves the others'.
    before = agent.latents.clone()
    ids = torch.tensor([1, 5, 7])
    agent.on_reset(ids)
    assert (agent.latents[ids] != before[ids]).any(dim=-1).all()
    others = torch.ones(64, dtype=torch.bool)
    others[ids] = False
    assert torch.equal(agent.latents[others], before[others])
    assert ((agent.latent_steps_left[ids] >= 3) & (agent.latent_steps_left[ids] <= 8)).all()


def test_rollout_stores_the_latent_each_step_acted_under_and_resets_redraw_them():
    torch.manual_seed(4)
    env = PointMassAMPEnv(8, episode_steps=5)
    agent = make_agent(env=env, latent_time_min=10.0, latent_time_max=10.0)  # held longer than an episode
    runner = Runner(agent, env, "cpu")
    runner.train_iter()
    latent, done = agent.buffer.get("latent"), agent.buffer.get("done")
    for t in range(1, 8):
        same = (latent[t] == latent[t - 1]).all(dim=-1)
        assert torch.equal(same, done[t - 1] == 0)  # the latent changes exactly after an episode end


def test_ppo_trains_on_task_style_and_encoder_rewards_with_their_weights():
    torch.manual_seed(5)
    agent = make_agent(task_reward_w=0.2, disc_reward_w=0.3, enc_reward_w=0.5, enc_reward_scale=1.5)
    runner = Runner(agent, agent.env, "cpu")
    runner.train_iter()  # the AMP normaliser now has statistics
    disc, enc, norm = copy.deepcopy(agent.disc), copy.deepcopy(agent.encoder), copy.deepcopy(agent.amp_obs_norm)
    info = runner.train_iter()
    buf = agent.buffer
    amp_obs, latent = buf.get("amp_obs"), buf.get("latent")
    with torch.no_grad():
        x = norm.normalize(amp_obs)
        style = 2.0 * agent._style_reward_fn(disc(x))
        r_enc = 1.5 * (enc(x) * latent).sum(-1).clamp(min=0)
    task = torch.exp(-buf.get("next_obs")[..., :2].square().sum(-1) / 0.1)
    torch.testing.assert_close(buf.get("reward"), 0.2 * task + 0.3 * style + 0.5 * r_enc)
    assert info["enc_reward"] == pytest.approx(float(r_enc.mean()), rel=1e-5)
    for key in ("enc_loss", "enc_agreement", "enc_grad_penalty", "enc_weight_decay_loss", "enc_lr",
                "diversity_loss", "disc_loss", "style_reward", "actor_loss"):
        assert key in info and math.isfinite(info[key]), key


def test_enc_loss_adds_grad_penalty_and_weight_decay_to_the_fit():
    torch.manual_seed(6)
    agent = make_agent(enc_grad_penalty=2.0, enc_weight_decay=0.01)
    x, z = torch.randn(16, 4), sample_latents(16, 2)
    loss, parts = agent.enc_loss(x, z)
    xg = x.clone().requires_grad_(True)
    agreement = (agent.encoder(xg) * z).sum(-1)
    grad, = torch.autograd.grad(agreement.sum(), xg)
    decay = sum((m.weight ** 2).sum() for m in agent.encoder.modules() if isinstance(m, torch.nn.Linear))
    expected = -agreement.mean() + 2.0 * grad.square().sum(-1).mean() + 0.01 * decay
    torch.testing.assert_close(loss.detach(), expected.detach())
    torch.testing.assert_close(parts["enc_agreement"], agreement.mean().detach())


def test_actor_loss_adds_diversity_weight_times_the_diversity_loss_of_fresh_latents():
    torch.manual_seed(7)
    agent = make_agent(diversity_weight=0.3, diversity_tar=0.8)
    n = 16
    net_input = torch.cat([torch.randn(n, 4), sample_latents(n, 2)], dim=-1)
    action, old_logp, adv = torch.randn(n, 2), torch.randn(n), torch.randn(n)
    torch.manual_seed(8)
    loss, parts = agent._actor_minibatch_loss(net_input, action, old_logp, adv)
    torch.manual_seed(8)
    z2 = sample_latents(n, 2)
    mean = agent.model.actor(net_input).mean
    mean2 = agent.model.actor(torch.cat([net_input[:, :4], z2], dim=-1)).mean
    div = diversity_loss(mean, mean2, net_input[:, 4:], z2, 0.8)
    ppo_loss, _ = agent.actor_loss(agent.model.actor(net_input), action, old_logp, adv)
    torch.testing.assert_close(parts["diversity_loss"], div.detach())
    torch.testing.assert_close(loss.detach(), (ppo_loss + 0.3 * div).detach())


def test_fixed_latent_is_the_seeds_for_every_env_through_resets_and_holds():
    agent = make_agent(num_envs=5)
    z = agent.use_fixed_latent(3)
    assert torch.equal(z, make_agent(num_envs=2).use_fixed_latent(3))
    assert not torch.equal(z, make_agent(num_envs=2).use_fixed_latent(4))
    obs = torch.zeros(5, 4)
    for step in range(30):
        if step == 10:
            agent.on_reset(torch.tensor([0, 2]))
        assert torch.equal(agent.act(obs, deterministic=True)[1]["latent"], z.expand(5, -1))


def test_checkpoint_restores_the_encoder_and_its_optimiser(tmp_path):
    torch.manual_seed(9)
    agent = make_agent()
    runner = Runner(agent, agent.env, "cpu")
    runner.train_iter()
    runner.save(str(tmp_path / "model.pt"))
    other = make_agent()
    Runner(other, other.env, "cpu").load(str(tmp_path / "model.pt"))
    for a, b in zip(agent.encoder.state_dict().values(), other.encoder.state_dict().values()):
        assert torch.equal(a, b)
    saved, loaded = agent.enc_optimizer.state_dict(), other.enc_optimizer.state_dict()
    for key in saved["state"]:
        for name, value in saved["state"][key].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(loaded["state"][key][name])), name
    x, z = torch.randn(5, 4), sample_latents(5, 2)
    torch.testing.assert_close(other.enc_reward(x, z), agent.enc_reward(x, z))


def test_export_is_refused_with_the_reason():
    with pytest.raises(MimicKitError, match="exported with the high-level controller.*agent_name HRL"):
        make_agent().build_deploy_policy()


def test_config_and_env_errors_name_the_problem():
    with pytest.raises(MimicKitError, match="latent_time_max.*>= latent_time_min"):
        make_agent(latent_time_min=2.0, latent_time_max=1.0)
    with pytest.raises(MimicKitError, match="latent_dim"):
        make_agent(latent_dim=1)

    class NoClock(PointMassEnv):
        amp_obs_dim = 4

        def fetch_demo_amp_obs(self, n):
            return torch.zeros(n, 4)

    with pytest.raises(MimicKitError, match="control_dt"):
        make_agent(env=NoClock(4))
    with pytest.raises(MimicKitError, match="agent_name ASE needs an environment with AMP observations"):
        make_agent(env=type("Clock", (PointMassEnv,), {"control_dt": 0.1})(4))


# ---------------------------------------------------------------------- learning
def test_encoder_reward_rises_as_the_policy_learns_distinct_skills():
    """The point mass's AMP observation is its position and velocity; with 2-d latents the encoder
    reward of a random encoder and policy is about E[max(0, cos)] = 1/pi = 0.32. Measured over seeds
    0-5 with these settings (200 iterations of 8 steps x 16 envs, ~11 s on one core): the mean over
    the last 20 iterations exceeds that of the first 20 by 0.17 to 0.40; with the actor frozen
    (learning rate 1e-7) it stays at 0.32 +- 0.03. The test asks for 0.1."""
    torch.manual_seed(0)
    agent = make_agent(num_envs=16, enc_optimizer={"type": "Adam", "learning_rate": 3e-3},
                       actor_optimizer={"type": "Adam", "learning_rate": 3e-3}, action_std=0.2)
    runner = Runner(agent, agent.env, "cpu")
    rewards = [runner.train_iter()["enc_reward"] for _ in range(200)]
    first, last = np.mean(rewards[:20]), np.mean(rewards[-20:])
    assert last > first + 0.1, (first, last)


# ---------------------------------------------------------------------- run.py
def test_ase_trains_through_run_py_and_tests_under_a_fixed_latent(tmp_path, capsys):
    env = tmp_path / "env.yaml"
    env.write_text(re.sub(r"episode_length: [0-9.]+", "episode_length: 1.0",
                          open(REPO + "/data/envs/amp_humanoid_env.yaml").read()))
    agent = tmp_path / "agent.yaml"
    text = open(AGENT_FILE).read()
    small = {"steps_per_iter: 32": "steps_per_iter: 8", "iters_per_output: 50": "iters_per_output: 1",
             "test_episodes: 16": "test_episodes: 2", "disc_batch_size: 1024": "disc_batch_size: 16",
             "enc_batch_size: 1024": "enc_batch_size: 16", "fc_2layers_256units": "fc_1layers_32units"}
    for old, new in small.items():
        assert old in text, old
        text = text.replace(old, new)
    agent.write_text(text)
    out = tmp_path / "out"
    argv = ["--engine_config", REPO + "/data/engines/mujoco_engine.yaml", "--env_config", str(env),
            "--agent_config", str(agent), "--out_dir", str(out), "--num_envs", "4", "--rand_seed", "0"]
    assert main(argv + ["--max_samples", "64"]) == 0
    assert "enc_reward" in capsys.readouterr().out  # the progress line
    test = argv + ["--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "4"]
    assert main(test + ["--latent_seed", "3"]) == 0
    stats = json.loads((out / "eval.json").read_text())
    assert stats["num_eps"] == 4 and "enc_reward" in stats and "style_reward" in stats
    capsys.readouterr()
    assert main(argv + ["--max_samples", "64", "--overwrite", "true", "--latent_seed", "3"]) == 2
    assert "--latent_seed: only for --mode test" in capsys.readouterr().err
    if all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime")):  # else export stops earlier
        assert main(argv + ["--mode", "export", "--model_file", str(out / "model.pt")]) == 2
        assert "agent_name HRL" in capsys.readouterr().err


def test_latent_seed_with_an_agent_without_latents_is_an_error(tmp_path, capsys):
    argv = ["--engine_config", REPO + "/data/engines/mujoco_engine.yaml",
            "--env_config", REPO + "/data/envs/amp_humanoid_env.yaml",
            "--agent_config", REPO + "/data/agents/amp_humanoid_agent.yaml", "--out_dir", str(tmp_path),
            "--mode", "test", "--random_policy", "true", "--latent_seed", "0", "--test_episodes", "1"]
    assert main(argv) == 2
    assert "--latent_seed: agent 'AMP' takes no latent" in capsys.readouterr().err

"""HRL (ASE's high-level controller) on a toy task over a low level with a known skill: the skill env
against stepping the task env by hand, a frozen low level (bit-identical after updates), the latent held
for llc_steps in test mode, checkpoints, config errors and a short learning run; then run.py end to end on
the shipped humanoid configs."""
import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from mimickit.envs.base_env import BoxSpace, DoneFlags, ObsSlice
from mimickit.learning.ase_agent import ASEAgent
from mimickit.learning.hrl_agent import HRLAgent
from mimickit.learning.ppo_agent import PPOAgent
from mimickit.learning.runner import Runner
from mimickit.learning.skill_env import SkillEnv
from mimickit.run import main
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import REPO, agent_config, toy_agent_config
from tests.learning.tiny_policy import require_export_packages
from tests.learning.toy_envs import PointMassAMPEnv

ASE_FILE = REPO + "/data/agents/ase_humanoid_agent.yaml"
HRL_FILE = REPO + "/data/agents/hrl_humanoid_agent.yaml"
LLC_SMALL = dict(steps_per_iter=8, actor_net="fc_1layers_32units", critic_net="fc_1layers_32units",
                 disc_net="fc_2layers_32units", enc_net="fc_2layers_32units", disc_buffer_size=100,
                 test_episodes=0, latent_dim=2)
HRL_SMALL = dict(steps_per_iter=10, actor_net="fc_2layers_64units", critic_net="fc_2layers_64units",
                 actor_batch_size=80, critic_batch_size=80, test_episodes=0, llc_steps=2, discount=0.9,
                 action_std=0.3, actor_optimizer={"type": "Adam", "learning_rate": 3e-3},
                 critic_optimizer={"type": "Adam", "learning_rate": 3e-3}, max_grad_norm=None)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PointMassVelocityEnv(PointMassAMPEnv):
    """The point mass with a goal velocity ``g`` (uniform in [-1, 1]^2 m/s per episode) after ``[p, v]`` in the
    observation (``[num_envs, 6]``, layout pos, vel, goal; AMP observation ``[p, v]``) and reward ``exp(-|v - g|^2 / 0.25)``."""

    def __init__(self, num_envs, episode_steps=20):
        super().__init__(num_envs, episode_steps=episode_steps, max_dist=100.0)
        self.goal = torch.zeros(num_envs, 2)

    def _obs(self):
        return torch.cat([self.pos, self.vel, self.goal], dim=-1)

    def reset(self, env_ids=None):
        ids = torch.arange(self.num_envs) if env_ids is None else env_ids
        self.goal[ids] = torch.rand(len(ids), 2) * 2.0 - 1.0
        return super().reset(env_ids)

    def step(self, action):
        obs, _, done, info = super().step(action)
        reward = torch.exp(-(self.vel - self.goal).square().sum(-1) / 0.25)
        return obs, reward, done, dict(info, amp_obs=obs[:, :4].clone())

    def get_obs_space(self):
        return BoxSpace.unbounded(6)

    def get_obs_layout(self):
        return [ObsSlice("pos", 0, 2, "m", "world"), ObsSlice("vel", 2, 4, "m/s", "world"),
                ObsSlice("goal", 4, 6, "m/s", "world")]


def save_skill_llc(path):
    """An ASE low level on the plain point mass whose skill z is 'accelerate at 2 z m/s^2' (mean action = z,
    set by hand through the ReLU layer: h = [relu(z), relu(-z)], a = h_+ - h_-), saved as a checkpoint."""
    llc = ASEAgent(config=agent_config(ASE_FILE, "ASE", **LLC_SMALL), config_file=ASE_FILE,
                   env=PointMassAMPEnv(4), device="cpu")
    first, = [m for m in llc.model.actor_body.modules() if isinstance(m, nn.Linear)]
    mean = llc.model.actor_head.mean_layer
    with torch.no_grad():
        for layer in (first, mean):
            layer.weight.zero_()
            layer.bias.zero_()
        for i in range(2):
            first.weight[i, 4 + i] = 1.0
            first.weight[2 + i, 4 + i] = -1.0
            mean.weight[i, i] = 1.0
            mean.weight[i, 2 + i] = -1.0
    Runner(llc, llc.env, "cpu").save(str(path))
    return llc


@pytest.fixture
def llc_file(tmp_path):
    path = tmp_path / "llc.pt"
    save_skill_llc(path)
    return str(path)


def make_hrl(llc_file, num_envs=16, env=None, **overrides):
    config = agent_config(HRL_FILE, "HRL", **dict(HRL_SMALL, llc_model_file=llc_file, **overrides))
    return HRLAgent(config=config, config_file=HRL_FILE, env=env or PointMassVelocityEnv(num_envs), device="cpu")


def llc_tensors(agent):
    return {k: v.clone() for k, v in _flat(agent.llc.state_dict())}


def _flat(state, prefix=""):
    for key, value in state.items():
        if isinstance(value, dict):
            yield from _flat(value, prefix + key + ".")
        elif torch.is_tensor(value):
            yield prefix + key, value


# ---------------------------------------------------------------------- the skill env
def test_skill_env_holds_the_latent_for_llc_steps_and_sums_the_task_rewards(llc_file):
    agent = make_hrl(llc_file, num_envs=4, llc_steps=3, env=PointMassVelocityEnv(4, episode_steps=4))
    skill_env, by_hand = agent.rollout_env, PointMassVelocityEnv(4, episode_steps=4)
    assert isinstance(skill_env, SkillEnv) and skill_env.get_action_space().shape == (2,)
    torch.manual_seed(1)
    obs = skill_env.reset()
    torch.manual_seed(1)
    assert torch.equal(by_hand.reset(), obs)
    action = torch.randn(4, 2)
    z = action / action.norm(dim=-1, keepdim=True)
    for high_step in range(2):
        obs, reward, done, info = skill_env.step(action)
        want_reward = torch.zeros(4)
        for k in range(3):  # the known skill: acceleration 2 z; the episode ends after 4 control steps
            hand_obs, r, hand_done, _ = by_hand.step(2.0 * z)
            want_reward += r
            if hand_done[0] != DoneFlags.NULL:
                break
        np.testing.assert_allclose(reward.numpy(), want_reward.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(obs.numpy(), hand_obs.numpy(), rtol=1e-5, atol=1e-6)
        assert torch.equal(done, hand_done)
        assert info["style_reward"].shape == (4,) and not info["failed_envs"].any()
    assert (done == DoneFlags.TIME).all()  # ended at control step 4, the first of the second high-level step
    np.testing.assert_allclose(skill_env.control_dt, 3 * 0.1)


def test_low_level_is_frozen_bit_identical_after_hrl_updates(llc_file):
    torch.manual_seed(0)
    agent = make_hrl(llc_file)
    before, actor_before = llc_tensors(agent), [p.clone() for p in agent.model.actor_parameters()]
    runner = Runner(agent, agent.task_env, "cpu")
    for _ in range(3):
        runner.train_iter()
    after = llc_tensors(agent)
    assert before.keys() == after.keys() and len(before) > 10
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(a, b) for a, b in zip(actor_before, agent.model.actor_parameters()))
    assert all(not p.requires_grad for p in agent.llc.model.parameters())


def test_test_mode_takes_a_latent_every_llc_steps_from_each_episode_start(llc_file):
    agent = make_hrl(llc_file, num_envs=3, llc_steps=3)
    env = agent.task_env
    obs = env.reset()
    agent.on_reset(torch.arange(3))
    latents = []
    for step in range(7):
        if step == 4:
            agent.on_reset(torch.tensor([1]))  # env 1 starts an episode: it chooses at once
        env_action = agent.deterministic_env_action(obs)
        np.testing.assert_allclose(env_action.numpy(), 2.0 * agent.latents.numpy(), rtol=1e-5, atol=1e-6)
        latents.append(agent.latents.clone())
        obs = env.step(env_action)[0]
    new_latent_steps = {0: [3, 6], 1: [3, 4], 2: [3, 6]}  # after the first, chosen at step 0
    for i, steps in new_latent_steps.items():
        changed = [s for s in range(1, 7) if not torch.equal(latents[s][i], latents[s - 1][i])]
        assert changed == steps, (i, changed)
    np.testing.assert_allclose(latents[-1].norm(dim=-1).numpy(), 1.0, rtol=1e-6)


def test_checkpoint_restores_the_high_level_and_the_low_level_it_was_trained_with(llc_file, tmp_path):
    torch.manual_seed(0)
    agent = make_hrl(llc_file)
    runner = Runner(agent, agent.task_env, "cpu")
    runner.train_iter()
    runner.save(str(tmp_path / "hrl.pt"))
    other_llc = tmp_path / "other_llc.pt"
    save_skill_llc(other_llc)
    other = make_hrl(str(other_llc))
    with torch.no_grad():
        other.llc.model.actor_head.mean_layer.weight.mul_(-1.0)  # a different low level before loading
    Runner(other, other.task_env, "cpu").load(str(tmp_path / "hrl.pt"))
    for a, b in zip(agent.model.parameters(), other.model.parameters()):
        assert torch.equal(a, b)
    want, got = llc_tensors(agent), llc_tensors(other)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_config_and_low_level_errors_name_the_problem(llc_file, tmp_path):
    with pytest.raises(MimicKitError, match="key 'llc_model_file' must be the model.pt of a trained ASE"):
        make_hrl("")
    with pytest.raises(MimicKitError, match="key 'llc_model_file': file not found: .*missing.pt"):
        make_hrl(str(tmp_path / "missing.pt"))
    ppo = PPOAgent(config=toy_agent_config(), config_file="toy.yaml", env=PointMassAMPEnv(2), device="cpu")
    Runner(ppo, ppo.env, "cpu").save(str(tmp_path / "ppo.pt"))
    with pytest.raises(MimicKitError, match="ppo.pt.*PPO"):
        make_hrl(str(tmp_path / "ppo.pt"))

    class OnePart(PointMassVelocityEnv):
        def get_obs_layout(self):
            return [ObsSlice("obs", 0, 6, "1", "none")]

    with pytest.raises(MimicKitError, match="takes observations of size 4, but no part .*obs \\[0:6\\]"):
        make_hrl(llc_file, env=OnePart(2))
    with pytest.raises(MimicKitError, match="key 'llc_steps' must be >= 1"):
        make_hrl(llc_file, llc_steps=0)


# ---------------------------------------------------------------------- learning
def test_task_reward_rises_as_the_high_level_learns_to_choose_skills(llc_file):
    """The goal velocity is reachable in 0.5 s with the known skill (acceleration 2 z); a high-level step sums
    2 rewards of at most 1. Measured over seeds 0-4 (60 iterations of 10 high-level steps x 16 envs, 4-10 s on
    one core): the mean task reward per high-level step of the last 10 iterations is 1.58-1.62 against
    0.45-0.60 in the first 10; with the actor frozen (learning rate 1e-7) it stays at 0.25-0.31. The test
    asks for 0.5 more."""
    torch.manual_seed(0)
    agent = make_hrl(llc_file)
    runner = Runner(agent, agent.task_env, "cpu")
    rewards = [runner.train_iter()["task_reward"] for _ in range(60)]
    first, last = np.mean(rewards[:10]), np.mean(rewards[-10:])
    assert last > first + 0.5, (first, last)


# ---------------------------------------------------------------------- run.py, export, sim2sim
@pytest.fixture(scope="module")
def trained_hrl(tmp_path_factory):
    """A tiny ASE low level on the humanoid (1 s episodes), then a tiny HRL steering policy over it, via run.py."""
    tmp = tmp_path_factory.mktemp("hrl")
    engine = REPO + "/data/engines/mujoco_engine.yaml"
    (tmp / "llc_env.yaml").write_text(re.sub(r"episode_length: [0-9.]+", "episode_length: 1.0",
                                             open(REPO + "/data/envs/amp_humanoid_env.yaml").read()))
    (tmp / "ase.yaml").write_text(_shrink(open(ASE_FILE).read()))
    llc_out = tmp / "llc"
    assert main(["--engine_config", engine, "--env_config", str(tmp / "llc_env.yaml"), "--agent_config",
                 str(tmp / "ase.yaml"), "--out_dir", str(llc_out), "--num_envs", "4", "--max_samples", "32"]) == 0
    hrl = tmp / "hrl.yaml"
    hrl.write_text(_shrink(open(HRL_FILE).read()).replace("output/ase_humanoid/model.pt", str(llc_out / "model.pt")))
    out = tmp / "hrl"
    argv = ["--engine_config", engine, "--env_config", REPO + "/data/envs/amp_steering_humanoid_env.yaml",
            "--agent_config", str(hrl)]
    assert main(argv + ["--out_dir", str(out), "--num_envs", "4", "--max_samples", "32", "--rand_seed", "0"]) == 0
    return {"argv": argv, "out": out, "model": str(out / "model.pt")}


def _shrink(text):
    small = {"steps_per_iter: 32": "steps_per_iter: 8", "iters_per_output: 50": "iters_per_output: 1",
             "test_episodes: 16": "test_episodes: 1", "fc_2layers_256units": "fc_1layers_32units",
             "batch_size: 1024": "batch_size: 16"}
    for old, new in small.items():
        text = text.replace(old, new)
    return text


def _eval(path):
    return json.loads(path.read_text())


def test_hrl_tests_through_run_py_with_the_steering_metrics_in_control_steps(trained_hrl, capsys):
    out = trained_hrl["out"]
    assert "style_reward" in (out / "log.txt").read_text().split("\n")[0]
    assert main(trained_hrl["argv"] + ["--mode", "test", "--model_file", trained_hrl["model"], "--out_dir", str(out),
                                       "--num_envs", "4", "--test_episodes", "4"]) == 0
    stats = _eval(out / "eval.json")
    assert stats["num_eps"] == 4 and {"tar_vel_err", "style_reward", "falls_per_min"} <= set(stats)
    assert stats["mean_ep_len"] > 5  # control steps, not high-level steps


def test_export_holds_both_levels_and_sim2sim_reproduces_test_mode(trained_hrl, tmp_path):
    require_export_packages()
    from tools.sim2sim import main as sim2sim_main
    argv, model = trained_hrl["argv"], trained_hrl["model"]
    assert main(argv + ["--mode", "export", "--model_file", model, "--out_dir", str(tmp_path / "export")]) == 0
    sidecar = json.loads((tmp_path / "export" / "policy.json").read_text())
    assert sidecar["onnx"]["inputs"] == ["obs", "latent", "new_latent"]
    assert sidecar["hierarchy"]["llc_steps"] == 5 and sidecar["action"]["size"] == 28  # the humanoid's dofs
    check = sidecar["verification"]
    assert check["max_abs_err_onnx"] < 1e-4 and check["max_abs_err_torchscript"] < 1e-4, check
    episodes = ["--num_envs", "4", "--test_episodes", "8", "--rand_seed", "3"]
    assert main(argv + episodes + ["--mode", "test", "--model_file", model,
                                   "--out_dir", str(tmp_path / "test")]) == 0
    test = _eval(tmp_path / "test" / "eval.json")
    assert sim2sim_main([str(tmp_path / "export" / "policy.onnx")] + episodes
                        + ["--out_dir", str(tmp_path / "s2s")]) == 0
    same = _eval(tmp_path / "s2s" / "eval.json")
    assert list(same) == [k for k in test if k != "style_reward"] and same["num_eps"] == 8  # no discriminator
    diff = {k: abs(test[k] - same[k]) / max(abs(test[k]), 1e-6) for k in same}
    assert max(diff.values()) <= 1e-2, diff  # as for DeepMimic (tests/tools/test_sim2sim.py)

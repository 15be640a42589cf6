"""PPO agent: learns the point mass, repeatable with a seed, follows the env contract, logs, saves."""
import math
import os
import sys
import types

import pytest
import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.learning.checkpoint import load_checkpoint
from mimickit.learning.logger import read_txt_log
from mimickit.util.errors import MimicKitError
from tests.learning.toy_envs import PointMassEnv


def test_ppo_improves_point_mass_return_by_a_margin(make_runner):
    """Deterministic-policy return over 64 episodes (max 20) must rise by >= 5 within 30 iterations."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    runner = make_runner(num_envs=32)
    before = runner.test(64)["mean_return"]
    for _ in range(30):
        runner.train_iter()
    after = runner.test(64)["mean_return"]
    assert after >= before + 5.0, (before, after)


def first_losses(make_runner, seed, iters=3):
    torch.manual_seed(seed)
    runner = make_runner(num_envs=8)
    return [runner.train_iter() for _ in range(iters)]


def test_same_seed_gives_identical_first_losses_and_another_seed_does_not(make_runner):
    run_a = first_losses(make_runner, 5)
    run_b = first_losses(make_runner, 5)
    run_c = first_losses(make_runner, 6)
    untimed = [[{k: v for k, v in info.items() if not k.startswith("time_")} for info in run] for run in (run_a, run_b)]
    assert untimed[0] == untimed[1]
    assert [i["actor_loss"] for i in run_a] != [i["actor_loss"] for i in run_c]
    assert all(math.isfinite(v) for info in run_a for v in info.values())


def test_same_seed_gives_identical_logged_losses_through_train_model(make_runner, tmp_path):
    logs = []
    for name in ("a", "b"):
        torch.manual_seed(11)
        runner = make_runner(num_envs=4, iters_per_output=1)
        runner.train(max_samples=4 * 20 * 3, out_dir=str(tmp_path / name), logger="txt")
        logs.append(read_txt_log(str(tmp_path / name / "log.txt")))
    for key in ("actor_loss", "critic_loss", "clip_frac", "entropy", "train_return"):
        assert logs[0][key] == logs[1][key]


class RecordingEnv(PointMassEnv):
    """Point mass that records what step and reset returned; episodes of 3 steps."""

    def __init__(self, num_envs, failed=None):
        super().__init__(num_envs, episode_steps=3)
        self.step_obs, self.reset_calls, self.failed = [], [], failed or {}
        self.num_steps = 0

    def reset(self, env_ids=None):
        obs = super().reset(env_ids)
        self.reset_calls.append((None if env_ids is None else env_ids.tolist(), obs.clone()))
        return obs

    def step(self, action):
        obs, reward, done, info = super().step(action)
        if self.num_steps in self.failed:
            env = self.failed[self.num_steps]
            obs[env] = float("nan")
            reward[env] = float("nan")
            mask = torch.zeros(self.num_envs, dtype=torch.bool)
            mask[env] = True
            info = {"failed_envs": mask}
        self.num_steps += 1
        self.step_obs.append(obs.clone())
        return obs, reward, done, info


def test_rollout_stores_pre_reset_next_obs_and_resets_only_ended_envs(make_runner):
    torch.manual_seed(0)
    env = RecordingEnv(3)
    runner = make_runner(env=env, steps_per_iter=7)
    agent = runner.agent
    runner.train_iter()
    done = agent.buffer.get("done")
    obs, next_obs = agent.buffer.get("obs"), agent.buffer.get("next_obs")
    assert env.reset_calls[0][0] is None  # a full reset first
    partial = env.reset_calls[1:]
    for t in range(7):
        assert torch.equal(next_obs[t], env.step_obs[t])  # the state the step reached
        ended = (done[t] != DoneFlags.NULL).nonzero().flatten().tolist()
        if t + 1 < 7:
            expected = next_obs[t].clone()
            if ended:
                ids, reset_obs = partial.pop(0)
                assert ids == ended
                expected[ended] = reset_obs[ended]
            assert torch.equal(obs[t + 1], expected)
    assert (done[2] == DoneFlags.TIME).all() and (done[5] == DoneFlags.TIME).all()
    assert runner.sample_count == 21 and runner.iteration == 1


def test_failed_env_step_is_a_masked_fail_and_training_stays_finite(make_runner):
    torch.manual_seed(0)
    env = RecordingEnv(3, failed={1: 2, 4: 0})
    runner = make_runner(env=env, steps_per_iter=6)
    agent = runner.agent
    info = runner.train_iter()
    valid, done = agent.buffer.get("valid"), agent.buffer.get("done")
    assert not valid[1, 2] and not valid[4, 0] and int(valid.sum()) == 16
    assert done[1, 2] == DoneFlags.FAIL and done[4, 0] == DoneFlags.FAIL
    assert agent.buffer.get("reward")[1, 2] == 0.0
    assert all(math.isfinite(v) for v in info.values())
    assert all(torch.isfinite(p).all() for p in agent.model.parameters())
    assert torch.isfinite(agent.obs_norm.mean).all()


def test_test_model_acts_with_the_policy_mean_and_runs_every_share(make_runner):
    runner = make_runner(num_envs=3)
    agent = runner.agent
    actions = []

    class Spy(PointMassEnv):
        def step(self, action):
            actions.append((self._obs().clone(), action.clone()))
            return super().step(action)

    runner.env = spy = Spy(3)
    stats = runner.test(5)
    assert stats["num_eps"] == 5 and stats["mean_ep_len"] == 20.0
    obs, action = actions[0]
    with torch.no_grad():
        mean = agent.model.actor(agent.obs_norm.normalize(obs)).mean
    torch.testing.assert_close(action, agent.action_scaling.to_env(mean))
    assert len(actions) == 40  # two episodes in envs 0 and 1, one in env 2: 2 x 20 steps
    assert spy.num_resets >= 3


def test_train_model_logs_tests_and_saves_at_each_output(make_runner, tmp_path):
    torch.manual_seed(0)
    runner = make_runner(num_envs=4, iters_per_output=2, test_episodes=4, save_int_models=True)
    runner.train(max_samples=4 * 20 * 5, out_dir=str(tmp_path), logger="txt")  # 5 iterations
    log = read_txt_log(str(tmp_path / "log.txt"))
    assert log["iteration"] == [2, 4, 5]  # every 2 iterations and the last
    assert log["samples"] == [160, 320, 400]
    for key in ("wall_time", "samples_per_s", "train_return", "train_ep_len", "test_return", "test_ep_len",
                "actor_loss", "critic_loss", "clip_frac", "entropy", "action_std", "actor_lr", "critic_lr"):
        assert key in log and all(math.isfinite(v) for v in log[key]), key
    assert log["train_ep_len"][0] == 20.0 and log["test_ep_len"][0] == 20.0
    assert sorted(os.listdir(tmp_path / "int_models")) == ["model_2.pt", "model_4.pt", "model_5.pt"]
    assert load_checkpoint(str(tmp_path / "model.pt"), "PPO")["iteration"] == 5


def test_resume_continues_counters_and_appends_to_the_log(make_runner, tmp_path):
    torch.manual_seed(0)
    runner = make_runner(num_envs=4, iters_per_output=1)
    runner.train(max_samples=160, out_dir=str(tmp_path), logger="txt")
    resumed_runner = make_runner(num_envs=4, iters_per_output=1)
    resumed_runner.load(str(tmp_path / "model.pt"))
    assert (resumed_runner.iteration, resumed_runner.sample_count) == (2, 160)
    resumed_runner.train(max_samples=320, out_dir=str(tmp_path), logger="txt")
    log = read_txt_log(str(tmp_path / "log.txt"))
    assert log["iteration"] == [1, 2, 3, 4] and log["samples"] == [80, 160, 240, 320]
    assert log["wall_time"] == sorted(log["wall_time"])


class InterruptingEnv(PointMassEnv):
    """Raises KeyboardInterrupt (Ctrl-C) on step ``at``."""

    def __init__(self, num_envs, at):
        super().__init__(num_envs)
        self.at, self.steps = at, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            raise KeyboardInterrupt
        return super().step(action)


def test_ctrl_c_saves_model_before_reraising(make_runner, tmp_path):
    runner = make_runner(env=InterruptingEnv(2, at=50), iters_per_output=100)  # interrupted in iteration 3
    with pytest.raises(KeyboardInterrupt):
        runner.train(max_samples=10 ** 6, out_dir=str(tmp_path), logger="txt")
    checkpoint = load_checkpoint(str(tmp_path / "model.pt"), "PPO")
    assert checkpoint["iteration"] == 2 and checkpoint["sample_count"] == 80
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_tb_logger_writes_tensorboard_events(make_runner, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    runner = make_runner(num_envs=2, iters_per_output=1)
    runner.train(max_samples=80, out_dir=str(tmp_path), logger="tb")
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    returns = events.Scalars("train_return")
    assert [e.step for e in returns] == [40, 80]
    assert "actor_loss" in events.Tags()["scalars"]


def test_wandb_logger_without_the_package_names_the_install_command(make_runner, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    runner = make_runner(num_envs=2)
    with pytest.raises(MimicKitError, match=r"wandb.*pip install"):
        runner.train(max_samples=40, out_dir=str(tmp_path), logger="wandb")


def test_wandb_logger_logs_rows_against_samples(make_runner, tmp_path, monkeypatch):
    calls = []

    class Run:
        def log(self, row, step):
            calls.append(("log", dict(row), step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or Run())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    runner = make_runner(num_envs=2, iters_per_output=1)
    runner.train(max_samples=80, out_dir=str(tmp_path), logger="wandb")
    assert calls[0][0] == "init" and calls[0][1]["dir"] == str(tmp_path)
    assert calls[0][1]["config"]["agent"] == "PPO"
    assert [c[2] for c in calls if c[0] == "log"] == [40, 80]
    assert calls[-1] == ("finish",)

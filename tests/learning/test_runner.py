"""The runner / algorithm split: reset notification, a fixed minibatch count, agents that do not learn."""
import math

import pytest
import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.learning.base_agent import minibatches
from mimickit.learning.dummy_agent import DummyAgent
from mimickit.learning.runner import Runner, rollout_threads
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import TOY_AGENT_FILE
from tests.learning.toy_envs import PointMassEnv


class ResetLogEnv(PointMassEnv):
    """Logs each reset's env ids into a shared ``events`` list; episodes of 3 steps, env 1 fails at step 1."""

    def __init__(self, num_envs, events, fail_env_at=None):
        super().__init__(num_envs, episode_steps=3)
        self.events, self.fail_env_at, self.num_steps = events, fail_env_at, 0

    def reset(self, env_ids=None):
        ids = list(range(self.num_envs)) if env_ids is None else env_ids.tolist()
        self.events.append(("env.reset", ids))
        return super().reset(env_ids)

    def step(self, action):
        obs, reward, done, info = super().step(action)
        if self.fail_env_at is not None and self.num_steps in self.fail_env_at:
            info = {"failed_envs": torch.tensor([self.fail_env_at[self.num_steps]])}
        self.num_steps += 1
        return obs, reward, done, info


def spy_on_reset(agent, events):
    def on_reset(env_ids):
        events.append(("agent.on_reset", env_ids.tolist()))
    agent.on_reset = on_reset


def test_the_agent_hears_of_every_reset_right_after_it_in_training_and_in_test_episodes(make_runner):
    events = []
    torch.manual_seed(0)
    runner = make_runner(env=ResetLogEnv(4, events), steps_per_iter=7)
    spy_on_reset(runner.agent, events)
    runner.train_iter()
    resets = [e for e in events if e[0] == "env.reset"]
    assert len(resets) == 3  # at the start, then after steps 3 and 6 (3-step episodes)
    assert events == [e for r in resets for e in (r, ("agent.on_reset", r[1]))]  # each reset, then its notice

    events.clear()
    runner.test(6)  # 4 envs, 6 episodes: every env runs 1 or 2 episodes
    resets = [e for e in events if e[0] == "env.reset" and e[1]]  # test episodes also call reset([])
    assert resets[0] == ("env.reset", [0, 1, 2, 3]) and len(resets) >= 2
    assert [e for e in events if e[1]] == [e for r in resets for e in (r, ("agent.on_reset", r[1]))]


def count_steps(optimizer):
    """Wrap ``optimizer.step`` to count its calls; returns the counter (a one-item list)."""
    count = [0]
    step = optimizer.step

    def counted(*args, **kwargs):
        count[0] += 1
        return step(*args, **kwargs)
    optimizer.step = counted
    return count


@pytest.mark.parametrize("fail_env_at", [None, {0: 1, 1: 1, 2: 3, 5: 0}])
def test_an_update_takes_the_configured_number_of_optimiser_steps_whatever_fails(make_runner, fail_env_at):
    """8 envs x 10 steps = 80 samples in minibatches of 4: 20 per epoch, with or without 4 failed env
    steps (76 valid samples would make 19; a distributed update needs the same count on every process)."""
    torch.manual_seed(0)
    runner = make_runner(env=ResetLogEnv(8, [], fail_env_at), steps_per_iter=10, actor_batch_size=4,
                         critic_batch_size=4, actor_epochs=2, critic_epochs=3)
    actor_steps = count_steps(runner.agent.actor_optimizer)
    critic_steps = count_steps(runner.agent.critic_optimizer)
    info = runner.train_iter()
    assert (actor_steps[0], critic_steps[0]) == (2 * 20, 3 * 20)
    assert int((~runner.agent.buffer.get("valid")).sum()) == (0 if fail_env_at is None else 4)
    assert all(math.isfinite(v) for v in info.values())


def test_minibatches_have_a_fixed_count_and_cover_the_valid_samples_once():
    torch.manual_seed(0)
    valid = torch.ones(10, dtype=torch.bool)
    valid[[2, 3, 7]] = False
    batches = minibatches(10, 4, valid)
    assert [len(b) <= 4 for b in batches] == [True] * 3  # ceil(10 / 4)
    assert sorted(torch.cat(batches).tolist()) == [0, 1, 4, 5, 6, 8, 9]
    assert len(minibatches(10, 4, torch.zeros(10, dtype=torch.bool))) == 3  # all empty, still 3


def test_an_agent_that_does_not_learn_is_refused_training_before_anything_runs(tmp_path):
    env = ResetLogEnv(2, [])
    agent = DummyAgent(config={}, config_file=TOY_AGENT_FILE, env=env, device="cpu")
    with pytest.raises(MimicKitError, match="agent 'DUMMY' does not learn"):
        Runner(agent, env, "cpu").train(max_samples=100, out_dir=str(tmp_path), logger="txt")
    assert env.events == [] and list(tmp_path.iterdir()) == []
    stats = Runner(agent, env, "cpu").test(2)  # it acts: the neutral action, zero accelerations here
    assert stats["num_eps"] == 2 and stats["mean_ep_len"] == 3.0


def test_a_failed_env_step_is_recorded_as_an_invalid_fail_with_zero_reward(make_runner):
    torch.manual_seed(0)
    runner = make_runner(env=ResetLogEnv(3, [], {1: 2}), steps_per_iter=3)
    runner.train_iter()
    buffer = runner.agent.buffer
    assert not buffer.get("valid")[1, 2] and int(buffer.get("valid").sum()) == 8
    assert buffer.get("done")[1, 2] == DoneFlags.FAIL and buffer.get("reward")[1, 2] == 0.0


def test_rollouts_step_with_one_torch_thread_on_the_cpu_and_the_update_keeps_the_rest(make_runner, monkeypatch):
    runner = make_runner(num_envs=4)
    before, threads = torch.get_num_threads(), max(2, torch.get_num_threads())
    seen = {}
    step, update = runner.agent.rollout_env.step, runner.agent.update
    monkeypatch.setattr(runner.agent.rollout_env, "step",
                        lambda a: (seen.setdefault("step", torch.get_num_threads()), step(a))[1])
    monkeypatch.setattr(runner.agent, "update", lambda: (seen.setdefault("update", torch.get_num_threads()), update())[1])
    torch.set_num_threads(threads)
    try:
        runner.train_iter()
        assert seen == {"step": 1, "update": threads}
        assert torch.get_num_threads() == threads
        with rollout_threads("cuda:0"):  # another device's rollout leaves the CPU threads alone
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)

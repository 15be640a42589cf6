"""The shared test-mode loop: fair episode shares and per-episode tracking errors."""
import torch

from mimickit.envs.base_env import BaseEnv, BoxSpace, DoneFlags
from mimickit.learning.evaluation import episode_shares, run_test_episodes


class CountingEnv(BaseEnv):
    """Env i's episodes last lengths[i] steps; step k of an episode reports error k + 1 and
    reward 1; env 0's episodes fail, the others time out."""

    def __init__(self, lengths):
        super().__init__(len(lengths), "cpu")
        self.lengths = torch.tensor(lengths)
        self.t = torch.zeros(len(lengths), dtype=torch.long)

    def reset(self, env_ids=None):
        self.t[slice(None) if env_ids is None else env_ids] = 0
        return torch.zeros(self.num_envs, 1)

    def step(self, action):
        self.t += 1
        done = torch.where(self.t >= self.lengths, DoneFlags.TIME, DoneFlags.NULL)
        done[0] = DoneFlags.FAIL if self.t[0] >= self.lengths[0] else DoneFlags.NULL
        errors = {"body_pos_err_m": self.t.float()}
        return torch.zeros(self.num_envs, 1), torch.ones(self.num_envs), done, {"tracking_errors": errors}

    def get_obs_space(self):
        return BoxSpace.unbounded(1)

    def get_action_space(self):
        return BoxSpace.unbounded(1)


def test_episode_shares_add_up_and_differ_by_at_most_one():
    shares = episode_shares(10, 4)
    assert shares.tolist() == [3, 3, 2, 2]


def test_every_env_runs_its_share_and_errors_average_per_episode_then_over_episodes():
    # Env 0: 2-step episodes (errors 1, 2 -> mean 1.5), env 1: 4-step episodes (mean 2.5).
    # 3 episodes: env 0 runs 2, env 1 runs 1, although env 0 could have finished 2 more
    # while env 1 was still running; the extra short episodes must not be counted.
    stats = run_test_episodes(CountingEnv([2, 4]), lambda obs: torch.zeros(obs.shape[0], 1), 3)
    assert stats["num_eps"] == 3
    assert abs(stats["mean_ep_len"] - (2 + 2 + 4) / 3) < 1e-6
    assert abs(stats["mean_return"] - (2 + 2 + 4) / 3) < 1e-6
    assert abs(stats["body_pos_err_m"] - (1.5 + 1.5 + 2.5) / 3) < 1e-6
    assert abs(stats["success_rate"] - 1 / 3) < 1e-6


class TimedCountingEnv(CountingEnv):
    control_dt = 0.5  # s per step


def test_falls_per_minute_and_agent_step_metrics():
    # Env 0 fails after 2 steps, env 1 times out after 4; 4 episodes -> 2 falls in
    # (2 + 2 + 4 + 4) steps x 0.5 s = 6 s = 0.1 min. The agent's metric is 10 x the step index.
    env = TimedCountingEnv([2, 4])
    stats = run_test_episodes(env, lambda obs: torch.zeros(obs.shape[0], 1), 4,
                              step_metrics=lambda info: {"style_reward": 10.0 * env.t.float()})
    assert abs(stats["falls_per_min"] - 2 / 0.1) < 1e-4
    assert abs(stats["style_reward"] - 10.0 * (1.5 + 1.5 + 2.5 + 2.5) / 4) < 1e-5
    assert "falls_per_min" not in run_test_episodes(CountingEnv([2, 4]), lambda obs: torch.zeros(obs.shape[0], 1), 2)

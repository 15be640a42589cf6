"""A pure-torch toy environment for the learning tests (imported as tests.learning.toy_envs)."""
import torch

from mimickit.envs.base_env import BaseEnv, BoxSpace, DoneFlags


class PointMassEnv(BaseEnv):
    """A 2D point mass that must reach the origin and stay there.

    State: position p (m) and velocity v (m/s), obs = [p, v] ([num_envs, 4]). Action:
    acceleration in [-2, 2] m/s^2 per axis (clamped), integrated with step dt. Reward
    exp(-|p|^2 / 0.1) per step. Episodes start at p uniform in [-1, 1]^2, v = 0 and end
    with TIME after ``episode_steps`` steps or FAIL when |p| > ``max_dist``.
    ``failed_envs`` (optional) is a set of (step, env) pairs reported as failed envs.
    """

    def __init__(self, num_envs, device="cpu", episode_steps=20, dt=0.1, max_dist=2.0):
        super().__init__(num_envs, device)
        self.episode_steps = episode_steps
        self.dt = dt
        self.max_dist = max_dist
        self.pos = torch.zeros(num_envs, 2)
        self.vel = torch.zeros(num_envs, 2)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self.num_resets = 0

    def _obs(self):
        return torch.cat([self.pos, self.vel], dim=-1)

    def reset(self, env_ids=None):
        if env_ids is None:
            env_ids = torch.arange(self.num_envs)
        self.pos[env_ids] = torch.rand(len(env_ids), 2) * 2.0 - 1.0
        self.vel[env_ids] = 0.0
        self.t[env_ids] = 0
        self.num_resets += len(env_ids)
        return self._obs()

    def step(self, action):
        acc = action.clamp(-2.0, 2.0)
        self.vel = self.vel + acc * self.dt
        self.pos = self.pos + self.vel * self.dt
        self.t += 1
        reward = torch.exp(-self.pos.square().sum(-1) / 0.1)
        done = torch.full((self.num_envs,), int(DoneFlags.NULL), dtype=torch.long)
        done[self.t >= self.episode_steps] = DoneFlags.TIME
        done[self.pos.norm(dim=-1) > self.max_dist] = DoneFlags.FAIL
        return self._obs(), reward, done, {}

    def get_obs_space(self):
        return BoxSpace.unbounded(4)

    def get_action_space(self):
        return BoxSpace(low=torch.full((2,), -2.0), high=torch.full((2,), 2.0))


class PointMassAMPEnv(PointMassEnv):
    """The point mass with AMP observations ``[p, v]`` of the state reached (``info["amp_obs"]``, 4 values),
    demonstrations resting near the origin (p, v ~ N(0, 0.05^2)), and a control step of ``dt`` s."""

    amp_obs_dim = 4

    @property
    def control_dt(self):
        return self.dt

    def step(self, action):
        obs, reward, done, info = super().step(action)
        return obs, reward, done, dict(info, amp_obs=obs.clone())

    def fetch_demo_amp_obs(self, n):
        return 0.05 * torch.randn(n, 4)

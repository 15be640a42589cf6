"""The high-level MDP of a hierarchical controller: a latent in, several low-level control steps out.

ASE's high-level controller (Peng et al. 2022, Sec. 6) acts every ``llc_steps`` control
steps by choosing a latent ``z`` for a frozen low-level policy. :class:`SkillEnv` wraps the
task environment so that the runner trains that controller as any PPO policy:

- **Observation**: the task environment's (the character's part, then the task's goal).
- **Action**: a ``[latent_dim]`` vector ``a``, put on the unit sphere: ``z = a / |a|``.
- **Step**: ``llc_steps`` control steps of the task environment, each applying the low
  level's deterministic action under ``z``
  (:meth:`mimickit.learning.ase_agent.ASEAgent.latent_env_action`) for the character's part
  of the observation, the first ``llc_obs_dim`` entries (:class:`ObsPrefixEnv`: what the
  low level was trained on, without the goal).
- **Reward**: the sum of the task rewards of those control steps, so an episode's return is
  the task environment's return; ``info["style_reward"]`` ``[num_envs]``: the sum of the
  frozen discriminator's (scaled) style rewards of the same steps.
- **Episode ends**: an env whose episode ends at control step ``k`` of a high-level step
  reports step ``k``'s observation and done flag and the rewards up to ``k``; the control
  steps after ``k`` (the batch is stepped together) are not counted, and where its state
  is not finite the low level's action there is the neutral one. ``info["failed_envs"]``
  (bool ``[num_envs]``) marks the envs whose simulation failed at a counted step; their
  failed step adds no reward.

``control_dt`` is ``llc_steps`` times the task environment's (s per high-level step).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import AMPEnvLike, BaseEnv, BoxSpace, DoneFlags, ObsSlice
from mimickit.learning.ase_agent import ASEAgent, ControlTimedEnv
from mimickit.learning.runner import failed_mask
from mimickit.util.errors import MimicKitError


def _amp_env(env: BaseEnv, source: str) -> AMPEnvLike:
    """``env`` as an AMP environment with ``control_dt``; :class:`MimicKitError` naming ``source`` otherwise."""
    if not (isinstance(env, AMPEnvLike) and isinstance(env, ControlTimedEnv)):
        raise MimicKitError("{}: a low-level ASE controller needs a character environment with AMP observations "
                            "(env_name: amp), got {}".format(source, type(env).__name__))
    return env


class ObsPrefixEnv(BaseEnv):
    """The same environments seen through the first ``obs_dim`` entries of their observation.

    A low-level controller trained on a character without a task reads the character's part
    of a task environment's observation through it (an AMP env puts the task's goal last).
    AMP observations, demonstrations and ``control_dt`` are the wrapped env's.

    Args:
        env: an AMP environment.
        obs_dim: the entries kept; a part of ``env.get_obs_layout()`` must end there.
        source: what asks for it (config file and key), for messages.

    Raises:
        MimicKitError: ``env`` has no AMP observations, or no observation part ends at ``obs_dim``.
    """

    def __init__(self, env: BaseEnv, obs_dim: int, source: str):
        super().__init__(env.num_envs, env.device)
        self.env = env
        self._amp = _amp_env(env, source)
        self.amp_obs_dim = self._amp.amp_obs_dim
        layout = env.get_obs_layout()
        if obs_dim not in [part.end for part in layout]:
            raise MimicKitError(
                "{}: the low-level model takes observations of size {}, but no part of this environment's "
                "observation ({}) ends there: train the low level on the same character and observation without "
                "the task (e.g. data/envs/amp_humanoid_env.yaml for the humanoid)".format(
                    source, obs_dim, ", ".join("{} [{}:{}]".format(p.name, p.start, p.end) for p in layout)))
        self.obs_dim = obs_dim
        self._layout = [part for part in layout if part.end <= obs_dim]

    @property
    def control_dt(self) -> float:
        """Seconds per :meth:`step`, the wrapped env's."""
        return float(self.env.control_dt)  # type: ignore[attr-defined]

    def reset(self, env_ids: Optional[Tensor] = None) -> Tensor:
        """As the wrapped env's, ``[num_envs, obs_dim]``."""
        return self.env.reset(env_ids)[:, :self.obs_dim]

    def step(self, action: Tensor) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Any]]:
        """As the wrapped env's, with observations ``[num_envs, obs_dim]``."""
        obs, reward, done, info = self.env.step(action)
        return obs[:, :self.obs_dim], reward, done, info

    def get_obs_space(self) -> BoxSpace:
        """The first ``obs_dim`` dimensions of the wrapped env's space."""
        space = self.env.get_obs_space()
        return BoxSpace(low=space.low[:self.obs_dim], high=space.high[:self.obs_dim])

    def get_action_space(self) -> BoxSpace:
        """The wrapped env's."""
        return self.env.get_action_space()

    def get_obs_layout(self) -> List[ObsSlice]:
        """The wrapped env's parts that lie within ``obs_dim``."""
        return list(self._layout)

    def fetch_demo_amp_obs(self, num_samples: int) -> Tensor:
        """The wrapped env's demonstrations, ``[num_samples, amp_obs_dim]``."""
        return self._amp.fetch_demo_amp_obs(num_samples)


class SkillEnv(BaseEnv):
    """A task environment driven through a frozen low-level controller; see the module docstring.

    Args:
        env: the task environment (AMP observations, ``control_dt``).
        llc: the low-level ASE agent, built on :class:`ObsPrefixEnv` of ``env``.
        llc_steps: control steps per high-level step, >= 1.

    Attributes:
        latent_dim: size of the action.
    """

    def __init__(self, env: BaseEnv, llc: ASEAgent, llc_steps: int):
        super().__init__(env.num_envs, env.device)
        _amp_env(env, "SkillEnv")
        self.env = env
        self.llc = llc
        self.llc_steps = llc_steps
        self.latent_dim = llc.latent_dim
        self._obs = torch.zeros(0)  # every env's current observation, from the last reset or step
        self._critic_obs: Optional[Tensor] = None  # ... and its critic observation (None: the env has none)

    @property
    def control_dt(self) -> float:
        """Seconds per high-level step: ``llc_steps`` control steps of the task environment."""
        return self.llc_steps * float(self.env.control_dt)  # type: ignore[attr-defined]

    def reset(self, env_ids: Optional[Tensor] = None) -> Tensor:
        """As the task environment's."""
        self._obs = self.env.reset(env_ids)
        self._critic_obs = self.env.get_critic_obs()
        return self._obs

    def step(self, action: Tensor) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Any]]:
        """``llc_steps`` control steps under the latents ``action / |action|`` (``[num_envs, latent_dim]``).

        Returns:
            ``(obs, reward, done, info)`` as the module docstring says; ``info`` holds
            ``style_reward`` and ``failed_envs`` ``[num_envs]``.
        """
        latent = F.normalize(action.to(self.llc.device), dim=-1)
        neutral = self.llc.action_scaling.offset
        llc_obs_dim = self.llc.obs_dim
        zeros = torch.zeros(self.num_envs, device=self.device)
        reward, style = zeros.clone(), zeros.clone()
        failed = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        ended = torch.zeros_like(failed)
        done_out = torch.full((self.num_envs,), int(DoneFlags.NULL), dtype=torch.long, device=self.device)
        obs_out, critic_out = self._obs, self._critic_obs
        for _ in range(self.llc_steps):
            llc_action = self.llc.latent_env_action(self._obs[:, :llc_obs_dim], latent)
            llc_action = torch.where(torch.isfinite(llc_action), llc_action, neutral)
            obs, step_reward, done, info = self.env.step(llc_action.to(self.device))
            self._obs = obs
            live = ~ended
            step_failed = failed_mask(info, self.num_envs, self.device)
            counted = live & ~step_failed
            reward += torch.where(counted, step_reward, zeros)
            style_reward = self.llc.style_reward(info["amp_obs"].to(self.llc.device)).to(self.device)
            style += torch.where(counted, style_reward, zeros)
            failed |= live & step_failed
            ends_now = live & (done != DoneFlags.NULL)
            done_out = torch.where(ends_now, done, done_out)
            obs_out = torch.where(live.unsqueeze(-1), obs, obs_out)
            critic = self.env.get_critic_obs()
            if critic is not None and critic_out is not None:
                critic_out = torch.where(live.unsqueeze(-1), critic, critic_out)
            ended |= ends_now
        self._critic_obs = critic_out
        return obs_out, reward, done_out, {"style_reward": style, "failed_envs": failed}

    def get_obs_space(self) -> BoxSpace:
        """The task environment's."""
        return self.env.get_obs_space()

    def get_action_space(self) -> BoxSpace:
        """Unbounded ``[latent_dim]``: the step puts it on the unit sphere."""
        return BoxSpace.unbounded(self.latent_dim, self.device)

    def get_obs_layout(self) -> List[ObsSlice]:
        """The task environment's."""
        return self.env.get_obs_layout()

    def get_critic_obs(self) -> Optional[Tensor]:
        """The task environment's critic observation where each env's last step ended (as ``obs`` of :meth:`step`)."""
        return self._critic_obs

    def get_critic_obs_layout(self) -> Optional[List[ObsSlice]]:
        """The task environment's."""
        return self.env.get_critic_obs_layout()

    def close(self) -> None:
        """Close the task environment."""
        self.env.close()

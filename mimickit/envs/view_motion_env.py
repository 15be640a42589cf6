"""Motion viewer: plays clips kinematically on the character through the engine.

Each control step sets the character's root and dof state to the clip's frame at the
env's time (no physics is stepped). Env ``i`` plays clip ``i % num_motions`` from its
start; an episode is one pass through the clip and ends with ``DoneFlags.SUCC``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

import torch
from torch import Tensor

from mimickit.anim.motion_lib import MotionLib
from mimickit.envs.base_env import BoxSpace, DoneFlags
from mimickit.envs.char_env import CharEnv
from mimickit.envs.char_obs import ObsTerm
from mimickit.envs.env_builder import register_env
from mimickit.util.config import from_dict


@dataclasses.dataclass
class ViewMotionEnvConfig:
    """Keys of a motion viewer env YAML.

    Attributes:
        char_file: the character's MJCF.
        motion_file: the clips to play, a clip (``.npz``) or a dataset YAML.
    """

    char_file: str
    motion_file: str


@register_env("view_motion")
class ViewMotionEnv(CharEnv):
    """Plays clips kinematically; see the module docstring.

    Observation: the clip phase in [0, 1], ``[num_envs, 1]``. Actions are ignored
    (``[num_envs, num_dofs]``); the reward is 0.
    """

    def __init__(self, config: Dict[str, Any], config_file: str, engine_config_file: str,
                 num_envs: int, device: str, visualize: bool, video_file=None):
        cfg = from_dict(ViewMotionEnvConfig, config, config_file)
        super().__init__(cfg.char_file, engine_config_file, num_envs, device, visualize, video_file,
                         episode_length=float("inf"))
        self.motion_lib = MotionLib(cfg.motion_file, self.kin_char_model, device)
        self.motion_ids = torch.arange(num_envs, device=device) % self.motion_lib.num_motions
        self.motion_length = self.motion_lib.get_motion_length(self.motion_ids)

    def get_obs_space(self) -> BoxSpace:
        """The clip phase, ``(1,)`` in [0, 1]."""
        return BoxSpace(low=torch.zeros(1, device=self.device), high=torch.ones(1, device=self.device))

    def get_action_space(self) -> BoxSpace:
        """Unbounded, ``(num_dofs,)``; actions are ignored."""
        return BoxSpace.unbounded(self.kin_char_model.num_dofs, self.device)

    def _reset_envs(self, env_ids: Tensor) -> None:
        self._show_frame(env_ids)

    def _pre_physics_step(self, action: Tensor) -> None:
        pass

    def _advance(self) -> None:
        self._show_frame(torch.arange(self.num_envs, device=self.device), self.engine.control_dt)

    def _show_frame(self, env_ids: Tensor, dt: float = 0.0) -> None:
        """Set ``env_ids``' characters to their clip's frame at ``time + dt``."""
        self.set_char_to_motion(self.motion_lib, env_ids, self.motion_ids[env_ids], self.time[env_ids] + dt)

    def _obs_terms(self) -> List[ObsTerm]:
        return [ObsTerm("phase", (self.time / self.motion_length).clamp(max=1.0).unsqueeze(-1), "1", "none")]

    def _compute_reward(self) -> Tensor:
        return torch.zeros(self.num_envs, device=self.device)

    def _compute_done(self) -> Tensor:
        done = torch.full_like(self.done, DoneFlags.NULL)
        done[self.time >= self.motion_length - 1e-6] = DoneFlags.SUCC
        return done

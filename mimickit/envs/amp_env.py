"""AMP: a simulated character whose style is judged against motion clips (Peng et al. 2021).

``env_name: amp``. The environment gives the agent what adversarial motion priors need;
the discriminator and the style reward live in the agent
(:mod:`mimickit.learning.amp_agent`).

- **AMP observations** (:mod:`mimickit.envs.amp_obs`): the env keeps, per env, a stack of
  the last ``num_amp_obs_steps`` AMP frames of the simulated character, oldest first.
  :meth:`AMPEnv.step` returns it flattened as ``info["amp_obs"]``
  (``[num_envs, amp_obs_dim]``) for the state the step reached, before any reset, so for
  an episode that ended it is the terminal one. :meth:`AMPEnv.fetch_demo_amp_obs` builds
  the same stacks from the clips of ``motion_file``.
- **Episode starts**: with probability ``default_pose_prob`` the character starts in its
  default pose (the MJCF's keyframe ``default``, else its root placement with every dof at
  0 within its limits; at rest) and
  its AMP stack holds that frame repeated; otherwise by reference state initialisation
  (a clip drawn by weight at a uniform time) and its stack holds the clip's frames before
  that time, the newest frame read back from the simulator.
- **Episode ends**: ``DoneFlags.FAIL`` when a body outside ``contact_bodies`` touches the
  ground (with ``enable_early_termination``), ``TIME`` at ``episode_length``.
- **Observation**: the character's body state (:func:`mimickit.envs.char_obs.compute_body_obs`)
  followed by the task's terms, if any. **Reward**: the task's (0 without a task); the
  agent adds the style reward. **Actions**: as DeepMimic's, PD targets (rad) in ``pos``
  control mode and torques (N·m) in ``torque`` mode.
- **Task** (optional ``task`` mapping, :mod:`mimickit.envs.tasks`): its goal is appended
  to the observation and its reward is the env's reward.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from mimickit.anim.motion_lib import MotionLib
from mimickit.envs import amp_obs, char_obs
from mimickit.envs.actuators import ActuatorConfig
from mimickit.envs.base_env import BoxSpace, DoneFlags, ObsSlice
from mimickit.envs.char_env import CharEnv
from mimickit.envs.domain_rand import DomainRandConfig
from mimickit.envs.env_builder import register_env
from mimickit.envs.tasks import Task, build_task
from mimickit.util.config import from_dict
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class AMPEnvConfig:
    """Keys of an AMP env YAML (defaults here); see the module docstring.

    Attributes:
        char_file: the character's MJCF.
        motion_file: demonstrations, a clip (``.npz``) or a dataset YAML.
        key_bodies: bodies whose positions enter the AMP frames (e.g. hands and feet).
        contact_bodies: bodies allowed to touch the ground (e.g. the feet).
        num_amp_obs_steps: AMP frames per AMP observation, >= 2 (a transition at least).
        default_pose_prob: probability, in [0, 1], that an episode starts in the default pose.
        episode_length: s.
        enable_early_termination: end the episode when a non-contact body touches the ground.
        global_obs: policy observation in the world frame instead of the heading frame.
        task: ``{task_name: ..., ...}`` (:mod:`mimickit.envs.tasks`); null: no task.
        domain_rand: domain randomisation (:mod:`mimickit.envs.domain_rand`); null: none.
        actuators: joint armature, friction and torque-speed limits by joint-name pattern
            (:mod:`mimickit.envs.actuators`); empty: the character file's.
        actor_obs: the actor's observation (:class:`mimickit.envs.char_env.CharEnv`):
            ``deployable`` (the robot's measurable terms and the task's goal, for a task a
            robot can be given: :attr:`mimickit.envs.tasks.Task.DEPLOYABLE`) or a list of term
            names; null: the whole observation.
    """

    char_file: str
    motion_file: str
    key_bodies: List[str]
    contact_bodies: List[str]
    num_amp_obs_steps: int = 10
    default_pose_prob: float = 0.0
    episode_length: float = 10.0
    enable_early_termination: bool = True
    global_obs: bool = False
    task: Optional[Dict[str, Any]] = None
    domain_rand: Optional[DomainRandConfig] = None
    actuators: Dict[str, ActuatorConfig] = dataclasses.field(default_factory=dict)
    actor_obs: Union[str, List[str], None] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for an out-of-range value."""
        if self.num_amp_obs_steps < 2:
            raise MimicKitError("{}: key 'num_amp_obs_steps' must be >= 2, got {}".format(
                source, self.num_amp_obs_steps))
        if not 0.0 <= self.default_pose_prob <= 1.0:
            raise MimicKitError("{}: key 'default_pose_prob' must be in [0, 1], got {}".format(
                source, self.default_pose_prob))
        if not self.episode_length > 0:
            raise MimicKitError("{}: key 'episode_length' must be > 0, got {}".format(source, self.episode_length))


@register_env("amp")
class AMPEnv(CharEnv):
    """Character for adversarial motion priors; see the module docstring.

    Attributes:
        amp_obs_dim: size of one flattened AMP observation, ``num_amp_obs_steps * amp_frame_dim``.
        num_amp_obs_steps, amp_frame_dim: its two factors.
        motion_lib: the demonstrations.
        task: the :class:`mimickit.envs.tasks.Task`, or None.

    Raises:
        MimicKitError: on a bad config (key named), a body name the character lacks, a
            missing file or a motion that does not fit the character.
    """

    def __init__(self, config: Dict[str, Any], config_file: str, engine_config_file: str,
                 num_envs: int, device: str, visualize: bool, video_file: Optional[str] = None):
        self.cfg = cfg = from_dict(AMPEnvConfig, config, config_file)
        super().__init__(cfg.char_file, engine_config_file, num_envs, device, visualize, video_file,
                         episode_length=cfg.episode_length, domain_rand=cfg.domain_rand, config_file=config_file,
                         actor_obs=cfg.actor_obs, actuators=cfg.actuators)
        kin = self.kin_char_model
        self.motion_lib = MotionLib(cfg.motion_file, kin, device)
        self._key_ids = self.body_ids(cfg.key_bodies, "key_bodies", config_file)
        self._fail_contact = self.fall_contact_mask(cfg.contact_bodies, config_file)
        self._dof_layout = amp_obs.amp_dof_layout(kin, device)
        self.task: Optional[Task] = None
        if cfg.task is not None:
            self.task = build_task(cfg.task, config_file, num_envs, device, self.engine.control_dt)

        self.num_amp_obs_steps = cfg.num_amp_obs_steps
        self._read_state()
        self.amp_frame_dim = self._amp_frame.shape[-1]
        self.amp_obs_dim = self.num_amp_obs_steps * self.amp_frame_dim
        self._amp_history = self._amp_frame.unsqueeze(1).repeat(1, self.num_amp_obs_steps, 1)
        # Clip and start time of each env's episode; -1: started in the default pose.
        self.motion_ids = torch.full((num_envs,), -1, dtype=torch.long, device=device)
        self.motion_start = torch.zeros(num_envs, device=device)
        self.check_actor_obs()

    def get_amp_obs_space(self) -> BoxSpace:
        """The space of one flattened AMP observation, shape ``(amp_obs_dim,)``."""
        return BoxSpace.unbounded(self.amp_obs_dim, self.device)

    def get_amp_obs_layout(self) -> List[ObsSlice]:
        """Parts of a flattened AMP observation.

        Named ``step<k>_<term>``, k = 0 the oldest frame (terms: :mod:`mimickit.envs.amp_obs`).
        """
        return amp_obs.amp_obs_layout(self._amp_frame_terms(), self.num_amp_obs_steps)

    # ----------------------------------------------------------------- episode
    def _step_info(self) -> Dict[str, Any]:
        """The step's extra info: the AMP observation and, with a task, its tracking errors.

        ``amp_obs``: ``[num_envs, amp_obs_dim]``, the AMP observation of the state the step
        reached (before any reset); with a task, ``tracking_errors``: its :meth:`Task.tracking_errors`.
        """
        info = {"amp_obs": self._amp_history.reshape(self.num_envs, -1).clone()}  # resets write the stack in place
        if self.task is not None:
            info["tracking_errors"] = self.task.tracking_errors(self.char_state)
        return info

    def _reset_envs(self, env_ids: Tensor) -> None:
        default = torch.rand(len(env_ids), device=self.device) < self.cfg.default_pose_prob
        rsi_ids, default_ids = env_ids[~default], env_ids[default]
        self.motion_ids[env_ids] = -1
        self.motion_start[env_ids] = 0.0
        if len(rsi_ids) > 0:
            motion_ids = self.motion_lib.sample_motions(len(rsi_ids)).to(self.device)
            start = self.motion_lib.sample_time(motion_ids)
            self.motion_ids[rsi_ids] = motion_ids
            self.motion_start[rsi_ids] = start
            self.set_char_to_motion(self.motion_lib, rsi_ids, motion_ids, start)
        if len(default_ids) > 0:
            self._set_default_pose(default_ids)

        self._read_state()
        history = self._amp_frame[env_ids].unsqueeze(1).repeat(1, self.num_amp_obs_steps, 1)
        if len(rsi_ids) > 0:
            past = amp_obs.history_times(start, self.num_amp_obs_steps, self.engine.control_dt)[:, :-1]
            history[~default, :-1] = amp_obs.calc_motion_amp_frames(
                self.motion_lib, self.kin_char_model, motion_ids, past, self._key_ids, self._dof_layout)
        self._amp_history[env_ids] = history
        if self.task is not None:
            self.task.reset(env_ids, self.char_state)

    def _set_default_pose(self, env_ids: Tensor) -> None:
        """The character's default pose (:attr:`KinCharModel.default_dof_pos`), at rest."""
        kin, k = self.kin_char_model, len(env_ids)
        root_pos = kin.default_root_pos.expand(k, 3)
        root_rot = kin.default_root_rot.expand(k, 4)
        dof_pos = kin.default_dof_pos.expand(k, kin.num_dofs)
        zeros3 = torch.zeros(k, 3, device=self.device)
        self.set_char_state(self.char_id, env_ids, root_pos, root_rot, zeros3, zeros3, dof_pos,
                            torch.zeros_like(dof_pos))

    def _read_state(self) -> None:
        """Read the simulated state and compute its AMP frame (the stack moves in :meth:`_post_physics_step`)."""
        super()._read_state()
        self._amp_frame = char_obs.cat_obs_terms(self._amp_frame_terms())

    def _post_physics_step(self) -> None:
        """Push the new AMP frame onto the stack and let the task advance its goals."""
        self._amp_history = amp_obs.push_frame(self._amp_history, self._amp_frame)
        if self.task is not None:
            self.task.update(self.char_state)

    def _amp_frame_terms(self) -> List[char_obs.ObsTerm]:
        s, kin = self.char_state, self.kin_char_model
        return amp_obs.amp_frame_obs_terms(
            s.root_pos, s.root_rot, s.root_vel, s.root_ang_vel, kin.dof_pos_to_joint_rot(s.dof_pos), s.dof_pos,
            kin.dof_vel_to_joint_dof_vel(s.dof_pos, s.dof_vel), s.body_pos[:, self._key_ids], self._dof_layout)

    # ----------------------------------------------------------------- obs, reward, done
    def _obs_terms(self) -> List[char_obs.ObsTerm]:
        """The observation's parts in order.

        ``root_height``, ``body_pos``, ``body_rot``, ``body_vel``, ``body_ang_vel``
        (:func:`mimickit.envs.char_obs.compute_body_obs`), then the task's terms.
        """
        s = self.char_state
        terms = char_obs.body_obs_terms(s.root_pos, s.root_rot, s.body_pos, s.body_rot, s.body_vel, s.body_ang_vel,
                                        self.cfg.global_obs)
        if self.task is not None:
            terms += self.task.obs_terms(s)
        return terms

    def _goal_obs_names(self) -> Sequence[str]:
        """The task's terms (none without a task).

        Raises:
            MimicKitError: naming the env YAML when the task's goal needs privileged state
                (:attr:`mimickit.envs.tasks.Task.DEPLOYABLE` false).
        """
        if self.task is None:
            return ()
        if not self.task.DEPLOYABLE:
            raise MimicKitError("{}: key 'actor_obs': deployable, but the goal of task {} needs the simulator's state "
                                "(e.g. the root position): list the actor's terms instead".format(
                                    self._config_file, type(self.task).__name__))
        return [t.name for t in self.task.obs_terms(self.char_state)]

    def _compute_reward(self) -> Tensor:
        if self.task is None:
            return torch.zeros(self.num_envs, device=self.device)
        return self.task.reward(self.char_state)

    def _compute_done(self) -> Tensor:
        done = super()._compute_done()
        if self.cfg.enable_early_termination:
            fell = (self.char_state.ground_contacts & self._fail_contact).any(dim=-1)
            done[fell] = DoneFlags.FAIL
        return done

    # ----------------------------------------------------------------- demonstrations
    def calc_demo_amp_obs(self, motion_ids: Tensor, times: Tensor) -> Tensor:
        """AMP observations ``[n, amp_obs_dim]`` of clips, computed like the simulated ones.

        Args:
            motion_ids: long ``[n]``, the clips' indices in :attr:`motion_lib`.
            times: ``[n]`` s, the newest frame's time (the others one control step apart
                before it, :func:`mimickit.envs.amp_obs.history_times`); or
                ``[n, num_amp_obs_steps]`` s, every frame's time, oldest first.
        """
        if times.dim() == 1:
            times = amp_obs.history_times(times, self.num_amp_obs_steps, self.engine.control_dt)
        frames = amp_obs.calc_motion_amp_frames(self.motion_lib, self.kin_char_model, motion_ids, times,
                                                self._key_ids, self._dof_layout)
        return frames.reshape(len(motion_ids), -1)

    def fetch_demo_amp_obs(self, num_samples: int) -> Tensor:
        """``[num_samples, amp_obs_dim]`` demonstration AMP observations.

        Clips are drawn by weight, newest-frame times uniform over each clip.
        """
        motion_ids = self.motion_lib.sample_motions(num_samples).to(self.device)
        return self.calc_demo_amp_obs(motion_ids, self.motion_lib.sample_time(motion_ids))

"""DeepMimic: a simulated character tracks reference motion clips (Peng et al. 2018).

Episodes start from reference state initialisation (a random clip, weighted, at a random
time; or time 0 with ``rand_reset: false``) and end by early termination (a body outside
``contact_bodies`` touches the ground, or the mean squared body position error exceeds
``pose_termination_dist^2``: ``DoneFlags.FAIL``) or at ``episode_length`` (``TIME``).
Actions are PD targets (rad) in ``pos`` control mode and torques (N·m) in ``torque`` mode.
Rewards: :mod:`mimickit.envs.deepmimic_rewards`. Observations: :mod:`mimickit.envs.char_obs`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from mimickit.anim.motion_lib import MotionLib
from mimickit.envs import char_obs, deepmimic_rewards
from mimickit.envs.actuators import ActuatorConfig
from mimickit.envs.base_env import DoneFlags
from mimickit.envs.char_env import CharEnv
from mimickit.envs.domain_rand import DomainRandConfig
from mimickit.envs.env_builder import register_env
from mimickit.util import torch_util
from mimickit.util.config import check_key, from_dict

TRACKING_ERRORS = ("root_pos_err_m", "root_rot_err_rad", "body_pos_err_m", "body_rot_err_rad",
                   "key_pos_err_m", "dof_vel_err_radps")


@dataclasses.dataclass
class DeepMimicRewardConfig:
    """Weights ``*_w`` and kernel scales ``*_scale`` of the five terms (DeepMimic eq. 5)."""

    pose_w: float = 0.5
    vel_w: float = 0.1
    root_pose_w: float = 0.15
    root_vel_w: float = 0.1
    key_pos_w: float = 0.15
    pose_scale: float = 2.0
    vel_scale: float = 0.1
    root_pose_scale: float = 5.0
    root_vel_scale: float = 1.0
    key_pos_scale: float = 10.0

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` on a negative weight or a scale <= 0."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_w"):
                check_key(value >= 0, source, f.name, value, ">= 0")
            else:
                check_key(value > 0, source, f.name, value, "> 0")


@dataclasses.dataclass
class DeepMimicEnvConfig:
    """Keys of a DeepMimic env YAML (defaults here); see the module docstring.

    Attributes:
        char_file: the character's MJCF.
        motion_file: reference clips, a clip (``.npz``) or a dataset YAML.
        key_bodies: bodies whose root-relative positions enter the key-body reward.
        contact_bodies: bodies allowed to touch the ground (e.g. the feet).
        episode_length: s.
        rand_reset: start at a uniform time of the clip; false: at time 0.
        enable_early_termination: end the episode on a fall or a diverged pose.
        pose_termination_dist: m; the pose diverged once the mean over bodies of the squared
            world position error exceeds its square.
        global_obs: policy observation in the world frame instead of the heading frame.
        enable_phase_obs: append the clip phase (time / clip length, in [0, 1)).
        tar_obs_steps: control steps ahead of each reference frame in the observation.
        joint_err_w: pose and velocity error weight of the joint of each named body (default 1).
        reward: the reward's weights and scales.
        ref_char_offset: m, world offset at which the reference character is shown.
        domain_rand: domain randomisation (:mod:`mimickit.envs.domain_rand`); null: none.
        actuators: joint armature, friction and torque-speed limits by joint-name pattern
            (:mod:`mimickit.envs.actuators`); empty: the character file's.
        actor_obs: the actor's observation (:class:`mimickit.envs.char_env.CharEnv`):
            ``deployable`` (the robot's measurable terms, the phase and the reference joint
            rotations ``target<k>_joint_rot``) or a list of term names; null: the whole observation.
    """

    char_file: str
    motion_file: str
    key_bodies: List[str]
    contact_bodies: List[str]
    episode_length: float = 10.0
    rand_reset: bool = True
    enable_early_termination: bool = True
    pose_termination_dist: float = 1.0
    global_obs: bool = False
    enable_phase_obs: bool = True
    tar_obs_steps: List[int] = dataclasses.field(default_factory=lambda: [1, 2, 3])
    joint_err_w: Dict[str, float] = dataclasses.field(default_factory=dict)
    reward: DeepMimicRewardConfig = dataclasses.field(default_factory=DeepMimicRewardConfig)
    ref_char_offset: List[float] = dataclasses.field(default_factory=lambda: [0.0, 1.5, 0.0])
    domain_rand: Optional[DomainRandConfig] = None
    actuators: Dict[str, ActuatorConfig] = dataclasses.field(default_factory=dict)
    actor_obs: Union[str, List[str], None] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key on a value out of range."""
        check_key(self.episode_length > 0, source, "episode_length", self.episode_length, "> 0 (s)")
        check_key(self.pose_termination_dist > 0, source, "pose_termination_dist", self.pose_termination_dist,
                  "> 0 (m)")
        check_key(all(k >= 1 for k in self.tar_obs_steps), source, "tar_obs_steps", self.tar_obs_steps,
                  "control steps >= 1")
        check_key(all(w >= 0 for w in self.joint_err_w.values()), source, "joint_err_w", self.joint_err_w,
                  "weights >= 0")
        check_key(len(self.ref_char_offset) == 3, source, "ref_char_offset", self.ref_char_offset, "[x, y, z] (m)")


@register_env("deepmimic")
class DeepMimicEnv(CharEnv):
    """Motion tracking; see the module docstring.

    ``info`` of :meth:`step` holds ``tracking_errors``: a dict of ``[num_envs]`` per-step
    errors named as :data:`TRACKING_ERRORS` (m, rad, rad/s; body positions relative to
    each root).
    """

    def __init__(self, config: Dict[str, Any], config_file: str, engine_config_file: str,
                 num_envs: int, device: str, visualize: bool, video_file: Optional[str] = None):
        self.cfg = cfg = from_dict(DeepMimicEnvConfig, config, config_file)
        super().__init__(cfg.char_file, engine_config_file, num_envs, device, visualize, video_file,
                         episode_length=cfg.episode_length, show_reference=True, domain_rand=cfg.domain_rand,
                         config_file=config_file, actor_obs=cfg.actor_obs, actuators=cfg.actuators)
        kin = self.kin_char_model
        self.motion_lib = MotionLib(cfg.motion_file, kin, device)
        self._key_ids = self.body_ids(cfg.key_bodies, "key_bodies", config_file)
        self._fail_contact = self.fall_contact_mask(cfg.contact_bodies, config_file)
        self._joint_err_w, self._dof_err_w = self._joint_weights(cfg.joint_err_w, config_file)
        self._tar_steps = torch.tensor(cfg.tar_obs_steps, dtype=torch.float32, device=device)
        self._ref_offset = torch.tensor(cfg.ref_char_offset, dtype=torch.float32, device=device)

        self.motion_ids = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.motion_start = torch.zeros(num_envs, device=device)
        self._ref: Dict[str, Tensor] = {}
        self._joint_rot = self._joint_dof_vel = torch.zeros(0)
        self._read_state()
        self.check_actor_obs()

    def _joint_weights(self, weights: Dict[str, float], config_file: str):
        """``[num_joints]`` pose-error weights by body name (default 1) and ``[num_dofs]`` per dof."""
        kin = self.kin_char_model
        joint_w = torch.ones(kin.num_joints, device=self.device)
        for ids, w in zip(self.body_ids(list(weights), "joint_err_w", config_file).tolist(), weights.values()):
            joint_w[ids - 1] = w
        dof_w = torch.repeat_interleave(joint_w, kin.joint_num_dofs.to(self.device))
        return joint_w, dof_w

    # ----------------------------------------------------------------- episode
    def _reset_envs(self, env_ids: Tensor) -> None:
        motion_ids = self.motion_lib.sample_motions(len(env_ids)).to(self.device)
        if self.cfg.rand_reset:
            start = self.motion_lib.sample_time(motion_ids)
        else:
            start = torch.zeros(len(env_ids), device=self.device)
        self.motion_ids[env_ids] = motion_ids
        self.motion_start[env_ids] = start
        self.set_char_to_motion(self.motion_lib, env_ids, motion_ids, start)

    def _read_state(self) -> None:
        """Read the simulated state and look up the reference now and at the target steps.

        The simulated joint rotations and velocities are also converted to the reference's
        coordinates.
        """
        super()._read_state()
        s, kin = self.char_state, self.kin_char_model
        self._joint_rot = kin.dof_pos_to_joint_rot(s.dof_pos)
        self._joint_dof_vel = kin.dof_vel_to_joint_dof_vel(s.dof_pos, s.dof_vel)
        n, k = self.num_envs, len(self._tar_steps)
        dt = self.engine.control_dt
        times = self.motion_start + self.time
        all_times = torch.cat([times, (times.unsqueeze(-1) + dt * self._tar_steps).flatten()])
        all_ids = torch.cat([self.motion_ids, self.motion_ids.repeat_interleave(k)])
        root_pos, root_rot, root_vel, root_ang_vel, joint_rot, joint_dof_vel = \
            self.motion_lib.calc_motion_frame(all_ids, all_times)
        body_pos, body_rot = self.motion_lib.calc_body_frame(self.motion_ids, times)
        self._ref = dict(root_pos=root_pos[:n], root_rot=root_rot[:n], root_vel=root_vel[:n],
                         root_ang_vel=root_ang_vel[:n], joint_rot=joint_rot[:n],
                         joint_dof_vel=joint_dof_vel[:n], body_pos=body_pos, body_rot=body_rot,
                         tar_root_pos=root_pos[n:].reshape(n, k, 3), tar_root_rot=root_rot[n:].reshape(n, k, 4),
                         tar_joint_rot=joint_rot[n:].reshape((n, k) + joint_rot.shape[1:]))
        if self.ref_char_id is not None:
            self._show_reference(self.ref_char_id)

    def _show_reference(self, ref_char_id: int) -> None:
        r = self._ref
        dof_pos = self.kin_char_model.joint_rot_to_dof_pos(r["joint_rot"])
        env_ids = torch.arange(self.num_envs, device=self.device)
        zeros = torch.zeros_like(r["root_vel"])
        self.set_char_state(ref_char_id, env_ids, r["root_pos"] + self._ref_offset, r["root_rot"],
                            zeros, zeros, dof_pos, torch.zeros_like(dof_pos))

    # ----------------------------------------------------------------- obs, reward, done
    def _obs_terms(self) -> List[char_obs.ObsTerm]:
        """The observation's parts in order.

        ``root_height``, ``body_pos``, ``body_rot``, ``body_vel``, ``body_ang_vel``
        (:func:`mimickit.envs.char_obs.compute_body_obs`), ``phase`` (with
        ``enable_phase_obs``), then for each step ``k`` of ``tar_obs_steps``
        ``target<k>_root_pos``, ``target<k>_root_rot``, ``target<k>_joint_rot``
        (:func:`mimickit.envs.char_obs.compute_target_obs`).
        """
        s, r, cfg = self.char_state, self._ref, self.cfg
        terms = char_obs.body_obs_terms(s.root_pos, s.root_rot, s.body_pos, s.body_rot, s.body_vel, s.body_ang_vel,
                                        cfg.global_obs)
        if cfg.enable_phase_obs:
            length = self.motion_lib.get_motion_length(self.motion_ids)
            phase = torch.remainder(self.motion_start + self.time, length) / length
            terms.append(char_obs.ObsTerm("phase", phase.unsqueeze(-1), "1", "none"))
        k = len(self._tar_steps)
        if k > 0:
            n = self.num_envs
            tar = char_obs.target_obs_terms(
                s.root_pos.repeat_interleave(k, 0), s.root_rot.repeat_interleave(k, 0),
                r["tar_root_pos"].reshape(n * k, 3), r["tar_root_rot"].reshape(n * k, 4),
                r["tar_joint_rot"].reshape((n * k,) + r["tar_joint_rot"].shape[2:]), cfg.global_obs)
            for i, step in enumerate(self.cfg.tar_obs_steps):
                for t in tar:
                    terms.append(t._replace(name="target{}_{}".format(step, t.name),
                                            value=t.value.reshape(n, k, -1)[:, i]))
        return terms

    def _goal_obs_names(self) -> Sequence[str]:
        """The reference a robot can be given: ``phase`` and each ``target<k>_joint_rot`` (not its root)."""
        phase = ["phase"] if self.cfg.enable_phase_obs else []
        return phase + ["target{}_joint_rot".format(k) for k in self.cfg.tar_obs_steps]

    def _compute_reward(self) -> Tensor:
        s, r, w = self.char_state, self._ref, self.cfg.reward
        return (w.pose_w * deepmimic_rewards.pose_reward(self._joint_rot, r["joint_rot"], self._joint_err_w,
                                                          w.pose_scale)
                + w.vel_w * deepmimic_rewards.velocity_reward(self._joint_dof_vel, r["joint_dof_vel"],
                                                               self._dof_err_w, w.vel_scale)
                + w.root_pose_w * deepmimic_rewards.root_pose_reward(s.root_pos, r["root_pos"], s.root_rot,
                                                                      r["root_rot"], w.root_pose_scale)
                + w.root_vel_w * deepmimic_rewards.root_vel_reward(s.root_vel, r["root_vel"], s.root_ang_vel,
                                                                    r["root_ang_vel"], w.root_vel_scale)
                + w.key_pos_w * deepmimic_rewards.key_pos_reward(s.root_rel_body_pos()[:, self._key_ids],
                                                                  self._ref_root_rel_body_pos()[:, self._key_ids],
                                                                  w.key_pos_scale))

    def _ref_root_rel_body_pos(self) -> Tensor:
        """``[num_envs, num_bodies, 3]`` the reference's body positions minus its root position (m)."""
        return self._ref["body_pos"] - self._ref["root_pos"].unsqueeze(-2)

    def _compute_done(self) -> Tensor:
        done = super()._compute_done()
        if self.cfg.enable_early_termination:
            s, r = self.char_state, self._ref
            fell = (s.ground_contacts & self._fail_contact).any(dim=-1)
            pose_err = ((s.body_pos - r["body_pos"]) ** 2).sum(dim=-1).mean(dim=-1)
            diverged = pose_err > self.cfg.pose_termination_dist ** 2
            done[fell | diverged] = DoneFlags.FAIL
        return done

    def _step_info(self) -> Dict[str, Any]:
        return {"tracking_errors": self.tracking_errors()}

    def tracking_errors(self) -> Dict[str, Tensor]:
        """Per-env errors of the current state against the reference, ``[num_envs]`` each.

        root_pos_err_m: root position distance; root_rot_err_rad: root rotation angle;
        body_pos_err_m: mean over bodies of the distance between positions relative to each
        character's root; body_rot_err_rad: mean over bodies of the world rotation angle;
        key_pos_err_m: as body_pos_err_m over the key bodies; dof_vel_err_radps: mean
        absolute joint velocity error over dofs.
        """
        s, r = self.char_state, self._ref
        body_err = (s.root_rel_body_pos() - self._ref_root_rel_body_pos()).norm(dim=-1)
        return {
            "root_pos_err_m": (s.root_pos - r["root_pos"]).norm(dim=-1),
            "root_rot_err_rad": torch_util.quat_diff_angle(s.root_rot, r["root_rot"]),
            "body_pos_err_m": body_err.mean(dim=-1),
            "body_rot_err_rad": torch_util.quat_diff_angle(s.body_rot, r["body_rot"]).mean(dim=-1),
            "key_pos_err_m": body_err[:, self._key_ids].mean(dim=-1),
            "dof_vel_err_radps": (self._joint_dof_vel - r["joint_dof_vel"]).abs().mean(dim=-1),
        }

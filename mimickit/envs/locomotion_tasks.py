"""Locomotion tasks for AMP: follow a velocity command, steer, reach a location.

Each task draws goals per env, shows them to the policy in the root's **heading frame**
(world rotated by the root's yaw, Z-up), so observations do not change when the whole
scene turns about the vertical axis, and scores the state with a reward in [0, sum of
weights]. The rewards are pure functions of tensors (tested against hand computations);
the :class:`~mimickit.envs.tasks.Task` classes only hold and resample goals.

Goals on a timer are redrawn every ``resample_time`` s, counted in whole control steps
(``round(resample_time / control_dt)``, at least 1) per env, and on reset.

Sources:
- ``velocity_command``: the command-tracking rewards of legged_gym (Rudin et al. 2022,
  "Learning to Walk in Minutes Using Massively Parallel Deep RL", ``tracking_lin_vel`` /
  ``tracking_ang_vel``: exp(-err^2 / sigma)).
- ``steering``: the "Target Heading" task reward of AMP (Peng et al. 2021) plus the
  facing term of the steering ("heading") task of ASE (Peng et al. 2022).
- ``location``: the "Target Location" task reward of AMP (Peng et al. 2021).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List

import torch
from torch import Tensor

from mimickit.envs.char_obs import ObsTerm
from mimickit.envs.char_state import CharState
from mimickit.envs.tasks import Task, register_task
from mimickit.util import torch_util
from mimickit.util.config import from_dict
from mimickit.util.errors import MimicKitError


# ---------------------------------------------------------------------- pure functions
def to_heading_xy(root_rot: Tensor, vec_xy: Tensor) -> Tensor:
    """``[n, 2]``: horizontal world vectors ``vec_xy`` (``[n, 2]``) in the heading frame.

    The heading frame is that of ``root_rot`` (``[n, 4]``) turned about +z only.
    """
    vec = torch.cat([vec_xy, torch.zeros_like(vec_xy[:, :1])], dim=-1)
    return torch_util.quat_rotate(torch_util.calc_heading_quat_inv(root_rot), vec)[:, :2]


def angle_to_dir(angle: Tensor) -> Tensor:
    """``[n, 2]`` unit vectors (cos, sin) of yaw angles ``angle`` (``[n]`` rad, about +z from +x)."""
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)


def velocity_command_reward(lin_vel_xy: Tensor, ang_vel_z: Tensor, command: Tensor, lin_w: float,
                            lin_sigma: float, ang_w: float, ang_sigma: float) -> Tensor:
    """legged_gym command tracking (Rudin et al. 2022).

    ``lin_w * exp(-|v_xy - cmd_xy|^2 / lin_sigma) + ang_w * exp(-(w_z - cmd_wz)^2 / ang_sigma)``.

    Args:
        lin_vel_xy: ``[n, 2]`` m/s root velocity in the heading frame (forward, left).
        ang_vel_z: ``[n]`` rad/s root yaw rate.
        command: ``[n, 3]`` forward m/s, lateral m/s, yaw rate rad/s.
        lin_w: weight of the linear velocity term.
        lin_sigma: (m/s)^2.
        ang_w: weight of the yaw rate term.
        ang_sigma: (rad/s)^2.

    Returns:
        ``[n]``.
    """
    lin_err = torch.sum(torch.square(lin_vel_xy - command[:, :2]), dim=-1)
    ang_err = torch.square(ang_vel_z - command[:, 2])
    return lin_w * torch.exp(-lin_err / lin_sigma) + ang_w * torch.exp(-ang_err / ang_sigma)


def steering_reward(root_vel_xy: Tensor, facing_xy: Tensor, tar_dir: Tensor, tar_speed: Tensor,
                    tar_facing: Tensor, vel_w: float, facing_w: float, vel_scale: float) -> Tensor:
    """Steering: move along ``tar_dir`` at ``tar_speed`` while facing ``tar_facing``.

    ``vel_w * exp(-vel_scale * max(0, tar_speed - v·tar_dir)^2) + facing_w * max(0, facing·tar_facing)``:
    the velocity term is AMP's target-heading reward (Peng et al. 2021, "Target Heading": weight
    scale 0.25, no penalty for going faster than the target); the facing term is the
    cosine of the facing error clipped at 0, as in ASE's steering task (Peng et al. 2022;
    weights 0.7 / 0.3).

    Args:
        root_vel_xy: ``[n, 2]`` m/s horizontal root velocity (any frame shared with the directions).
        facing_xy: ``[n, 2]`` unit horizontal facing direction of the root (its heading).
        tar_dir: ``[n, 2]`` unit target travel direction.
        tar_speed: ``[n]`` m/s.
        tar_facing: ``[n, 2]`` unit target facing direction.
        vel_w: weight of the velocity term.
        facing_w: weight of the facing term.
        vel_scale: 1/(m/s)^2.

    Returns:
        ``[n]``.
    """
    speed_err = torch.clamp(tar_speed - torch.sum(root_vel_xy * tar_dir, dim=-1), min=0.0)
    facing = torch.clamp(torch.sum(facing_xy * tar_facing, dim=-1), min=0.0)
    return vel_w * torch.exp(-vel_scale * torch.square(speed_err)) + facing_w * facing


def location_reward(root_pos_xy: Tensor, root_vel_xy: Tensor, tar_pos_xy: Tensor, tar_speed: float,
                    pos_w: float, vel_w: float, pos_scale: float) -> Tensor:
    """AMP target location (Peng et al. 2021, task "Target Location").

    ``pos_w * exp(-pos_scale * |tar - root|^2) + vel_w * exp(-max(0, tar_speed - v·d)^2)``
    with ``d`` the unit horizontal direction from the root to the target (the velocity term
    is 1 where the root stands on the target, ``d`` being undefined there).

    Args:
        root_pos_xy: ``[n, 2]`` m, world.
        root_vel_xy: ``[n, 2]`` m/s, world.
        tar_pos_xy: ``[n, 2]`` m, world.
        tar_speed: m/s.
        pos_w: weight of the position term.
        vel_w: weight of the velocity term.
        pos_scale: 1/m^2.

    Returns:
        ``[n]``.
    """
    delta = tar_pos_xy - root_pos_xy
    dist_sq = torch.sum(torch.square(delta), dim=-1)
    dist = torch.sqrt(dist_sq)
    tar_dir = delta / torch.clamp(dist, min=1e-6).unsqueeze(-1)
    speed_err = torch.clamp(tar_speed - torch.sum(root_vel_xy * tar_dir, dim=-1), min=0.0)
    speed_err = torch.where(dist > 1e-6, speed_err, torch.zeros_like(speed_err))
    return pos_w * torch.exp(-pos_scale * dist_sq) + vel_w * torch.exp(-torch.square(speed_err))


# ---------------------------------------------------------------------- configs
def _check_range(values: List[float], source: str, key: str) -> None:
    if len(values) != 2 or values[0] > values[1]:
        raise MimicKitError("{}: key '{}': expected [low, high] with low <= high, got {}".format(
            source, key, values))


def _check_positive(value: float, source: str, key: str) -> None:
    if not value > 0.0:
        raise MimicKitError("{}: key '{}': expected a positive number, got {}".format(source, key, value))


def _angle_between(a: Tensor, b: Tensor) -> Tensor:
    """``[n]`` rad in [0, pi]: angle between the rows of ``a`` and ``b`` (``[n, 2]``); pi/2 for a zero row."""
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    angle = torch.abs(torch.atan2(cross, torch.sum(a * b, dim=-1)))
    nonzero = (torch.linalg.norm(a, dim=-1) > 0.0) & (torch.linalg.norm(b, dim=-1) > 0.0)
    return torch.where(nonzero, angle, torch.full_like(angle, 0.5 * math.pi))


def _uniform(low_high: List[float], n: int, device: str) -> Tensor:
    """``[n]`` uniform samples in ``[low, high]``."""
    low, high = low_high
    return low + (high - low) * torch.rand(n, device=device)


class _TimedGoalTask(Task):
    """A task whose goal is redrawn on reset and every ``resample_time`` s per env.

    Attributes:
        resample_steps: control steps between goals, ``round(resample_time / control_dt)``
            and at least 1.
        steps_left: ``[num_envs]`` long, control steps until the next goal.
    """

    def _init_timer(self, resample_time: float) -> None:
        """Set the goal period (s); subclasses call it once their config is read."""
        self.resample_steps = max(1, int(round(resample_time / self.control_dt)))
        self.steps_left = torch.full((self.num_envs,), self.resample_steps, dtype=torch.long, device=self.device)

    def _sample_goal(self, env_ids: Tensor) -> None:
        """Draw new goals for ``env_ids`` (``[k]`` long)."""
        raise NotImplementedError

    def _resample(self, env_ids: Tensor) -> None:
        self._sample_goal(env_ids)
        self.steps_left[env_ids] = self.resample_steps

    def reset(self, env_ids: Tensor, state: CharState) -> None:
        self._resample(env_ids)

    def update(self, state: CharState) -> None:
        self.steps_left -= 1
        self._resample(torch.nonzero(self.steps_left <= 0).flatten())


@dataclasses.dataclass
class VelocityCommandConfig:
    """``velocity_command`` keys.

    Attributes:
        lin_vel_x, lin_vel_y: [low, high] m/s forward / leftward command in the heading frame.
        ang_vel_z: [low, high] rad/s yaw-rate command.
        resample_time: s between commands.
        lin_w, ang_w: reward weights; lin_sigma (m/s)^2, ang_sigma (rad/s)^2: tolerances
            (legged_gym's defaults: weights 1.0 / 0.5, sigma 0.25).
    """

    lin_vel_x: List[float] = dataclasses.field(default_factory=lambda: [0.0, 1.5])
    lin_vel_y: List[float] = dataclasses.field(default_factory=lambda: [-0.5, 0.5])
    ang_vel_z: List[float] = dataclasses.field(default_factory=lambda: [-1.0, 1.0])
    resample_time: float = 5.0
    lin_w: float = 1.0
    lin_sigma: float = 0.25
    ang_w: float = 0.5
    ang_sigma: float = 0.25

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for a bad range or tolerance."""
        for key in ("lin_vel_x", "lin_vel_y", "ang_vel_z"):
            _check_range(getattr(self, key), source, key)
        for key in ("resample_time", "lin_sigma", "ang_sigma"):
            _check_positive(getattr(self, key), source, key)


@dataclasses.dataclass
class SteeringConfig:
    """``steering`` keys.

    Attributes:
        tar_speed: [low, high] m/s target speed along the target direction.
        facing_offset: [low, high] rad, the target facing is the travel direction turned by
            an offset drawn uniformly from this range about +z. ``[-pi, pi]`` (default) draws
            it independently of the travel direction, as ASE's steering task does (the clips
            need sideways and backward steps); ``[0, 0]`` faces where the character goes, as in
            AMP's "Target Heading" (forward-only clips such as walks and runs).
        resample_time: s between goals (direction, speed and facing redrawn, uniformly).
        first_goal_from_root_vel: an episode whose root starts moving at ``tar_speed[0]`` or
            faster (a reference-state start in a walk or a run) gets as first goal its own
            horizontal velocity: that direction, at that speed clipped to ``tar_speed``. The
            clips' gaits are then rewarded at their own speeds from the start, which the
            policy otherwise has to find by changing gait. Later goals are drawn as usual.
            Evaluate with it off.
        vel_w, facing_w: reward weights; vel_scale: 1/(m/s)^2 (AMP: 0.25).
    """

    tar_speed: List[float] = dataclasses.field(default_factory=lambda: [0.0, 3.0])
    facing_offset: List[float] = dataclasses.field(default_factory=lambda: [-math.pi, math.pi])
    resample_time: float = 5.0
    first_goal_from_root_vel: bool = False
    vel_w: float = 0.7
    facing_w: float = 0.3
    vel_scale: float = 0.25

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for a bad range or period."""
        _check_range(self.tar_speed, source, "tar_speed")
        _check_range(self.facing_offset, source, "facing_offset")
        _check_positive(self.resample_time, source, "resample_time")


@dataclasses.dataclass
class LocationConfig:
    """``location`` keys.

    Attributes:
        max_dist: m, targets are drawn uniformly on the disk of this radius about the root.
        reach_dist: m, a target this close to the root (horizontally) is replaced.
        tar_speed: m/s speed toward the target the velocity term asks for (AMP: 1).
        pos_w, vel_w: reward weights (AMP: 0.7 / 0.3); pos_scale: 1/m^2 (AMP: 0.5).
    """

    max_dist: float = 10.0
    reach_dist: float = 0.5
    tar_speed: float = 1.0
    pos_w: float = 0.7
    vel_w: float = 0.3
    pos_scale: float = 0.5

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key unless ``0 <= reach_dist < max_dist``."""
        _check_positive(self.max_dist, source, "max_dist")
        if not 0.0 <= self.reach_dist < self.max_dist:
            raise MimicKitError("{}: key 'reach_dist': expected 0 <= reach_dist < max_dist ({}), got {}".format(
                source, self.max_dist, self.reach_dist))


# ---------------------------------------------------------------------- tasks
@register_task("velocity_command")
class VelocityCommandTask(_TimedGoalTask):
    """Track a forward / lateral speed and yaw rate command in the heading frame (legged_gym).

    Attributes:
        command: ``[num_envs, 3]`` forward m/s, lateral m/s, yaw rate rad/s.
        steps_left: ``[num_envs]`` long, control steps until the next command.
    """

    DEPLOYABLE = True  # the goal is given in the heading frame, as an operator gives it

    def __init__(self, config: Dict[str, Any], config_file: str, num_envs: int, device: str, control_dt: float):
        super().__init__(config, config_file, num_envs, device, control_dt)
        self.cfg = from_dict(VelocityCommandConfig, config, "{} (task)".format(config_file))
        self._init_timer(self.cfg.resample_time)
        self.command = torch.zeros(num_envs, 3, device=device)

    def _sample_goal(self, env_ids: Tensor) -> None:
        n = len(env_ids)
        self.command[env_ids] = torch.stack([_uniform(self.cfg.lin_vel_x, n, self.device),
                                             _uniform(self.cfg.lin_vel_y, n, self.device),
                                             _uniform(self.cfg.ang_vel_z, n, self.device)], dim=-1)

    def obs_terms(self, state: CharState) -> List[ObsTerm]:
        """``command_lin_vel`` ``[num_envs, 2]`` m/s and ``command_ang_vel`` ``[num_envs, 1]`` rad/s, heading frame."""
        return [ObsTerm("command_lin_vel", self.command[:, :2].clone(), "m/s", "heading"),
                ObsTerm("command_ang_vel", self.command[:, 2:].clone(), "rad/s", "heading")]

    def reward(self, state: CharState) -> Tensor:
        """``[num_envs]`` :func:`velocity_command_reward` of the root's heading-frame velocity and yaw rate."""
        lin_vel = to_heading_xy(state.root_rot, state.root_vel[:, :2])
        c = self.cfg
        return velocity_command_reward(lin_vel, state.root_ang_vel[:, 2], self.command,
                                       c.lin_w, c.lin_sigma, c.ang_w, c.ang_sigma)

    def tracking_errors(self, state: CharState) -> Dict[str, Tensor]:
        """Command errors, ``[num_envs]`` each.

        ``cmd_lin_vel_err``: |v_xy - command_xy| (m/s, heading frame); ``cmd_ang_vel_err``:
        |w_z - command_wz| (rad/s).
        """
        lin_vel = to_heading_xy(state.root_rot, state.root_vel[:, :2])
        return {"cmd_lin_vel_err": torch.linalg.norm(lin_vel - self.command[:, :2], dim=-1),
                "cmd_ang_vel_err": torch.abs(state.root_ang_vel[:, 2] - self.command[:, 2])}


@register_task("steering")
class SteeringTask(_TimedGoalTask):
    """Travel along a target direction at a target speed while facing a target direction.

    AMP target heading + ASE facing; see :func:`steering_reward`.

    Attributes:
        tar_dir, tar_facing: ``[num_envs, 2]`` unit world horizontal directions.
        tar_speed: ``[num_envs]`` m/s.
        steps_left: ``[num_envs]`` long, control steps until the next goal.
    """

    DEPLOYABLE = True  # the goal is given in the heading frame, as an operator gives it

    def __init__(self, config: Dict[str, Any], config_file: str, num_envs: int, device: str, control_dt: float):
        super().__init__(config, config_file, num_envs, device, control_dt)
        self.cfg = from_dict(SteeringConfig, config, "{} (task)".format(config_file))
        self._init_timer(self.cfg.resample_time)
        self.tar_dir = angle_to_dir(torch.zeros(num_envs, device=device))
        self.tar_facing = self.tar_dir.clone()
        self.tar_speed = torch.zeros(num_envs, device=device)

    def _sample_goal(self, env_ids: Tensor) -> None:
        n = len(env_ids)
        self._set_goal(env_ids, _uniform([-math.pi, math.pi], n, self.device),
                       _uniform(self.cfg.tar_speed, n, self.device))

    def _set_goal(self, env_ids: Tensor, travel_angle: Tensor, speed: Tensor) -> None:
        """Travel along yaw ``travel_angle`` (``[k]`` rad) at ``speed`` (``[k]`` m/s).

        The target facing is the travel direction turned by an offset drawn from ``facing_offset``.
        """
        self.tar_dir[env_ids] = angle_to_dir(travel_angle)
        offset = _uniform(self.cfg.facing_offset, len(env_ids), self.device)
        self.tar_facing[env_ids] = angle_to_dir(travel_angle + offset)
        self.tar_speed[env_ids] = speed

    def reset(self, env_ids: Tensor, state: CharState) -> None:
        """New goals for ``env_ids``.

        With ``first_goal_from_root_vel``, a root already moving at ``tar_speed[0]`` or faster
        gets its own horizontal velocity (speed clipped to ``tar_speed``) as first goal.
        """
        super().reset(env_ids, state)
        if self.cfg.first_goal_from_root_vel:
            vel = state.root_vel[env_ids, :2]
            speed = torch.linalg.norm(vel, dim=-1)
            low, high = self.cfg.tar_speed
            moving = speed >= max(low, 1e-3)
            self._set_goal(env_ids[moving], torch.atan2(vel[moving, 1], vel[moving, 0]),
                           speed[moving].clamp(low, high))

    def obs_terms(self, state: CharState) -> List[ObsTerm]:
        """``tar_dir`` ``[num_envs, 2]``, ``tar_speed`` ``[num_envs, 1]`` m/s, ``tar_facing`` ``[num_envs, 2]``.

        The directions are unit vectors in the heading frame.
        """
        rot = state.root_rot
        return [ObsTerm("tar_dir", to_heading_xy(rot, self.tar_dir), "1", "heading"),
                ObsTerm("tar_speed", self.tar_speed.unsqueeze(-1).clone(), "m/s", "none"),
                ObsTerm("tar_facing", to_heading_xy(rot, self.tar_facing), "1", "heading")]

    def reward(self, state: CharState) -> Tensor:
        """``[num_envs]`` :func:`steering_reward` of the root's world velocity and heading."""
        facing = angle_to_dir(torch_util.calc_heading(state.root_rot))
        c = self.cfg
        return steering_reward(state.root_vel[:, :2], facing, self.tar_dir, self.tar_speed, self.tar_facing,
                               c.vel_w, c.facing_w, c.vel_scale)

    def tracking_errors(self, state: CharState) -> Dict[str, Tensor]:
        """Goal errors, ``[num_envs]`` each.

        ``tar_vel_err``: |v_xy - tar_speed * tar_dir| (m/s, world), split into its speed part
        ``tar_speed_err`` = ||v_xy| - tar_speed| (m/s) and its direction part ``tar_dir_err``, the
        angle between v_xy and tar_dir (rad; pi/2 where the root stands still); ``facing_err``:
        angle between the root's heading and the target facing (rad).
        """
        facing = angle_to_dir(torch_util.calc_heading(state.root_rot))
        vel = state.root_vel[:, :2]
        speed = torch.linalg.norm(vel, dim=-1)
        tar_vel = self.tar_speed.unsqueeze(-1) * self.tar_dir
        return {"tar_vel_err": torch.linalg.norm(vel - tar_vel, dim=-1),
                "tar_speed_err": torch.abs(speed - self.tar_speed),
                "tar_dir_err": _angle_between(vel, self.tar_dir),
                "facing_err": _angle_between(facing, self.tar_facing)}


@register_task("location")
class LocationTask(Task):
    """Walk to a target point on the ground (AMP target location; see :func:`location_reward`).

    Attributes:
        tar_pos: ``[num_envs, 2]`` m, world horizontal target position; redrawn on reset and
            once the root is within ``reach_dist`` of it.
    """

    def __init__(self, config: Dict[str, Any], config_file: str, num_envs: int, device: str, control_dt: float):
        super().__init__(config, config_file, num_envs, device, control_dt)
        self.cfg = from_dict(LocationConfig, config, "{} (task)".format(config_file))
        self.tar_pos = torch.zeros(num_envs, 2, device=device)

    def _resample(self, env_ids: Tensor, root_pos: Tensor) -> None:
        """New targets for ``env_ids`` (``[k]``) about their roots ``root_pos`` (``[k, 3]`` m).

        Uniform by area on the disk of radius ``max_dist``, outside radius ``reach_dist``.
        """
        n = len(env_ids)
        c = self.cfg
        # Area-uniform radius on the annulus [reach_dist, max_dist].
        u = torch.rand(n, device=self.device)
        radius = torch.sqrt(c.reach_dist ** 2 + u * (c.max_dist ** 2 - c.reach_dist ** 2))
        angle = _uniform([-math.pi, math.pi], n, self.device)
        self.tar_pos[env_ids] = root_pos[:, :2] + radius.unsqueeze(-1) * angle_to_dir(angle)

    def reset(self, env_ids: Tensor, state: CharState) -> None:
        """New targets for ``env_ids`` about their roots."""
        self._resample(env_ids, state.root_pos[env_ids])

    def update(self, state: CharState) -> None:
        """Replace the targets the roots have come within ``reach_dist`` of."""
        dist = torch.linalg.norm(self.tar_pos - state.root_pos[:, :2], dim=-1)
        reached = torch.nonzero(dist < self.cfg.reach_dist).flatten()
        self._resample(reached, state.root_pos[reached])

    def obs_terms(self, state: CharState) -> List[ObsTerm]:
        """``tar_pos`` ``[num_envs, 2]`` m, the target relative to the root in the heading frame."""
        local = to_heading_xy(state.root_rot, self.tar_pos - state.root_pos[:, :2])
        return [ObsTerm("tar_pos", local, "m", "heading")]

    def tracking_errors(self, state: CharState) -> Dict[str, Tensor]:
        """``tar_dist``: horizontal distance from the root to the target (m)."""
        return {"tar_dist": torch.linalg.norm(self.tar_pos - state.root_pos[:, :2], dim=-1)}

    def reward(self, state: CharState) -> Tensor:
        """``[num_envs]`` :func:`location_reward` of the root's world position and velocity."""
        c = self.cfg
        return location_reward(state.root_pos[:, :2], state.root_vel[:, :2], self.tar_pos, c.tar_speed,
                               c.pos_w, c.vel_w, c.pos_scale)

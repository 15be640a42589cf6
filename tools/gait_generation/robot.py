"""Gait-generation settings of one robot (a YAML under ``tools/gait_generation/robots/``).

The YAML names the robot's MJCF (the one description of the robot), its trunk and foot
bodies, placo's walk parameters (AWD's names), the step sizes of each speed, the joints
held still while walking, and the clips shipped in the repository. Each clip name is
``<direction>_<speed>`` (e.g. ``walk_forward_medium``, ``turn_left_slow``) or ``idle``.

This module needs numpy and MuJoCo only, not placo.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import mujoco
import numpy as np

from mimickit.util.config import load_config
from mimickit.util.errors import MimicKitError

GAIT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(GAIT_DIR))
ROBOTS_DIR = os.path.join(GAIT_DIR, "robots")

# Each direction: the per-step command it takes from a speed, as (dx, dy, dtheta) factors
# of (forward or backward step, lateral step, turn step).
DIRECTIONS = {
    "walk_forward": ("forward", 1.0, 0.0, 0.0),
    "walk_backward": ("backward", -1.0, 0.0, 0.0),
    "walk_left": ("lateral", 0.0, 1.0, 0.0),
    "walk_right": ("lateral", 0.0, -1.0, 0.0),
    "turn_left": ("turn", 0.0, 0.0, 1.0),
    "turn_right": ("turn", 0.0, 0.0, -1.0),
}
IDLE = "idle"


@dataclasses.dataclass
class WalkParams:
    """placo's ``HumanoidParameters`` (AWD's names). Units: s, m, rad.

    ``feet_spacing``, ``foot_length`` and ``foot_width`` default to the MJCF's (the lateral
    distance between the soles at rest, the sole box's length and width).
    """

    single_support_duration: float
    single_support_timesteps: int
    double_support_ratio: float
    startend_double_support_ratio: float
    planned_timesteps: int
    replan_timesteps: int
    walk_com_height: float
    walk_foot_height: float
    walk_trunk_pitch: float
    walk_foot_rise_ratio: float
    zmp_margin: float = 0.02
    foot_zmp_target_x: float = 0.0
    foot_zmp_target_y: float = 0.0
    feet_spacing: Optional[float] = None
    foot_length: Optional[float] = None
    foot_width: Optional[float] = None

    def validate(self, source: str) -> None:
        if self.single_support_duration <= 0 or self.single_support_timesteps < 1:
            raise MimicKitError("{}: walk.single_support_duration must be > 0 s and "
                                "walk.single_support_timesteps >= 1".format(source))
        if self.double_support_ratio < 0 or self.startend_double_support_ratio < 0:
            raise MimicKitError("{}: walk double-support ratios must be >= 0".format(source))
        if self.walk_com_height <= 0 or self.walk_foot_height <= 0:
            raise MimicKitError("{}: walk.walk_com_height and walk.walk_foot_height must be > 0 m".format(source))
        if not 0.0 <= self.walk_foot_rise_ratio < 0.5:
            raise MimicKitError("{}: walk.walk_foot_rise_ratio must be in [0, 0.5), got {}".format(
                source, self.walk_foot_rise_ratio))

    def step_duration(self) -> float:
        """One step (s): single support plus double support, the latter rounded up to whole
        planning timesteps as placo does."""
        dt = self.single_support_duration / self.single_support_timesteps
        ds_steps = int(np.ceil(self.double_support_ratio * self.single_support_timesteps - 1e-9))
        return self.single_support_duration + ds_steps * dt


@dataclasses.dataclass
class Speed:
    """Step sizes of one speed: m per step forward/backward/sideways, rad per step turning.

    ``single_support_duration`` (s), if given, replaces the walk's for this speed.
    """

    forward: float
    backward: float
    lateral: float
    turn: float
    single_support_duration: Optional[float] = None


@dataclasses.dataclass
class ArmSwing:
    """Arm swing added to the walk, opposite to the legs: each shoulder's flexion dof moves
    by ``gain`` rad per m that the other foot is ahead of this side's foot (heading frame);
    each elbow bends by ``elbow_bend`` rad plus ``elbow_follow`` times its shoulder's swing."""

    left_shoulder: str
    right_shoulder: str
    left_elbow: str
    right_elbow: str
    gain: float
    elbow_bend: float = 0.0
    elbow_follow: float = 0.0


@dataclasses.dataclass
class IdleParams:
    """Standing clip: ``duration`` s (one sway cycle), lateral CoM sway amplitude ``sway`` m
    and vertical bob ``bob`` m (two bobs per sway)."""

    duration: float = 4.0
    sway: float = 0.01
    bob: float = 0.002


@dataclasses.dataclass
class QualityThresholds:
    """Pass limits of :mod:`tools.gait_generation.quality` (m, rad, m/s, rad/s).

    max_slip: horizontal drift of a standing foot; max_penetration: depth of any geom below
    the ground; limit_tol: excursion beyond a joint range; max_seam_jump: difference of the
    root-relative pose between the last and first frame of a wrap clip; velocity_tol: the
    mean root velocity's error relative to the command, at least ``linear_floor`` m/s and
    ``angular_floor`` rad/s; contact_height: a sole this close to the ground stands.
    For clips with a ``foot_contacts`` extra (the generator's stance schedule):
    max_stance_height: a scheduled stance sole's largest height above (or depth below) the
    ground; min_swing_clearance: the least apex height of a scheduled swing (0: unchecked).
    """

    max_slip: float = 0.01
    max_penetration: float = 0.01
    limit_tol: float = 1e-3
    max_seam_jump: float = 0.005
    velocity_tol: float = 0.10
    linear_floor: float = 0.01
    angular_floor: float = 0.02
    contact_height: float = 0.005
    max_stance_height: float = 0.005
    min_swing_clearance: float = 0.0


@dataclasses.dataclass
class RobotConfig:
    """One robot's gait-generation settings; paths are relative to the repository root.

    Attributes:
        char_file: the MJCF.
        trunk_body: the body placo keeps at ``walk_trunk_pitch`` (a frame ``trunk`` is added
            at its origin).
        left_foot_body, right_foot_body: foot bodies; the sole frame (``left_foot``,
            ``right_foot`` for placo) is the centre of the bottom face of the body's geoms.
        fps: nominal frame rate (Hz); a clip's rate is adjusted so a gait cycle has a whole
            number of frames.
        ik_substeps: IK solves per frame.
        warmup_steps: steps walked before the recorded cycle (reaching the steady state).
        cycles: gait cycles (two steps each) per walk clip.
        hold_joints: joints held at these angles (rad) while walking; the IK moves the others.
        posture: joints pulled softly towards these angles (rad), with weight
            ``posture_weight`` against placo's walk tasks: it settles the legs' redundant
            twist (a 7-dof leg), which would otherwise drift from cycle to cycle.
        initial_joints: the IK's starting guess (rad) for the standing pose, e.g. bent knees.
        foot_orientation_axes: the axes (of ``x``, ``y``, ``z``, in the foot frame) about
            which the IK holds each foot's orientation; a leg without ankle roll leaves
            ``x`` free (``yz``), as AWD does for its duckling.
        quality: pass limits of the quality checks.
        generator: ``placo_biped`` (how ``generate.py`` makes this robot's clips).
        shipped: clips written by ``--preset all``.
        out_dir: where clips go by default; dataset_file: the dataset YAML written for ``all``.
    """

    char_file: str
    trunk_body: str
    left_foot_body: str
    right_foot_body: str
    walk: WalkParams
    speeds: Dict[str, Speed]
    shipped: List[str]
    out_dir: str
    dataset_file: str
    fps: float = 50.0
    ik_substeps: int = 5
    warmup_steps: int = 8
    cycles: int = 1
    hold_joints: Dict[str, float] = dataclasses.field(default_factory=dict)
    posture: Dict[str, float] = dataclasses.field(default_factory=dict)
    posture_weight: float = 1e-3
    initial_joints: Dict[str, float] = dataclasses.field(default_factory=dict)
    foot_orientation_axes: str = "xyz"
    quality: QualityThresholds = dataclasses.field(default_factory=QualityThresholds)
    arm_swing: Optional[ArmSwing] = None
    idle: IdleParams = dataclasses.field(default_factory=IdleParams)
    generator: str = "placo_biped"

    def validate(self, source: str) -> None:
        if self.generator != "placo_biped":
            raise MimicKitError("{}: key 'generator' must be 'placo_biped' for these settings, got '{}'".format(
                source, self.generator))
        if not self.speeds:
            raise MimicKitError("{}: 'speeds' is empty; expected at least one speed".format(source))
        if self.fps <= 0 or self.ik_substeps < 1 or self.cycles < 1 or self.warmup_steps < 2:
            raise MimicKitError("{}: expected fps > 0, ik_substeps >= 1, cycles >= 1 and "
                                "warmup_steps >= 2".format(source))
        for name in self.shipped:
            parse_clip_name(name, self, source)
        if not self.foot_orientation_axes or set(self.foot_orientation_axes) - set("xyz"):
            raise MimicKitError("{}: foot_orientation_axes must be letters of xyz, got '{}'".format(
                source, self.foot_orientation_axes))

    def clip_names(self) -> List[str]:
        """Every direction x speed, then ``idle``."""
        return ["{}_{}".format(d, s) for d in DIRECTIONS for s in self.speeds] + [IDLE]

    def path(self, relative: str) -> str:
        """``relative`` resolved against the repository root."""
        return relative if os.path.isabs(relative) else os.path.join(REPO_ROOT, relative)


def parse_clip_name(name: str, config: RobotConfig, source: str = "clip") -> Optional[Tuple[str, str]]:
    """``(direction, speed)`` of a clip name ``<direction>_<speed>``, or None for ``idle``.

    Raises:
        MimicKitError: if the direction or speed is unknown (listing the known ones).
    """
    if name == IDLE:
        return None
    for direction in DIRECTIONS:
        if name.startswith(direction + "_") and name[len(direction) + 1:] in config.speeds:
            return direction, name[len(direction) + 1:]
    raise MimicKitError("{}: unknown clip '{}'; expected idle or <direction>_<speed> with direction in {} "
                        "and speed in {}".format(source, name, ", ".join(DIRECTIONS), ", ".join(config.speeds)))


def step_command(config: RobotConfig, direction: str, speed: str) -> Tuple[float, float, float]:
    """Per-step displacement ``(dx m, dy m, dtheta rad)`` in the heading frame of a clip."""
    key, fx, fy, ftheta = DIRECTIONS[direction]
    size = getattr(config.speeds[speed], key)
    return fx * size, fy * size, ftheta * size


def robot_config_path(robot: str) -> str:
    """The settings file of ``robot`` (``tools/gait_generation/robots/<robot>.yaml``)."""
    return os.path.join(ROBOTS_DIR, robot + ".yaml")


def available_robots() -> List[str]:
    """Robots with a settings file."""
    return sorted(f[:-5] for f in os.listdir(ROBOTS_DIR) if f.endswith(".yaml"))


def load_robot_config(robot: str) -> RobotConfig:
    """Read ``robots/<robot>.yaml`` (or a YAML path).

    Raises:
        MimicKitError: for an unknown robot (listing the known ones) or a bad key.
    """
    path = robot if robot.endswith((".yaml", ".yml")) else robot_config_path(robot)
    if not os.path.isfile(path):
        raise MimicKitError("unknown robot '{}' (no {}); known robots: {}".format(
            robot, path, ", ".join(available_robots())))
    return load_config(RobotConfig, path)


@dataclasses.dataclass
class Sole:
    """A foot's sole in its body frame: ``center`` [3] m (bottom face centre), ``length``
    (along x) and ``width`` (along y) in m. A sphere foot (``radius`` > 0 m) touches the
    ground ``radius`` below its centre whatever its orientation: ``center`` is then the
    sphere's centre and the sole point is ``radius`` below it along the world's z."""

    center: np.ndarray
    length: float
    width: float
    radius: float = 0.0


def body_geom_ids(model: mujoco.MjModel, body: int) -> List[int]:
    """Geom ids of MuJoCo body ``body``."""
    start, count = model.body_geomadr[body], model.body_geomnum[body]
    return list(range(start, start + count)) if start >= 0 else []


def foot_sole(model: mujoco.MjModel, body_name: str) -> Sole:
    """The sole of ``body_name``: the bottom of the bounding box of its geoms, in the body frame.

    Uses each geom's axis-aligned box (``geom_aabb``) rotated into the body frame, so it is
    exact for box feet; a foot that is one sphere gets its centre and radius (see
    :class:`Sole`). Raises MimicKitError if the body is missing or has no geoms.
    """
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body_name)
    if body < 0:
        raise MimicKitError("no foot body '{}' in the character".format(body_name))
    corners = []
    for g in body_geom_ids(model, body):
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, model.geom_quat[g])
        center, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
        signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
        corners.append(model.geom_pos[g] + (center + signs * half) @ mat.reshape(3, 3).T)
    if not corners:
        raise MimicKitError("foot body '{}' has no geoms".format(body_name))
    geoms = body_geom_ids(model, body)
    if len(geoms) == 1 and model.geom_type[geoms[0]] == mujoco.mjtGeom.mjGEOM_SPHERE:
        radius = float(model.geom_size[geoms[0], 0])
        return Sole(center=model.geom_pos[geoms[0]].copy(), length=2 * radius, width=2 * radius, radius=radius)
    pts = np.concatenate(corners)
    low, high = pts.min(0), pts.max(0)
    center = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    return Sole(center=center, length=float(high[0] - low[0]), width=float(high[1] - low[1]))

"""Contact cleanup by inverse kinematics: stance feet on the floor, without sliding.

Mocap retargeted onto another body often leaves a stance foot sinking into the floor or
hovering over it, and sliding while it should be planted; no root-height shift repairs
that, since the two feet need different corrections. :func:`fix_contacts` does what
retargeting pipelines do:

1. Stances per foot come from :func:`tools.motion_import.ground.stance_contacts` (the
   foot body's origin slower than ``contact_speed``), on the frames where the character is
   upright (:func:`upright_frames`: a clip lying on the ground is not standing on its feet,
   and is left as captured). The floor is the height that the stance feet's lowest points
   deviate least from (the middle of their range).
2. Each stance gets a target pose for its foot. The foot's tilt is removed where it is
   small (the sole lies flat on the floor) and reduced by a constant where it is large
   (heel strike, heel off), never changing faster than the captured tilt
   (:func:`kept_tilt`); its heading is kept. Its lowest point is put on the floor, and its
   horizontal position rolls on its contact point without slipping from frame to frame (a
   flat foot stays put, turning about its sole's centre; a tilted one pivots on its heel
   or toes), anchored so that the foot's mean position over the stance is the captured one.
3. The change to the foot's pose at a stance's first and last frame is blended in and
   out over ``blend_time`` around it; a swing foot is lifted where it would go below the
   floor, and so is every other body (a hand or the back on the ground): its position
   target is raised by its depth below the floor (:func:`body_lifts`), with the feet's weight.
4. Every frame whose targets differ from the clip is solved by differential inverse
   kinematics with mink (https://github.com/kevinzakka/mink) on the character's MJCF:
   frame tasks on the feet (high weight), the root pose and the other bodies' positions
   (moderate weight, the clip's own), a posture task on every hinge (the clip's angles),
   and joint ranges widened to whatever the clip itself reaches. Frames are solved
   independently from the clip's pose, so the result is deterministic; a frame where a
   body still lies more than 1 mm below the floor is solved again with its lift raised by
   that depth (:data:`LIFT_ROUNDS` times at most).

The hinge angles found are turned into the clip's joint dofs through the rotation
(:meth:`KinCharModel.dof_pos_to_joint_dof`) and the root through the free joint's
quaternion. Heights are world z (m, Z-up). mink is optional (``pip install mink``).
"""
from __future__ import annotations

import copy
import dataclasses
import math
import types
from typing import List, Optional, Sequence, Tuple

import mujoco
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

from tools.motion_import.ground import FootGeometry, body_geoms, geom_lowest_points, stance_contacts

CONTACT_FIX_MODES = ("auto", "on", "off")
MINK_INSTALL = "pip install mink"  # or pip install -e .[retarget]
# A foot tilted less than this counts as level when finding where it touches the floor.
LEVEL_TILT_DEG = 1.0
# m: a body this far below the floor after the inverse kinematics is solved again, ...
LIFT_RESIDUAL = 0.001
# ... at most this many more times (the IK meets about half of a lift each time).
LIFT_ROUNDS = 8


@dataclasses.dataclass(frozen=True)
class ContactFixSettings:
    """Thresholds and weights of :func:`fix_contacts`; lengths in m, speeds in m/s, times in
    s, angles in degrees, costs per m (positions) and per rad (angles).

    Attributes:
        contact_speed: a foot whose origin moves slower than this is in a stance ...
        min_stance_time: ... when it stays that slow this long (and at least 2 frames).
        height_tol: 'auto' fixes a clip when its stance feet's lowest points are not all
            within this of one floor height ...
        slip_tol: ... or a stance foot's contact point slides further than this over one
            stance (horizontally; rolling over the heel or toes and turning about the
            sole's centre are not sliding).
        blend_time: the foot corrections fade in before a stance and out after it over this.
        flat_tilt_deg: a stance foot tilted less than this from its rest orientation is
            laid flat ...
        tilt_ramp_deg: ... one tilted more than ``flat_tilt_deg + tilt_ramp_deg`` (heel
            strike, heel off) keeps its tilt less ``flat_tilt_deg + tilt_ramp_deg / 2``,
            smoothly in between (:func:`kept_tilt`).
        foot_position_cost, foot_orientation_cost: weights of the feet's target poses.
        root_position_cost, root_orientation_cost: weights of the root staying as captured.
        body_position_cost: weight of each other body staying where it was captured.
        posture_cost: weight of each hinge angle staying as captured.
        max_iterations: inverse kinematics steps per frame at most ...
        step_tol: ... stopping once a step is shorter than this (norm over the dofs, m and rad).
        upright_tilt_deg: a foot is in a stance only on frames where the root's up axis is
            within this of world z: a character lying, sitting back or on its hands is not
            standing on its feet, and its feet are left as captured.
        penetration_tol: 'auto' also fixes a clip when a body other than the feet goes this
            far below the stance floor (a hand on the ground); every body below the floor is
            then lifted onto it.
    """
    contact_speed: float = 0.5
    min_stance_time: float = 0.03
    height_tol: float = 0.015
    slip_tol: float = 0.02
    blend_time: float = 0.1
    flat_tilt_deg: float = 10.0
    tilt_ramp_deg: float = 10.0
    foot_position_cost: float = 50.0
    foot_orientation_cost: float = 10.0
    root_position_cost: float = 2.0
    root_orientation_cost: float = 1.0
    body_position_cost: float = 1.0
    posture_cost: float = 0.3
    max_iterations: int = 20
    step_tol: float = 1e-5
    upright_tilt_deg: float = 60.0
    penetration_tol: float = 0.005


@dataclasses.dataclass
class ContactStats:
    """How well a clip's stance feet keep to the floor.

    Attributes:
        num_stances: stances over all feet.
        floor: m, world z halfway between the lowest and highest stance-foot lowest point.
        height_dev: m, half that range: how far the lowest point of a stance foot gets
            from ``floor`` (0 without stances).
        max_slip: m, the largest horizontal distance a stance foot's contact point (the
            material point of the foot touching the floor, the sole's centre when the
            foot is level within :data:`LEVEL_TILT_DEG`) travels over one stance.
    """
    num_stances: int
    floor: float
    height_dev: float
    max_slip: float

    def describe(self) -> str:
        """One line: stances, stance height band, slip."""
        return "{} stances, stance feet within +-{:.1f} cm of one height, slip up to {:.1f} cm".format(
            self.num_stances, 100.0 * self.height_dev, 100.0 * self.max_slip)


@dataclasses.dataclass
class ContactFixResult:
    """What :func:`fix_contacts` did.

    Attributes:
        frames: ``[T, 6 + num_dofs]`` the fixed clip (a new array), or the input frames.
        applied: whether the frames were changed.
        before: the input's stance statistics; None when the fix is off.
        after: the output's, over the same stances; None when not applied.
        in_stance: ``[T, num_feet]`` bool, the stances found (None when off).
        max_dof_change: rad, largest change of a hinge angle (0 when not applied).
        max_body_shift: m, largest displacement of a body other than the feet.
        num_solved: frames solved by inverse kinematics.
        note: one line for the user.
    """
    frames: np.ndarray
    applied: bool
    before: Optional[ContactStats]
    after: Optional[ContactStats]
    in_stance: Optional[np.ndarray]
    max_dof_change: float
    max_body_shift: float
    num_solved: int
    note: str


def import_mink() -> Optional[types.ModuleType]:
    """The ``mink`` module, or None when it is not installed."""
    try:
        import mink
    except ImportError:
        return None
    return mink


# ---------------------------------------------------------------- geometry helpers
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """``[start, end)`` of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


class _FootShape:
    """The lowest point of one foot's geoms relative to the foot body's origin, for any
    orientation of the foot (world frame, m), through :func:`geom_lowest_points`."""

    def __init__(self, model: mujoco.MjModel, geoms: Sequence[int]):
        self.model = model
        self.geoms = list(geoms)
        self.local_pos = model.geom_pos[self.geoms].copy()
        self.local_mat = np.empty((len(self.geoms), 3, 3))
        for i, g in enumerate(self.geoms):
            mat = np.empty(9)
            mujoco.mju_quat2Mat(mat, model.geom_quat[g])
            self.local_mat[i] = mat.reshape(3, 3)
        self._placed = types.SimpleNamespace(geom_xpos=np.zeros((model.ngeom, 3)),
                                             geom_xmat=np.zeros((model.ngeom, 9)))

    def lowest_offset(self, rot: np.ndarray) -> np.ndarray:
        """``[3]`` m: the lowest geom point minus the body origin for body rotation ``rot`` ``[3, 3]``."""
        self._placed.geom_xpos[self.geoms] = self.local_pos @ rot.T
        self._placed.geom_xmat[self.geoms] = (rot @ self.local_mat).reshape(len(self.geoms), 9)
        points = geom_lowest_points(self.model, self._placed, self.geoms)
        return points[np.argmin(points[:, 2])]


def _rest_rotations(feet: FootGeometry) -> np.ndarray:
    """``[num_feet, 3, 3]`` each foot body's world rotation in the rest pose (``qpos0``)."""
    data = mujoco.MjData(feet.model)
    mujoco.mj_kinematics(feet.model, data)
    return np.stack([data.xmat[b].reshape(3, 3) for b in feet.foot_body_ids])


def kept_tilt(tilt: float, flat_tilt: float, tilt_ramp: float) -> float:
    """How much of a foot's tilt ``tilt`` (rad) a stance keeps (rad): none below
    ``flat_tilt``, the tilt less ``flat_tilt + tilt_ramp / 2`` above ``flat_tilt + tilt_ramp``,
    and a quadratic joining them in between, so the kept tilt never changes faster than
    the tilt itself."""
    if tilt <= flat_tilt:
        return 0.0
    if tilt >= flat_tilt + tilt_ramp:
        return tilt - flat_tilt - 0.5 * tilt_ramp
    return (tilt - flat_tilt) ** 2 / (2.0 * max(tilt_ramp, 1e-12))


def flatten_tilt(rot: np.ndarray, rest_rot: np.ndarray, flat_tilt_deg: float, tilt_ramp_deg: float) -> np.ndarray:
    """Reduce a foot's tilt by :func:`kept_tilt`, keeping its heading.

    ``rot`` ``[3, 3]`` is the foot body's world rotation and ``rest_rot`` ``[3, 3]`` its
    rotation standing at rest. The foot's rotation away from rest, ``rot @ rest_rot.T``, is
    split into a turn about world z (the heading) followed by a tilt (the shortest turn
    taking world z to the rest up axis's new direction); the tilt is scaled down about the
    same axis. A fully flat result is built exactly (``Rz(heading) @ rest_rot``), so a
    level sole stays exactly level. Returns ``[3, 3]``.
    """
    rel = rot @ rest_rot.T
    up = rel[:, 2]
    tilt = math.acos(float(np.clip(up[2], -1.0, 1.0)))
    axis = np.cross(up, [0.0, 0.0, 1.0])
    norm = float(np.linalg.norm(axis))
    axis = axis / norm if norm > 1e-12 else np.array([1.0, 0.0, 0.0])
    heading = Rotation.from_rotvec(axis * tilt).as_matrix() @ rel  # a turn about world z
    yaw = math.atan2(heading[1, 0], heading[0, 0])
    c, s = math.cos(yaw), math.sin(yaw)
    level = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ rest_rot
    kept = kept_tilt(tilt, math.radians(flat_tilt_deg), math.radians(tilt_ramp_deg))
    if kept == 0.0:
        return level
    return Rotation.from_rotvec(-axis * kept).as_matrix() @ level


# ---------------------------------------------------------------- measuring
def upright_frames(frames: np.ndarray, max_tilt_deg: float) -> np.ndarray:
    """``[T]`` bool: frames (native, ``[T, 6 + num_dofs]``) whose root up axis (its local z,
    world z at rest) is within ``max_tilt_deg`` of world z."""
    rot = Rotation.from_rotvec(np.asarray(frames, dtype=np.float64)[:, 3:6])
    return rot.apply([0.0, 0.0, 1.0])[:, 2] > math.cos(math.radians(max_tilt_deg))


def other_bodies(feet: FootGeometry) -> Optional[FootGeometry]:
    """The geometry of the character's bodies with geoms other than the feet (the root
    included), in body order; None when there are none."""
    names = [n for b, n in enumerate(feet.char.body_names)
             if n not in feet.foot_bodies and body_geoms(feet.model, b + 1)]
    return FootGeometry(feet.char, names) if names else None


def body_lifts(bodies: FootGeometry, frames: np.ndarray, floor: float) -> np.ndarray:
    """``[T, len(bodies.foot_bodies)]`` m: how far each body's lowest point lies below the
    floor ``z = floor`` in native clip frames ``[T, 6 + num_dofs]`` (0 above it)."""
    lowest = bodies.foot_points_from_frames(frames)[0][..., 2]
    return np.maximum(floor - lowest, 0.0)


def _foot_rotations(feet: FootGeometry, frames: np.ndarray) -> np.ndarray:
    """``[T, num_feet, 3, 3]`` world rotation of each foot body."""
    _, body_rot = _body_poses(feet, frames)
    ids = [feet.char.get_body_id(n) for n in feet.foot_bodies]
    return body_rot[:, ids]


def _body_poses(feet: FootGeometry, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """World positions ``[T, num_bodies, 3]`` (m) and rotation matrices ``[T, num_bodies, 3, 3]``."""
    f = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    pos, rot = feet.char.forward_kinematics(f[:, :3], torch_util.exp_map_to_quat(f[:, 3:6]),
                                            feet.char.joint_dof_to_joint_rot(f[:, 6:]))
    return pos.numpy(), torch_util.quat_to_matrix(rot).numpy()


def _contact_point(shape: _FootShape, rest_rot: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``[3]`` m, in the foot body's frame: where a foot with world rotation ``rot`` ``[3, 3]``
    touches a level floor, a tilt under :data:`LEVEL_TILT_DEG` counting as level (a level
    sole touches at its centre)."""
    snapped = flatten_tilt(rot, rest_rot, LEVEL_TILT_DEG, 0.0)
    return snapped.T @ shape.lowest_offset(snapped)


def _stance_slip(shape: _FootShape, rest_rot: np.ndarray, origin: np.ndarray, rot: np.ndarray, start: int,
                 end: int) -> float:
    """Horizontal travel (m) over frames ``[start, end)`` of a foot's contact point.

    Each step follows the material point of the foot that touches the floor at the step's
    first frame (:func:`_contact_point`), so a foot rolling over its heel or toes, or
    turning about its sole's centre, does not slip. origin: ``[T, 3]`` m and rot:
    ``[T, 3, 3]``, the foot body's world pose.
    """
    travel = 0.0
    for t in range(start, end - 1):
        local = _contact_point(shape, rest_rot, rot[t])
        moved = origin[t + 1] + rot[t + 1] @ local - (origin[t] + rot[t] @ local)
        travel += float(np.linalg.norm(moved[:2]))
    return travel


def measure_contacts(feet: FootGeometry, frames: np.ndarray, in_stance: np.ndarray) -> ContactStats:
    """Stance statistics of native clip frames ``[T, 6 + num_dofs]`` for the stances
    ``in_stance`` ``[T, num_feet]`` (bool); see :class:`ContactStats`."""
    lowest, origin = feet.foot_points_from_frames(frames)
    rot = _foot_rotations(feet, frames)
    rest = _rest_rotations(feet)
    heights = lowest[..., 2][in_stance]
    slips = []
    for f in range(in_stance.shape[1]):
        stances = _runs(in_stance[:, f])
        if stances:
            shape = _FootShape(feet.model, feet.foot_geoms[f])
            slips += [_stance_slip(shape, rest[f], origin[:, f], rot[:, f], a, e) for a, e in stances]
    if heights.size == 0:
        return ContactStats(num_stances=0, floor=0.0, height_dev=0.0, max_slip=0.0)
    return ContactStats(num_stances=len(slips), floor=0.5 * float(heights.max() + heights.min()),
                        height_dev=0.5 * float(np.ptp(heights)), max_slip=max(slips))


# ---------------------------------------------------------------- foot targets
@dataclasses.dataclass
class FootTargets:
    """Target poses of the feet for every frame.

    Attributes:
        pos: ``[T, num_feet, 3]`` m, the foot bodies' origins (world).
        rot: ``[T, num_feet, 3, 3]`` their world rotations.
        changed: ``[T]`` bool, frames where some foot's target differs from the clip.
    """
    pos: np.ndarray
    rot: np.ndarray
    changed: np.ndarray


def foot_targets(feet: FootGeometry, frames: np.ndarray, fps: float, in_stance: np.ndarray, floor: float,
                 settings: ContactFixSettings = ContactFixSettings()) -> FootTargets:
    """Foot poses that plant each stance on the floor ``z = floor`` without slipping
    (steps 2 and 3 of the module docstring).

    Args:
        feet: the character's foot geometry.
        frames: ``[T, 6 + num_dofs]`` native clip frames.
        fps: frames per second.
        in_stance: ``[T, num_feet]`` bool, the stances.
        floor: m, world z of the floor.
        settings: ``blend_time``, ``flat_tilt_deg`` and ``tilt_ramp_deg`` are used.
    """
    _, origin = feet.foot_points_from_frames(frames)
    rot = _foot_rotations(feet, frames)
    rest = _rest_rotations(feet)
    num_frames, num_feet = in_stance.shape
    blend = max(1, int(round(settings.blend_time * fps)))
    pos_out, rot_out = origin.copy(), rot.copy()
    changed = np.zeros(num_frames, dtype=bool)
    for f in range(num_feet):
        if not feet.foot_geoms[f]:
            continue
        shape = _FootShape(feet.model, feet.foot_geoms[f])
        stances = _runs(in_stance[:, f])
        # (frame, position change, rotation change as a world rotation vector) at each stance end
        anchors_start, anchors_end = [], []
        for a, e in stances:
            flat = [flatten_tilt(rot[t, f], rest[f], settings.flat_tilt_deg, settings.tilt_ramp_deg)
                    for t in range(a, e)]
            offsets = np.array([shape.lowest_offset(r) for r in flat])  # lowest point - origin, world
            xy = np.zeros((e - a, 2))
            for i in range(e - a - 1):  # roll on the contact point: it stays put from frame i to i + 1
                local = _contact_point(shape, rest[f], flat[i])
                xy[i + 1] = xy[i] + (flat[i] @ local - flat[i + 1] @ local)[:2]
            xy += origin[a:e, f, :2].mean(axis=0) - xy.mean(axis=0)
            pos_out[a:e, f, :2] = xy
            pos_out[a:e, f, 2] = floor - offsets[:, 2]
            rot_out[a:e, f] = flat
            changed[a:e] = True
            for t, store in ((a, anchors_start), (e - 1, anchors_end)):
                store.append((t, pos_out[t, f] - origin[t, f],
                              Rotation.from_matrix(rot_out[t, f] @ rot[t, f].T).as_rotvec()))
        swing = np.flatnonzero(~in_stance[:, f])
        for t in swing:
            delta_pos, delta_rot, weight = np.zeros(3), np.zeros(3), 0.0
            for t_end, d_pos, d_rot in anchors_end:
                if 0 < t - t_end <= blend:
                    w = float(_smoothstep(1.0 - (t - t_end) / (blend + 1.0)))
                    delta_pos, delta_rot, weight = delta_pos + w * d_pos, delta_rot + w * d_rot, weight + w
            for t_start, d_pos, d_rot in anchors_start:
                if 0 < t_start - t <= blend:
                    w = float(_smoothstep(1.0 - (t_start - t) / (blend + 1.0)))
                    delta_pos, delta_rot, weight = delta_pos + w * d_pos, delta_rot + w * d_rot, weight + w
            if weight > 1.0:  # a short swing between two stances: interpolate their changes
                delta_pos, delta_rot = delta_pos / weight, delta_rot / weight
            if weight > 0.0:
                pos_out[t, f] = origin[t, f] + delta_pos
                rot_out[t, f] = Rotation.from_rotvec(delta_rot).as_matrix() @ rot[t, f]
                changed[t] = True
            below = floor - (pos_out[t, f, 2] + shape.lowest_offset(rot_out[t, f])[2])
            if below > 0.0:  # a swing foot never goes under the floor
                pos_out[t, f, 2] += below
                changed[t] = True
    return FootTargets(pos=pos_out, rot=rot_out, changed=changed)


# ---------------------------------------------------------------- inverse kinematics
class ContactIK:
    """Per-frame differential inverse kinematics (mink) of one character: the feet onto
    target poses, everything else held to the clip's pose (step 4 of the module docstring).

    Args:
        feet: the character's foot geometry (its MuJoCo model and kinematic model).
        settings: the task weights and iteration limits.

    Raises:
        MimicKitError: if mink is not installed (the message gives the install command).
    """

    def __init__(self, feet: FootGeometry, settings: ContactFixSettings = ContactFixSettings()):
        mink = import_mink()
        if mink is None:
            raise MimicKitError("contact fixing needs mink: {}".format(MINK_INSTALL))
        self.mink = mink
        self.feet = feet
        self.settings = settings
        self.model = feet.model
        self.configuration = mink.Configuration(self.model)
        char = feet.char
        self.foot_tasks = [mink.FrameTask(n, "body", position_cost=settings.foot_position_cost,
                                          orientation_cost=settings.foot_orientation_cost) for n in feet.foot_bodies]
        self.root_task = mink.FrameTask(char.body_names[0], "body", position_cost=settings.root_position_cost,
                                        orientation_cost=settings.root_orientation_cost)
        others = [n for n in char.body_names[1:] if n not in feet.foot_bodies]
        self.body_tasks = [mink.FrameTask(n, "body", position_cost=settings.body_position_cost, orientation_cost=0.0)
                           for n in others]
        self.lift_tasks = {n: task for n, task in zip([char.body_names[0]] + others, [self.root_task] + self.body_tasks)}
        self.posture_task = mink.PostureTask(self.model, cost=settings.posture_cost)
        self.tasks = self.foot_tasks + [self.root_task] + self.body_tasks + [self.posture_task]

    def joint_limit(self, qpos: np.ndarray) -> "mink.ConfigurationLimit":
        """mink joint-range limit with each hinge's range widened to the values in ``qpos``
        ``[T, nq]``, so a clip beyond its ranges is never pulled back into them."""
        model = copy.deepcopy(self.model)
        for j in range(model.njnt):
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and model.jnt_limited[j]:
                values = qpos[:, model.jnt_qposadr[j]]
                model.jnt_range[j] = [min(model.jnt_range[j, 0], values.min()),
                                      max(model.jnt_range[j, 1], values.max())]
        return self.mink.ConfigurationLimit(model)

    def solve(self, qpos: np.ndarray, foot_pos: np.ndarray, foot_rot: np.ndarray,
              limit: "mink.ConfigurationLimit", lifts: Optional[dict] = None) -> np.ndarray:
        """The pose ``[nq]`` closest to ``qpos`` ``[nq]`` (its body positions, root pose and
        hinge angles) that puts the feet at ``foot_pos`` ``[num_feet, 3]`` (m, world) with
        rotations ``foot_rot`` ``[num_feet, 3, 3]``, within ``limit`` (:meth:`joint_limit`);
        ``lifts`` (body name -> m) raises those bodies (not feet), with the feet's weight."""
        mink, cfg = self.mink, self.configuration
        cfg.update(qpos)
        self.posture_task.set_target(qpos)
        self.root_task.set_target_from_configuration(cfg)
        for task in self.body_tasks:
            task.set_target_from_configuration(cfg)
        for name, task in self.lift_tasks.items():
            lift = (lifts or {}).get(name, 0.0)
            base = self.settings.root_position_cost if task is self.root_task else self.settings.body_position_cost
            task.set_position_cost(self.settings.foot_position_cost if lift > 0.0 else base)
            if lift > 0.0:
                target = cfg.get_transform_frame_to_world(name, "body")
                task.set_target(mink.SE3.from_rotation_and_translation(
                    target.rotation(), target.translation() + np.array([0.0, 0.0, lift])))
        for task, pos, rot in zip(self.foot_tasks, foot_pos, foot_rot):
            task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(rot), pos))
        for _ in range(self.settings.max_iterations):
            step = mink.solve_ik(cfg, self.tasks, dt=1.0, solver="daqp", damping=1e-9, limits=[limit])
            cfg.integrate_inplace(step, 1.0)
            if float(np.linalg.norm(step)) < self.settings.step_tol:
                break
        return cfg.q.copy()


# ---------------------------------------------------------------- the fix
def fix_contacts(feet: FootGeometry, frames: np.ndarray, fps: float, mode: str = "auto",
                 settings: ContactFixSettings = ContactFixSettings(), source: str = "motion") -> ContactFixResult:
    """Plant the stance feet of a clip on the floor without sliding, by inverse kinematics
    (see the module docstring).

    Args:
        feet: the character's foot geometry.
        frames: ``[T, 6 + num_dofs]`` native clip frames (root pos m, root exp map, joint dofs).
        fps: frames per second.
        mode: ``auto`` fixes the clip when its stance feet are not all within
            ``height_tol`` of one floor height, one slips more than ``slip_tol`` or another
            body goes more than ``penetration_tol`` below the floor (and skips with a note
            when mink is missing); ``on`` fixes any clip with stances; ``off`` returns the
            frames unchanged without measuring. A clip without stances on upright frames
            (:func:`upright_frames`) is returned unchanged.
        settings: thresholds and weights.
        source: the clip's name for messages.

    Returns:
        The result; when applied, its frames have the floor at the measured ``floor``
        height (``before.floor``), for the ground alignment to move to z = 0.

    Raises:
        MimicKitError: on an unknown mode, or with ``on`` when mink is not installed.
    """
    if mode not in CONTACT_FIX_MODES:
        raise MimicKitError("{}: contact fixing must be one of {}, got '{}'".format(
            source, "|".join(CONTACT_FIX_MODES), mode))
    unchanged = dict(frames=frames, applied=False, after=None, max_dof_change=0.0, max_body_shift=0.0, num_solved=0)
    if mode == "off":
        return ContactFixResult(before=None, in_stance=None, note="contact fix off", **unchanged)
    frames = np.asarray(frames, dtype=np.float64)
    unchanged["frames"] = frames
    lowest, origin = feet.foot_points_from_frames(frames)
    in_stance = stance_contacts(lowest, origin, frames[:, :2], fps, settings.contact_speed,
                                settings.min_stance_time).in_stance
    in_stance &= upright_frames(frames, settings.upright_tilt_deg)[:, None]
    before = measure_contacts(feet, frames, in_stance)
    if before.num_stances == 0:
        return ContactFixResult(before=before, in_stance=in_stance, note="contacts not fixed: no stances", **unchanged)
    bodies = other_bodies(feet)
    lifts = body_lifts(bodies, frames, before.floor) if bodies is not None else np.zeros((len(frames), 0))
    depth = float(lifts.max(initial=0.0))
    needed = before.height_dev > settings.height_tol or before.max_slip > settings.slip_tol \
        or depth > settings.penetration_tol
    below = "; a body {:.1f} cm below the floor".format(100.0 * depth) if depth > settings.penetration_tol else ""
    if mode == "auto" and not needed:
        return ContactFixResult(before=before, in_stance=in_stance,
                                note="contacts not fixed (clean): " + before.describe(), **unchanged)
    if import_mink() is None:
        if mode == "on":
            raise MimicKitError("{}: --fix_contacts on needs mink: {}".format(source, MINK_INSTALL))
        return ContactFixResult(before=before, in_stance=in_stance,
                                note="contacts not fixed (mink is not installed: {}): {}{}".format(
                                    MINK_INSTALL, before.describe(), below), **unchanged)
    targets = foot_targets(feet, frames, fps, in_stance, before.floor, settings)
    ik = ContactIK(feet, settings)
    qpos = feet.pose.qpos_from_frames(frames)
    limit = ik.joint_limit(qpos)
    rows = np.flatnonzero(targets.changed | (lifts > 0.0).any(axis=1))
    solved = qpos.copy()
    fixed = frames.copy()
    lift = lifts.copy()
    todo = rows
    for _ in range(1 + LIFT_ROUNDS):
        for t in todo:
            by_name = {n: float(v) for n, v in zip(bodies.foot_bodies, lift[t]) if v > 0.0} if bodies else {}
            solved[t] = ik.solve(qpos[t], targets.pos[t], targets.rot[t], limit, by_name)
        fixed[todo] = feet.pose.frames_from_qpos(solved[todo])
        if bodies is None:
            break
        residual = body_lifts(bodies, fixed[todo], before.floor)
        deep = residual > LIFT_RESIDUAL
        if not deep.any():
            break
        lift[todo] += np.where(deep, residual, 0.0)  # the IK met it part way: ask for more
        todo = todo[deep.any(axis=1)]
    after = measure_contacts(feet, fixed, in_stance)
    others = [i for i, n in enumerate(feet.char.body_names) if n not in feet.foot_bodies]
    shift = float(np.linalg.norm(_body_poses(feet, fixed)[0][:, others] - _body_poses(feet, frames)[0][:, others],
                                 axis=-1).max())
    dof_change = float(np.abs(solved[:, feet.pose.dof_qposadr] - qpos[:, feet.pose.dof_qposadr]).max())
    note = "contacts fixed by IK on {} frames: {}{}; after: stance feet within +-{:.1f} cm, slip up to {:.1f} cm, " \
           "max joint change {:.1f} deg, bodies moved up to {:.1f} cm".format(
               len(rows), before.describe(), below, 100.0 * after.height_dev, 100.0 * after.max_slip,
               math.degrees(dof_change), 100.0 * shift)
    return ContactFixResult(frames=fixed, applied=True, before=before, after=after, in_stance=in_stance,
                            max_dof_change=dof_change, max_body_shift=shift, num_solved=len(rows), note=note)

"""Frame-by-frame whole-body retargeting with mink (https://github.com/kevinzakka/mink).

For every frame of the source clip (played on the source character with MuJoCo's
kinematics) each mapped target body gets a target pose: the source body's world position
times the scale plus its position offset, and its world rotation times the mapping's
rotation offset (:mod:`tools.retarget.mapping`).
During a stance of a source foot (:func:`source_stances`: the foot slower than
``contact_speed`` and near the floor) its horizontal target is held at the stance's mean, so
the target foot stays put.

The target's pose is then solved by differential inverse kinematics on its MuJoCo model:
mink frame tasks (position and orientation weights from the mapping), a weak posture task
towards the default pose, joint ranges (``ConfigurationLimit``) and joint velocity limits
(``VelocityLimit``, rad/s, over the frame's whole time step: each of the frame's
iterations gets ``1 / (fps * max_iterations)`` s). Each frame starts from the previous
frame's solution (the first from the default pose at the first root target, with more
iterations and no velocity limit) and iterates until a step is shorter than the
tolerance. After solving, the root is lifted where a geom would go below z = 0.

Quaternions: (x, y, z, w) in our code and scipy, (w, x, y, z) only in MuJoCo's ``qpos``
(:class:`mimickit.engines.mujoco_pose.MujocoPose` converts).
"""
from __future__ import annotations

import dataclasses
import time
import types
from typing import Dict, List, Optional, Tuple

import mujoco
import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.engines.character import load_character_spec
from mimickit.engines.mujoco_pose import MujocoPose
from mimickit.util.errors import MimicKitError, one_line
from tools.motion_import.ground import geom_lowest_points, stance_contacts
from tools.retarget.mapping import RetargetMapping
from tools.retarget.quality import QualityReport, measure_quality

MINK_INSTALL = "pip install mink"
SOLVER = "daqp"


def import_mink() -> Optional[types.ModuleType]:
    """The ``mink`` module, or None when it is not installed."""
    try:
        import mink
    except ImportError:
        return None
    return mink


def _solver() -> str:
    import qpsolvers
    for name in (SOLVER, "quadprog", "osqp", "proxqp", "clarabel"):
        if name in qpsolvers.available_solvers:
            return name
    raise MimicKitError("retargeting needs a QP solver for mink: pip install daqp")


class Character:
    """A character's kinematic model, its MuJoCo model (as the engines read it) and pose mapping.

    Raises:
        MimicKitError: if the file is missing or does not compile.
    """

    def __init__(self, path: str):
        self.file = path
        self.kin = KinCharModel(path)
        try:
            self.model = load_character_spec(path, 0.0, 0.0).compile()
        except ValueError as e:
            raise MimicKitError("{}: MuJoCo could not compile it: {}".format(path, one_line(str(e)))) from e
        self.data = mujoco.MjData(self.model)
        self.pose = MujocoPose(self.model, self.kin)
        self.body_ids = {n: i + 1 for i, n in enumerate(self.kin.body_names)}  # + 1: MuJoCo's world body
        geoms = [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] > 0
                 and (self.model.geom_contype[g] or self.model.geom_conaffinity[g])]
        self.geoms = geoms or [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] > 0]

    def body_geoms(self, name: str) -> List[int]:
        """Geoms of body ``name`` (the collision ones when it has any)."""
        b = self.body_ids[name]
        return [g for g in self.geoms if self.model.geom_bodyid[g] == b]

    def rest(self) -> mujoco.MjData:
        """Data of the rest pose standing on the floor, after ``mj_kinematics``.

        The pose is ``qpos0`` (every hinge at 0, the root unrotated) with the root raised or
        lowered so that the lowest geom point is at z = 0 (a URDF's root sits at the origin).
        """
        data = mujoco.MjData(self.model)
        mujoco.mj_kinematics(self.model, data)
        data.qpos[self.pose.root_qposadr + 2] -= self.lowest_z(data)
        mujoco.mj_kinematics(self.model, data)
        return data

    def sole_height(self, name: str) -> float:
        """m, from body ``name``'s origin down to the lowest point of its geoms at rest (0 without geoms)."""
        geoms = self.body_geoms(name)
        if not geoms:
            return 0.0
        data = self.rest()
        return float(data.xpos[self.body_ids[name], 2] - geom_lowest_points(self.model, data, geoms)[:, 2].min())

    def lowest_z(self, data: mujoco.MjData) -> float:
        """m, the lowest point of the character's geoms in ``data``."""
        return float(geom_lowest_points(self.model, data, self.geoms)[:, 2].min())


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """``[start, end)`` of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def source_stances(lowest: np.ndarray, origin: np.ndarray, root_xy: np.ndarray, fps: float,
                   mapping: RetargetMapping) -> np.ndarray:
    """``[T, num_feet]`` bool: the source feet's stances.

    :func:`tools.motion_import.ground.stance_contacts` (the foot slower than
    ``contact_speed`` for ``min_stance_time``), keeping only frames where the foot's lowest
    point is within ``stance_height`` of the floor (the lowest foot point over the clip),
    so that the slow top of a short swing is not a stance.
    """
    in_stance = stance_contacts(lowest, origin, root_xy, fps, mapping.contact_speed,
                                mapping.min_stance_time).in_stance
    floor = float(np.min(lowest[..., 2]))
    in_stance &= lowest[..., 2] - floor < mapping.stance_height
    min_frames = max(2, int(np.ceil(mapping.min_stance_time * fps - 1e-9)))
    for f in range(in_stance.shape[1]):
        for a, e in _runs(in_stance[:, f]):
            if e - a < min_frames:
                in_stance[a:e, f] = False
    return in_stance


def leg_length(char: Character, hip: str, ankle: str) -> float:
    """m, straight hip-to-ankle distance at rest."""
    data = char.rest()
    return float(np.linalg.norm(data.xpos[char.body_ids[hip]] - data.xpos[char.body_ids[ankle]]))


@dataclasses.dataclass
class RetargetOutput:
    """A retargeted clip and how well it went.

    Attributes:
        motion: the clip on the target character.
        quality: the quality report.
        scale: the source-to-target length factor used.
        target_pos: ``[T, num_maps, 3]`` m, the IK's target positions.
        target_rot: ``[T, num_maps, 3, 3]`` its target rotations.
        in_stance: ``[T, num_feet]`` bool, the source's stances (mapping ``feet`` order).
    """
    motion: Motion
    quality: QualityReport
    scale: float
    target_pos: np.ndarray
    target_rot: np.ndarray
    in_stance: np.ndarray


class Retargeter:
    """Retargets clips from the source character onto the target one with a mapping.

    Args:
        source_file, target_file: MJCF or URDF characters.
        mapping: the loaded mapping YAML.

    Raises:
        MimicKitError: mink missing, a character that does not load, a mapped body one of
            them lacks.
    """

    def __init__(self, source_file: str, target_file: str, mapping: RetargetMapping):
        mink = import_mink()
        if mink is None:
            raise MimicKitError("retargeting needs mink: {}".format(MINK_INSTALL))
        self.mink = mink
        self.solver = _solver()
        self.source = Character(source_file)
        self.target = Character(target_file)
        self.mapping = mapping
        mapping.check_bodies(self.source.kin.body_names, self.target.kin.body_names, source_file, target_file)
        if mapping.scale is not None:
            self.scale = mapping.scale
        else:
            (sh, sa), (th, ta) = mapping.leg
            self.scale = leg_length(self.target, th, ta) / leg_length(self.source, sh, sa)
        src_rest, tgt_rest = self.source.rest(), self.target.rest()
        self.offsets = []
        for b in mapping.bodies:
            if b.rotation_offset is not None:
                self.offsets.append(b.rotation_offset)
            else:
                rs = src_rest.xmat[self.source.body_ids[b.source]].reshape(3, 3)
                rt = tgt_rest.xmat[self.target.body_ids[b.target]].reshape(3, 3)
                self.offsets.append(rs.T @ rt)
        self.pos_offsets = np.zeros((len(mapping.bodies), 3))
        for i, b in enumerate(mapping.bodies):
            if isinstance(b.position_offset, str):  # auto
                ps = src_rest.xpos[self.source.body_ids[b.source]]
                pt = tgt_rest.xpos[self.target.body_ids[b.target]]
                rs = src_rest.xmat[self.source.body_ids[b.source]].reshape(3, 3)
                self.pos_offsets[i] = rs.T @ (pt - self.scale * ps)
            elif b.position_offset is not None:
                self.pos_offsets[i] = b.position_offset
        self.feet_maps = [[b.source for b in mapping.bodies].index(f) for f in mapping.feet]
        m = self.target.model
        self.tasks = [mink.FrameTask(b.target, "body", position_cost=b.position_weight,
                                     orientation_cost=b.orientation_weight) for b in mapping.bodies]
        self.posture = mink.PostureTask(m, cost=mapping.posture_weight)
        self.default_qpos = self.target.pose.qpos(self.target.kin.default_root_pos[None].double().numpy(),
                                                  self.target.kin.default_root_rot[None].double().numpy(),
                                                  self.target.kin.default_dof_pos[None].double().numpy())[0]
        self.posture.set_target(self.default_qpos)
        self.config_limit = mink.ConfigurationLimit(m)
        vel: Dict[str, float] = {}
        default = mapping.velocity_limits.get("default", float("inf"))
        for name in self.target.kin.dof_names:
            v = mapping.velocity_limits.get(name, default)
            if np.isfinite(v):
                vel[name] = v
        unknown = [n for n in mapping.velocity_limits if n != "default" and n not in self.target.kin.dof_names]
        if unknown:
            raise MimicKitError("{}: velocity_limit names '{}', not a joint of {} (joints: {})".format(
                mapping.file, unknown[0], target_file, ", ".join(self.target.kin.dof_names)))
        self.vel_limit = mink.VelocityLimit(m, vel) if vel else None

    # ------------------------------------------------------------------ targets
    def source_poses(self, frames: np.ndarray):
        """The source's mapped bodies and feet in every frame of ``frames`` ``[T, 6 + num_dofs]``.

        Returns world positions ``[T, num_maps, 3]`` (m) and rotations ``[T, num_maps, 3, 3]``
        of the mapped source bodies, and the source feet's lowest points and origins
        ``[T, num_feet, 3]`` (m).
        """
        src = self.source
        ids = [src.body_ids[b.source] for b in self.mapping.bodies]
        foot_ids = [src.body_ids[f] for f in self.mapping.feet]
        foot_geoms = [src.body_geoms(f) for f in self.mapping.feet]
        T = len(frames)
        pos, rot = np.empty((T, len(ids), 3)), np.empty((T, len(ids), 3, 3))
        lowest = np.full((T, len(foot_ids), 3), np.inf)
        origin = np.empty((T, len(foot_ids), 3))
        for t in src.pose.kinematics(src.data, src.pose.qpos_from_frames(frames)):
            pos[t] = src.data.xpos[ids]
            rot[t] = src.data.xmat[ids].reshape(-1, 3, 3)
            origin[t] = src.data.xpos[foot_ids]
            for f, geoms in enumerate(foot_geoms):
                if geoms:
                    points = geom_lowest_points(src.model, src.data, geoms)
                    lowest[t, f] = points[np.argmin(points[:, 2])]
        return pos, rot, lowest, origin

    def targets(self, frames: np.ndarray, fps: float):
        """The IK targets of source frames ``[T, 6 + num_dofs]`` (module docstring).

        Returns target positions ``[T, num_maps, 3]`` (m), rotations ``[T, num_maps, 3, 3]``
        and the source stances ``[T, num_feet]`` (bool).
        """
        pos, rot, lowest, origin = self.source_poses(frames)
        s = self.scale
        tpos = pos * s + np.einsum("tbij,bj->tbi", rot, self.pos_offsets)
        trot = rot @ np.stack(self.offsets)[None]
        in_stance = source_stances(lowest, origin, frames[:, :2], fps, self.mapping)
        if self.mapping.stance_lock:
            for f, m in enumerate(self.feet_maps):
                for a, e in _runs(in_stance[:, f]):
                    tpos[a:e, m, :2] = tpos[a:e, m, :2].mean(axis=0)
        return tpos, trot, in_stance

    # ------------------------------------------------------------------ solve
    def _iterate(self, cfg, dt: float, iterations: int, limits) -> int:
        mink = self.mink
        tasks = self.tasks + ([self.posture] if self.mapping.posture_weight > 0 else [])
        for i in range(iterations):
            v = mink.solve_ik(cfg, tasks, dt, self.solver, damping=self.mapping.damping, limits=limits)
            cfg.integrate_inplace(v, dt)
            if float(np.linalg.norm(v)) * dt < self.mapping.tolerance:
                return i + 1
        return iterations

    def retarget(self, motion: Motion, source: str = "motion") -> RetargetOutput:
        """Retarget ``motion`` (a clip on the source character) onto the target.

        Raises:
            MimicKitError: if the clip's dofs are not the source character's.
        """
        motion.check_dof_names(self.source.kin.dof_names, self.source.file, source)
        mink, tgt = self.mink, self.target
        frames = np.asarray(motion.frames, dtype=np.float64)
        fps = motion.fps
        tpos, trot, in_stance = self.targets(frames, fps)
        T = len(frames)
        cfg = mink.Configuration(tgt.model)
        q0 = self.default_qpos.copy()
        a = tgt.pose.root_qposadr
        root_map = next((i for i, b in enumerate(self.mapping.bodies) if b.target == tgt.kin.body_names[0]), None)
        if root_map is not None:
            q0[a:a + 3] = tpos[0, root_map]
        cfg.update(q0)
        qpos = np.empty((T, tgt.model.nq))
        limits_first = [self.config_limit]
        iters = self.mapping.max_iterations
        limits = [self.config_limit] + ([self.vel_limit] if self.vel_limit is not None else [])
        solved_pos = np.empty_like(tpos)
        solved_rot = np.empty_like(trot)
        ids = [tgt.body_ids[b.target] for b in self.mapping.bodies]
        total_iters = 0
        start = time.perf_counter()
        for t in range(T):
            for task, p, r in zip(self.tasks, tpos[t], trot[t]):
                task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3.from_matrix(r), p))
            if t == 0:
                total_iters += self._iterate(cfg, 1.0, self.mapping.first_frame_iterations, limits_first)
            else:
                total_iters += self._iterate(cfg, 1.0 / (fps * iters), iters, limits)
            q = cfg.q.copy()
            solved_pos[t] = cfg.data.xpos[ids]
            solved_rot[t] = cfg.data.xmat[ids].reshape(-1, 3, 3)
            below = -tgt.lowest_z(cfg.data)
            if below > 0.0:  # lift the root so nothing is under the floor; the next frame starts there
                q[a + 2] += below
                solved_pos[t, :, 2] += below
                cfg.update(q)
            qpos[t] = q
        elapsed = time.perf_counter() - start
        out = tgt.pose.frames_from_qpos(qpos)
        low = tgt.kin.dof_low.double().numpy()
        high = tgt.kin.dof_high.double().numpy()
        dof_pos = np.clip(qpos[:, tgt.pose.dof_qposadr], low, high)  # rounding past a range by the integrator
        out[:, 6:] = tgt.kin.dof_pos_to_joint_dof(torch.as_tensor(dof_pos)).numpy()
        result = Motion(fps, motion.loop_mode, out, tgt.kin.dof_names, source=source)
        quality = measure_quality(self, qpos, dof_pos, tpos, trot, solved_pos, solved_rot, in_stance,
                                  T / max(elapsed, 1e-9), total_iters / T)
        return RetargetOutput(motion=result, quality=quality, scale=self.scale, target_pos=tpos, target_rot=trot,
                              in_stance=in_stance)

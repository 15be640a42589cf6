"""The quality report of a retargeted clip.

Stance foot slip, ground penetration, joint-limit hits, task-space error per mapped body,
solve speed.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Dict, List

import numpy as np

from tools.motion_import.ground import geom_lowest_points

if TYPE_CHECKING:
    from tools.retarget.ik import Retargeter

# A dof within this of its range's end (rad) counts as at the limit.
LIMIT_TOL = 1e-3


@dataclasses.dataclass
class QualityReport:
    """How well a clip was retargeted; lengths in cm, angles in degrees.

    Attributes:
        num_frames: frames solved.
        num_stances: stances of the source feet.
        foot_slip_max, foot_slip_mean: horizontal travel of a target foot body's origin over
            one stance of its source foot (largest, mean over stances; 0 without stances).
        stance_height_max: highest lowest point of a stance foot above the floor.
        penetration_max: deepest point of any geom below z = 0.
        limit_hits: dof values (frames x dofs) within :data:`LIMIT_TOL` of a joint range end.
        limit_hits_by_dof: those counts per dof name (dofs with hits only).
        body_errors: per mapped target body: ``pos_mean``, ``pos_max`` (cm), ``rot_mean``,
            ``rot_max`` (deg), solved pose vs the IK target (the parts with a weight only).
        frames_per_s: frames solved per second of wall time.
        iterations_per_frame: mean IK iterations per frame.
    """
    num_frames: int
    num_stances: int
    foot_slip_max: float
    foot_slip_mean: float
    stance_height_max: float
    penetration_max: float
    limit_hits: int
    limit_hits_by_dof: Dict[str, int]
    body_errors: Dict[str, Dict[str, float]]
    frames_per_s: float
    iterations_per_frame: float

    def as_dict(self) -> dict:
        """The report as plain Python values."""
        return dataclasses.asdict(self)

    def lines(self) -> List[str]:
        """Human-readable lines of the report."""
        out = ["{} frames, {:.1f} frames/s ({:.1f} IK iterations/frame)".format(
                   self.num_frames, self.frames_per_s, self.iterations_per_frame),
               "stance foot slip: max {:.2f} cm, mean {:.2f} cm over {} stances; stance feet up to {:.2f} cm above "
               "the floor".format(self.foot_slip_max, self.foot_slip_mean, self.num_stances, self.stance_height_max),
               "ground penetration: max {:.2f} cm".format(self.penetration_max),
               "joint-limit hits: {}{}".format(self.limit_hits, " ({})".format(", ".join(
                   "{} {}".format(k, v) for k, v in sorted(self.limit_hits_by_dof.items(), key=lambda kv: -kv[1])[:6]))
                   if self.limit_hits else "")]
        for name, e in self.body_errors.items():
            parts = []
            if "pos_mean" in e:
                parts.append("position mean {:.2f} max {:.2f} cm".format(e["pos_mean"], e["pos_max"]))
            if "rot_mean" in e:
                parts.append("orientation mean {:.1f} max {:.1f} deg".format(e["rot_mean"], e["rot_max"]))
            out.append("  {}: {}".format(name, ", ".join(parts)))
        return out


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between rotation matrices ``[..., 3, 3]``."""
    cos = (np.trace(np.swapaxes(a, -1, -2) @ b, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def measure_quality(rt: "Retargeter", qpos: np.ndarray, dof_pos: np.ndarray, tpos: np.ndarray, trot: np.ndarray,
                    solved_pos: np.ndarray, solved_rot: np.ndarray, in_stance: np.ndarray, frames_per_s: float,
                    iterations_per_frame: float) -> QualityReport:
    """The report of a solved clip.

    Args: ``qpos`` ``[T, nq]``, hinge angles ``dof_pos`` ``[T, num_dofs]``, IK targets and
    solved poses of the mapped bodies (``[T, num_maps, 3]`` m, ``[T, num_maps, 3, 3]``),
    source stances ``[T, num_feet]``, solve speed and mean iterations per frame.
    """
    tgt, mapping = rt.target, rt.mapping
    feet = [mapping.target_of(f) for f in mapping.feet]
    foot_ids = [tgt.body_ids[n] for n in feet]
    foot_geoms = [tgt.body_geoms(n) for n in feet]
    T = len(qpos)
    origin = np.empty((T, len(feet), 3))
    foot_low = np.full((T, len(feet)), np.inf)
    lowest = np.empty(T)
    for t in tgt.pose.kinematics(tgt.data, qpos):
        origin[t] = tgt.data.xpos[foot_ids]
        lowest[t] = tgt.lowest_z(tgt.data)
        for f, geoms in enumerate(foot_geoms):
            if geoms:
                foot_low[t, f] = geom_lowest_points(tgt.model, tgt.data, geoms)[:, 2].min()
    slips, heights = [], [0.0]
    for f in range(len(feet)):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], in_stance[:, f].astype(np.int8), [0]])))
        for a, e in zip(edges[0::2], edges[1::2]):
            steps = np.diff(origin[a:e, f, :2], axis=0)
            slips.append(float(np.linalg.norm(steps, axis=-1).sum()))
            if np.isfinite(foot_low[a:e, f]).all():
                heights.append(float(foot_low[a:e, f].max()))
    low = tgt.kin.dof_low.double().numpy()
    high = tgt.kin.dof_high.double().numpy()
    at_limit = (dof_pos <= low + LIMIT_TOL) | (dof_pos >= high - LIMIT_TOL)
    hits = {tgt.kin.dof_names[j]: int(at_limit[:, j].sum()) for j in range(at_limit.shape[1]) if at_limit[:, j].any()}
    errors = {}
    pos_err = 100.0 * np.linalg.norm(solved_pos - tpos, axis=-1)
    rot_err = _rotation_angle(solved_rot, trot)
    for i, b in enumerate(mapping.bodies):
        e = {}
        if b.position_weight > 0:
            e.update(pos_mean=float(pos_err[:, i].mean()), pos_max=float(pos_err[:, i].max()))
        if b.orientation_weight > 0:
            e.update(rot_mean=float(rot_err[:, i].mean()), rot_max=float(rot_err[:, i].max()))
        errors[b.target] = e
    return QualityReport(num_frames=T, num_stances=len(slips),
                         foot_slip_max=100.0 * max(slips, default=0.0),
                         foot_slip_mean=100.0 * float(np.mean(slips)) if slips else 0.0,
                         stance_height_max=100.0 * max(heights), penetration_max=100.0 * max(0.0, -float(lowest.min())),
                         limit_hits=int(at_limit.sum()), limit_hits_by_dof=hits, body_errors=errors,
                         frames_per_s=float(frames_per_s), iterations_per_frame=float(iterations_per_frame))

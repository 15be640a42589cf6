"""Closed-form inverse kinematics of a 3-dof quadruped leg (A1 layout), numpy only.

A leg hangs from its hip joint (``<L>_hip_joint``, axis +x, abduction). The thigh joint
(``<L>_thigh_joint``, axis +y) sits ``thigh_offset_y`` m sideways of it (+ for a left leg),
the calf joint (``<L>_calf_joint``, axis +y) ``thigh_length`` m below the thigh joint, and
the foot centre ``calf_length`` m below the calf joint. All angles zero: leg straight down.

Forward kinematics in the hip frame (trunk-aligned axes at the hip joint), with
``X = -l1 sin(q2) - l2 sin(q2 + q3)`` and ``Z = -l1 cos(q2) - l2 cos(q2 + q3)`` the foot in
the leg's sagittal plane::

    foot = R_x(q1) @ [X, d, Z]

:func:`solve_leg_ik` inverts it in two closed-form steps: the abduction ``q1`` from the
foot's (y, z) and the offset ``d`` (``Z = -sqrt(y^2 + z^2 - d^2)``, the foot below the
thigh joint), then the planar two-link thigh/knee solution with the knee bent backward
(``q3 < 0``), the A1's convention. :func:`leg_geometry` reads the dimensions from an MJCF.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import mujoco
import numpy as np

from mimickit.util.errors import MimicKitError

HIP_AXIS = np.array([1.0, 0.0, 0.0])
PITCH_AXIS = np.array([0.0, 1.0, 0.0])


@dataclasses.dataclass
class LegGeometry:
    """One leg's dimensions (m) in the trunk frame.

    hip_pos: ``[3]`` hip joint in the trunk frame; thigh_offset_y: signed sideways offset of
    the thigh joint from the hip joint (+ left); thigh_length, calf_length: thigh joint to
    calf joint and calf joint to foot centre; foot_radius: the foot sphere's radius.
    """

    hip_pos: np.ndarray
    thigh_offset_y: float
    thigh_length: float
    calf_length: float
    foot_radius: float


def leg_geometry(model: mujoco.MjModel, leg: str, root_body: str = "trunk") -> LegGeometry:
    """The geometry of leg ``leg`` (e.g. ``FL``) of a compiled MJCF with the A1 layout.

    Expects bodies ``<leg>_hip`` (child of ``root_body``), ``<leg>_thigh``, ``<leg>_calf``,
    ``<leg>_foot`` (a sphere, no joint), hinges ``<leg>_hip_joint`` (axis x),
    ``<leg>_thigh_joint`` and ``<leg>_calf_joint`` (axis y) at their bodies' origins, no
    body rotations, the thigh straight sideways of the hip and calf and foot straight below.

    Raises:
        MimicKitError: naming the body or joint that does not fit the layout.
    """
    names = {part: "{}_{}".format(leg, part) for part in ("hip", "thigh", "calf", "foot")}
    ids = {}
    for part, name in names.items():
        ids[part] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if ids[part] < 0:
            raise MimicKitError("leg {}: no body '{}' in the character".format(leg, name))
    parents = [root_body, names["hip"], names["thigh"], names["calf"]]
    for part, parent in zip(("hip", "thigh", "calf", "foot"), parents):
        b = ids[part]
        if model.body(model.body_parentid[b]).name != parent:
            raise MimicKitError("leg {}: body '{}' should be a child of '{}'".format(leg, names[part], parent))
        if not np.allclose(model.body_quat[b], [1.0, 0.0, 0.0, 0.0]):
            raise MimicKitError("leg {}: body '{}' is rotated; expected the trunk's axes".format(leg, names[part]))
    for part, axis in (("hip", HIP_AXIS), ("thigh", PITCH_AXIS), ("calf", PITCH_AXIS)):
        b = ids[part]
        joint = "{}_{}_joint".format(leg, part)
        if model.body_jntnum[b] != 1 or model.joint(int(model.body_jntadr[b])).name != joint:
            raise MimicKitError("leg {}: body '{}' should have the one hinge '{}'".format(leg, names[part], joint))
        j = int(model.body_jntadr[b])
        if not (np.allclose(model.jnt_axis[j], axis) and np.allclose(model.jnt_pos[j], 0.0)):
            raise MimicKitError("leg {}: joint '{}' should have axis {} at its body's origin".format(
                leg, joint, axis.tolist()))
    if model.body_jntnum[ids["foot"]] != 0:
        raise MimicKitError("leg {}: body '{}' should have no joint".format(leg, names["foot"]))
    thigh, calf, foot = (model.body_pos[ids[p]] for p in ("thigh", "calf", "foot"))
    if not (np.allclose(thigh[[0, 2]], 0.0) and np.allclose(calf[:2], 0.0) and np.allclose(foot[:2], 0.0)
            and calf[2] < 0 and foot[2] < 0):
        raise MimicKitError("leg {}: expected the thigh joint straight sideways of the hip joint and the "
                            "calf joint and foot straight below their parents".format(leg))
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == ids["foot"]]
    if len(geoms) != 1 or model.geom_type[geoms[0]] != mujoco.mjtGeom.mjGEOM_SPHERE:
        raise MimicKitError("leg {}: body '{}' should hold one sphere geom".format(leg, names["foot"]))
    return LegGeometry(hip_pos=model.body_pos[ids["hip"]].copy(), thigh_offset_y=float(thigh[1]),
                       thigh_length=float(-calf[2]), calf_length=float(-foot[2]),
                       foot_radius=float(model.geom_size[geoms[0], 0]))


def solve_leg_ik(geom: LegGeometry, foot: np.ndarray, where: Optional[str] = None) -> np.ndarray:
    """Joint angles ``[..., 3]`` (hip, thigh, calf; rad) that put the foot centre at ``foot``.

    foot: ``[..., 3]`` m in the hip frame (trunk-aligned axes, origin at the hip joint).
    The solution has the foot below the thigh joint in the leg's plane and the knee bent
    backward (calf angle in ``(-pi, 0]``); joint limits are not checked here.

    Raises:
        MimicKitError: if a target is out of reach: closer to the hip axis than the thigh
            offset, or farther from the thigh joint than ``thigh_length + calf_length`` (or
            nearer than their difference). ``where`` names the caller in the message.
    """
    foot = np.asarray(foot, dtype=np.float64)
    l1, l2, d = geom.thigh_length, geom.calf_length, geom.thigh_offset_y
    px, py, pz = foot[..., 0], foot[..., 1], foot[..., 2]
    r2 = py * py + pz * pz
    if np.any(r2 < d * d):
        raise MimicKitError("{}: foot target within {:.3f} m of the hip axis (the thigh offset); out of "
                            "reach".format(where or "leg IK", abs(d)))
    z = -np.sqrt(r2 - d * d)
    q1 = np.arctan2(pz, py) - np.arctan2(z, d)
    q1 = (q1 + np.pi) % (2.0 * np.pi) - np.pi
    cos_knee = (px * px + z * z - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
    if np.any(np.abs(cos_knee) > 1.0 + 1e-12):
        worst = float(np.sqrt(px * px + z * z).flat[int(np.argmax(np.abs(cos_knee)))])
        raise MimicKitError("{}: foot target {:.3f} m from the thigh joint in the leg plane; reachable "
                            "{:.3f} to {:.3f} m".format(where or "leg IK", worst, abs(l1 - l2), l1 + l2))
    q3 = -np.arccos(np.clip(cos_knee, -1.0, 1.0))
    # (down, back) = l1 (cos q2, sin q2) + l2 (cos(q2 + q3), sin(q2 + q3))
    q2 = np.arctan2(-px, -z) - np.arctan2(l2 * np.sin(q3), l1 + l2 * np.cos(q3))
    return np.stack([q1, q2, q3], axis=-1)

"""Write a URDF for a MuJoCo character, from MuJoCo's compiled model of its MJCF.

The MJCF under ``data/assets/<robot>/`` is the one description of a robot; tools that need
URDF (placo, pinocchio) get one generated from it at run time, never a second hand-written
copy. Usage::

    python tools/gait_generation/mjcf_to_urdf.py data/assets/duckling/duckling.xml out.urdf

Mapping (everything read from ``mujoco.MjModel``, so defaults, classes and ``fromto`` are
already resolved):

- each MJCF body becomes a link of the same name, with its mass, centre of mass and full
  inertia tensor (in the body frame); the root body's free joint becomes the floating base
  (URDF has no free joint: tools such as placo add it when loading);
- a body's hinges become revolute joints named as in the MJCF, with their axes and limits
  (rad); a body with several hinges (a hinge triplet) gets a chain of massless links
  ``<body>__<joint>`` between them, which composes the rotations in the MJCF order exactly
  as MuJoCo does (intrinsic, each axis in the body frame);
- a hinge anchored off the body origin is placed at its anchor, followed by a fixed joint
  back to the body origin;
- joint effort limits come from the joint's actuator ``forcerange`` (else
  ``actfrcrange``, else ``default_effort``);
- box, sphere, cylinder and capsule geoms become visual shapes (a capsule as a cylinder
  and two spheres); other geom types are skipped (kinematics and inertia do not need them);
- ``extra_frames`` adds named frames (e.g. the soles placo calls ``left_foot`` and
  ``right_foot``) as massless links on fixed joints. If an extra frame takes a body's name,
  that body's link is renamed ``<body>_link``.
"""
from __future__ import annotations

import argparse
import math
import sys
import xml.etree.ElementTree as ET
from typing import Dict, Optional, Sequence, Tuple

import mujoco
import numpy as np

from mimickit.util.errors import MimicKitError, require_file

# {frame name: (body name, [x, y, z] m in the body frame)}
ExtraFrames = Dict[str, Tuple[str, Sequence[float]]]
# Mass (kg) and inertia (kg m^2) of the links between the hinges of a triplet and of extra
# frames: negligible next to any real body (the humanoid's lightest is 0.5 kg).
PLACEHOLDER_MASS = 1e-6
PLACEHOLDER_INERTIA = 1e-9


def _fmt(values) -> str:
    return " ".join("{:.9g}".format(float(v)) for v in np.ravel(values))


def quat_wxyz_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix ``[3, 3]`` of a MuJoCo quaternion ``[4]`` (w, x, y, z)."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def matrix_to_rpy(mat: np.ndarray) -> np.ndarray:
    """URDF ``rpy`` (rad) of a rotation matrix: ``mat = Rz(yaw) Ry(pitch) Rx(roll)``."""
    pitch = math.asin(max(-1.0, min(1.0, -mat[2, 0])))
    if abs(mat[2, 0]) < 1.0 - 1e-9:
        roll = math.atan2(mat[2, 1], mat[2, 2])
        yaw = math.atan2(mat[1, 0], mat[0, 0])
    else:  # gimbal lock: put the whole rotation about z into yaw
        roll = 0.0
        yaw = math.atan2(-mat[0, 1], mat[1, 1])
    return np.array([roll, pitch, yaw])


def _origin(parent: ET.Element, pos, mat: Optional[np.ndarray] = None) -> None:
    attrs = {"xyz": _fmt(pos)}
    attrs["rpy"] = _fmt(matrix_to_rpy(mat) if mat is not None else np.zeros(3))
    ET.SubElement(parent, "origin", attrs)


def _link(robot: ET.Element, name: str, placeholder: bool = False) -> ET.Element:
    """A link; a ``placeholder`` (chain or frame link) gets a negligible mass, because
    some URDF readers (MuJoCo's) reject massless links on moving joints."""
    link = ET.SubElement(robot, "link", {"name": name})
    if placeholder:
        inertial = ET.SubElement(link, "inertial")
        _origin(inertial, np.zeros(3))
        ET.SubElement(inertial, "mass", {"value": _fmt([PLACEHOLDER_MASS])})
        i = _fmt([PLACEHOLDER_INERTIA])
        ET.SubElement(inertial, "inertia", {"ixx": i, "ixy": "0", "ixz": "0", "iyy": i, "iyz": "0", "izz": i})
    return link


def _joint(robot: ET.Element, name: str, jtype: str, parent: str, child: str, pos,
           mat: Optional[np.ndarray] = None) -> ET.Element:
    joint = ET.SubElement(robot, "joint", {"name": name, "type": jtype})
    _origin(joint, pos, mat)
    ET.SubElement(joint, "parent", {"link": parent})
    ET.SubElement(joint, "child", {"link": child})
    return joint


def _add_inertial(link: ET.Element, model: mujoco.MjModel, body: int) -> None:
    mass = float(model.body_mass[body])
    if mass <= 0.0:
        return
    rot = quat_wxyz_to_matrix(model.body_iquat[body])
    inertia = rot @ np.diag(model.body_inertia[body]) @ rot.T  # body frame, about the COM
    inertial = ET.SubElement(link, "inertial")
    _origin(inertial, model.body_ipos[body])
    ET.SubElement(inertial, "mass", {"value": _fmt([mass])})
    ET.SubElement(inertial, "inertia", {
        "ixx": _fmt([inertia[0, 0]]), "ixy": _fmt([inertia[0, 1]]), "ixz": _fmt([inertia[0, 2]]),
        "iyy": _fmt([inertia[1, 1]]), "iyz": _fmt([inertia[1, 2]]), "izz": _fmt([inertia[2, 2]])})


def _add_visual(link: ET.Element, pos, mat: np.ndarray, shape: str, attrs: Dict[str, str]) -> None:
    visual = ET.SubElement(link, "visual")
    _origin(visual, pos, mat)
    geometry = ET.SubElement(visual, "geometry")
    ET.SubElement(geometry, shape, attrs)


def _add_geoms(link: ET.Element, model: mujoco.MjModel, body: int) -> None:
    start, count = model.body_geomadr[body], model.body_geomnum[body]
    for g in range(start, start + count) if start >= 0 else []:
        pos = model.geom_pos[g]
        mat = quat_wxyz_to_matrix(model.geom_quat[g])
        size = model.geom_size[g]
        gtype = mujoco.mjtGeom(int(model.geom_type[g]))
        if gtype == mujoco.mjtGeom.mjGEOM_BOX:
            _add_visual(link, pos, mat, "box", {"size": _fmt(2.0 * size)})
        elif gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
            _add_visual(link, pos, mat, "sphere", {"radius": _fmt(size[:1])})
        elif gtype in (mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE):
            _add_visual(link, pos, mat, "cylinder", {"radius": _fmt(size[:1]), "length": _fmt([2.0 * size[1]])})
            if gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
                for end in (-1.0, 1.0):
                    _add_visual(link, pos + end * size[1] * mat[:, 2], mat, "sphere", {"radius": _fmt(size[:1])})


def _effort_limit(model: mujoco.MjModel, joint: int, default_effort: float) -> float:
    for a in range(model.nu):
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT and model.actuator_trnid[a, 0] == joint:
            if model.actuator_forcelimited[a]:
                return float(np.max(np.abs(model.actuator_forcerange[a])) * abs(model.actuator_gear[a, 0]))
    if model.jnt_actfrclimited[joint]:
        return float(np.max(np.abs(model.jnt_actfrcrange[joint])))
    return default_effort


def mjcf_to_urdf(mjcf_path: str, extra_frames: Optional[ExtraFrames] = None,
                 default_effort: float = 100.0, velocity_limit: float = 20.0) -> str:
    """URDF text for the character in ``mjcf_path`` (see the module docstring for the mapping).

    Args:
        mjcf_path: an MJCF whose first body has a free joint and whose other joints are hinges.
        extra_frames: ``{frame name: (body name, [x, y, z] m in the body frame)}``, each added
            as a massless link on a fixed joint with the body's orientation.
        default_effort: effort limit (N·m) of a hinge without a force range.
        velocity_limit: velocity limit (rad/s) written for every hinge.

    Returns:
        The URDF document (a string); the robot is named after the MJCF model.

    Raises:
        MimicKitError: if the file is missing or does not compile, the first body has no
            free joint, another body sits directly in the world, a joint is not a hinge,
            or an extra frame names an unknown body.
    """
    require_file(mjcf_path, "character file")
    try:
        model = mujoco.MjModel.from_xml_path(mjcf_path)
    except ValueError as e:
        raise MimicKitError("{}: MuJoCo could not compile it ({})".format(mjcf_path, str(e).splitlines()[0]))
    extra_frames = dict(extra_frames or {})
    body_names = [model.body(b).name for b in range(model.nbody)]

    if model.nbody < 2 or model.body_jntnum[1] != 1 or model.jnt_type[model.body_jntadr[1]] != mujoco.mjtJoint.mjJNT_FREE:
        raise MimicKitError("{}: expected the first body to have a free joint (the floating base)".format(mjcf_path))
    for b in range(2, model.nbody):
        if model.body_parentid[b] == 0:
            raise MimicKitError("{}: body '{}' is a second body in the world; expected one tree under "
                                "the root '{}'".format(mjcf_path, body_names[b], body_names[1]))
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
                raise MimicKitError("{}: joint '{}' of body '{}' is not a hinge; only hinges are supported "
                                    "below the root".format(mjcf_path, model.joint(j).name, body_names[b]))
    for frame, (body, _) in extra_frames.items():
        if body not in body_names[1:]:
            raise MimicKitError("extra frame '{}': no body '{}' in {}".format(frame, body, mjcf_path))

    def link_name(b: int) -> str:
        return body_names[b] + "_link" if body_names[b] in extra_frames else body_names[b]

    robot = ET.Element("robot", {"name": model.names[:model.names.index(b"\0")].decode() or "robot"})
    robot.append(ET.Comment(" generated from {} by tools/gait_generation/mjcf_to_urdf.py; "
                            "do not edit ".format(mjcf_path)))
    for b in range(1, model.nbody):
        link = _link(robot, link_name(b))
        _add_inertial(link, model, b)
        _add_geoms(link, model, b)
        if b == 1:
            continue
        parent = link_name(model.body_parentid[b])
        body_pos = model.body_pos[b]
        body_mat = quat_wxyz_to_matrix(model.body_quat[b])
        joints = list(range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]))
        if not joints:
            _joint(robot, body_names[b] + "_fixed", "fixed", parent, link_name(b), body_pos, body_mat)
            continue
        anchor = model.jnt_pos[joints[0]]
        for j in joints[1:]:
            if not np.allclose(model.jnt_pos[j], anchor, atol=1e-9):
                raise MimicKitError("{}: the hinges of body '{}' have different anchors; expected one "
                                    "common pivot".format(mjcf_path, body_names[b]))
        has_anchor = bool(np.any(np.abs(anchor) > 1e-12))
        # The chain: parent -> (hinge 1) -> ... -> (hinge k) -> [anchor link -> fixed ->] body.
        for k, j in enumerate(joints):
            last = k == len(joints) - 1
            child = link_name(b) if last and not has_anchor else "{}__{}".format(body_names[b], model.joint(j).name)
            if not (last and not has_anchor):
                _link(robot, child, placeholder=True)
            if k == 0:
                joint = _joint(robot, model.joint(j).name, "revolute", parent, child,
                               body_pos + body_mat @ anchor, body_mat)
            else:
                joint = _joint(robot, model.joint(j).name, "revolute", parent, child, np.zeros(3))
            ET.SubElement(joint, "axis", {"xyz": _fmt(model.jnt_axis[j])})
            low, high = model.jnt_range[j] if model.jnt_limited[j] else (-math.pi, math.pi)
            ET.SubElement(joint, "limit", {"lower": _fmt([low]), "upper": _fmt([high]),
                                           "effort": _fmt([_effort_limit(model, j, default_effort)]),
                                           "velocity": _fmt([velocity_limit])})
            parent = child
        if has_anchor:
            _joint(robot, body_names[b] + "_anchor", "fixed", parent, link_name(b), -anchor)

    for frame, (body, pos) in extra_frames.items():
        _link(robot, frame, placeholder=True)
        _joint(robot, frame + "_frame", "fixed", link_name(body_names.index(body)), frame, np.asarray(pos, float))

    ET.indent(robot)
    return '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"


def write_urdf(mjcf_path: str, urdf_path: str, extra_frames: Optional[ExtraFrames] = None) -> str:
    """Write :func:`mjcf_to_urdf` of ``mjcf_path`` to ``urdf_path``; return ``urdf_path``."""
    text = mjcf_to_urdf(mjcf_path, extra_frames)
    with open(urdf_path, "w") as f:
        f.write(text)
    return urdf_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mjcf", help="input MJCF (.xml)")
    parser.add_argument("urdf", help="output URDF (.urdf)")
    args = parser.parse_args(argv)
    try:
        write_urdf(args.mjcf, args.urdf)
    except MimicKitError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    print("wrote {}".format(args.urdf))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Foot geometry from MuJoCo: the lowest point of the feet, per frame, and rest sole heights.

Heights are world z (m, Z-up). The lowest point of a geom is exact for boxes, spheres,
capsules, cylinders and ellipsoids; other types (meshes) use their bounding box.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import mujoco
import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, require_file


def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, geom_ids: Sequence[int]) -> np.ndarray:
    """World z (m) of the lowest point of each geom ``[len(geom_ids)]`` after ``mj_kinematics``."""
    out = np.empty(len(geom_ids))
    for i, g in enumerate(geom_ids):
        size = model.geom_size[g]
        center = data.geom_xpos[g]
        rot = data.geom_xmat[g].reshape(3, 3)  # columns: the geom's axes in the world
        rz = rot[2]  # z component of each geom axis
        gtype = model.geom_type[g]
        if gtype == mujoco.mjtGeom.mjGEOM_BOX:
            out[i] = center[2] - np.abs(rz) @ size
        elif gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
            out[i] = center[2] - size[0]
        elif gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
            out[i] = center[2] - abs(rz[2]) * size[1] - size[0]
        elif gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
            out[i] = center[2] - abs(rz[2]) * size[1] - size[0] * np.sqrt(max(0.0, 1.0 - rz[2] ** 2))
        elif gtype == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
            out[i] = center[2] - np.sqrt(np.sum((rz * size[:3]) ** 2))
        else:  # mesh, sdf, ...: the geom's axis-aligned box in its own frame
            box_center, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
            out[i] = center[2] + rot[2] @ box_center - np.abs(rz) @ half
    return out


def _body_geoms(model: mujoco.MjModel, body_id: int) -> List[int]:
    start = model.body_geomadr[body_id]
    return list(range(start, start + model.body_geomnum[body_id])) if start >= 0 else []


def compile_mjcf(path: str) -> mujoco.MjModel:
    """Compile an MJCF file; if it names materials it does not define (IsaacGymEnvs'
    ``amp_humanoid.xml``), compile it again with the geom materials cleared.

    Raises:
        MimicKitError: if the file is missing or does not compile.
    """
    require_file(path, "character file")
    try:
        return mujoco.MjModel.from_xml_path(path)
    except ValueError as e:
        first_error = str(e).splitlines()[0]
    try:
        spec = mujoco.MjSpec.from_file(path)
        for geom in spec.geoms:
            geom.material = ""
        return spec.compile()
    except ValueError:
        raise MimicKitError("{}: MuJoCo could not compile it ({})".format(path, first_error))


def sole_heights(mjcf_path: str) -> Dict[str, float]:
    """Rest-pose distance (m) from each body's origin down to the lowest point of its geoms.

    The model is posed at its rest configuration (``qpos0``, root unrotated); bodies
    without geoms are left out. For a foot this is the ankle height.

    Raises:
        MimicKitError: if the file is missing or does not compile.
    """
    model = compile_mjcf(mjcf_path)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    out = {}
    for b in range(1, model.nbody):
        geoms = _body_geoms(model, b)
        if geoms:
            out[model.body(b).name] = float(data.xpos[b, 2] - geom_lowest_z(model, data, geoms).min())
    return out


def default_foot_bodies(body_names: Sequence[str]) -> List[str]:
    """Bodies whose name contains ``foot`` (our humanoid: right_foot, left_foot)."""
    return [n for n in body_names if "foot" in n.lower()]


class FootGeometry:
    """Lowest point of a character's feet for batches of poses, through MuJoCo kinematics.

    Args:
        char: the character's kinematic model (its ``file`` is compiled by MuJoCo).
        foot_bodies: names of the foot bodies; default: the bodies named ``*foot*``.

    Raises:
        MimicKitError: if no foot body is found or a named one does not exist.
    """

    def __init__(self, char: KinCharModel, foot_bodies: Optional[Sequence[str]] = None):
        self.char = char
        self.model = mujoco.MjModel.from_xml_path(char.file)
        self.data = mujoco.MjData(self.model)
        names = list(foot_bodies) if foot_bodies is not None else default_foot_bodies(char.body_names)
        if not names:
            raise MimicKitError("{}: no foot body found (no body name contains 'foot'); name the foot "
                                "bodies explicitly".format(char.file))
        self.foot_bodies = names
        self.geom_ids = []
        for n in names:
            body = char.get_body_id(n) + 1  # + 1: MuJoCo's world body
            self.geom_ids += _body_geoms(self.model, body)
        if not self.geom_ids:
            raise MimicKitError("{}: the foot bodies {} have no geoms".format(char.file, ", ".join(names)))
        root_joint = self.model.body_jntadr[1]
        self.root_qposadr = int(self.model.jnt_qposadr[root_joint])
        self.dof_qposadr = np.array([self.model.joint(n).qposadr[0] for n in char.dof_names], dtype=np.int64)

    def lowest_points(self, root_pos: np.ndarray, root_rot: np.ndarray, dof_pos: np.ndarray) -> np.ndarray:
        """Lowest foot point per pose ``[T]`` (m, world z).

        root_pos: ``[T, 3]`` m, root_rot: ``[T, 4]`` (x, y, z, w), dof_pos: ``[T, num_dofs]``
        hinge angles (rad).
        """
        root_wxyz = torch_util.quat_xyzw_to_wxyz(torch.as_tensor(np.asarray(root_rot, dtype=np.float64))).numpy()
        out = np.empty(len(root_pos))
        a = self.root_qposadr
        for t in range(len(root_pos)):
            self.data.qpos[a:a + 3] = root_pos[t]
            self.data.qpos[a + 3:a + 7] = root_wxyz[t]
            self.data.qpos[self.dof_qposadr] = dof_pos[t]
            mujoco.mj_kinematics(self.model, self.data)
            out[t] = geom_lowest_z(self.model, self.data, self.geom_ids).min()
        return out

    def lowest_points_from_frames(self, frames: np.ndarray) -> np.ndarray:
        """Lowest foot point per frame ``[T]`` (m) of native clip frames ``[T, 6 + num_dofs]``."""
        frames_t = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        root_rot = torch_util.quat_normalize(torch_util.exp_map_to_quat(frames_t[:, 3:6]))
        dof_pos = self.char.joint_dof_to_dof_pos(frames_t[:, 6:])
        return self.lowest_points(frames[:, 0:3], root_rot.numpy(), dof_pos.numpy())


def foot_heights(char_file: str, motion: Motion, foot_bodies: Optional[Sequence[str]] = None) -> np.ndarray:
    """Lowest foot point per frame ``[num_frames]`` (m, world z) of ``motion`` played on ``char_file``.

    Each frame is set as MuJoCo ``qpos`` (root position, root quaternion, hinge angles from
    the clip's joint dofs) and ``mj_kinematics`` places the geoms; the result is the
    lowest point over the geoms of the foot bodies (default: bodies named ``*foot*``).

    Raises:
        MimicKitError: if the clip's dofs do not match the character, or no foot is found.
    """
    char = KinCharModel(char_file)
    motion.check_dof_names(char.dof_names, char_file)
    return FootGeometry(char, foot_bodies).lowest_points_from_frames(motion.frames)

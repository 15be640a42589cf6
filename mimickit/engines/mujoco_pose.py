"""Character poses as MuJoCo ``qpos``, for offline tools that run MuJoCo's kinematics on clips.

The tools are the importers and gait checks; this is the MuJoCo boundary outside the engine,
where the code base's (x, y, z, w) quaternions become MuJoCo's (w, x, y, z).
"""
from __future__ import annotations

from typing import Iterator, Tuple

import mujoco
import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util import torch_util


def frames_to_pose(kin: KinCharModel, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pose in simulator coordinates of native clip frames ``[T, 6 + num_dofs]``.

    Returns root position ``[T, 3]`` (m), root rotation ``[T, 4]`` (x, y, z, w) and hinge
    angles ``[T, num_dofs]`` (rad), float64.
    """
    f = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    root_rot = torch_util.quat_normalize(torch_util.exp_map_to_quat(f[:, 3:6]))
    return f[:, 0:3].numpy(), root_rot.numpy(), kin.joint_dof_to_dof_pos(f[:, 6:]).numpy()


class MujocoPose:
    """Maps a character's poses to and from ``qpos`` of a MuJoCo model holding it.

    Args:
        model: a compiled model whose first body is the character's root (free joint) and
            which has a hinge named after each of ``kin``'s dofs.
        kin: the character.
    """

    def __init__(self, model: "mujoco.MjModel", kin: KinCharModel):
        self.model = model
        self.kin = kin
        self.root_qposadr = int(model.jnt_qposadr[model.body_jntadr[1]])
        self.dof_qposadr = np.array([model.joint(n).qposadr[0] for n in kin.dof_names], dtype=np.int64)

    def qpos(self, root_pos: np.ndarray, root_rot: np.ndarray, dof_pos: np.ndarray) -> np.ndarray:
        """``[T, nq]`` qpos (other joints at ``qpos0``) of the character's pose.

        Args:
            root_pos: ``[T, 3]`` m.
            root_rot: ``[T, 4]`` (x, y, z, w).
            dof_pos: ``[T, num_dofs]`` rad.
        """
        qpos = np.tile(self.model.qpos0, (len(root_pos), 1))
        a = self.root_qposadr
        qpos[:, a:a + 3] = root_pos
        qpos[:, a + 3:a + 7] = torch_util.quat_xyzw_to_wxyz(torch.as_tensor(np.asarray(root_rot))).numpy()
        qpos[:, self.dof_qposadr] = dof_pos
        return qpos

    def qpos_from_frames(self, frames: np.ndarray) -> np.ndarray:
        """``[T, nq]`` qpos of native clip frames ``[T, 6 + num_dofs]``."""
        return self.qpos(*frames_to_pose(self.kin, frames))

    def frames_from_qpos(self, qpos: np.ndarray) -> np.ndarray:
        """Native clip frames ``[T, 6 + num_dofs]`` of ``qpos`` ``[T, nq]``.

        The root exp map comes from the free joint's quaternion, the joint dofs from the
        hinge angles through :meth:`KinCharModel.dof_pos_to_joint_dof`.
        """
        q = torch.as_tensor(np.asarray(qpos, dtype=np.float64))
        a = self.root_qposadr
        root_rot = torch_util.quat_normalize(torch_util.quat_wxyz_to_xyzw(q[:, a + 3:a + 7]))
        joint_dof = self.kin.dof_pos_to_joint_dof(q[:, self.dof_qposadr])
        return torch.cat([q[:, a:a + 3], torch_util.quat_to_exp_map(root_rot), joint_dof], dim=1).numpy()

    def kinematics(self, data: "mujoco.MjData", qpos: np.ndarray) -> Iterator[int]:
        """For each row ``t`` of ``qpos`` ``[T, nq]``: set it, run ``mj_kinematics``, yield ``t``.

        Read ``data.xpos`` etc. in the loop body.
        """
        for t in range(len(qpos)):
            data.qpos[:] = qpos[t]
            mujoco.mj_kinematics(self.model, data)
            yield t

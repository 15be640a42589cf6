"""Native clips from sampled poses: start at the origin facing +x, joint dofs from hinge angles.

Hinge angles (``dof_pos``, the simulator's coordinates) become the clip's ``joint_dof``
through :meth:`KinCharModel.dof_pos_to_joint_dof` (exp map of a triplet's rotation, angle
of a single hinge), never by copying Euler angles into exp-map slots.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.util import torch_util
from tools.gait_generation.quality import heading_angles, measure_root_velocity


def move_to_origin(root_pos: np.ndarray, root_rot: np.ndarray):
    """Rotate about z and translate poses so the first root is at x = y = 0 with heading 0.

    root_pos ``[T, 3]`` m, root_rot ``[T, 4]`` (x, y, z, w); returns both, moved (heights kept).
    """
    heading0 = heading_angles(root_rot[:1])[0]
    q = torch.as_tensor(root_rot, dtype=torch.float64)
    turn = torch_util.quat_from_axis_angle(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                                           torch.tensor(-heading0, dtype=torch.float64)).expand_as(q)
    rel = torch.as_tensor(root_pos - np.array([root_pos[0, 0], root_pos[0, 1], 0.0]), dtype=torch.float64)
    new_pos = torch_util.quat_rotate(turn, rel)
    new_rot = torch_util.quat_normalize(torch_util.quat_mul(turn, q))
    return new_pos.numpy(), new_rot.numpy()


def make_motion(kin: KinCharModel, root_pos: np.ndarray, root_rot: np.ndarray, dof_pos: np.ndarray,
                fps: float, loop_mode: str, command: Optional[np.ndarray] = None,
                extras: Optional[Dict[str, np.ndarray]] = None) -> Motion:
    """A :class:`Motion` of poses, moved to start at the origin facing +x.

    Args:
        kin: the character.
        root_pos: ``[T, 3]`` m, root_rot: ``[T, 4]`` (x, y, z, w), dof_pos: ``[T, num_dofs]``
            rad in ``kin``'s dof order.
        fps: frame rate (Hz); loop_mode: ``clamp`` or ``wrap``.
        command: ``[vx m/s, vy m/s, wz rad/s]`` commanded root velocity in the heading frame,
            stored as the ``command`` extra with the measured mean root velocity
            (``measured_root_vel``, see :func:`measure_root_velocity`).
        extras: more named arrays to store.

    Raises:
        MimicKitError: on a NaN pose (from :class:`Motion`'s validation).
    """
    root_pos, root_rot = move_to_origin(np.asarray(root_pos, np.float64), np.asarray(root_rot, np.float64))
    joint_dof = kin.dof_pos_to_joint_dof(torch.as_tensor(np.asarray(dof_pos), dtype=torch.float64)).numpy()
    root_exp = torch_util.quat_to_exp_map(torch.as_tensor(root_rot)).numpy()
    frames = np.concatenate([root_pos, root_exp, joint_dof], axis=-1)
    all_extras = dict(extras or {})
    if command is not None:
        all_extras["command"] = np.asarray(command, dtype=np.float32)
    all_extras["measured_root_vel"] = measure_root_velocity(root_pos, root_rot, fps).astype(np.float32)
    return Motion(fps, loop_mode, frames, kin.dof_names, all_extras)

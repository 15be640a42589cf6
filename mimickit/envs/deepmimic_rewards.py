"""The five DeepMimic imitation reward terms (Peng et al. 2018, "DeepMimic", Sec. 5, eq. 5-9).

Each term is an exponential kernel ``exp(-scale * err)`` of a tracking error, in (0, 1],
1 at perfect tracking. The total imitation reward is their weighted sum (eq. 5). Pure
functions: tensors in, ``[num_envs]`` tensor out.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mimickit.util import torch_util

# Weight of the rotation error against the position error in the root terms (as in the
# DeepMimic reference implementation's centre-of-mass/root terms).
ROOT_ROT_ERR_W = 0.1
ROOT_ANG_VEL_ERR_W = 0.1


def pose_reward(joint_rot: Tensor, ref_joint_rot: Tensor, joint_err_w: Tensor, scale: float) -> Tensor:
    """Pose term, ``exp(-scale * sum_j w_j * angle(q_j, ref_q_j)^2)`` (eq. 6).

    joint_rot, ref_joint_rot: ``[n, num_joints, 4]`` local joint rotations.
    joint_err_w: ``[num_joints]`` per-joint weights. Angles in rad. Returns ``[n]``.
    """
    err = torch_util.quat_diff_angle(joint_rot, ref_joint_rot)
    return torch.exp(-scale * (joint_err_w * err * err).sum(dim=-1))


def velocity_reward(joint_dof_vel: Tensor, ref_joint_dof_vel: Tensor, dof_err_w: Tensor,
                    scale: float) -> Tensor:
    """Velocity term, ``exp(-scale * sum_d w_d * (v_d - ref_v_d)^2)`` (eq. 7).

    joint_dof_vel, ref_joint_dof_vel: ``[n, num_dofs]`` joint angular velocities (rad/s;
    a 3-dof joint's angular velocity vector, see docs/architecture.md).
    dof_err_w: ``[num_dofs]`` the weight of each dof's joint. Returns ``[n]``.
    """
    diff = joint_dof_vel - ref_joint_dof_vel
    return torch.exp(-scale * (dof_err_w * diff * diff).sum(dim=-1))


def root_pose_reward(root_pos: Tensor, ref_root_pos: Tensor, root_rot: Tensor, ref_root_rot: Tensor,
                     scale: float) -> Tensor:
    """Root pose term, ``exp(-scale * (|p - ref_p|^2 + 0.1 * angle(q, ref_q)^2))``.

    DeepMimic eq. 9, applied to the root as in the reference implementation.

    root_pos ``[n, 3]`` m, root_rot ``[n, 4]``, world frame. Returns ``[n]``.
    """
    pos_err = ((root_pos - ref_root_pos) ** 2).sum(dim=-1)
    rot_err = torch_util.quat_diff_angle(root_rot, ref_root_rot) ** 2
    return torch.exp(-scale * (pos_err + ROOT_ROT_ERR_W * rot_err))


def root_vel_reward(root_vel: Tensor, ref_root_vel: Tensor, root_ang_vel: Tensor, ref_root_ang_vel: Tensor,
                    scale: float) -> Tensor:
    """Root velocity term, ``exp(-scale * (|v - ref_v|^2 + 0.1 * |w - ref_w|^2))``.

    root_vel ``[n, 3]`` m/s, root_ang_vel ``[n, 3]`` rad/s, world frame. Returns ``[n]``.
    """
    vel_err = ((root_vel - ref_root_vel) ** 2).sum(dim=-1)
    ang_err = ((root_ang_vel - ref_root_ang_vel) ** 2).sum(dim=-1)
    return torch.exp(-scale * (vel_err + ROOT_ANG_VEL_ERR_W * ang_err))


def key_pos_reward(key_pos: Tensor, ref_key_pos: Tensor, scale: float) -> Tensor:
    """Key-body (end-effector) term, ``exp(-scale * sum_k |x_k - ref_x_k|^2)`` (eq. 8).

    key_pos, ref_key_pos: ``[n, num_key_bodies, 3]`` m, each relative to its own root (so
    root drift is left to the root term). Returns ``[n]``.
    """
    return torch.exp(-scale * ((key_pos - ref_key_pos) ** 2).sum(dim=(-1, -2)))

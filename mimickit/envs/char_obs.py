"""Observation terms of a character, as pure functions (tensors in, tensor out).

Frames: with ``global_obs`` false, vectors are expressed in the root's **heading frame**
(world rotated by the root's yaw only, origin at the root), so observations do not change
when the whole scene turns about the vertical axis; with ``global_obs`` true they stay
in the world frame (positions still relative to the root).
"""
from __future__ import annotations

import torch
from torch import Tensor

from mimickit.util import torch_util


def obs_frame_rot(root_rot: Tensor, global_obs: bool) -> Tensor:
    """``[n, 4]`` rotation that maps world vectors into the observation frame."""
    if global_obs:
        return torch_util.quat_identity(root_rot.shape[:-1], dtype=root_rot.dtype, device=root_rot.device)
    return torch_util.calc_heading_quat_inv(root_rot)


def compute_body_obs(root_pos: Tensor, root_rot: Tensor, body_pos: Tensor, body_rot: Tensor,
                     body_vel: Tensor, body_ang_vel: Tensor, global_obs: bool) -> Tensor:
    """Proprioception from body states, ``[n, 1 + 15 * num_bodies]``:

    root height (1, m), then for every body (root included): position relative to the root
    (3, m; 0 for the root), rotation as tangent-normal (6), linear velocity (3, m/s) and
    angular velocity (3, rad/s), all in the observation frame.

    root_pos ``[n, 3]``, root_rot ``[n, 4]``, body_pos ``[n, b, 3]``, body_rot ``[n, b, 4]``,
    body_vel ``[n, b, 3]``, body_ang_vel ``[n, b, 3]``, world frame.
    """
    frame = obs_frame_rot(root_rot, global_obs).unsqueeze(-2).expand_as(body_rot)
    local_pos = torch_util.quat_rotate(frame, body_pos - root_pos.unsqueeze(-2))
    local_rot = torch_util.quat_to_tan_norm(torch_util.quat_mul(frame, body_rot))
    local_vel = torch_util.quat_rotate(frame, body_vel)
    local_ang_vel = torch_util.quat_rotate(frame, body_ang_vel)
    n = root_pos.shape[0]
    return torch.cat([root_pos[:, 2:3], local_pos.reshape(n, -1), local_rot.reshape(n, -1),
                 local_vel.reshape(n, -1), local_ang_vel.reshape(n, -1)], dim=-1)


def compute_target_obs(root_pos: Tensor, root_rot: Tensor, ref_root_pos: Tensor, ref_root_rot: Tensor,
                       ref_joint_rot: Tensor, global_obs: bool) -> Tensor:
    """One future reference frame relative to the simulated root, ``[n, 3 + 6 + 6 * num_joints]``:

    the reference root position relative to the simulated root (m) and the reference root
    rotation (tangent-normal), both in the simulated root's observation frame, and the
    reference joint rotations (local, tangent-normal).

    root_pos/ref_root_pos ``[n, 3]``, root_rot/ref_root_rot ``[n, 4]`` world frame;
    ref_joint_rot ``[n, num_joints, 4]``.
    """
    frame = obs_frame_rot(root_rot, global_obs)
    rel_pos = torch_util.quat_rotate(frame, ref_root_pos - root_pos)
    rel_rot = torch_util.quat_to_tan_norm(torch_util.quat_mul(frame, ref_root_rot))
    joint = torch_util.quat_to_tan_norm(ref_joint_rot).reshape(root_pos.shape[0], -1)
    return torch.cat([rel_pos, rel_rot, joint], dim=-1)


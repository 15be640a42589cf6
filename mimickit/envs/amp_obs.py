"""AMP observations (Peng et al. 2021, Sec. 5.3): what the discriminator sees of a motion.

One **frame** of AMP observation describes the character at one instant, from quantities
that a simulated character and a motion clip both have, so that the simulation and the
demonstrations go through the same function, :func:`compute_amp_frame_obs`:

======================  =====  ========  ==================================================
term                    width  units     content
======================  =====  ========  ==================================================
``root_height``         1      m         root height above the ground (world z)
``root_rot``            6      tan_norm  root rotation with its heading removed
``root_vel``            3      m/s       root linear velocity, heading frame
``root_ang_vel``        3      rad/s     root angular velocity, heading frame
``dof_rot``             6 x T  tan_norm  local rotation of each 3-dof joint (T of them)
``dof_angle``           H      rad       angle of each 1-dof joint (H of them)
``dof_vel``             D      rad/s     ``joint_dof_vel`` (docs/architecture.md), D dofs
``key_pos``             3 x K  m         key-body positions minus the root, heading frame
======================  =====  ========  ==================================================

The heading frame is the world turned by the root's yaw (:mod:`mimickit.envs.char_obs`),
so a frame does not change when the whole motion turns about the vertical axis or moves
on the ground. Joint velocities are ``joint_dof_vel`` (a 3-dof joint's angular velocity
vector, a hinge's rate), the quantity :class:`mimickit.anim.motion_lib.MotionLib` stores;
the simulator's hinge rates are converted with
:meth:`mimickit.anim.kin_char_model.KinCharModel.dof_vel_to_joint_dof_vel`.

An **AMP observation** stacks ``num_steps`` consecutive frames, ``dt`` apart (one control
step), **oldest first**: ``[frame(t - (num_steps-1) dt), ..., frame(t)]``, flattened to
``[n, num_steps * frame_dim]``. :func:`calc_motion_amp_frames` builds it for clips of a
:class:`MotionLib`; the environment keeps the same stack of simulated frames.
"""
from __future__ import annotations

from typing import List, NamedTuple

import torch
from torch import Tensor

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion_lib import MotionLib
from mimickit.envs.base_env import ObsSlice
from mimickit.envs.char_obs import ObsTerm, cat_obs_terms, obs_layout
from mimickit.util import torch_util


class AMPDofLayout(NamedTuple):
    """Which joints enter the AMP frame as rotations and which as angles.

    Attributes:
        triplet_joints: long ``[T]`` indices of the 3-dof joints (into ``num_joints``).
        hinge_dofs: long ``[H]`` dof indices of the 1-dof joints (into ``num_dofs``).
    """

    triplet_joints: Tensor
    hinge_dofs: Tensor


def amp_dof_layout(kin_char_model: KinCharModel, device: str = "cpu") -> AMPDofLayout:
    """The :class:`AMPDofLayout` of a character (joints without dofs are left out)."""
    num_dofs = kin_char_model.joint_num_dofs
    triplets = torch.nonzero(num_dofs == 3).flatten()
    hinges = kin_char_model.joint_dof_offsets[num_dofs == 1]
    return AMPDofLayout(triplets.to(device), hinges.to(device))


def amp_frame_obs_terms(root_pos: Tensor, root_rot: Tensor, root_vel: Tensor, root_ang_vel: Tensor,
                        joint_rot: Tensor, dof_pos: Tensor, joint_dof_vel: Tensor, key_pos: Tensor,
                        dof_layout: AMPDofLayout) -> List[ObsTerm]:
    """The terms of :func:`compute_amp_frame_obs`, in its order (same arguments)."""
    heading_inv = torch_util.calc_heading_quat_inv(root_rot)
    n = root_pos.shape[0]
    local_root_rot = torch_util.quat_mul(heading_inv, root_rot)
    key_heading_inv = heading_inv.unsqueeze(-2).expand(key_pos.shape[:-1] + (4,))
    local_key_pos = torch_util.quat_rotate(key_heading_inv, key_pos - root_pos.unsqueeze(-2))
    dof_rot = torch_util.quat_to_tan_norm(joint_rot[:, dof_layout.triplet_joints])
    return [ObsTerm("root_height", root_pos[:, 2:3], "m", "world"),
            ObsTerm("root_rot", torch_util.quat_to_tan_norm(local_root_rot), "tan_norm", "heading"),
            ObsTerm("root_vel", torch_util.quat_rotate(heading_inv, root_vel), "m/s", "heading"),
            ObsTerm("root_ang_vel", torch_util.quat_rotate(heading_inv, root_ang_vel), "rad/s", "heading"),
            ObsTerm("dof_rot", dof_rot.reshape(n, -1), "tan_norm", "parent"),
            ObsTerm("dof_angle", dof_pos[:, dof_layout.hinge_dofs], "rad", "parent"),
            ObsTerm("dof_vel", joint_dof_vel, "rad/s", "parent"),
            ObsTerm("key_pos", local_key_pos.reshape(n, -1), "m", "heading")]


def compute_amp_frame_obs(root_pos: Tensor, root_rot: Tensor, root_vel: Tensor, root_ang_vel: Tensor,
                          joint_rot: Tensor, dof_pos: Tensor, joint_dof_vel: Tensor, key_pos: Tensor,
                          dof_layout: AMPDofLayout) -> Tensor:
    """One AMP frame ``[n, frame_dim]`` (the module docstring lists its terms).

    Args:
        root_pos: ``[n, 3]`` m, world.
        root_rot: ``[n, 4]`` world (x, y, z, w).
        root_vel: ``[n, 3]`` m/s, world.
        root_ang_vel: ``[n, 3]`` rad/s, world.
        joint_rot: ``[n, num_joints, 4]`` local joint rotations; the 3-dof joints' are used.
        dof_pos: ``[n, num_dofs]`` rad; only the 1-dof joints' entries are used (a
            triplet's Euler angles are not, its rotation is).
        joint_dof_vel: ``[n, num_dofs]`` rad/s (motion-file layout, docs/architecture.md).
        key_pos: ``[n, num_key_bodies, 3]`` m, world positions of the key bodies.
        dof_layout: from :func:`amp_dof_layout`.

    Returns:
        ``[n, 13 + 6 T + H + num_dofs + 3 num_key_bodies]``.
    """
    return cat_obs_terms(amp_frame_obs_terms(root_pos, root_rot, root_vel, root_ang_vel, joint_rot, dof_pos,
                                             joint_dof_vel, key_pos, dof_layout))


def amp_obs_layout(frame_terms: List[ObsTerm], num_steps: int) -> List[ObsSlice]:
    """Layout of a stacked AMP observation: ``step<k>_<term>`` for k = 0 (oldest) .. num_steps-1."""
    terms = [t._replace(name="step{}_{}".format(k, t.name)) for k in range(num_steps) for t in frame_terms]
    return obs_layout(terms)


def history_times(times: Tensor, num_steps: int, dt: float) -> Tensor:
    """``[n, num_steps]`` times (s) of a stack ending at ``times`` (``[n]``), oldest first.

    Entry ``k`` is ``times - (num_steps - 1 - k) * dt`` for ``k = 0 .. num_steps - 1``.
    """
    offsets = dt * torch.arange(num_steps - 1, -1, -1, dtype=times.dtype, device=times.device)
    return times.unsqueeze(-1) - offsets


def push_frame(history: Tensor, frame: Tensor) -> Tensor:
    """The stack ``[n, num_steps, frame_dim]`` advanced by one step, as a new tensor.

    The oldest frame drops out and ``frame`` (``[n, frame_dim]``) becomes the newest.
    """
    return torch.cat([history[:, 1:], frame.unsqueeze(1)], dim=1)


def calc_motion_amp_frames(motion_lib: MotionLib, kin_char_model: KinCharModel, motion_ids: Tensor,
                           times: Tensor, key_body_ids: Tensor, dof_layout: AMPDofLayout) -> Tensor:
    """AMP frames of clips at given times, ``[n, num_steps, frame_dim]``.

    The reference state comes from :meth:`MotionLib.calc_motion_frame` and the key-body
    positions from forward kinematics of that state (not the library's interpolated
    body positions), so they are those a simulator shows when set to the same state.

    Args:
        motion_lib: the clips.
        kin_char_model: the character the clips animate (for forward kinematics and the
            joint-rotation to dof conversion).
        motion_ids: long ``[n]``, one clip per row of ``times``.
        times: ``[n, num_steps]`` s (e.g. from :func:`history_times`).
        key_body_ids: long ``[num_key_bodies]``.
        dof_layout: which joints enter as rotations and which as angles
            (:func:`amp_dof_layout` of ``kin_char_model``).
    """
    n, num_steps = times.shape
    root_pos, root_rot, root_vel, root_ang_vel, joint_rot, joint_dof_vel = motion_lib.calc_motion_frame(
        motion_ids.repeat_interleave(num_steps), times.reshape(-1))
    dof_pos = kin_char_model.joint_rot_to_dof_pos(joint_rot)
    body_pos, _ = kin_char_model.forward_kinematics(root_pos, root_rot, joint_rot)
    frame = compute_amp_frame_obs(root_pos, root_rot, root_vel, root_ang_vel, joint_rot, dof_pos, joint_dof_vel,
                                  body_pos[:, key_body_ids], dof_layout)
    return frame.reshape(n, num_steps, -1)

"""Kinematic character model: the skeleton of an MJCF character and batched kinematics.

The MJCF is compiled by MuJoCo itself (defaults, classes and ``fromto`` resolved there);
this module reads the compiled tree and runs forward kinematics and coordinate
conversions in torch. See docs/architecture.md for the three pose coordinates:
``dof_pos`` (simulator hinge angles), ``joint_rot`` (local rotations) and ``joint_dof``
(the motion file's exp map / angle layout).

Supported skeletons: the first body carries a free joint (the root); every other body has
zero, one or three hinge joints. A triplet's axes must be mutually orthogonal; its three
angles are intrinsic Euler angles in the joint's axis order.
"""
from __future__ import annotations

from typing import List, Tuple

import mujoco
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.character import load_character_spec
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, one_line, require_file


def _euler_xyz_from_matrix(m: Tensor) -> Tensor:
    """Angles ``[..., 3]`` (rad) with ``m = Rx(a) Ry(b) Rz(c)`` (intrinsic x, y, z)."""
    b = torch.asin(m[..., 0, 2].clamp(-1.0, 1.0))
    a = torch.atan2(-m[..., 1, 2], m[..., 2, 2])
    c = torch.atan2(-m[..., 0, 1], m[..., 0, 0])
    return torch.stack([a, b, c], dim=-1)


DEFAULT_KEYFRAME = "default"  # MJCF <key name="default" qpos="..."/>: the character's default pose


class KinCharModel:
    """Skeleton and batched kinematics of one MJCF character.

    Attributes:
        body_names: ``[num_bodies]`` names; body 0 is the root.
        parent_indices: ``[num_bodies]`` long, -1 for the root.
        body_local_pos: ``[num_bodies, 3]`` m, each body's offset in its parent's frame
            (float64, like the other constants used in kinematics; cast on use).
        body_local_rot: ``[num_bodies, 4]`` each body's rest rotation in its parent's frame.
        dof_names: ``[num_dofs]`` hinge joint names in simulator order.
        joint_num_dofs: ``[num_joints]`` 0, 1 or 3; joint ``j`` belongs to body ``j + 1``.
        joint_dof_offsets: ``[num_joints]`` index of the joint's first dof.
        dof_low, dof_high: ``[num_dofs]`` joint limits (rad).
        body_masses: ``[num_bodies]`` kg.
        default_root_pos: ``[3]`` m and default_root_rot: ``[4]`` (x, y, z, w), world: the
            root placement of the default pose.
        default_dof_pos: ``[num_dofs]`` rad, the default pose: the MJCF keyframe named
            ``default`` when the file has one (e.g. a quadruped's standing pose), else the
            file's root placement with every dof at 0 clamped to its limits. Episodes that do
            not start from a motion start here, and policy actions are centred on it.

    Raises:
        MimicKitError: if the file is missing, does not compile, or has a skeleton
            outside the supported set above (the message names the body).
    """

    def __init__(self, mjcf_path: str, device: str = "cpu"):
        require_file(mjcf_path, "character file")
        try:  # read as the engines read it: a URDF through mimickit.engines.urdf_character (gains play no part)
            model = load_character_spec(mjcf_path, urdf_kp=0.0, urdf_kd=0.0).compile()
        except ValueError as e:  # MuJoCo's parser and compiler message, with the line in the file
            raise MimicKitError("{}: MuJoCo could not compile it: {}".format(mjcf_path, one_line(str(e)))) from e
        self.file = mjcf_path
        self.device = device
        self._parse(model)

    def _parse(self, model: "mujoco.MjModel") -> None:
        nb = model.nbody - 1  # drop the world body
        if nb < 1 or model.body_jntnum[1] < 1 or model.jnt_type[model.body_jntadr[1]] != mujoco.mjtJoint.mjJNT_FREE:
            raise MimicKitError("{}: expected the first body to have a free joint (the root)".format(self.file))
        self.body_names = [model.body(i + 1).name for i in range(nb)]
        parents = model.body_parentid[1:] - 1
        self.parent_indices = torch.tensor(parents, dtype=torch.long)

        f = dict(dtype=torch.float64, device=self.device)  # cast to the input dtype on use
        self.body_local_pos = torch.tensor(model.body_pos[1:], **f)
        self.body_local_rot = torch_util.quat_wxyz_to_xyzw(torch.tensor(model.body_quat[1:], **f))
        self.body_masses = torch.tensor(model.body_mass[1:], dtype=torch.float32, device=self.device)

        self.dof_names: List[str] = []
        joint_num_dofs, joint_dof_offsets = [], []
        axes, anchors, low, high = [], [], [], []
        for b in range(2, model.nbody):
            jnt_ids = range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b])
            name = model.body(b).name
            for j in jnt_ids:
                if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
                    raise MimicKitError("{}: body '{}' has a joint that is not a hinge; only hinge "
                                        "joints are supported below the root".format(self.file, name))
            if len(jnt_ids) not in (0, 1, 3):
                raise MimicKitError("{}: body '{}' has {} hinges; expected 0, 1 or 3".format(
                    self.file, name, len(jnt_ids)))
            joint_dof_offsets.append(len(self.dof_names))
            joint_num_dofs.append(len(jnt_ids))
            for j in jnt_ids:
                self.dof_names.append(model.joint(j).name)
                axes.append(model.jnt_axis[j])
                anchors.append(model.jnt_pos[j])
                limited = model.jnt_limited[j]
                low.append(model.jnt_range[j, 0] if limited else -np.pi)
                high.append(model.jnt_range[j, 1] if limited else np.pi)

        self.joint_num_dofs = torch.tensor(joint_num_dofs, dtype=torch.long)
        self.joint_dof_offsets = torch.tensor(joint_dof_offsets, dtype=torch.long)
        self.dof_low = torch.tensor(np.array(low), dtype=torch.float32, device=self.device)
        self.dof_high = torch.tensor(np.array(high), dtype=torch.float32, device=self.device)
        self._dof_axis = torch.tensor(np.array(axes).reshape(-1, 3), **f)
        self._dof_anchor = torch.tensor(np.array(anchors).reshape(-1, 3), **f)
        self._dof_body = torch.tensor(
            [j + 1 for j, n in enumerate(joint_num_dofs) for _ in range(n)], dtype=torch.long)

        # Hinge joints: one dof each. Triplets: a proper basis whose columns are the axes
        # (the last axis negated if the triplet is left-handed; its angle flips sign too).
        self._hinge_joints = [j for j, n in enumerate(joint_num_dofs) if n == 1]
        self._hinge_dofs = self.joint_dof_offsets[self._hinge_joints]
        self._triplet_joints = [j for j, n in enumerate(joint_num_dofs) if n == 3]
        trip_dofs = [[joint_dof_offsets[j] + k for k in range(3)] for j in self._triplet_joints]
        self._triplet_dofs = torch.tensor(trip_dofs, dtype=torch.long).reshape(-1, 3)
        basis = self._dof_axis[self._triplet_dofs].transpose(-1, -2)  # [num_triplets, 3, 3] columns = axes
        anchors_t = self._dof_anchor[self._triplet_dofs]
        for t, j in enumerate(self._triplet_joints):
            if not torch.allclose(basis[t].T @ basis[t], torch.eye(3, **f), atol=1e-5):
                raise MimicKitError("{}: the three hinge axes of body '{}' are not orthogonal".format(
                    self.file, self.body_names[j + 1]))
            if not torch.allclose(anchors_t[t], anchors_t[t, :1].expand(3, 3), atol=1e-6):
                raise MimicKitError("{}: the three hinges of body '{}' have different positions; "
                                    "expected one common pivot".format(self.file, self.body_names[j + 1]))
        sign = torch.ones(len(self._triplet_joints), 3, **f)
        sign[:, 2] = torch.sign(torch.linalg.det(basis)) if len(self._triplet_joints) else sign[:, 2]
        self._triplet_basis = basis * sign[:, None, :]
        self._triplet_sign = sign
        self._parse_default_pose(model)

    def _parse_default_pose(self, model: "mujoco.MjModel") -> None:
        """The keyframe named ``default`` (root qpos and every hinge), else the rest placement."""
        f32 = dict(dtype=torch.float32, device=self.device)
        key = next((k for k in range(model.nkey) if model.key(k).name == DEFAULT_KEYFRAME), None)
        if key is None:
            self.default_root_pos = self.body_local_pos[0].to(**f32)
            self.default_root_rot = self.body_local_rot[0].to(**f32)
            self.default_dof_pos = torch.zeros(self.num_dofs, **f32).clamp(self.dof_low, self.dof_high)
            return
        qpos = model.key_qpos[key]
        adr = [model.jnt_qposadr[model.joint(n).id] for n in self.dof_names]
        self.default_root_pos = torch.tensor(qpos[0:3], **f32)
        self.default_root_rot = torch_util.quat_normalize(torch_util.quat_wxyz_to_xyzw(torch.tensor(qpos[3:7], **f32)))
        self.default_dof_pos = torch.tensor(qpos[adr], **f32)
        outside = (self.default_dof_pos < self.dof_low) | (self.default_dof_pos > self.dof_high)
        if outside.any():
            name = self.dof_names[int(outside.nonzero()[0])]
            raise MimicKitError("{}: keyframe '{}' puts dof '{}' outside its range".format(
                self.file, DEFAULT_KEYFRAME, name))

    # ----------------------------------------------------------------- sizes and lookups
    @property
    def num_bodies(self) -> int:
        """Bodies of the character, the root included."""
        return len(self.body_names)

    @property
    def num_joints(self) -> int:
        """Joints below the root, one per non-root body (bodies without dofs included)."""
        return len(self.body_names) - 1

    @property
    def num_dofs(self) -> int:
        """Dofs below the root (one per hinge)."""
        return len(self.dof_names)

    @property
    def dof_axis(self) -> Tensor:
        """``[num_dofs, 3]`` each hinge's unit axis in its body's frame."""
        return self._dof_axis

    def get_body_id(self, name: str) -> int:
        """Index of body ``name``; MimicKitError naming the known bodies if it is missing."""
        if name not in self.body_names:
            raise MimicKitError("{}: no body '{}' (bodies: {})".format(
                self.file, name, ", ".join(self.body_names)))
        return self.body_names.index(name)

    def get_body_ids(self, names: List[str]) -> Tensor:
        """Long tensor of body indices for ``names``."""
        return torch.tensor([self.get_body_id(n) for n in names], dtype=torch.long)

    # ----------------------------------------------------------------- pose coordinates
    def dof_pos_to_joint_rot(self, dof_pos: Tensor) -> Tensor:
        """Hinge angles ``[..., num_dofs]`` (rad) to local rotations ``[..., num_joints, 4]``."""
        batch = dof_pos.shape[:-1]
        joint_rot = torch_util.quat_identity(batch + (self.num_joints,), dtype=dof_pos.dtype,
                                             device=dof_pos.device)
        if self._hinge_joints:
            joint_rot[..., self._hinge_joints, :] = torch_util.quat_from_axis_angle(
                self._dof_axis[self._hinge_dofs].to(dof_pos), dof_pos[..., self._hinge_dofs])
        if self._triplet_joints:
            angles = dof_pos[..., self._triplet_dofs]  # [..., num_triplets, 3]
            axes = self._dof_axis[self._triplet_dofs].to(dof_pos)
            q = torch_util.quat_from_axis_angle(axes[:, 0], angles[..., 0])
            q = torch_util.quat_mul(q, torch_util.quat_from_axis_angle(axes[:, 1], angles[..., 1]))
            q = torch_util.quat_mul(q, torch_util.quat_from_axis_angle(axes[:, 2], angles[..., 2]))
            joint_rot[..., self._triplet_joints, :] = q
        return joint_rot

    def joint_rot_to_dof_pos(self, joint_rot: Tensor) -> Tensor:
        """Local rotations ``[..., num_joints, 4]`` to hinge angles ``[..., num_dofs]`` (rad).

        A triplet's angles come from an Euler decomposition in its axis order (the middle
        angle in [-pi/2, pi/2]); a single hinge takes the rotation's twist about its axis.
        """
        batch = joint_rot.shape[:-2]
        dof_pos = torch.zeros(batch + (self.num_dofs,), dtype=joint_rot.dtype, device=joint_rot.device)
        if self._hinge_joints:
            q = joint_rot[..., self._hinge_joints, :]
            axis = self._dof_axis[self._hinge_dofs].to(joint_rot)
            dof_pos[..., self._hinge_dofs] = torch_util.wrap_angle(
                2.0 * torch.atan2((q[..., :3] * axis).sum(-1), q[..., 3]))
        if self._triplet_joints:
            m = torch_util.quat_to_matrix(joint_rot[..., self._triplet_joints, :])
            basis = self._triplet_basis.to(joint_rot)
            m_local = basis.transpose(-1, -2) @ m @ basis
            dof_pos[..., self._triplet_dofs] = _euler_xyz_from_matrix(m_local) * self._triplet_sign.to(joint_rot)
        return dof_pos

    def joint_dof_to_joint_rot(self, joint_dof: Tensor) -> Tensor:
        """Motion-file dofs ``[..., num_dofs]`` (exp map / angle, rad) to ``[..., num_joints, 4]``."""
        joint_rot = self.dof_pos_to_joint_rot(
            torch.where(self._is_triplet_dof(), torch.zeros_like(joint_dof), joint_dof))
        if self._triplet_joints:
            joint_rot[..., self._triplet_joints, :] = torch_util.exp_map_to_quat(
                joint_dof[..., self._triplet_dofs])
        return joint_rot

    def joint_rot_to_joint_dof(self, joint_rot: Tensor) -> Tensor:
        """Local rotations ``[..., num_joints, 4]`` to motion-file dofs ``[..., num_dofs]``."""
        joint_dof = self.joint_rot_to_dof_pos(joint_rot)
        if self._triplet_joints:
            joint_dof[..., self._triplet_dofs] = torch_util.quat_to_exp_map(
                joint_rot[..., self._triplet_joints, :])
        return joint_dof

    def joint_dof_to_dof_pos(self, joint_dof: Tensor) -> Tensor:
        """Motion-file dofs to hinge angles, through the rotation."""
        return self.joint_rot_to_dof_pos(self.joint_dof_to_joint_rot(joint_dof))

    def dof_pos_to_joint_dof(self, dof_pos: Tensor) -> Tensor:
        """Hinge angles to motion-file dofs, through the rotation."""
        return self.joint_rot_to_joint_dof(self.dof_pos_to_joint_rot(dof_pos))

    def _is_triplet_dof(self) -> Tensor:
        mask = torch.zeros(self.num_dofs, dtype=torch.bool, device=self._dof_axis.device)
        mask[self._triplet_dofs.reshape(-1)] = True
        return mask

    def _triplet_rate_jacobian(self, dof_pos: Tensor) -> Tensor:
        """``[..., num_triplets, 3, 3]`` J with omega = J * euler_rates, omega in the parent frame."""
        angles = dof_pos[..., self._triplet_dofs]
        axes = self._dof_axis[self._triplet_dofs].to(dof_pos).expand(angles.shape[:-1] + (3, 3))
        q1 = torch_util.quat_from_axis_angle(axes[..., 0, :], angles[..., 0])
        q12 = torch_util.quat_mul(q1, torch_util.quat_from_axis_angle(axes[..., 1, :], angles[..., 1]))
        cols = [axes[..., 0, :], torch_util.quat_rotate(q1, axes[..., 1, :]),
                torch_util.quat_rotate(q12, axes[..., 2, :])]
        return torch.stack(cols, dim=-1)

    def dof_vel_to_joint_dof_vel(self, dof_pos: Tensor, dof_vel: Tensor) -> Tensor:
        """Hinge rates ``[..., num_dofs]`` (rad/s) to motion-file dof velocities.

        A triplet's entries become the joint's angular velocity (rad/s) expressed in its
        parent's frame; a single hinge keeps its rate.
        """
        out = dof_vel.clone()
        if self._triplet_joints:
            jac = self._triplet_rate_jacobian(dof_pos)
            out[..., self._triplet_dofs] = (jac @ dof_vel[..., self._triplet_dofs].unsqueeze(-1)).squeeze(-1)
        return out

    def joint_dof_vel_to_dof_vel(self, dof_pos: Tensor, joint_dof_vel: Tensor) -> Tensor:
        """Inverse of :meth:`dof_vel_to_joint_dof_vel` (least squares at a gimbal singularity)."""
        out = joint_dof_vel.clone()
        if self._triplet_joints:
            jac = self._triplet_rate_jacobian(dof_pos)
            omega = joint_dof_vel[..., self._triplet_dofs].unsqueeze(-1)
            out[..., self._triplet_dofs] = (torch.linalg.pinv(jac) @ omega).squeeze(-1)
        return out

    # ----------------------------------------------------------------- kinematics
    def forward_kinematics(self, root_pos: Tensor, root_rot: Tensor,
                           joint_rot: Tensor) -> Tuple[Tensor, Tensor]:
        """World body positions ``[..., num_bodies, 3]`` (m) and rotations ``[..., num_bodies, 4]``.

        root_pos: ``[..., 3]`` m, root_rot: ``[..., 4]``, joint_rot: ``[..., num_joints, 4]``.
        Hinge anchors off the body origin are honoured as MuJoCo does.
        """
        body_pos = [root_pos]
        body_rot = [root_rot]
        local_pos = self.body_local_pos.to(root_pos)
        local_rot = self.body_local_rot.to(root_rot)
        anchors = self._dof_anchor.to(root_pos)
        for b in range(1, self.num_bodies):
            p = int(self.parent_indices[b])
            rot = torch_util.quat_mul(body_rot[p], local_rot[b].expand_as(root_rot))
            pos = body_pos[p] + torch_util.quat_rotate(body_rot[p], local_pos[b].expand_as(root_pos))
            new_rot = torch_util.quat_mul(rot, joint_rot[..., b - 1, :])
            n = int(self.joint_num_dofs[b - 1])
            if n > 0:
                anchor = anchors[int(self.joint_dof_offsets[b - 1])].expand_as(root_pos)
                pos = pos + torch_util.quat_rotate(rot, anchor) - torch_util.quat_rotate(new_rot, anchor)
            body_pos.append(pos)
            body_rot.append(new_rot)
        return torch.stack(body_pos, dim=-2), torch.stack(body_rot, dim=-2)

"""Batched rotation maths in torch.

**Quaternion order for the whole code base: (x, y, z, w), scalar last.**
This is the only place that states it. Engines whose simulator uses another order
(MuJoCo stores w, x, y, z) convert at their boundary with :func:`quat_wxyz_to_xyzw` and
:func:`quat_xyzw_to_wxyz`; nothing else converts.

Every function broadcasts over leading dimensions: a quaternion argument is
``[..., 4]``, a vector ``[..., 3]``, an angle ``[...]`` (rad). Quaternions are unit
quaternions unless stated.
"""
from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-8


def quat_wxyz_to_xyzw(q: Tensor) -> Tensor:
    """Reorder ``[..., 4]`` (w, x, y, z) quaternions to the code base's (x, y, z, w)."""
    return torch.cat([q[..., 1:4], q[..., 0:1]], dim=-1)


def quat_xyzw_to_wxyz(q: Tensor) -> Tensor:
    """Reorder ``[..., 4]`` (x, y, z, w) quaternions to (w, x, y, z) for an engine."""
    return torch.cat([q[..., 3:4], q[..., 0:3]], dim=-1)


def quat_identity(shape, dtype=torch.float32, device=None) -> Tensor:
    """Identity quaternions of shape ``[*shape, 4]``."""
    q = torch.zeros(tuple(shape) + (4,), dtype=dtype, device=device)
    q[..., 3] = 1.0
    return q


def quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    if a.shape != b.shape:
        a, b = torch.broadcast_tensors(a, b)
    av, aw = a[..., :3], a[..., 3:]
    bv, bw = b[..., :3], b[..., 3:]
    v = aw * bv + bw * av + torch.cross(av, bv, dim=-1)
    w = aw * bw - (av * bv).sum(dim=-1, keepdim=True)
    return torch.cat([v, w], dim=-1)


def quat_conjugate(q: Tensor) -> Tensor:
    """Conjugate, the inverse of a unit quaternion."""
    return torch.cat([-q[..., :3], q[..., 3:]], dim=-1)


def quat_normalize(q: Tensor) -> Tensor:
    """``q`` ``[..., 4]`` scaled to unit norm (a zero quaternion stays zero)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(EPS)


def quat_pos(q: Tensor) -> Tensor:
    """The same rotation with ``w >= 0`` (the canonical hemisphere)."""
    return torch.where(q[..., 3:4] < 0, -q, q)


def quat_rotate(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors ``v`` by ``q``: ``q v q^-1``."""
    u = q[..., :3]
    w = q[..., 3:4]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_rotate_inverse(q: Tensor, v: Tensor) -> Tensor:
    """Rotate vectors ``v`` by ``q^-1`` (world frame to ``q``'s local frame)."""
    return quat_rotate(quat_conjugate(q), v)


def quat_from_axis_angle(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotation by ``angle`` [...] rad about the unit ``axis`` [..., 3]."""
    half = 0.5 * angle.unsqueeze(-1)
    return torch.cat([axis * torch.sin(half), torch.cos(half)], dim=-1)


def exp_map_to_quat(e: Tensor) -> Tensor:
    """Exponential map (axis * angle, rad) ``[..., 3]`` to a quaternion ``[..., 4]``."""
    angle = e.norm(dim=-1)
    half = 0.5 * angle
    # sin(half)/angle with its limit 0.5 at angle -> 0 (Taylor series below 1e-4 rad).
    small = angle < 1e-4
    scale = torch.where(small, 0.5 - angle * angle / 48.0,
                        torch.sin(half) / torch.where(small, torch.ones_like(angle), angle))
    return torch.cat([e * scale.unsqueeze(-1), torch.cos(half).unsqueeze(-1)], dim=-1)


def quat_to_exp_map(q: Tensor) -> Tensor:
    """Quaternion ``[..., 4]`` to exponential map ``[..., 3]`` with angle in [0, pi] rad."""
    q = quat_pos(q)
    sin_half = q[..., :3].norm(dim=-1)
    angle = 2.0 * torch.atan2(sin_half, q[..., 3])
    small = sin_half < 1e-6
    scale = torch.where(small, 2.0 / q[..., 3].clamp_min(EPS),
                        angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return q[..., :3] * scale.unsqueeze(-1)


def quat_angle(q: Tensor) -> Tensor:
    """Rotation angle of ``q`` in [0, pi] rad."""
    return 2.0 * torch.atan2(q[..., :3].norm(dim=-1), q[..., 3].abs())


def quat_diff_angle(a: Tensor, b: Tensor) -> Tensor:
    """Angle [...] rad of the rotation taking ``b`` to ``a``."""
    return quat_angle(quat_mul(a, quat_conjugate(b)))


def slerp(q0: Tensor, q1: Tensor, t: Tensor) -> Tensor:
    """Spherical linear interpolation along the shorter arc; ``t`` is ``[...]`` in [0, 1]."""
    t = t.unsqueeze(-1)
    cos_half = (q0 * q1).sum(dim=-1, keepdim=True)
    q1 = torch.where(cos_half < 0, -q1, q1)
    cos_half = cos_half.abs().clamp(max=1.0)
    half = torch.acos(cos_half)
    sin_half = torch.sin(half)
    near = sin_half < 1e-6
    safe_sin = torch.where(near, torch.ones_like(sin_half), sin_half)
    w0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * half) / safe_sin)
    w1 = torch.where(near, t, torch.sin(t * half) / safe_sin)
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` (columns are the rotated x, y, z axes)."""
    x, y, z, w = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """Rotation matrices ``[..., 3, 3]`` to quaternions with ``w >= 0``."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate solutions; pick the best-conditioned one per element.
    cand = torch.stack([
        torch.stack([1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                     m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
        torch.stack([m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                     m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 - m00 - m11 + m22, m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1], 1 + m00 + m11 + m22], -1),
    ], dim=-2)
    diag = torch.stack([1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                        1 - m00 - m11 + m22, 1 + m00 + m11 + m22], dim=-1)
    best = diag.argmax(dim=-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return quat_pos(quat_normalize(q))


def quat_to_tan_norm(q: Tensor) -> Tensor:
    """Tangent-normal 6D encoding ``[..., 6]``: the rotated x axis and z axis, concatenated.

    They are the first and last columns of :func:`quat_to_matrix` (unit ``q``), written out.
    """
    x, y, z, w = q.unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w),
                        2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)], dim=-1)


def calc_heading(q: Tensor) -> Tensor:
    """Heading angle [...] rad: the yaw of the rotated x axis about world z (Z-up world).

    The rotated x axis is the first column of :func:`quat_to_matrix` (unit ``q``).
    """
    x, y, z, w = q.unbind(-1)
    return torch.atan2(2 * (x * y + z * w), 1 - 2 * (y * y + z * z))


def calc_heading_quat(q: Tensor) -> Tensor:
    """Yaw-only rotation about world z with the heading of ``q``."""
    heading = calc_heading(q)
    z_axis = torch.zeros_like(q[..., :3])
    z_axis[..., 2] = 1.0
    return quat_from_axis_angle(z_axis, heading)


def calc_heading_quat_inv(q: Tensor) -> Tensor:
    """Inverse of :func:`calc_heading_quat`: maps world vectors into the heading frame."""
    return quat_conjugate(calc_heading_quat(q))


def wrap_angle(a: Tensor) -> Tensor:
    """Wrap angles to [-pi, pi)."""
    return torch.remainder(a + torch.pi, 2.0 * torch.pi) - torch.pi

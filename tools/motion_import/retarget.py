"""Map a Z-up :class:`SourceMotion` onto our character: joint rotations by name, root scaled.

Rotations: every mapped body of ours takes the world rotation of its source body,
``G_ours[b] = G_src[s(b)] * C[b]``; a body without a source joint keeps the identity
local rotation. ``C[b]`` accounts for differing rest poses: it turns our rest bone (from
the body to its first mapped child) onto the source's rest bone along the shortest arc
(a leaf body uses its parent's turn). For skeletons with the same rest pose (DeepMimic
humanoid3d, amp_humanoid, ours) ``C`` is the identity and each local rotation is copied
as is; for MimicKit's T-pose arms it is the 90 deg turn between hanging and raised arms.
A hinge of ours between a 3-dof parent and a mapped child (an elbow, a knee) is placed by the
source's bone directions instead (:func:`hinge_in_bend_plane`): the parent is twisted about its
bone so that the hinge axis is normal to the source's bend plane, and the hinge angle is the
bend. Sources whose elbows turn about other axes too (BVH captures) then keep their forearm
directions, where taking the rotation's twist about our axis would drop part of the bend.
Our local rotations then give the joint dofs through
:meth:`KinCharModel.joint_rot_to_joint_dof` (exp map for 3-dof joints, the twist about the
hinge axis for 1-dof joints) and the root rotation its exp map.

Root translation is scaled by the ratio of leg lengths (ours / source): hip-to-knee plus
knee-to-ankle at rest, plus the ankle height when both skeletons give it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

from tools.motion_import.ground import default_foot_bodies
from tools.motion_import.source import SourceMotion, SourceSkeleton

# A 1-dof (0-dof) joint whose source rotation leaves its axis (the identity) by more
# than this gets a note.
OFF_AXIS_NOTE_DEG = 5.0
# rad: below this bend, a hinge's bend plane is ill-defined and its parent's twist fades out.
BEND_PLANE_FULL = math.radians(15.0)
# Leg-length ratios this close to 1 leave the root translation unscaled.
SAME_SCALE_TOL = 1e-4


@dataclasses.dataclass
class RetargetResult:
    """Frames for our character before ground alignment.

    Attributes:
        frames: ``[T, 6 + num_dofs]`` native layout (root pos m, root exp map rad, joint dofs).
        scale: factor applied to the root translation.
        leg_lengths: (source, ours) in m, or None when the legs are not mapped.
        notes: remarks for the user.
    """
    frames: np.ndarray
    scale: float
    leg_lengths: Optional[Tuple[float, float]]
    notes: List[str]


def resolve_joint_map(source: SourceMotion, target_names: List[str],
                      overrides: Optional[Dict[str, Optional[str]]] = None,
                      overrides_file: str = "joint map") -> Dict[int, int]:
    """Our body index -> source body index, from the format's table and ``overrides``.

    Default-table entries naming a body missing on either side are skipped; ``overrides``
    (already checked by :func:`load_joint_map`) replace them, ``None`` unmapping a joint.
    The source root always maps to our root.

    Raises:
        MimicKitError: if two source joints map to the same body of ours (naming the file).
    """
    src_names = source.skeleton.body_names
    table = {s: o for s, o in source.default_joint_map.items() if s in src_names and o in target_names}
    for s, o in (overrides or {}).items():
        if o is None:
            table.pop(s, None)
        else:
            table[s] = o
    table[src_names[0]] = target_names[0]
    ours_to_src = {}
    for s, o in table.items():
        b = target_names.index(o)
        if b in ours_to_src:
            raise MimicKitError("{}: source joints '{}' and '{}' both map to our body '{}'".format(
                overrides_file, src_names[ours_to_src[b]], s, o))
        ours_to_src[b] = src_names.index(s)
    return ours_to_src


def world_rotations(skeleton: SourceSkeleton, local_rot: torch.Tensor) -> torch.Tensor:
    """Source world rotations ``[T, B, 4]`` from :attr:`SourceMotion.local_rot` ``[T, B, 4]``."""
    rest = torch.as_tensor(skeleton.local_rot, dtype=local_rot.dtype)
    out = [local_rot[:, 0]]
    for b in range(1, skeleton.num_bodies):
        p = int(skeleton.parent_indices[b])
        out.append(torch_util.quat_mul(torch_util.quat_mul(out[p], rest[b].expand_as(out[p])), local_rot[:, b]))
    return torch.stack(out, dim=1)


def shortest_arc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The smallest rotation ``[4]`` taking direction ``a`` [3] onto direction ``b`` [3]."""
    a = a / a.norm()
    b = b / b.norm()
    cross = torch.linalg.cross(a, b)
    sin, cos = float(cross.norm()), float(a @ b)
    if sin < 1e-9:
        if cos > 0:
            return torch_util.quat_identity((), dtype=a.dtype)
        perp = torch.linalg.cross(a, torch.eye(3, dtype=a.dtype)[int(torch.argmin(a.abs()))])
        return torch_util.quat_from_axis_angle(perp / perp.norm(), torch.tensor(math.pi, dtype=a.dtype))
    return torch_util.quat_from_axis_angle(cross / sin, torch.tensor(math.atan2(sin, cos), dtype=a.dtype))


def source_positions(skeleton: SourceSkeleton, src_world: torch.Tensor) -> torch.Tensor:
    """Source joint positions ``[T, B, 3]`` (m) relative to the root, from world rotations ``[T, B, 4]``."""
    local_pos = torch.as_tensor(skeleton.local_pos, dtype=src_world.dtype)
    out = [torch.zeros(src_world.shape[0], 3, dtype=src_world.dtype)]
    for b in range(1, skeleton.num_bodies):
        p = int(skeleton.parent_indices[b])
        out.append(out[p] + torch_util.quat_rotate(src_world[:, p], local_pos[b].expand_as(out[p])))
    return torch.stack(out, dim=1)


def rest_fk(skeleton: SourceSkeleton) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rest-pose world positions ``[B, 3]`` and rotations ``[B, 4]`` (float64), root at the origin unrotated.

    The motion's kinematics (:func:`world_rotations`, :func:`source_positions`) at identity joint rotations.
    """
    rot = world_rotations(skeleton, torch_util.quat_identity((1, skeleton.num_bodies), dtype=torch.float64))
    return source_positions(skeleton, rot)[0], rot[0]


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def hinge_in_bend_plane(parent_world: torch.Tensor, rest_rot: torch.Tensor, axis: torch.Tensor, bone: torch.Tensor,
                        child_offset: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Twist a hinge's parent about its bone and bend the hinge so the child points along ``target``.

    The twist ``phi`` about the parent's bone direction ``d`` solves
    ``a(phi) . t = a . u`` (``a`` the hinge axis, ``u`` the child direction at angle 0, ``t``
    the target, all unit, world): then turning ``u`` about ``a(phi)`` reaches ``t``. Of its two
    solutions the smaller twist is taken (the other turns the limb over and bends the hinge the
    other way; a bend beyond the hinge's range is left to the range check); it fades to no twist
    as the bend (``t``'s angle from ``d``) drops below :data:`BEND_PLANE_FULL`. The hinge angle is
    ``t``'s angle about ``a(phi)`` from ``u``.

    Args:
        parent_world: ``[T, 4]`` the parent's world rotations.
        rest_rot: ``[4]`` the hinge body's rest rotation in the parent's frame.
        axis: ``[3]`` the hinge axis in the hinge body's frame.
        bone: ``[3]`` the hinge body's offset in the parent's frame (m).
        child_offset: ``[3]`` the child's offset in the hinge body's frame (m).
        target: ``[T, 3]`` world direction from the hinge to the child in the source.

    Returns:
        ``(parent_world [T, 4], hinge_world [T, 4])``: the twisted parent and the hinge body's
        world rotations.
    """
    num = parent_world.shape[0]
    q0 = torch_util.quat_mul(parent_world, rest_rot.expand(num, 4))
    d = _unit(torch_util.quat_rotate(parent_world, bone.expand(num, 3)))
    a = _unit(torch_util.quat_rotate(q0, axis.expand(num, 3)))
    u = _unit(torch_util.quat_rotate(q0, child_offset.expand(num, 3)))
    t = _unit(target)
    along = _dot(a, d)[:, None] * d
    c_const, c_cos, c_sin = _dot(along, t), _dot(a - along, t), _dot(torch.linalg.cross(d, a), t)
    amp = torch.sqrt(c_cos ** 2 + c_sin ** 2)
    base = torch.atan2(c_sin, c_cos)
    half = torch.acos(((_dot(a, u) - c_const) / amp.clamp_min(1e-12)).clamp(-1.0, 1.0))

    phi_1, phi_2 = (torch.remainder(phi + math.pi, 2.0 * math.pi) - math.pi for phi in (base + half, base - half))
    phi = torch.where(phi_1.abs() <= phi_2.abs(), phi_1, phi_2)
    bend = torch.acos(_dot(d, t).clamp(-1.0, 1.0))
    twist = torch_util.quat_from_axis_angle(d, phi * (bend / BEND_PLANE_FULL).clamp(max=1.0))
    a_phi, u_phi = torch_util.quat_rotate(twist, a), torch_util.quat_rotate(twist, u)
    u_p, t_p = u_phi - _dot(a_phi, u_phi)[:, None] * a_phi, t - _dot(a_phi, t)[:, None] * a_phi
    angle = torch.atan2(_dot(a_phi, torch.linalg.cross(u_p, t_p)), _dot(u_p, t_p))
    parent_world = torch_util.quat_mul(twist, parent_world)
    hinge = torch_util.quat_from_axis_angle(axis.expand(num, 3), angle)
    hinge_world = torch_util.quat_mul(torch_util.quat_mul(parent_world, rest_rot.expand(num, 4)), hinge)
    return parent_world, hinge_world


def _children(parents: List[int], b: int) -> List[int]:
    return [c for c in range(len(parents)) if parents[c] == b]


def leg_chain(char: KinCharModel, foot_bodies: Optional[Sequence[str]] = None) -> Optional[Tuple[int, int, int]]:
    """(hip, knee, foot) body indices: our first foot body (of ``foot_bodies``; default: the
    bodies whose name contains ``foot``), its parent and grandparent; None without a foot or
    with the foot too near the root."""
    feet = list(foot_bodies) if foot_bodies is not None else default_foot_bodies(char.body_names)
    if not feet:
        return None
    foot = char.get_body_id(feet[0])
    knee = int(char.parent_indices[foot])
    hip = int(char.parent_indices[knee]) if knee >= 0 else -1
    return None if min(knee, hip) < 0 else (hip, knee, foot)


def chain_length(pos: torch.Tensor, ids: List[int]) -> float:
    """Length (m) of the polyline through ``pos[ids]`` (``pos`` ``[B, 3]`` m)."""
    return float(sum((pos[b] - pos[a]).norm() for a, b in zip(ids[:-1], ids[1:])))


def leg_lengths(source: SourceSkeleton, src_pos: torch.Tensor, char: KinCharModel, our_pos: torch.Tensor,
                ours_to_src: Dict[int, int], our_soles: Dict[str, float],
                foot_bodies: Optional[Sequence[str]] = None) -> Optional[Tuple[float, float]]:
    """(source, ours) leg length in m: hip-to-knee + knee-to-ankle (+ ankle height if both known).

    The leg is our first foot body (:func:`leg_chain`), its parent (knee) and grandparent
    (hip), and their source bodies; None when any of them is unmapped.
    """
    chain = leg_chain(char, foot_bodies)
    if chain is None or any(b not in ours_to_src for b in chain):
        return None
    src_ids = [ours_to_src[b] for b in chain]
    src_len, our_len = chain_length(src_pos, src_ids), chain_length(our_pos, list(chain))
    our_foot = char.body_names[chain[2]]
    src_foot = source.body_names[src_ids[2]]
    if src_foot in source.sole_heights and our_foot in our_soles:
        src_len += source.sole_heights[src_foot]
        our_len += our_soles[our_foot]
    return src_len, our_len


def retarget(source: SourceMotion, char: KinCharModel, ours_to_src: Dict[int, int],
             our_soles: Dict[str, float], foot_bodies: Optional[Sequence[str]] = None) -> RetargetResult:
    """Frames of ``source`` for ``char`` (see the module docstring); no ground alignment.

    ours_to_src: from :func:`resolve_joint_map`. our_soles: ankle heights (m) of our bodies,
    from :func:`tools.motion_import.ground.sole_heights`. foot_bodies: our feet, the first
    giving the leg length (:func:`leg_chain`).
    """
    skel = source.skeleton
    f64 = torch.float64
    src_pos, src_rest = rest_fk(skel)
    num_joints = char.num_joints
    our_pos, our_rest = char.forward_kinematics(torch.zeros(3), torch_util.quat_identity(()),
                                                torch_util.quat_identity((num_joints,)))
    our_pos, our_rest = our_pos.double(), our_rest.double()
    our_local_rest = char.body_local_rot.double()
    parents = char.parent_indices.tolist()

    src_world = world_rotations(skel, torch.as_tensor(source.local_rot, dtype=f64))
    src_joint_pos = source_positions(skel, src_world)
    num_frames = src_world.shape[0]
    align = [torch_util.quat_identity((), dtype=f64)]  # world-frame rest alignment per body of ours
    world = [None] * char.num_bodies
    for b in range(char.num_bodies):
        child = next((c for c in _children(parents, b) if c in ours_to_src), None)
        if b > 0:
            align.append(align[parents[b]])
            if b in ours_to_src:
                if child is not None:
                    d_src = src_pos[ours_to_src[child]] - src_pos[ours_to_src[b]]
                    d_our = our_pos[child] - our_pos[b]
                    if d_src.norm() > 1e-6 and d_our.norm() > 1e-6:
                        align[b] = shortest_arc(d_our, d_src)
        if b in ours_to_src:
            s = ours_to_src[b]
            corr = torch_util.quat_mul(torch_util.quat_conjugate(src_rest[s]),
                                       torch_util.quat_mul(align[b], our_rest[b]))
            world[b] = torch_util.quat_mul(src_world[:, s], corr.expand(num_frames, 4))
            p = parents[b]
            if child is not None and p in ours_to_src and int(char.joint_num_dofs[b - 1]) == 1 \
                    and int(char.joint_num_dofs[p - 1]) == 3:
                dof = int(char.joint_dof_offsets[b - 1])
                world[p], world[b] = hinge_in_bend_plane(
                    world[p], our_local_rest[b], char.dof_axis[dof].double(), char.body_local_pos[b].double(),
                    char.body_local_pos[child].double(), src_joint_pos[:, ours_to_src[child]] - src_joint_pos[:, s])
        else:
            world[b] = torch_util.quat_mul(world[parents[b]], our_local_rest[b].expand(num_frames, 4))
    joint_rot = torch.stack([
        torch_util.quat_mul(torch_util.quat_conjugate(
            torch_util.quat_mul(world[parents[b]], our_local_rest[b].expand(num_frames, 4))), world[b])
        for b in range(1, char.num_bodies)], dim=1)
    joint_rot = torch_util.quat_normalize(joint_rot).float()
    joint_dof = char.joint_rot_to_joint_dof(joint_rot)

    notes = []
    kept = char.joint_dof_to_joint_rot(joint_dof)
    off_axis = torch_util.quat_diff_angle(kept, joint_rot).max(dim=0).values * 180.0 / math.pi
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        if n < 3 and float(off_axis[j]) > OFF_AXIS_NOTE_DEG:
            what = "leaves the hinge axis" if n == 1 else "is not the identity of this dof-less body"
            notes.append("{}: the source rotation {} by up to {:.1f} deg (dropped)".format(
                char.body_names[j + 1], what, float(off_axis[j])))

    legs = leg_lengths(skel, src_pos, char, our_pos, ours_to_src, our_soles, foot_bodies)
    scale = 1.0
    if legs is None:
        notes.append("legs not mapped: root translation not scaled")
    elif abs(legs[1] / legs[0] - 1.0) > SAME_SCALE_TOL:
        scale = legs[1] / legs[0]
    frames = np.concatenate([scale * np.asarray(source.root_pos, dtype=np.float64),
                             torch_util.quat_to_exp_map(world[0]).numpy(),
                             joint_dof.double().numpy()], axis=1)
    return RetargetResult(frames=frames, scale=scale, leg_lengths=legs, notes=notes)

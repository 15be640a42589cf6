"""BVH motion capture (``.bvh``: Y-up, file units) as :class:`SourceMotion` (Z-up, m).

The file is parsed with bvhio (https://github.com/Wasserwecken/bvhio, ``pip install bvhio``):
each joint's rest offset (file units, in its parent's frame) and, per frame, its local
position and rotation (the rotation channels composed in the file's order; the rest pose
has every rotation the identity). End sites are left out.

Conversion, in this order:

1. Units to metres by ``scale`` (m per file unit): given, or inferred from the rest leg
   (hip-to-knee + knee-to-ankle of the mapped left leg) as the unit of :data:`UNITS` that
   makes it closest to a human's :data:`HUMAN_LEG` (CMU's 0.056444 m per unit, LAFAN1's
   centimetres, inches, metres).
2. Y-up to Z-up as the DeepMimic reader does (:func:`y_up_to_z_up_pos`,
   :func:`y_up_to_z_up_rot`).
3. The rest pose turned about z to face +x like our characters (forward = left hip minus
   right hip, crossed with up): offsets ``o -> R o``, local rotations ``q -> R q R^-1``,
   the root's world rotation ``q0 -> q0 R^-1``. World positions stay as captured; the
   rest bones now point where ours do, so the retargeting's rest alignment (shortest arcs,
   :mod:`tools.motion_import.retarget`) turns only the limbs (CMU's T-pose arms).

Joints are mapped onto our humanoid by :data:`NAME_TABLE`: CMU's ASF-style names (Hips,
LeftHip, LeftKnee, LeftAnkle, Chest2, Head, LeftShoulder, LeftElbow, LeftWrist) and the
Mixamo/LAFAN1 ones (LeftUpLeg, LeftLeg, LeftFoot, Spine2, LeftArm, LeftForeArm, LeftHand;
there LeftShoulder is the clavicle, left unmapped). ``--joint_map`` overrides it.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mimickit.anim.motion import check_finite
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, one_line, require_file

from tools.motion_import.deepmimic import y_up_to_z_up_pos, y_up_to_z_up_rot
from tools.motion_import.source import SourceMotion, SourceSkeleton

BVHIO_INSTALL = "pip install bvhio"
# m per file unit, by name.
UNITS = {"m": 1.0, "cm": 0.01, "inch": 0.0254, "CMU": 0.056444}
# m: a human's hip-to-knee + knee-to-ankle, for inferring the unit.
HUMAN_LEG = 0.8
# Our humanoid's body -> the source joints that drive it, the first one present winning.
NAME_TABLE: Dict[str, List[str]] = {
    "torso": ["Spine2", "Chest2", "Spine1", "Chest", "Spine"],
    "head": ["Head"],
    **{"{}_{}".format(side, ours): [name.format(Side) for name in names]
       for side, Side in (("right", "Right"), ("left", "Left"))
       for ours, names in (("thigh", ["{}UpLeg", "{}Hip"]), ("shin", ["{}Leg", "{}Knee"]),
                           ("foot", ["{}Foot", "{}Ankle"]), ("upper_arm", ["{}Arm", "{}Shoulder"]),
                           ("lower_arm", ["{}ForeArm", "{}Elbow"]), ("hand", ["{}Hand", "{}Wrist"]))},
}


def name_table(joint_names: List[str]) -> Dict[str, str]:
    """Source joint -> our body for a skeleton with ``joint_names`` (:data:`NAME_TABLE`); the
    first joint is the root and maps to ``pelvis``."""
    table = {joint_names[0]: "pelvis"}
    for ours, candidates in NAME_TABLE.items():
        found = next((c for c in candidates if c in joint_names), None)
        if found is not None and found not in table:
            table[found] = ours
    return table


def _import_bvhio():
    try:
        import bvhio
    except ImportError:
        raise MimicKitError("reading .bvh files needs bvhio: {}".format(BVHIO_INSTALL)) from None
    return bvhio


def _joints(root) -> List[Tuple[object, int]]:
    """(bvhio joint, parent index) in depth-first order, parents first."""
    out: List[Tuple[object, int]] = []
    stack = [(root, -1)]
    while stack:
        joint, parent = stack.pop()
        out.append((joint, parent))
        index = len(out) - 1
        stack.extend((child, index) for child in reversed(joint.Children))
    return out


def _turn_to_face_x(offsets: np.ndarray, parents: np.ndarray, names: List[str],
                    table: Dict[str, str]) -> Tuple[np.ndarray, str]:
    """``(quaternion [4] about z, note)`` turning the rest pose (Z-up offsets) to face +x."""
    by_body = {o: s for s, o in table.items()}
    if "left_thigh" not in by_body or "right_thigh" not in by_body:
        return np.array([0.0, 0.0, 0.0, 1.0]), "hips not mapped: rest facing kept"
    pos = np.zeros_like(offsets)
    for b in range(1, len(names)):
        pos[b] = pos[parents[b]] + offsets[b]
    left = pos[names.index(by_body["left_thigh"])] - pos[names.index(by_body["right_thigh"])]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    yaw = math.atan2(forward[1], forward[0])
    note = "rest pose turned {:.0f} deg about z to face +x".format(-math.degrees(yaw))
    return np.array([0.0, 0.0, math.sin(-yaw / 2.0), math.cos(-yaw / 2.0)]), note


def infer_scale(offsets: np.ndarray, parents: np.ndarray, names: List[str], table: Dict[str, str]) -> Optional[float]:
    """m per file unit of :data:`UNITS` making the rest left leg (file units) closest to
    :data:`HUMAN_LEG`; None when the left leg is not mapped."""
    by_body = {o: s for s, o in table.items()}
    if any(b not in by_body for b in ("left_thigh", "left_shin", "left_foot")):
        return None
    knee, ankle = names.index(by_body["left_shin"]), names.index(by_body["left_foot"])
    hip = names.index(by_body["left_thigh"])
    if parents[ankle] != knee or parents[knee] != hip:
        return None
    leg = float(np.linalg.norm(offsets[knee]) + np.linalg.norm(offsets[ankle]))
    if leg <= 0.0:
        return None
    return min(UNITS.values(), key=lambda unit: abs(math.log(leg * unit / HUMAN_LEG)))


def read_bvh(path: str, source_char: Optional[str] = None, scale: Optional[float] = None) -> SourceMotion:
    """Read a BVH file as a :class:`SourceMotion` (Z-up, m; see the module docstring).

    Args:
        path: the ``.bvh`` file.
        source_char: not used (the skeleton is in the file); must be None.
        scale: m per file unit (``--bvh_scale``); default: inferred from the leg length.

    Raises:
        MimicKitError: bvhio missing, a file bvhio cannot parse (its message), fewer than 2
            frames, a frame time <= 0, NaN/Inf (naming frame and column), a scale <= 0, a
            ``source_char``, or a unit that cannot be inferred (no mapped left leg).
    """
    require_file(path, "motion file")
    if source_char is not None:
        raise MimicKitError("{}: a BVH file holds its skeleton; it takes no --source_char (got {})".format(
            path, source_char))
    if scale is not None and not scale > 0:
        raise MimicKitError("{}: --bvh_scale must be > 0 m per unit, got {}".format(path, scale))
    bvhio = _import_bvhio()
    try:
        container = bvhio.readAsBvh(path)
    except Exception as e:  # bvhio raises plain exceptions on malformed files
        raise MimicKitError("{}: not a BVH file bvhio can read ({}: {})".format(
            path, type(e).__name__, one_line(str(e)))) from None
    joints = _joints(container.Root)
    names = [j.Name for j, _ in joints]
    parents = np.array([p for _, p in joints], dtype=np.int64)
    num_frames = int(container.FrameCount)
    if num_frames < 2 or any(len(j.Keyframes) != num_frames for j, _ in joints):
        raise MimicKitError("{}: a clip needs at least 2 frames, each with every joint's channels (got {} "
                            "frames)".format(path, num_frames))
    if not container.FrameTime > 0:
        raise MimicKitError("{}: 'Frame Time' must be > 0 s, got {}".format(path, container.FrameTime))
    offsets = y_up_to_z_up_pos(np.array([[j.Offset.x, j.Offset.y, j.Offset.z] for j, _ in joints]))
    root_pos = y_up_to_z_up_pos(np.array([[k.Position.x, k.Position.y, k.Position.z]
                                          for k in container.Root.Keyframes]))
    rot = np.array([[[k.Rotation.x, k.Rotation.y, k.Rotation.z, k.Rotation.w] for k in j.Keyframes]
                    for j, _ in joints]).transpose(1, 0, 2)  # [T, B, 4]
    columns = ["{} position {}".format(names[0], c) for c in "xyz"] + \
        ["{} rotation {}".format(n, c) for n in names for c in "xyzw"]
    check_finite(np.concatenate([root_pos, rot.reshape(num_frames, -1)], axis=1), columns, path)

    table = name_table(names)
    notes = []
    if scale is None:
        scale = infer_scale(offsets, parents, names, table)
        if scale is None:
            raise MimicKitError("{}: cannot infer the unit (no mapped left leg): pass --bvh_scale (m per unit, "
                                "e.g. 0.056444 for CMU, 0.01 for cm)".format(path))
        unit = next(k for k, v in UNITS.items() if v == scale)
        notes.append("unit {} ({:g} m) inferred from the leg length (override with --bvh_scale)".format(unit, scale))
    turn, note = _turn_to_face_x(offsets, parents, names, table)
    notes.append(note)
    f64 = torch.float64
    turn_t = torch.as_tensor(turn, dtype=f64)
    local = y_up_to_z_up_rot(torch_util.quat_normalize(torch.as_tensor(rot, dtype=f64)))
    turns = turn_t.expand_as(local)
    local[:, 1:] = torch_util.quat_mul(torch_util.quat_mul(turns[:, 1:], local[:, 1:]),
                                       torch_util.quat_conjugate(turns[:, 1:]))
    local[:, 0] = torch_util.quat_mul(local[:, 0], torch_util.quat_conjugate(turns[:, 0]))
    offsets = torch_util.quat_rotate(turn_t.expand(len(names), 4), torch.as_tensor(offsets, dtype=f64)).numpy()
    skeleton = SourceSkeleton(body_names=names, parent_indices=parents, local_pos=scale * offsets,
                              local_rot=np.tile([0.0, 0.0, 0.0, 1.0], (len(names), 1)), sole_heights={},
                              file=path)
    notes.append("loop mode: the file has none, clamp used (override with --loop)")
    return SourceMotion(file=path, format="bvh", fps=1.0 / float(container.FrameTime), loop_mode="clamp",
                        skeleton=skeleton, root_pos=scale * root_pos, local_rot=local.numpy(),
                        default_joint_map=table, notes=notes)

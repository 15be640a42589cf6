"""DeepMimic motion files (``.txt``, JSON, Y-up) as :class:`SourceMotion` (Z-up).

A motion holds ``Loop`` (``wrap`` | ``none``) and ``Frames``: per frame the duration to
the next frame (s), the root position (m), the root quaternion (w, x, y, z), then each
non-root joint of the character in ID order: a quaternion (w, x, y, z) for a spherical
joint, an angle about the joint's local z axis (rad) for a revolute joint, nothing for a
fixed joint. For ``humanoid3d`` that is 44 numbers. The world is Y-up, the character faces
+x and its right side is +z.

Conversion to Z-up uses the rotation ``R`` taking Y-up world axes to Z-up ones
(x -> x, y -> z, z -> -y; a +90 deg turn about x): positions ``p -> R p``, every rotation
(root and local) ``q -> R q R^-1``, skeleton offsets ``o -> R o``.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mimickit.anim.motion import check_finite
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, require_file

from tools.motion_import.source import SourceMotion, SourceSkeleton

# Y-up world to Z-up world: +90 deg about x, (x, y, z, w).
Y_UP_TO_Z_UP = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])

# DeepMimic humanoid3d joint names -> our body names.
JOINT_MAP = {
    "root": "pelvis", "chest": "torso", "neck": "head",
    "right_hip": "right_thigh", "right_knee": "right_shin", "right_ankle": "right_foot",
    "right_shoulder": "right_upper_arm", "right_elbow": "right_lower_arm", "right_wrist": "right_hand",
    "left_hip": "left_thigh", "left_knee": "left_shin", "left_ankle": "left_foot",
    "left_shoulder": "left_upper_arm", "left_elbow": "left_lower_arm", "left_wrist": "left_hand",
}

_DOFS = {"spherical": 4, "revolute": 1, "fixed": 0}

# Built-in humanoid3d skeleton (DeepMimic data/characters/humanoid3d.txt), Y-up:
# (name, type, parent index, offset in the parent's frame in m).
_HUMANOID3D_JOINTS = [
    ("root", "none", -1, (0.0, 0.0, 0.0)),
    ("chest", "spherical", 0, (0.0, 0.236151, 0.0)),
    ("neck", "spherical", 1, (0.0, 0.223894, 0.0)),
    ("right_hip", "spherical", 0, (0.0, 0.0, 0.084887)),
    ("right_knee", "revolute", 3, (0.0, -0.421546, 0.0)),
    ("right_ankle", "spherical", 4, (0.0, -0.40987, 0.0)),
    ("right_shoulder", "spherical", 1, (-0.02405, 0.2435, 0.18311)),
    ("right_elbow", "revolute", 6, (0.0, -0.274788, 0.0)),
    ("right_wrist", "fixed", 7, (0.0, -0.258947, 0.0)),
    ("left_hip", "spherical", 0, (0.0, 0.0, -0.084887)),
    ("left_knee", "revolute", 9, (0.0, -0.421546, 0.0)),
    ("left_ankle", "spherical", 10, (0.0, -0.40987, 0.0)),
    ("left_shoulder", "spherical", 1, (-0.02405, 0.2435, -0.18311)),
    ("left_elbow", "revolute", 12, (0.0, -0.274788, 0.0)),
    ("left_wrist", "fixed", 13, (0.0, -0.258947, 0.0)),
]
# Ankle to sole (m): the foot box of humanoid3d (centre 0.0225 m below the ankle, 0.055 m tall).
_HUMANOID3D_SOLES = {"right_ankle": 0.05, "left_ankle": 0.05}

# Frame durations within this relative spread of their mean count as uniform.
UNIFORM_TOLERANCE = 0.01


class DeepMimicCharacter:
    """The skeleton part of a DeepMimic character file (Y-up).

    Attributes:
        names, types, parents: per joint, in ID order (joint 0 is the root).
        offsets: ``[J, 3]`` m in the parent's frame (Y-up).
        soles: ankle-to-sole heights (m) of the joints whose body is a box.
        file: the character file or ``built-in humanoid3d``.
    """

    def __init__(self, names: List[str], types: List[str], parents: List[int], offsets: np.ndarray,
                 soles: Dict[str, float], file: str):
        self.names, self.types, self.parents = names, types, parents
        self.offsets, self.soles, self.file = offsets, soles, file

    @classmethod
    def builtin(cls) -> "DeepMimicCharacter":
        """DeepMimic's humanoid3d."""
        return cls([j[0] for j in _HUMANOID3D_JOINTS], [j[1] for j in _HUMANOID3D_JOINTS],
                   [j[2] for j in _HUMANOID3D_JOINTS], np.array([j[3] for j in _HUMANOID3D_JOINTS]),
                   dict(_HUMANOID3D_SOLES), "built-in humanoid3d")

    @classmethod
    def load(cls, path: str) -> "DeepMimicCharacter":
        """Read ``Skeleton.Joints`` (and box ``BodyDefs`` for sole heights) of a character file.

        Raises:
            MimicKitError: naming the file and joint on bad JSON, a missing key, an
                unsupported joint type, a rest rotation (``AttachTheta*``) or a bad parent.
        """
        require_file(path, "DeepMimic character file")
        data = _read_json(path)
        try:
            joints = data["Skeleton"]["Joints"]
        except (KeyError, TypeError):
            raise MimicKitError("{}: expected a DeepMimic character with 'Skeleton': {{'Joints': [...]}}".format(path))
        names, types, parents, offsets = [], [], [], []
        for i, j in enumerate(joints):
            try:
                name, jtype, parent = str(j["Name"]), str(j["Type"]).lower(), int(j["Parent"])
                offset = [float(j["AttachX"]), float(j["AttachY"]), float(j["AttachZ"])]
                theta = [float(j.get(k, 0.0)) for k in ("AttachThetaX", "AttachThetaY", "AttachThetaZ")]
            except (KeyError, TypeError, ValueError) as e:
                raise MimicKitError("{}: joint {}: missing or bad key ({})".format(path, i, e))
            if int(j.get("ID", i)) != i:
                raise MimicKitError("{}: joint '{}' has ID {}; expected IDs 0, 1, 2, ... in order".format(
                    path, name, j.get("ID")))
            if (i == 0) != (parent == -1) or parent >= i:
                raise MimicKitError("{}: joint '{}' has parent {}; expected -1 for the first joint and an "
                                    "earlier joint otherwise".format(path, name, parent))
            if i > 0 and jtype not in _DOFS:
                raise MimicKitError("{}: joint '{}' has type '{}'; supported: {}".format(
                    path, name, jtype, ", ".join(_DOFS)))
            if any(abs(t) > 1e-9 for t in theta):
                raise MimicKitError("{}: joint '{}' has a rest rotation (AttachTheta*); not supported".format(
                    path, name))
            names.append(name)
            types.append(jtype)
            parents.append(parent)
            offsets.append(offset)
        soles = {}
        for body in data.get("BodyDefs", []):
            try:
                if str(body["Shape"]).lower() == "box" and not any(
                        abs(float(body.get(k, 0.0))) > 1e-9 for k in ("AttachThetaX", "AttachThetaY", "AttachThetaZ")):
                    soles[str(body["Name"])] = -(float(body["AttachY"]) - 0.5 * float(body["Param1"]))
            except (KeyError, TypeError, ValueError):
                continue
        return cls(names, types, parents, np.array(offsets, dtype=np.float64), soles, path)

    def frame_layout(self) -> Tuple[List[str], List[Tuple[int, str, int]]]:
        """Column names of a frame and ``(joint index, type, first column)`` per non-root joint."""
        columns = ["duration", "root pos x", "root pos y", "root pos z",
                   "root quat w", "root quat x", "root quat y", "root quat z"]
        layout = []
        for i in range(1, len(self.names)):
            layout.append((i, self.types[i], len(columns)))
            if self.types[i] == "spherical":
                columns += ["{} quat {}".format(self.names[i], c) for c in "wxyz"]
            elif self.types[i] == "revolute":
                columns.append("{} angle".format(self.names[i]))
        return columns, layout

    def describe_layout(self) -> str:
        """E.g. ``duration 1 + root pos 3 + root quat 4 + chest 4 + ... + left_elbow 1``."""
        parts = ["duration 1", "root pos 3", "root quat 4"]
        parts += ["{} {}".format(n, _DOFS[t]) for n, t in zip(self.names[1:], self.types[1:]) if _DOFS[t]]
        return " + ".join(parts)


def _read_json(path: str) -> dict:
    with open(path, "r") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise MimicKitError("{}: not valid JSON ({})".format(path, e))
    if not isinstance(data, dict):
        raise MimicKitError("{}: expected a JSON object at the top level".format(path))
    return data


def find_character_file(motion_path: str) -> Optional[str]:
    """``../characters/humanoid3d.txt`` next to the motion's folder, if it exists."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(motion_path)))
    path = os.path.join(folder, "characters", "humanoid3d.txt")
    return path if os.path.isfile(path) else None


def y_up_to_z_up_rot(q: torch.Tensor) -> torch.Tensor:
    """Rotations ``[..., 4]`` (x, y, z, w) expressed in the Y-up world, re-expressed in the Z-up one."""
    r = torch.as_tensor(Y_UP_TO_Z_UP, dtype=q.dtype).expand_as(q)
    return torch_util.quat_mul(torch_util.quat_mul(r, q), torch_util.quat_conjugate(r))


def y_up_to_z_up_pos(p: np.ndarray) -> np.ndarray:
    """Positions ``[..., 3]`` (m) from the Y-up world to the Z-up one: (x, y, z) -> (x, -z, y)."""
    p = np.asarray(p, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def _quat_columns(frames: np.ndarray, col: int, path: str, what: str) -> torch.Tensor:
    """Columns ``col:col+4`` (w, x, y, z) as normalised (x, y, z, w) quaternions ``[T, 4]``."""
    q = torch.as_tensor(frames[:, [col + 1, col + 2, col + 3, col]])
    norm = q.norm(dim=-1)
    if (norm < 1e-6).any():
        t = int(torch.nonzero(norm < 1e-6)[0, 0])
        raise MimicKitError("{}: frame {} has a zero {} quaternion (columns {}-{})".format(
            path, t, what, col, col + 3))
    return q / norm[:, None]


def _resample(times: np.ndarray, fps: float, root_pos: np.ndarray, local_rot: torch.Tensor):
    """Uniform frames at ``fps`` over ``times[0]..times[-1]``: root lerp, rotations slerp."""
    num = int(round((times[-1] - times[0]) * fps)) + 1
    new_t = np.minimum(times[0] + np.arange(num) / fps, times[-1])
    i1 = np.clip(np.searchsorted(times, new_t, side="right"), 1, len(times) - 1)
    i0 = i1 - 1
    w = (new_t - times[i0]) / np.maximum(times[i1] - times[i0], 1e-12)
    pos = root_pos[i0] + w[:, None] * (root_pos[i1] - root_pos[i0])
    wt = torch.as_tensor(w)[:, None].expand(-1, local_rot.shape[1])
    rot = torch_util.slerp(local_rot[i0], local_rot[i1], wt)
    return pos, rot


def read_deepmimic(path: str, source_char: Optional[str] = None) -> SourceMotion:
    """Read a DeepMimic motion as a Z-up :class:`SourceMotion`.

    Args:
        path: the motion ``.txt`` file.
        source_char: DeepMimic character file giving the skeleton; default:
            ``../characters/humanoid3d.txt`` next to the motions folder, else the built-in
            humanoid3d description.

    Frame durations within 1 % of their mean give ``fps = 1 / mean``; otherwise the clip is
    resampled to that rate (root position lerp, rotations slerp) and a note says so.

    Raises:
        MimicKitError: bad JSON, missing ``Frames``, a frame of the wrong width (naming the
            file, frame and expected width), a NaN/Inf value (naming the frame and column),
            a zero quaternion, a non-positive duration, an unknown ``Loop``.
    """
    require_file(path, "motion file")
    notes = []
    char_file = source_char if source_char is not None else find_character_file(path)
    char = DeepMimicCharacter.load(char_file) if char_file else DeepMimicCharacter.builtin()
    if char_file is None:
        notes.append("source skeleton: built-in humanoid3d (no ../characters/humanoid3d.txt found)")

    data = _read_json(path)
    if "Frames" not in data or not isinstance(data["Frames"], list):
        raise MimicKitError("{}: not a DeepMimic motion: key 'Frames' (a list of frames) missing".format(path))
    columns, layout = char.frame_layout()
    width = len(columns)
    rows = data["Frames"]
    for t, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise MimicKitError("{}: frame {} has {} values; expected {} per frame for {} ({})".format(
                path, t, got, width, char.file, char.describe_layout()))
    if len(rows) < 2:
        raise MimicKitError("{}: a clip needs at least 2 frames, got {}".format(path, len(rows)))
    try:
        frames = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MimicKitError("{}: frames must hold numbers ({})".format(path, e))
    check_finite(frames, columns, path)

    loop = str(data.get("Loop", "none")).lower()
    if loop not in ("wrap", "none", "clamp"):
        raise MimicKitError("{}: Loop must be 'wrap' or 'none', got '{}'".format(path, data.get("Loop")))
    loop_mode = "wrap" if loop == "wrap" else "clamp"

    durations = frames[:-1, 0]
    if (durations <= 0).any():
        t = int(np.nonzero(durations <= 0)[0][0])
        raise MimicKitError("{}: frame {} has duration {} s; expected > 0 for every frame but the last".format(
            path, t, durations[t]))
    fps = 1.0 / float(durations.mean())

    num_frames = frames.shape[0]
    local_rot = torch_util.quat_identity((num_frames, len(char.names)), dtype=torch.float64)
    local_rot[:, 0] = _quat_columns(frames, 4, path, "root")
    z_axis = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    for j, jtype, col in layout:
        if jtype == "spherical":
            local_rot[:, j] = _quat_columns(frames, col, path, char.names[j])
        elif jtype == "revolute":
            local_rot[:, j] = torch_util.quat_from_axis_angle(z_axis, torch.as_tensor(frames[:, col]))
    local_rot = y_up_to_z_up_rot(local_rot)
    root_pos = y_up_to_z_up_pos(frames[:, 1:4])

    spread = float(np.abs(durations - durations.mean()).max() / durations.mean())
    if spread > UNIFORM_TOLERANCE:
        times = np.concatenate([[0.0], np.cumsum(durations)])
        root_pos, local_rot = _resample(times, fps, root_pos, local_rot)
        notes.append("frame durations vary ({:.4f}..{:.4f} s): resampled {} frames to {} at {:.3f} fps".format(
            durations.min(), durations.max(), num_frames, root_pos.shape[0], fps))

    skeleton = SourceSkeleton(body_names=list(char.names), parent_indices=np.array(char.parents, dtype=np.int64),
                              local_pos=y_up_to_z_up_pos(char.offsets),
                              local_rot=np.tile([0.0, 0.0, 0.0, 1.0], (len(char.names), 1)),
                              sole_heights=dict(char.soles), file=char.file)
    return SourceMotion(file=path, format="deepmimic", fps=fps, loop_mode=loop_mode, skeleton=skeleton,
                        root_pos=root_pos, local_rot=local_rot.numpy(), default_joint_map=dict(JOINT_MAP),
                        notes=notes)

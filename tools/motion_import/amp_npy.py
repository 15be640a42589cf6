"""IsaacGymEnvs AMP motions (``.npy`` of a pickled ``SkeletonMotion`` dict, Z-up).

Keys used: ``rotation`` (T, B, 4) quaternions (x, y, z, w), local to the parent when
``is_local`` (else world rotations, converted here), body 0 being the root's world
rotation; ``root_translation`` (T, 3) m; ``fps``; ``skeleton_tree`` with ``node_names``,
``parent_indices`` and ``local_translation`` (B, 3). Arrays may be stored as
``{'arr': ndarray, 'context': {...}}``. The file is read with the restricted unpickler of
:mod:`tools.motion_import.safe_pickle`.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

import numpy as np
import torch

from mimickit.anim.motion import check_finite
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

from tools.motion_import.ground import sole_heights
from tools.motion_import.safe_pickle import load_npy_object
from tools.motion_import.source import SourceMotion, SourceSkeleton


def _array(value: Any, path: str, key: str) -> np.ndarray:
    """An array stored directly or as ``{'arr': ndarray, 'context': ...}``."""
    if isinstance(value, dict):
        if "arr" not in value:
            raise MimicKitError("{}: key '{}' is a dict without 'arr'".format(path, key))
        value = value["arr"]
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise MimicKitError("{}: key '{}' is not a numeric array".format(path, key))


def _get(d: dict, key: str, path: str) -> Any:
    if key not in d:
        raise MimicKitError("{}: not an IsaacGymEnvs AMP motion: key '{}' missing (keys: {})".format(
            path, key, ", ".join(map(str, d))))
    return d[key]


def find_character_file(motion_path: str) -> Optional[str]:
    """``../amp_humanoid.xml`` or ``../../mjcf/amp_humanoid.xml`` from the motion file, if present."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(motion_path)))
    for candidate in (os.path.join(folder, "amp_humanoid.xml"),
                      os.path.join(os.path.dirname(folder), "mjcf", "amp_humanoid.xml")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _local_from_global(rot: torch.Tensor, parents: List[int]) -> torch.Tensor:
    local = rot.clone()
    for b in range(1, rot.shape[1]):
        local[:, b] = torch_util.quat_mul(torch_util.quat_conjugate(rot[:, parents[b]]), rot[:, b])
    return local


def read_amp_npy(path: str, source_char: Optional[str] = None) -> SourceMotion:
    """Read an IsaacGymEnvs AMP motion as a :class:`SourceMotion` (already Z-up).

    Args:
        path: the ``.npy`` file.
        source_char: the source MJCF (``amp_humanoid.xml``), used only for the ankle height
            of the feet; default: looked up next to the motions folder, else none.

    Raises:
        MimicKitError: refused pickle content, a missing key, arrays of inconsistent shapes
            (naming the key), NaN/Inf (naming the frame and column), fps <= 0.
    """
    d = load_npy_object(path)
    if not isinstance(d, dict):
        raise MimicKitError("{}: expected a pickled dict (SkeletonMotion), got {}".format(path, type(d).__name__))
    rot = _array(_get(d, "rotation", path), path, "rotation")
    root_pos = _array(_get(d, "root_translation", path), path, "root_translation")
    tree = _get(d, "skeleton_tree", path)
    if not isinstance(tree, dict):
        raise MimicKitError("{}: key 'skeleton_tree' is not a dict".format(path))
    names = [str(n) for n in _get(tree, "node_names", path)]
    parents = _array(_get(tree, "parent_indices", path), path, "skeleton_tree.parent_indices").astype(np.int64)
    offsets = _array(_get(tree, "local_translation", path), path, "skeleton_tree.local_translation")
    num_bodies = len(names)
    if rot.ndim != 3 or rot.shape[1:] != (num_bodies, 4):
        raise MimicKitError("{}: key 'rotation' has shape {}; expected [num_frames, {}, 4]".format(
            path, list(rot.shape), num_bodies))
    num_frames = rot.shape[0]
    if root_pos.shape != (num_frames, 3):
        raise MimicKitError("{}: key 'root_translation' has shape {}; expected [{}, 3]".format(
            path, list(root_pos.shape), num_frames))
    if parents.shape != (num_bodies,) or offsets.shape != (num_bodies, 3):
        raise MimicKitError("{}: skeleton_tree parent_indices {} / local_translation {} do not match {} "
                            "node_names".format(path, list(parents.shape), list(offsets.shape), num_bodies))
    if parents[0] != -1 or any(not 0 <= parents[b] < b for b in range(1, num_bodies)):
        raise MimicKitError("{}: skeleton_tree.parent_indices must be -1 for node 0 and an earlier node "
                            "otherwise, got {}".format(path, parents.tolist()))
    if num_frames < 2:
        raise MimicKitError("{}: a clip needs at least 2 frames, got {}".format(path, num_frames))
    fps = float(np.asarray(_array(_get(d, "fps", path), path, "fps")).reshape(-1)[0])
    if not fps > 0:
        raise MimicKitError("{}: key 'fps' must be > 0, got {}".format(path, fps))

    columns = ["root_translation {}".format(c) for c in "xyz"]
    columns += ["{} rotation {}".format(n, c) for n in names for c in "xyzw"]
    check_finite(np.concatenate([root_pos, rot.reshape(num_frames, -1)], axis=1), columns, path)

    q = torch.as_tensor(rot)
    norm = q.norm(dim=-1)
    if (norm < 1e-6).any():
        t, b = (int(i) for i in torch.nonzero(norm < 1e-6)[0])
        raise MimicKitError("{}: frame {} has a zero rotation quaternion for '{}'".format(path, t, names[b]))
    q = q / norm[..., None]
    notes = []
    if not bool(d.get("is_local", True)):
        q = _local_from_global(q, parents.tolist())
        notes.append("rotations were global (is_local False): converted to local")

    char_file = source_char if source_char is not None else find_character_file(path)
    soles = sole_heights(char_file) if char_file else {}
    soles = {k: v for k, v in soles.items() if k in names}
    if not char_file:
        notes.append("no source MJCF found: ankle height left out of the leg lengths")
    notes.append("loop mode: the file has none, clamp used (override with --loop)")
    skeleton = SourceSkeleton(body_names=names, parent_indices=parents, local_pos=offsets,
                              local_rot=np.tile([0.0, 0.0, 0.0, 1.0], (num_bodies, 1)), sole_heights=soles,
                              file=path if char_file is None else "{} (feet from {})".format(path, char_file))
    return SourceMotion(file=path, format="amp_npy", fps=fps, loop_mode="clamp", skeleton=skeleton,
                        root_pos=root_pos, local_rot=q.numpy(), default_joint_map={n: n for n in names},
                        notes=notes)

"""MimicKit motions (``.pkl``: a pickled dict, Z-up) as :class:`SourceMotion`.

Layout (MimicKit ``mimickit/anim/motion.py``): ``{"loop_mode": 0 (clamp) | 1 (wrap),
"fps": number, "frames": [T, 6 + num_dofs]}`` with each frame ``[root pos (3, m),
root rot exp map (3, rad), joint dofs]``; the joint dofs follow the MJCF body order, an exp
map (rad) for a 3-dof joint and the hinge angle (rad) for a 1-dof joint — the same layout
as our native clip, for MimicKit's own character.

The source character defaults to a built-in copy of the MimicKit humanoid's skeleton
(``skeletons/mimickit_humanoid.xml``: the 15 bodies of amp_humanoid, but with the arms
held sideways at rest (T-pose, elbows about z); the retargeting aligns those rest bones
to ours). Pass ``--source_char`` with MimicKit's MJCF for another character.
"""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import check_finite
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

from tools.motion_import.safe_pickle import load_pickle
from tools.motion_import.source import SourceMotion, skeleton_from_mjcf

BUILTIN_SKELETON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skeletons", "mimickit_humanoid.xml")

_LOOP_MODES = {0: "clamp", 1: "wrap", "clamp": "clamp", "wrap": "wrap"}


def dof_column_names(char: KinCharModel) -> List[str]:
    """Names of the joint-dof columns: ``<joint> exp map x|y|z`` for a triplet, ``<hinge> angle``."""
    names = []
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        first = int(char.joint_dof_offsets[j])
        hinges = char.dof_names[first:first + n]
        if n == 1:
            names.append("{} angle".format(hinges[0]))
        elif n == 3:
            prefix = os.path.commonprefix(hinges).rstrip("_")
            label = prefix if prefix else char.body_names[j + 1]
            names += ["{} exp map {}".format(label, c) for c in "xyz"]
    return names


def read_mimickit_pkl(path: str, source_char: Optional[str] = None) -> SourceMotion:
    """Read a MimicKit ``.pkl`` motion as a :class:`SourceMotion` (already Z-up).

    Args:
        path: the ``.pkl`` file (read with the restricted unpickler).
        source_char: MimicKit MJCF of the source character; default: the built-in humanoid.

    Raises:
        MimicKitError: refused pickle content, a missing key, a frame width other than
            ``6 + num_dofs`` of the source character (naming the file and expected width),
            NaN/Inf (naming the frame and column, e.g. ``neck exp map x``), a bad loop mode.
    """
    d = load_pickle(path)
    if not isinstance(d, dict):
        raise MimicKitError("{}: expected a pickled dict with fps, loop_mode, frames; got {}".format(
            path, type(d).__name__))
    for key in ("fps", "loop_mode", "frames"):
        if key not in d:
            raise MimicKitError("{}: not a MimicKit motion: key '{}' missing".format(path, key))
    char_file = source_char if source_char is not None else BUILTIN_SKELETON
    char, skeleton = skeleton_from_mjcf(char_file)
    try:
        frames = np.asarray(d["frames"], dtype=np.float64)
    except (TypeError, ValueError):
        raise MimicKitError("{}: key 'frames' is not a numeric [num_frames, width] array".format(path))
    width = 6 + char.num_dofs
    if frames.ndim != 2 or frames.shape[1] != width:
        raise MimicKitError("{}: frames have shape {}; expected [num_frames, {}] (root pos 3 + root rot exp "
                            "map 3 + {} dofs of {})".format(path, list(frames.shape), width, char.num_dofs, char_file))
    if frames.shape[0] < 2:
        raise MimicKitError("{}: a clip needs at least 2 frames, got {}".format(path, frames.shape[0]))
    columns = ["root pos x", "root pos y", "root pos z", "root rot exp map x", "root rot exp map y",
               "root rot exp map z"] + dof_column_names(char)
    check_finite(frames, columns, path)
    try:
        fps = float(np.asarray(d["fps"]).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise MimicKitError("{}: key 'fps' is not a number: {!r}".format(path, d["fps"]))
    if not fps > 0:
        raise MimicKitError("{}: key 'fps' must be > 0, got {}".format(path, fps))
    loop_key = d["loop_mode"]
    loop_key = int(loop_key) if isinstance(loop_key, (int, np.integer)) else str(loop_key).lower()
    if loop_key not in _LOOP_MODES:
        raise MimicKitError("{}: key 'loop_mode' must be 0 (clamp) or 1 (wrap), got {!r}".format(path, d["loop_mode"]))

    joint_rot = char.joint_dof_to_joint_rot(torch.as_tensor(frames[:, 6:], dtype=torch.float32)).double()
    root_rot = torch_util.exp_map_to_quat(torch.as_tensor(frames[:, 3:6]))
    local_rot = torch.cat([root_rot[:, None], joint_rot], dim=1)
    notes = [] if source_char is not None else ["source skeleton: built-in MimicKit humanoid (T-pose arms)"]
    return SourceMotion(file=path, format="mimickit_pkl", fps=fps, loop_mode=_LOOP_MODES[loop_key],
                        skeleton=skeleton, root_pos=frames[:, 0:3].copy(), local_rot=local_rot.numpy(),
                        default_joint_map={n: n for n in skeleton.body_names}, notes=notes)

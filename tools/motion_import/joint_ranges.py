"""Joint ranges: an imported clip never leaves our character's dof ranges unnoticed.

The hinge angles of a clip (rad: a 1-dof joint's stored angle; for a 3-dof joint the Euler
angles of its rotation in the joint's axis order, :meth:`KinCharModel.joint_dof_to_dof_pos`,
which is what the simulator sees) are compared with the ranges of the limited hinges of the character's MJCF. A value
beyond a range by more than :data:`RANGE_TOL` is refused (:class:`MimicKitError` naming the
file, the dof, its first frame, the value and the range) unless clamping is asked for;
clamped, the clip's joint dofs are rebuilt from the clamped angles for the joints that
changed, on the frames that changed, and a note lists the dofs, their frames and the
largest excess.

The tolerance is numerical noise only: clips stored in float32 and the exp-map/Euler round
trip move an angle by about 1e-6 rad; 1e-3 rad (0.06 deg) is far above that and far below
any excess that changes a pose visibly. Two DeepMimic reference clips leave our humanoid's
ranges for real (punch: neck_x by 8.7 deg on 13 frames; spinkick: right_knee by 10.7 deg
on 3, left_ankle_x by 5.2 deg), so they are refused without ``--clamp_joints``: a researcher
should choose to change a captured pose (the jump's right_ankle_y leaves it by 3.2 deg too,
but the contact cleanup lays that foot flat, within range, so its written clip passes).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import mujoco
import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util.errors import MimicKitError

# rad: hinge angles this far beyond a range count as numerical noise, not as out of range.
RANGE_TOL = 1e-3


@dataclasses.dataclass
class RangeCheck:
    """What :func:`enforce_joint_ranges` found (and clamped).

    Attributes:
        frames: ``[T, 6 + num_dofs]`` the clip, clamped when asked (a copy), else the input.
        beyond: ``[T, num_dofs]`` bool, hinge angles beyond their range by more than :data:`RANGE_TOL`.
        max_excess: rad, the largest excess over all dofs and frames (0 when none).
        note: one line for the user ("" when every value is within range).
    """
    frames: np.ndarray
    beyond: np.ndarray
    max_excess: float
    note: str

    @property
    def clamped(self) -> bool:
        """Whether some value was out of range (and so, when returned, clamped)."""
        return bool(self.beyond.any())


def hinge_dofs(char: KinCharModel) -> np.ndarray:
    """Indices ``[H]`` of the dofs of 1-dof joints: their clip column is the hinge angle itself
    (any value, where the rotation would wrap it to +-pi)."""
    return np.array([int(char.joint_dof_offsets[j]) for j, n in enumerate(char.joint_num_dofs.tolist()) if n == 1],
                    dtype=np.int64)


def dof_ranges(model: mujoco.MjModel, char: KinCharModel) -> Tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` ``[num_dofs]`` rad of each dof's hinge in ``model``; ``-inf, inf`` for an unlimited one."""
    low = np.full(char.num_dofs, -np.inf)
    high = np.full(char.num_dofs, np.inf)
    for d, name in enumerate(char.dof_names):
        j = model.joint(name).id
        if model.jnt_limited[j]:
            low[d], high[d] = model.jnt_range[j]
    return low, high


def enforce_joint_ranges(char: KinCharModel, model: mujoco.MjModel, frames: np.ndarray, clamp: bool,
                         source: str) -> RangeCheck:
    """Refuse or clamp the hinge angles of native clip frames ``[T, 6 + num_dofs]`` beyond ``model``'s ranges.

    Args:
        char: our character.
        model: its compiled MJCF (the ranges and which hinges are limited).
        frames: the clip (root pos m, root exp map, joint dofs).
        clamp: clamp the values beyond a range instead of refusing the clip.
        source: the clip's file, for the messages.

    Raises:
        MimicKitError: without ``clamp``, when a hinge angle leaves its range by more than
            :data:`RANGE_TOL`, naming the file, the dof, its first frame out of range, the
            value and the range, and ``--clamp_joints``.
    """
    frames = np.asarray(frames, dtype=np.float64)
    low, high = dof_ranges(model, char)
    dof_pos = char.joint_dof_to_dof_pos(torch.as_tensor(frames[:, 6:])).numpy()
    hinges = hinge_dofs(char)
    # A triplet's Euler angle is one of its 2 pi equivalents (+pi and -pi are one rotation):
    # take the one nearest the range. A hinge's angle is taken as stored, not wrapped.
    turns = np.array([-2.0 * np.pi, 0.0, 2.0 * np.pi])
    candidates = dof_pos[..., None] + turns
    best = np.argmin(np.maximum(low[:, None] - candidates, candidates - high[:, None]), axis=-1)
    dof_pos = np.take_along_axis(candidates, best[..., None], axis=-1)[..., 0]
    dof_pos[:, hinges] = frames[:, 6 + hinges]
    excess = np.maximum(low - dof_pos, dof_pos - high)
    beyond = excess > RANGE_TOL
    max_excess = max(0.0, float(excess.max()))
    if not beyond.any():
        return RangeCheck(frames=frames, beyond=beyond, max_excess=max_excess, note="")
    if not clamp:
        t, d = (int(i) for i in np.argwhere(beyond)[0])  # the first frame out of range
        raise MimicKitError("{}: dof {} is {:.3f} rad at frame {}, outside its range [{:.3f}, {:.3f}] rad of {} "
                            "({} dofs out of range, by up to {:.3f} rad = {:.1f} deg); pass --clamp_joints to clamp "
                            "them".format(source, char.dof_names[d], dof_pos[t, d], t, low[d], high[d], char.file,
                                          int(beyond.any(axis=0).sum()), max_excess, math.degrees(max_excess)))
    clamped = np.array(frames)
    rows = np.flatnonzero(beyond.any(axis=1))
    inside = np.clip(dof_pos[rows], low, high)
    rebuilt = char.dof_pos_to_joint_dof(torch.as_tensor(inside)).numpy()
    rebuilt[:, hinges] = inside[:, hinges]
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        first = int(char.joint_dof_offsets[j])
        cols = slice(first, first + n)
        hit = beyond[rows, cols].any(axis=1)
        clamped[rows[hit], 6 + first:6 + first + n] = rebuilt[hit, cols]
    per_dof = ["{} on {} frames (up to {:.1f} deg)".format(char.dof_names[d], int(beyond[:, d].sum()),
                                                          math.degrees(float(excess[:, d].max())))
               for d in np.flatnonzero(beyond.any(axis=0))]
    note = "clamped to the joint ranges: {}; largest excess {:.3f} rad".format(", ".join(per_dof), max_excess)
    return RangeCheck(frames=clamped, beyond=beyond, max_excess=max_excess, note=note)

"""AMP_for_hardware motion clips (``mocap_motions/*.txt``, JSON, Z-up) as a joint-space
:class:`SourceMotion`.

The file holds ``LoopMode`` (``Wrap`` | ``Clamp``), ``FrameDuration`` (s), ``MotionWeight``
(the clip's sampling weight in AMP_for_hardware), ``EnableCycleOffsetPosition`` /
``EnableCycleOffsetRotation`` (ignored: a ``wrap`` clip advances by its displacement each
cycle anyway) and ``Frames``, 61 numbers per frame:

====== ======================================================================
cols   meaning
====== ======================================================================
0:3    root position (m, world)
3:7    root quaternion (x, y, z, w), world
7:19   joint angles (rad), legs FR, FL, RR, RL, each hip, thigh, calf
19:31  toe positions (m) in the root frame, legs FR, FL, RR, RL
31:34  root linear velocity (m/s)       (not used: our clips derive velocities)
34:37  root angular velocity (rad/s)    (not used)
37:49  joint velocities (rad/s)         (not used)
49:61  toe velocities (m/s)             (not used)
====== ======================================================================

The robot is the Unitree A1 (its URDF ships with AMP_for_hardware); joint ``<leg>_hip_joint``
turns about +x, ``<leg>_thigh_joint`` and ``<leg>_calf_joint`` about +y, zero = legs straight
down. The clips were made in PyBullet, whose base frame is the trunk's centre of mass:
the root position and the toe positions are those of that frame, which the A1 URDF puts at
:data:`A1_TRUNK_COM` in the trunk link frame. The reader moves both to the trunk link frame
(the root of our characters): ``root_pos -= R(q) A1_TRUNK_COM``, ``toe += A1_TRUNK_COM``.
Without this the toes are 1.3 cm off. Some public sets store the legs FL, FR, RL, RR:
:func:`relabel_legs` reads a file in another leg order (``--leg_order``), and the importer,
which checks the toes, names the order that fits (:func:`fitting_leg_order`).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mimickit.anim.motion import check_finite
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, require_file

from tools.motion_import.source import SourceMotion, SourceSkeleton

FRAME_WIDTH = 61
LEGS = ("FR", "FL", "RR", "RL")  # file order
JOINT_NAMES = ["{}_{}_joint".format(leg, j) for leg in LEGS for j in ("hip", "thigh", "calf")]
TOE_NAMES = ["{}_foot".format(leg) for leg in LEGS]  # the A1's toe links (0.2 m below the calf joint)
# The A1 (a1.urdf): trunk centre of mass in the trunk link frame (m); thigh and calf lengths (m).
A1_TRUNK_COM = np.array([0.012731, 0.002186, 0.000515])
A1_LEG_LENGTH = 0.2 + 0.2
SOURCE_SKELETON = "built-in Unitree A1 (AMP_for_hardware)"
_COLUMNS = (["root pos {}".format(c) for c in "xyz"] + ["root quat {}".format(c) for c in "xyzw"]
            + ["{} angle".format(n) for n in JOINT_NAMES]
            + ["{} pos {}".format(n, c) for n in TOE_NAMES for c in "xyz"]
            + ["root vel {}".format(c) for c in "xyz"] + ["root ang vel {}".format(c) for c in "xyz"]
            + ["{} vel".format(n) for n in JOINT_NAMES]
            + ["{} vel {}".format(n, c) for n in TOE_NAMES for c in "xyz"])
_LOOP_MODES = {"wrap": "wrap", "clamp": "clamp", "none": "clamp"}


def _load(path: str) -> Optional[dict]:
    try:
        with open(path, "r") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def parse_leg_order(text: str) -> Tuple[str, ...]:
    """``--leg_order`` text, e.g. ``FL,FR,RL,RR``, as a tuple: the legs in the order the file stores them.

    Raises:
        MimicKitError: unless it names each of FR, FL, RR, RL once.
    """
    order = tuple(leg.strip().upper() for leg in text.split(","))
    if sorted(order) != sorted(LEGS):
        raise MimicKitError("--leg_order must name each of {} once, comma-separated, got '{}'".format(
            ", ".join(LEGS), text))
    return order


def relabel_legs(source: SourceMotion, order: Sequence[str]) -> SourceMotion:
    """``source`` (as read, legs taken as :data:`LEGS`) with its leg blocks renamed as stored in
    ``order``: the joints and toe of file block ``i`` become leg ``order[i]``'s."""
    rename = {"{}_{}".format(old, part): "{}_{}".format(new, part) for old, new in zip(LEGS, order)
              for part in ("hip_joint", "thigh_joint", "calf_joint")}
    return dataclasses.replace(source, joint_names=[rename[n] for n in source.joint_names or []],
                               root_frame_points={rename[n]: p for n, p in source.root_frame_points.items()})


def fitting_leg_order(source: SourceMotion,
                      toe_error: Callable[[SourceMotion], Optional[float]]) -> Tuple[Tuple[str, ...], float]:
    """The leg order (of the 24 permutations of :data:`LEGS`) whose relabelled clip
    (:func:`relabel_legs`) has the smallest ``toe_error`` (m), and that error."""
    errors = []
    for order in itertools.permutations(LEGS):
        error = toe_error(relabel_legs(source, order))
        errors.append((float("inf") if error is None else error, order))
    error, order = min(errors)
    return order, error


def is_amp_hardware(path: str) -> bool:
    """Whether ``path`` is JSON with ``Frames`` and a ``FrameDuration`` key (DeepMimic clips
    give a duration per frame instead). The frame width is checked by the reader."""
    data = _load(path)
    return data is not None and "Frames" in data and "FrameDuration" in data


def read_amp_hardware(path: str, source_char: Optional[str] = None) -> SourceMotion:
    """Read an AMP_for_hardware clip as a joint-space :class:`SourceMotion` (Z-up).

    The result holds the root (trunk link frame, see the module docstring), the 12 joint
    angles named :data:`JOINT_NAMES` (``joint_pos`` ``[T, 12]`` rad), the toe positions in
    the trunk frame (``root_frame_points``, keyed by each leg's calf joint, for the importer's
    check), the A1's leg length
    (0.4 m) and the clip's ``MotionWeight`` as the extra ``motion_weight``.

    Args:
        path: the clip file.
        source_char: not used (the A1 is built in); must be None.

    Raises:
        MimicKitError: bad JSON, a missing key, a frame that is not 61 numbers, NaN/Inf
            (naming the frame and column), a zero quaternion, ``FrameDuration`` <= 0, an
            unknown ``LoopMode``, fewer than 2 frames, a ``source_char``.
    """
    require_file(path, "motion file")
    if source_char is not None:
        raise MimicKitError("{}: format amp_hardware has the A1 built in; it takes no --source_char (got {})".format(
            path, source_char))
    data = _load(path)
    if data is None:
        raise MimicKitError("{}: not valid JSON (an AMP_for_hardware clip is a JSON object)".format(path))
    for key in ("Frames", "FrameDuration"):
        if key not in data:
            raise MimicKitError("{}: not an AMP_for_hardware clip: key '{}' missing".format(path, key))
    rows = data["Frames"]
    if not isinstance(rows, list) or len(rows) < 2:
        raise MimicKitError("{}: key 'Frames' must be a list of at least 2 frames".format(path))
    for t, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != FRAME_WIDTH:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise MimicKitError("{}: frame {} has {} values; expected {} (root pos 3, root quat 4, joint pos 12, "
                                "toe pos 12, root vel 3, root ang vel 3, joint vel 12, toe vel 12)".format(
                                    path, t, got, FRAME_WIDTH))
    try:
        frames = np.array(rows, dtype=np.float64)
        duration = float(data["FrameDuration"])
    except (TypeError, ValueError) as e:
        raise MimicKitError("{}: 'Frames' and 'FrameDuration' must hold numbers ({})".format(path, e))
    check_finite(frames, _COLUMNS, path)
    if not duration > 0:
        raise MimicKitError("{}: key 'FrameDuration' must be > 0 s, got {}".format(path, duration))
    loop = str(data.get("LoopMode", "Clamp")).lower()
    if loop not in _LOOP_MODES:
        raise MimicKitError("{}: key 'LoopMode' must be Wrap or Clamp, got '{}'".format(path, data.get("LoopMode")))

    quat = torch.as_tensor(frames[:, 3:7])
    norm = quat.norm(dim=-1)
    if (norm < 1e-6).any():
        raise MimicKitError("{}: frame {} has a zero root quaternion (columns 3-6)".format(
            path, int(torch.nonzero(norm < 1e-6)[0, 0])))
    quat = quat / norm[:, None]
    com = torch.as_tensor(A1_TRUNK_COM).expand(len(frames), 3)
    root_pos = frames[:, 0:3] - torch_util.quat_rotate(quat, com).numpy()
    toes = frames[:, 19:31].reshape(-1, 4, 3) + A1_TRUNK_COM

    notes: List[str] = ["root and toes moved from the A1 trunk's centre of mass to the trunk frame"]
    extras = {}
    if "MotionWeight" in data:
        try:
            weight = float(data["MotionWeight"])
        except (TypeError, ValueError):
            raise MimicKitError("{}: key 'MotionWeight' must be a number, got {!r}".format(path, data["MotionWeight"]))
        extras["motion_weight"] = np.array(weight)
        notes.append("motion weight {:g} (extra 'motion_weight')".format(weight))
    skeleton = SourceSkeleton(body_names=["trunk"], parent_indices=np.array([-1]), local_pos=np.zeros((1, 3)),
                              local_rot=np.array([[0.0, 0.0, 0.0, 1.0]]), sole_heights={}, file=SOURCE_SKELETON)
    return SourceMotion(file=path, format="amp_hardware", fps=1.0 / duration, loop_mode=_LOOP_MODES[loop],
                        skeleton=skeleton, root_pos=root_pos, local_rot=quat.numpy()[:, None, :],
                        default_joint_map={n: n for n in JOINT_NAMES}, notes=notes,
                        joint_names=list(JOINT_NAMES), joint_pos=frames[:, 7:19].copy(), leg_length=A1_LEG_LENGTH,
                        root_frame_points={"{}_calf_joint".format(leg): toes[:, i] for i, leg in enumerate(LEGS)},
                        extras=extras)

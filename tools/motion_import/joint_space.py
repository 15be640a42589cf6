"""Joint-space sources (AMP_for_hardware): joint angles mapped onto our dofs by name.

A joint-space :class:`SourceMotion` gives each 1-dof joint's angle directly
(``joint_pos`` ``[T, J]`` rad), in a convention meant to match the target robot's (same
axes, same zero pose). There is no rotation retargeting: source joint ``j`` drives our dof
of the same name, or the dof a ``--joint_map`` YAML (``source joint: our dof``, ``null`` to
drop a joint) names. Every source joint must drive a dof and every dof of ours must be
driven. The root rotation is copied; the root translation is scaled by the leg-length
ratio, ours (hip-to-knee + knee-to-foot of our first foot body, at rest) over the
source's :attr:`SourceMotion.leg_length`.

:func:`root_frame_point_error` checks the mapping (the ``--joint_map`` included): it
compares our forward kinematics of the file's poses with the positions the file states in
the root frame (AMP_for_hardware's toes), which catches a wrong leg mapping: on the clips
trot0, pace0 and leftturn0, swapping two legs gives 0.10-0.37 m (legs stored FL, FR, RL, RR
but read FR, FL, RR, RL: 0.27 m), the right mapping about 1e-5 m. The importer refuses a
clip whose error exceeds :data:`POINT_TOL`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mimickit.util.config import load_yaml

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

from tools.motion_import.joint_ranges import hinge_dofs
from tools.motion_import.retarget import SAME_SCALE_TOL, chain_length, leg_chain
from tools.motion_import.source import SourceMotion

# m: a larger root-frame point error (toes) means the joints are mapped wrongly; the right
# mapping onto a robot of the source's geometry gives ~1e-5 m, a wrong leg 0.1 m or more.
POINT_TOL = 0.03

def load_dof_map(path: str, source_joints: List[str], dof_names: List[str]) -> Dict[str, Optional[str]]:
    """Read a ``--joint_map`` YAML for a joint-space source: ``source joint: our dof`` (or null).

    Raises:
        MimicKitError: naming the file and key for a non-mapping file, an unknown source
            joint, an unknown dof of ours or a non-string value.
    """
    data = load_yaml(path)  # a mapping 'source joint name: our dof name'
    out = {}
    for key, value in data.items():
        key = str(key)
        if key not in source_joints:
            raise MimicKitError("{}: key '{}' is not a joint of the source (joints: {})".format(
                path, key, ", ".join(source_joints)))
        if value is not None and not isinstance(value, str):
            raise MimicKitError("{}: key '{}': expected a dof name or null, got {!r}".format(path, key, value))
        if value is not None and value not in dof_names:
            raise MimicKitError("{}: key '{}': our character has no dof '{}' (dofs: {})".format(
                path, key, value, ", ".join(dof_names)))
        out[key] = value
    return out


def resolve_dof_map(source: SourceMotion, char: KinCharModel,
                    overrides: Optional[Dict[str, Optional[str]]] = None) -> List[int]:
    """For each dof of ours, the ``joint_pos`` column of the source joint driving it.

    The format's table (:attr:`SourceMotion.default_joint_map`, by name) is used where both
    names exist; ``overrides`` replace its entries (``None`` drops a source joint).

    Raises:
        MimicKitError: naming the source file, the character file and the joints, when a
            source joint drives no dof, a dof is driven by no joint, or two joints drive one dof.
    """
    names = source.joint_names or []
    table = {s: o for s, o in source.default_joint_map.items() if s in names and o in char.dof_names}
    dropped = set()
    for s, o in (overrides or {}).items():
        if o is None:
            table.pop(s, None)
            dropped.add(s)
        else:
            table[s] = o
    unmatched = [s for s in names if s not in table and s not in dropped]
    if unmatched:
        raise MimicKitError("{}: source joints {} match no dof of {} (dofs: {}); map them with --joint_map "
                            "'source joint: our dof' (null drops one)".format(
                                source.file, ", ".join(unmatched), char.file, ", ".join(char.dof_names)))
    dof_to_src: Dict[str, str] = {}
    for s, o in table.items():
        if o in dof_to_src:
            raise MimicKitError("{}: source joints '{}' and '{}' both drive dof '{}' of {}".format(
                source.file, dof_to_src[o], s, o, char.file))
        dof_to_src[o] = s
    missing = [d for d in char.dof_names if d not in dof_to_src]
    if missing:
        raise MimicKitError("{}: dofs {} of {} are driven by no source joint (source joints: {}); map them "
                            "with --joint_map".format(source.file, ", ".join(missing), char.file, ", ".join(names)))
    return [names.index(dof_to_src[d]) for d in char.dof_names]


def joint_space_frames(source: SourceMotion, char: KinCharModel, columns: List[int],
                       foot_bodies: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, float, List[str]]:
    """Native frames ``[T, 6 + num_dofs]`` of a joint-space source, before ground alignment.

    columns: from :func:`resolve_dof_map`. foot_bodies: our feet, the first giving our leg
    length (:func:`tools.motion_import.retarget.leg_chain`). Returns ``(frames, scale, notes)``: root
    position scaled by ``scale`` (m), root exp map (rad, world), joint dofs (the mapped
    angles as hinge angles, converted to our joint-dof layout).
    """
    notes = []
    dof_pos = np.asarray(source.joint_pos, dtype=np.float64)[:, columns]
    joint_dof = char.dof_pos_to_joint_dof(torch.as_tensor(dof_pos)).double().numpy()
    hinges = hinge_dofs(char)
    joint_dof[:, hinges] = dof_pos[:, hinges]  # the angle as given, not wrapped to +-pi by the rotation

    scale = 1.0
    chain = leg_chain(char, foot_bodies)
    if chain is None or not source.leg_length:
        notes.append("legs not found: root translation not scaled")
    else:
        rest_pos, _ = char.forward_kinematics(torch.zeros(3, dtype=torch.float64), torch_util.quat_identity(
            (), dtype=torch.float64), torch_util.quat_identity((char.num_joints,), dtype=torch.float64))
        ours = chain_length(rest_pos, list(chain))
        if abs(ours / source.leg_length - 1.0) > SAME_SCALE_TOL:
            scale = ours / source.leg_length
        notes.append("root scaled by leg length {:.3f} m (ours) / {:.3f} m (source)".format(ours, source.leg_length))
    root_rot = torch_util.quat_normalize(torch.as_tensor(source.local_rot[:, 0], dtype=torch.float64))
    frames = np.concatenate([scale * np.asarray(source.root_pos, dtype=np.float64),
                             torch_util.quat_to_exp_map(root_rot).numpy(), joint_dof], axis=1)
    return frames, scale, notes


def root_frame_point_error(source: SourceMotion, char: KinCharModel, frames: np.ndarray, columns: List[int],
                           foot_bodies: Sequence[str], scale: float = 1.0) -> Optional[float]:
    """Largest distance (m) over frames and points between the positions the source states
    in its root frame (:attr:`SourceMotion.root_frame_points`) and our forward kinematics of
    ``frames`` ``[T, 6 + num_dofs]``, in our root frame.

    Each point belongs to a source joint; it is compared with our foot body (of
    ``foot_bodies``) below the dof that joint drives under the mapping ``columns`` (from
    :func:`resolve_dof_map`, so a ``--joint_map`` applies). Our positions are divided by
    ``scale`` (the leg-length ratio ours / source), so a robot of the same proportions but
    another size matches. None when the source states no points or none reaches a foot of ours.
    """
    names = source.joint_names or []
    dof_of = {names[c]: d for d, c in enumerate(columns)}
    dof_body = np.repeat(np.arange(1, char.num_joints + 1), char.joint_num_dofs.numpy())
    parents = char.parent_indices.tolist()
    pairs = []
    for joint, points in source.root_frame_points.items():
        if joint not in dof_of:
            continue
        body = int(dof_body[dof_of[joint]])
        for foot in foot_bodies:
            b = char.get_body_id(foot)
            while b > body:
                b = parents[b]
            if b == body:
                pairs.append((char.get_body_id(foot), points))
                break
    if not pairs:
        return None
    num_frames = frames.shape[0]
    f64 = torch.float64
    joint_rot = char.joint_dof_to_joint_rot(torch.as_tensor(frames[:, 6:], dtype=f64))
    pos, _ = char.forward_kinematics(torch.zeros(num_frames, 3, dtype=f64),
                                     torch_util.quat_identity((num_frames,), dtype=f64), joint_rot)
    ours = pos[:, [b for b, _ in pairs]].numpy() / scale
    theirs = np.stack([p for _, p in pairs], axis=1)
    return float(np.linalg.norm(ours - theirs, axis=-1).max())

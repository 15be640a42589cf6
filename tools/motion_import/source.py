"""The intermediate form every reader produces: a source skeleton and its motion, Z-up.

Readers (``deepmimic``, ``amp_npy``, ``mimickit_pkl``) convert their file to
:class:`SourceMotion`: world Z-up, metres, quaternions (x, y, z, w), each body's rotation
local to its parent. :mod:`tools.motion_import.retarget` maps it onto our character.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import numpy as np
from mimickit.util.config import load_yaml

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util.errors import MimicKitError

from tools.motion_import.ground import sole_heights


@dataclasses.dataclass
class SourceSkeleton:
    """A source character's rest skeleton (Z-up, m).

    Attributes:
        body_names: ``[B]``; body 0 is the root.
        parent_indices: ``[B]`` int, -1 for the root; a parent precedes its children.
        local_pos: ``[B, 3]`` m, each body's origin in its parent's frame at rest.
        local_rot: ``[B, 4]`` (x, y, z, w) each body's rest rotation in its parent's frame.
        sole_heights: rest distance (m) from a body's origin down to the lowest point of its
            geometry, for the bodies whose geometry is known (feet: the ankle height).
        file: where the skeleton came from (a file or ``built-in ...``).
    """
    body_names: List[str]
    parent_indices: np.ndarray
    local_pos: np.ndarray
    local_rot: np.ndarray
    sole_heights: Dict[str, float]
    file: str

    @property
    def num_bodies(self) -> int:
        return len(self.body_names)


@dataclasses.dataclass
class SourceMotion:
    """A source clip in Z-up world coordinates.

    Attributes:
        file: the source file.
        format: reader name (``deepmimic``, ``amp_npy``, ``mimickit_pkl``).
        fps: frames per second.
        loop_mode: ``wrap`` or ``clamp``.
        skeleton: the source skeleton.
        root_pos: ``[T, 3]`` m, world position of body 0.
        local_rot: ``[T, B, 4]`` (x, y, z, w); entry 0 is the root's world rotation, entry
            ``b > 0`` body ``b``'s rotation relative to its parent (after the rest rotation).
        default_joint_map: source body name -> our body name, the format's name table (for a
            joint-space source: source joint name -> our dof name).
        notes: remarks for the user (resampling, assumptions).

    Joint-space sources (``amp_hardware``) give joint angles instead of body rotations:
    ``local_rot`` then holds only the root ``[T, 1, 4]`` and the fields below are set; the
    importer maps the angles onto our dofs by name (:mod:`tools.motion_import.joint_space`).

        joint_names: ``[J]`` the source's 1-dof joints, in ``joint_pos`` column order.
        joint_pos: ``[T, J]`` rad (m for a slide).
        leg_length: the source's leg length (m, hip-to-knee + knee-to-foot at rest) for the
            root translation scale.
        root_frame_points: source joint name -> ``[T, 3]`` m, the position the file states,
            in the root frame, for the end of the limb that joint moves (a toe); checked
            against our forward kinematics of the foot body below the dof the joint drives.
        extras: named arrays stored with the imported clip (:attr:`Motion.extras`).
    """
    file: str
    format: str
    fps: float
    loop_mode: str
    skeleton: SourceSkeleton
    root_pos: np.ndarray
    local_rot: np.ndarray
    default_joint_map: Dict[str, str]
    notes: List[str] = dataclasses.field(default_factory=list)
    joint_names: Optional[List[str]] = None
    joint_pos: Optional[np.ndarray] = None
    leg_length: Optional[float] = None
    root_frame_points: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    extras: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return self.root_pos.shape[0]


def skeleton_from_mjcf(path: str) -> "tuple[KinCharModel, SourceSkeleton]":
    """Read an MJCF character as a source skeleton (its kinematic model too, for its dof layout).

    Raises:
        MimicKitError: as :class:`KinCharModel` (missing file, unsupported skeleton).
    """
    char = KinCharModel(path, device="cpu")
    skel = SourceSkeleton(body_names=list(char.body_names),
                          parent_indices=char.parent_indices.numpy().astype(np.int64),
                          local_pos=char.body_local_pos.double().numpy(),
                          local_rot=char.body_local_rot.double().numpy(),
                          sole_heights=sole_heights(path), file=path)
    return char, skel


def load_joint_map(path: str, source: SourceSkeleton, target_body_names: List[str]) -> Dict[str, Optional[str]]:
    """Read a ``--joint_map`` YAML: a mapping ``source joint/body name: our body name``.

    A ``null`` value unmaps a source joint. The entries override the format's default
    table; the source root always drives our root.

    Raises:
        MimicKitError: naming the file and key for a non-mapping file, an unknown source
            name, an unknown target body, a non-string value or a root mapped elsewhere.
    """
    data = load_yaml(path)  # a mapping 'source joint name: our body name'
    out = {}
    for key, value in data.items():
        key = str(key)
        if key not in source.body_names:
            raise MimicKitError("{}: key '{}' is not a joint of the source skeleton {} (joints: {})".format(
                path, key, source.file, ", ".join(source.body_names)))
        if value is not None and not isinstance(value, str):
            raise MimicKitError("{}: key '{}': expected a body name or null, got {!r}".format(path, key, value))
        if value is not None and value not in target_body_names:
            raise MimicKitError("{}: key '{}': our character has no body '{}' (bodies: {})".format(
                path, key, value, ", ".join(target_body_names)))
        if key == source.body_names[0] and value != target_body_names[0]:
            raise MimicKitError("{}: key '{}' is the source root; it always maps to our root '{}'".format(
                path, key, target_body_names[0]))
        out[key] = value
    return out

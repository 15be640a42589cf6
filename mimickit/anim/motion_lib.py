"""The motion library: many clips on the device, sampled and looked up in batches.

A :class:`MotionLib` loads one clip (``.npz``, see :mod:`mimickit.anim.motion`) or a
dataset YAML listing clips with sampling weights::

    motions:
      - file: data/motions/humanoid/walk.npz   # relative to the cwd, or to the YAML's folder
        weight: 1.0

All frames of all clips are concatenated into flat tensors (clip ``m`` starts at row
``start[m]``), with the root rotation and joint rotations precomputed as quaternions
(x, y, z, w) and the velocities precomputed by finite differences:

- ``root_vel`` (m/s, world) and ``root_ang_vel`` (rad/s, world) of frame ``t`` are the
  forward differences from frame ``t`` to ``t + 1``;
- ``joint_dof_vel`` of frame ``t`` (see docs/architecture.md): for a 3-dof joint the exp
  map of ``q[t+1] * q[t]^-1`` over dt, the joint's angular velocity (rad/s) in its parent's
  frame; for a 1-dof joint the wrapped angle difference over dt (rad/s);
- the last frame has no successor: a ``clamp`` clip copies the previous frame's
  velocities; a ``wrap`` clip takes the first frame's velocities, because its last frame
  is the first pose of the next cycle (MimicKit's convention: a looping clip repeats its
  first pose, shifted by the cycle's root displacement, as its last frame).

Frame lookup (:meth:`MotionLib.calc_motion_frame`) blends the two frames around a time:
positions and velocities are interpolated linearly, rotations by SLERP (never per-angle).
A ``clamp`` clip holds its first frame before time 0 and its last frame (velocities
included) after its end. A ``wrap`` clip cycles; each completed cycle applies the
clip's cycle transform once more: the horizontal move and heading turn that take the first
frame's root to the last frame's root (about the vertical axis; the height is kept). So a
walk keeps advancing and a turning clip keeps turning, without a jump at the seam.
"""
from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Tuple

import numpy as np
import torch
import yaml
from torch import Tensor

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import LOOP_MODES, Motion
from mimickit.util import torch_util
from mimickit.util.config import from_dict, load_yaml
from mimickit.util.errors import MimicKitError, require_file

LOOP_CLAMP = LOOP_MODES.index("clamp")
LOOP_WRAP = LOOP_MODES.index("wrap")
DATASET_EXTENSIONS = (".yaml", ".yml")


@dataclasses.dataclass
class DatasetEntry:
    """One clip of a dataset YAML: its file and its sampling weight (> 0)."""

    file: str
    weight: float = 1.0

    def validate(self, where: str) -> None:
        """Raise :class:`MimicKitError` naming ``where`` unless the weight is > 0."""
        if not self.weight > 0:
            raise MimicKitError("{}: weight must be > 0, got {}".format(where, self.weight))


@dataclasses.dataclass
class DatasetConfig:
    """A dataset YAML: the clips to load, at least one."""

    motions: List[DatasetEntry]

    def validate(self, where: str) -> None:
        """Raise :class:`MimicKitError` naming ``where`` when no clip is listed."""
        if not self.motions:
            raise MimicKitError("{}: 'motions' is empty; expected at least one clip".format(where))


def load_dataset(path: str) -> Tuple[List[str], List[float]]:
    """Read a dataset YAML; return its clip paths (resolved, existing) and weights.

    A relative clip path is tried relative to the current directory (the repository root
    when run from there), then relative to the YAML's folder.

    Raises:
        MimicKitError: on a YAML problem (unknown or missing key, wrong type, weight <= 0,
            no clips) naming the file and key, or a clip that exists in neither place,
            naming the clip path and the dataset file.
    """
    cfg = from_dict(DatasetConfig, load_yaml(path), path)
    files, weights = [], []
    for i, entry in enumerate(cfg.motions):
        files.append(_resolve_clip_path(entry.file, path, i))
        weights.append(entry.weight)
    return files, weights


def save_dataset(path: str, files: List[str], weights: List[float], header: str = "") -> None:
    """Write a dataset YAML listing ``files`` (as given) with ``weights``, atomically.

    ``header`` (comment lines, each starting with ``#``) comes first; :func:`load_dataset`
    reads the file back.

    Raises:
        MimicKitError: ``files`` and ``weights`` of different lengths, or a weight <= 0.
    """
    if len(files) != len(weights):
        raise MimicKitError("{}: {} clips but {} weights".format(path, len(files), len(weights)))
    entries = [DatasetEntry(f, float(w)) for f, w in zip(files, weights)]
    for i, entry in enumerate(entries):
        entry.validate("{}: motions[{}]".format(path, i))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    body = yaml.safe_dump({"motions": [dataclasses.asdict(e) for e in entries]}, sort_keys=False)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(header + body)
    os.replace(tmp, path)


def _resolve_clip_path(file: str, dataset_path: str, index: int) -> str:
    file = os.path.expanduser(file)
    candidates = [file]
    if not os.path.isabs(file):
        candidates.append(os.path.join(os.path.dirname(os.path.abspath(dataset_path)), file))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise MimicKitError("{}: motions[{}]: motion file not found: {} (tried {})".format(
        dataset_path, index, file, ", ".join(candidates)))


class MotionLib:
    """Clips of one character on ``device``, for batched sampling and frame lookup.

    Args:
        motion_file: a clip (``.npz``) or a dataset YAML (``.yaml``/``.yml``) listing clips
            and weights (see the module docstring). A single clip has weight 1.
        kin_char_model: the character; every clip's dof names must equal its dof names.
            Its tensors may live on another device; results are moved to ``device``.
        device: where the precomputed frames and all results live.

    Raises:
        MimicKitError: a missing or malformed motion or dataset file (naming it), or a clip
            whose dofs do not match the character (naming both files).
    """

    def __init__(self, motion_file: str, kin_char_model: KinCharModel, device: str):
        self._kin_char_model = kin_char_model
        self._device = torch.device(device)
        require_file(motion_file, "motion file")
        if motion_file.lower().endswith(DATASET_EXTENSIONS):
            files, weights = load_dataset(motion_file)
        else:
            files, weights = [motion_file], [1.0]

        self._motions = []  # type: List[Motion]
        for f in files:
            try:
                motion = Motion.load(f)
                motion.check_dof_names(kin_char_model.dof_names, kin_char_model.file, source=f)
            except MimicKitError as e:
                if f == motion_file:
                    raise
                raise MimicKitError("{} (listed in {})".format(e, motion_file)) from e
            self._motions.append(motion)
        self.motion_files = files
        self._build_tensors(weights)

    # ----------------------------------------------------------------- precomputation
    def _build_tensors(self, weights: List[float]) -> None:
        """Concatenate all clips' frames and precompute rotations and velocities."""
        kin = self._kin_char_model
        kin_device = kin.body_local_pos.device
        f64 = dict(dtype=torch.float64, device=kin_device)
        motions = self._motions

        num_frames = torch.tensor([m.num_frames for m in motions], dtype=torch.long, device=kin_device)
        fps = torch.tensor([m.fps for m in motions], **f64)
        start = torch.cumsum(num_frames, 0) - num_frames
        last = start + num_frames - 1
        wrap = torch.tensor([m.loop_mode == "wrap" for m in motions], dtype=torch.bool, device=kin_device)

        frames = torch.tensor(np.concatenate([m.frames for m in motions]), **f64)
        total = frames.shape[0]
        root_pos = frames[:, 0:3]
        root_rot = torch_util.exp_map_to_quat(frames[:, 3:6])
        joint_dof = frames[:, 6:]
        joint_rot = kin.joint_dof_to_joint_rot(joint_dof)

        # Forward differences; the row after a clip's last frame belongs to the next clip,
        # so the last frames are overwritten below.
        nxt = torch.arange(1, total + 1, device=kin_device).clamp(max=total - 1)
        inv_dt = torch.repeat_interleave(fps, num_frames).unsqueeze(-1)
        root_vel = (root_pos[nxt] - root_pos) * inv_dt
        root_ang_vel = torch_util.quat_to_exp_map(
            torch_util.quat_mul(root_rot[nxt], torch_util.quat_conjugate(root_rot))) * inv_dt
        joint_dof_vel = torch_util.wrap_angle(joint_dof[nxt] - joint_dof) * inv_dt
        triplet_joints = torch.nonzero(kin.joint_num_dofs == 3).flatten()
        if len(triplet_joints) > 0:
            triplet_dofs = (kin.joint_dof_offsets[triplet_joints].unsqueeze(-1)
                            + torch.arange(3)).to(kin_device)  # [num_triplets, 3]
            triplet_joints = triplet_joints.to(kin_device)
            q0 = joint_rot[:, triplet_joints]
            q1 = joint_rot[nxt][:, triplet_joints]
            omega = torch_util.quat_to_exp_map(torch_util.quat_mul(q1, torch_util.quat_conjugate(q0)))
            joint_dof_vel[:, triplet_dofs] = omega * inv_dt.unsqueeze(-1)

        cycle_yaw = torch_util.wrap_angle(torch_util.calc_heading(root_rot[last])
                                          - torch_util.calc_heading(root_rot[start]))
        cycle_yaw = torch.where(wrap, cycle_yaw, torch.zeros_like(cycle_yaw))
        cycle_offset = root_pos[last] - root_pos[start]
        cycle_offset[:, 2] = 0.0

        # The last frame's velocity: the next cycle's first frame (turned by the cycle's
        # heading change) for wrap clips, the previous frame's for clamp clips.
        last_src = torch.where(wrap, start, last - 1)
        turn = _yaw_quat(cycle_yaw)
        joint_dof_vel[last] = joint_dof_vel[last_src]
        root_vel[last] = torch_util.quat_rotate(turn, root_vel[last_src])
        root_ang_vel[last] = torch_util.quat_rotate(turn, root_ang_vel[last_src])

        body_pos, body_rot = kin.forward_kinematics(root_pos, root_rot, joint_rot)

        dev = self._device
        f32 = dict(dtype=torch.float32, device=dev)
        self._body_pos = body_pos.to(**f32)
        self._body_rot = body_rot.to(**f32)
        self._motion_num_frames = num_frames.to(dev)
        self._motion_start = start.to(dev)
        self._motion_fps = fps.to(**f32)
        self._motion_lengths = ((num_frames - 1) / fps).to(**f32)
        self._motion_loop_modes = torch.where(
            wrap, torch.full_like(start, LOOP_WRAP), torch.full_like(start, LOOP_CLAMP)).to(dev)
        self._motion_cycle_offset = cycle_offset.to(**f32)
        self._motion_cycle_yaw = cycle_yaw.to(**f32)
        self._motion_cycle_origin = root_pos[start].to(**f32)
        self._motion_weights = torch.tensor(weights, **f32)
        self._root_pos = root_pos.to(**f32)
        self._root_rot = root_rot.to(**f32)
        self._joint_rot = joint_rot.to(**f32)
        self._root_vel = root_vel.to(**f32)
        self._root_ang_vel = root_ang_vel.to(**f32)
        self._joint_dof_vel = joint_dof_vel.to(**f32)

    # ----------------------------------------------------------------- clip queries
    @property
    def num_motions(self) -> int:
        """Clips loaded."""
        return len(self._motions)

    @property
    def device(self) -> torch.device:
        """Torch device of every tensor the library returns."""
        return self._device

    def get_motion(self, motion_id: int) -> Motion:
        """The loaded clip ``motion_id`` (its frames as stored in the file)."""
        return self._motions[motion_id]

    def get_motion_length(self, motion_ids: Tensor) -> Tensor:
        """Durations ``[n]`` (s, first to last frame) of the long ``[n]`` clips ``motion_ids``."""
        return self._motion_lengths[motion_ids]

    def get_motion_loop_mode(self, motion_ids: Tensor) -> Tensor:
        """Loop modes ``[n]`` long: ``LOOP_CLAMP`` or ``LOOP_WRAP`` (indices into ``LOOP_MODES``)."""
        return self._motion_loop_modes[motion_ids]

    def sample_motions(self, n: int) -> Tensor:
        """``n`` clip ids (long ``[n]``), drawn with replacement in proportion to the weights."""
        return torch.multinomial(self._motion_weights, n, replacement=True)

    def sample_time(self, motion_ids: Tensor, truncate_time: Optional[float] = None) -> Tensor:
        """Times ``[n]`` (s) uniform in ``[0, length]`` of each clip in ``motion_ids`` ``[n]``.

        truncate_time: if given (s), sample in ``[0, length - truncate_time]`` instead (0
        where the clip is shorter), leaving at least that much of the clip after the time.
        """
        length = self._motion_lengths[motion_ids]
        if truncate_time is not None:
            length = (length - truncate_time).clamp(min=0.0)
        return torch.rand(length.shape, device=self._device) * length

    # ----------------------------------------------------------------- frame lookup
    def calc_motion_frame(self, motion_ids: Tensor, motion_times: Tensor
                          ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The reference state of clips ``motion_ids`` (long ``[n]``) at ``motion_times`` (``[n]`` s).

        Returns:
            root_pos ``[n, 3]`` m world, root_rot ``[n, 4]`` world, root_vel ``[n, 3]`` m/s
            world, root_ang_vel ``[n, 3]`` rad/s world, joint_rot ``[n, num_joints, 4]``
            (local, see docs/architecture.md), joint_dof_vel ``[n, num_dofs]`` (rad/s).
            Times are clamped to the clip for ``clamp`` clips and wrapped for ``wrap``
            clips, whose root advances by one cycle displacement per completed cycle.
        """
        f0, f1, blend, cycles = self._calc_frame_blend(motion_ids, motion_times)
        b = blend.unsqueeze(-1)
        root_pos = torch.lerp(self._root_pos[f0], self._root_pos[f1], b)
        root_rot = torch_util.slerp(self._root_rot[f0], self._root_rot[f1], blend)
        root_vel = torch.lerp(self._root_vel[f0], self._root_vel[f1], b)
        root_ang_vel = torch.lerp(self._root_ang_vel[f0], self._root_ang_vel[f1], b)

        turn, shift = self._cycle_transform(motion_ids, cycles)
        root_pos = torch_util.quat_rotate(turn, root_pos) + shift
        root_rot = torch_util.quat_mul(turn, root_rot)
        root_vel = torch_util.quat_rotate(turn, root_vel)
        root_ang_vel = torch_util.quat_rotate(turn, root_ang_vel)
        joint_rot = torch_util.slerp(self._joint_rot[f0], self._joint_rot[f1],
                                     b.expand(-1, self._joint_rot.shape[1]))
        joint_dof_vel = torch.lerp(self._joint_dof_vel[f0], self._joint_dof_vel[f1], b)
        return root_pos, root_rot, root_vel, root_ang_vel, joint_rot, joint_dof_vel

    def calc_body_frame(self, motion_ids: Tensor, motion_times: Tensor) -> Tuple[Tensor, Tensor]:
        """World body positions ``[n, num_bodies, 3]`` (m) and rotations ``[n, num_bodies, 4]``.

        The clip frames' forward kinematics are precomputed at load; lookups interpolate
        them (lerp / slerp) and apply the wrap cycles like :meth:`calc_motion_frame`. Exact
        at frame times; between frames within the interpolation error of 30-60 fps clips
        (millimetres).
        """
        f0, f1, blend, cycles = self._calc_frame_blend(motion_ids, motion_times)
        num_bodies = self._body_pos.shape[1]
        body_pos = torch.lerp(self._body_pos[f0], self._body_pos[f1], blend[:, None, None])
        body_rot = torch_util.slerp(self._body_rot[f0], self._body_rot[f1], blend[:, None].expand(-1, num_bodies))
        turn, shift = self._cycle_transform(motion_ids, cycles)
        turn = turn.unsqueeze(-2).expand_as(body_rot)
        return torch_util.quat_rotate(turn, body_pos) + shift.unsqueeze(-2), torch_util.quat_mul(turn, body_rot)

    def calc_body_pos(self, motion_ids: Tensor, motion_times: Tensor) -> Tensor:
        """World body positions ``[n, num_bodies, 3]`` (m); see :meth:`calc_body_frame`."""
        return self.calc_body_frame(motion_ids, motion_times)[0]

    def _cycle_transform(self, motion_ids: Tensor, cycles: Tensor) -> Tuple[Tensor, Tensor]:
        """The wrap-cycle transform applied ``cycles`` ``[n]`` times, as ``x -> turn x + shift``.

        A turn of ``cycles * yaw`` about the first frame's root, then the sum of the
        per-cycle moves, ``sum_{i < cycles} Rz(i * yaw) * offset``. Returns turn ``[n, 4]``
        and shift ``[n, 3]`` (m).
        """
        yaw = self._motion_cycle_yaw[motion_ids]
        turn = _yaw_quat(cycles * yaw)
        origin = self._motion_cycle_origin[motion_ids].clone()
        origin[:, 2] = 0.0
        shift = origin - torch_util.quat_rotate(turn, origin) \
            + _rotation_series(yaw, cycles, self._motion_cycle_offset[motion_ids])
        return turn, shift

    def _calc_frame_blend(self, motion_ids: Tensor, motion_times: Tensor
                          ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """The two frames around each clip time and how far between them it lies.

        Returns flat frame rows ``f0, f1`` (long ``[n]``), the blend weight ``[n]`` in
        [0, 1] and the completed cycles ``[n]`` (0 for clamp clips).
        """
        times = motion_times.to(dtype=torch.float32)
        length = self._motion_lengths[motion_ids]
        wrap = self._motion_loop_modes[motion_ids] == LOOP_WRAP
        cycles = torch.where(wrap, torch.floor(times / length), torch.zeros_like(times))
        phase_time = torch.minimum((times - cycles * length).clamp(min=0.0), length)
        frame_pos = phase_time * self._motion_fps[motion_ids]
        frame0 = torch.minimum(torch.floor(frame_pos).to(torch.long), self._motion_num_frames[motion_ids] - 2)
        blend = (frame_pos - frame0).clamp(0.0, 1.0)
        f0 = self._motion_start[motion_ids] + frame0
        return f0, f0 + 1, blend, cycles


def _yaw_quat(yaw: Tensor) -> Tensor:
    """Rotations ``[..., 4]`` by ``yaw`` ``[...]`` (rad) about the world z axis."""
    z_axis = torch.zeros(yaw.shape + (3,), dtype=yaw.dtype, device=yaw.device)
    z_axis[..., 2] = 1.0
    return torch_util.quat_from_axis_angle(z_axis, yaw)


def _rotation_series(yaw: Tensor, k: Tensor, offset: Tensor) -> Tensor:
    """``sum_{i=0}^{k-1} Rz(i * yaw) offset`` ``[n, 3]`` (z = 0) for integer ``k`` ``[n]``.

    Negative ``k``: the inverse steps. In complex form: offset * (1 - e^{i k yaw}) /
    (1 - e^{i yaw}), whose limit at yaw = 0 is k * offset.
    """
    d = torch.complex(offset[:, 0].double(), offset[:, 1].double())
    yaw = yaw.double()
    k = k.double()
    straight = yaw.abs() < 1e-6
    safe_yaw = torch.where(straight, torch.ones_like(yaw), yaw)
    ratio = (1 - torch.polar(torch.ones_like(yaw), k * safe_yaw)) / (1 - torch.polar(torch.ones_like(yaw), safe_yaw))
    ratio = torch.where(straight, k.to(ratio.dtype), ratio)
    s = d * ratio
    return torch.stack([s.real, s.imag, torch.zeros_like(s.real)], dim=-1).to(offset.dtype)

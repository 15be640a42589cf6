"""Quality checks of generated clips, through MuJoCo's kinematics of the character's MJCF.

Each frame of a clip is set as MuJoCo ``qpos`` (root position, root quaternion, hinge
angles from the clip's joint dofs via :class:`KinCharModel`) and ``mj_kinematics`` places
the bodies and geoms. Checks (limits in :class:`~tools.gait_generation.robot.QualityThresholds`):

- **slip**: while a foot's sole is within ``contact_height`` of the ground (stance: in a
  frame and its two neighbours), its sole centre may move at most ``max_slip`` horizontally (the largest distance from where
  the stance began; for a ``wrap`` clip a stance running over the seam is joined with its
  continuation in the next cycle);
- **penetration**: no geom goes more than ``max_penetration`` below the ground (z = 0);
- **joint limits**: every hinge angle within the MJCF range, ``limit_tol`` allowed;
- **seam** (``wrap`` clips): the pose of the last frame equals that of the first up to the
  cycle's root displacement and heading change: root height and all body positions,
  expressed in the root's heading frame, within ``max_seam_jump``;
- **velocity** (clips with a ``command`` extra ``[vx, vy, wz]``): the clip's mean root
  velocity in the heading frame (:func:`measure_root_velocity`) within ``velocity_tol``
  (relative) of the command, or within ``linear_floor``/``angular_floor`` for commands
  near zero (a turn in place moves the root on a small circle);
- **stance schedule** (clips with a ``foot_contacts`` extra ``[num_frames, num_feet]``, 1
  while the generator means a foot to stand, feet in the checker's order): every scheduled
  stance sole within ``max_stance_height`` of the ground, each scheduled stance slipping
  at most ``max_slip``, and every scheduled swing rising at least ``min_swing_clearance``.

A foot that is one sphere touches the ground at its lowest point, ``radius`` below its
centre (see :class:`~tools.gait_generation.robot.Sole`); other feet at their sole box.

Needs numpy, torch, MuJoCo and mimickit only (no placo), so CI can check shipped clips.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import mujoco
import numpy as np
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.engines.mujoco_pose import MujocoPose, frames_to_pose
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError
from tools.gait_generation.robot import QualityThresholds, body_geom_ids, foot_sole
from tools.motion_import.ground import geom_lowest_z


@dataclasses.dataclass
class ClipReport:
    """Results of :func:`check_clip` for one clip; ``failures`` is empty when it passes.

    slip m, penetration m (depth below the ground, 0 if none), limit_excess rad (largest
    excursion beyond a joint range), seam_jump m (None for clamp clips), command and
    measured ``[vx m/s, vy m/s, wz rad/s]`` (None without a command extra); with a
    ``foot_contacts`` extra, stance_height m (largest height or depth of a scheduled stance
    sole) and swing_clearance m (lowest apex of a scheduled swing), else None.
    """

    name: str
    slip: float
    penetration: float
    limit_excess: float
    seam_jump: Optional[float]
    command: Optional[np.ndarray]
    measured: np.ndarray
    failures: List[str]
    stance_height: Optional[float] = None
    swing_clearance: Optional[float] = None

    @property
    def passed(self) -> bool:
        return not self.failures


def heading_angles(root_rot: np.ndarray) -> np.ndarray:
    """Unwrapped heading (rad) ``[T]`` of root rotations ``[T, 4]`` (x, y, z, w)."""
    heading = torch_util.calc_heading(torch.as_tensor(root_rot, dtype=torch.float64)).numpy()
    return np.unwrap(heading)


def measure_root_velocity(root_pos: np.ndarray, root_rot: np.ndarray, fps: float) -> np.ndarray:
    """Mean root velocity ``[vx, vy, wz]`` of a clip in the root's heading frame.

    ``vx, vy`` (m/s): the mean over frames of the forward-difference root velocity rotated
    into that frame's heading; ``wz`` (rad/s): the heading change over the clip divided
    by its length. root_pos ``[T, 3]`` m world, root_rot ``[T, 4]`` (x, y, z, w).
    """
    heading = heading_angles(root_rot)
    vel = np.diff(root_pos[:, :2], axis=0) * fps
    c, s = np.cos(heading[:-1]), np.sin(heading[:-1])
    local = np.stack([c * vel[:, 0] + s * vel[:, 1], -s * vel[:, 0] + c * vel[:, 1]], axis=-1)
    length = (len(root_pos) - 1) / fps
    return np.array([local[:, 0].mean(), local[:, 1].mean(), (heading[-1] - heading[0]) / length])


class ClipChecker:
    """Runs the checks for clips of one character.

    Args:
        char_file: the character's MJCF.
        foot_bodies: names of the foot bodies whose soles are checked for slip.
        thresholds: pass limits.

    Raises:
        MimicKitError: if the MJCF or a foot body is bad.
    """

    def __init__(self, char_file: str, foot_bodies: Sequence[str], thresholds: Optional[QualityThresholds] = None):
        self.kin = KinCharModel(char_file)
        self.model = mujoco.MjModel.from_xml_path(char_file)
        self.data = mujoco.MjData(self.model)
        self.thresholds = thresholds or QualityThresholds()
        self.foot_ids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, n) for n in foot_bodies]
        soles = [foot_sole(self.model, n) for n in foot_bodies]
        self.soles = [sole.center for sole in soles]
        self.sole_drop = [np.array([0.0, 0.0, sole.radius]) for sole in soles]  # sphere feet: world -z
        self.geom_ids = [g for b in range(1, self.model.nbody) for g in body_geom_ids(self.model, b)]
        self.pose = MujocoPose(self.model, self.kin)

    def kinematics(self, frames: np.ndarray) -> Dict[str, np.ndarray]:
        """Per frame: ``sole`` ``[T, num_feet, 3]`` sole centres (m, world), ``lowest`` ``[T]``
        lowest geom point (m), ``body_pos`` ``[T, num_bodies, 3]``, plus the pose (root_pos,
        root_rot, dof_pos) of :func:`frames_to_pose`."""
        root_pos, root_rot, dof_pos = frames_to_pose(self.kin, frames)
        num = len(frames)
        sole = np.empty((num, len(self.foot_ids), 3))
        lowest = np.empty(num)
        body_pos = np.empty((num, self.model.nbody - 1, 3))
        for t in self.pose.kinematics(self.data, self.pose.qpos(root_pos, root_rot, dof_pos)):
            for i, (b, offset, drop) in enumerate(zip(self.foot_ids, self.soles, self.sole_drop)):
                sole[t, i] = self.data.xpos[b] + self.data.xmat[b].reshape(3, 3) @ offset - drop
            lowest[t] = geom_lowest_z(self.model, self.data, self.geom_ids).min()
            body_pos[t] = self.data.xpos[1:]
        return dict(sole=sole, lowest=lowest, body_pos=body_pos, root_pos=root_pos, root_rot=root_rot,
                    dof_pos=dof_pos)

    def check(self, motion: Motion, name: str = "clip") -> ClipReport:
        """Check one clip (its dofs must be the character's)."""
        motion.check_dof_names(self.kin.dof_names, self.kin.file, source=name)
        th = self.thresholds
        k = self.kinematics(motion.frames)
        wrap = motion.loop_mode == "wrap"
        heading = heading_angles(k["root_rot"])
        failures = []

        num_feet = len(self.foot_ids)
        slip = max(_stance_slip(k["sole"][:, i], _stance_by_height(k["sole"][:, i], th.contact_height, wrap),
                                wrap, k["root_pos"], heading)
                   for i in range(num_feet))
        stance_height = swing_clearance = None
        contacts = motion.extras.get("foot_contacts")
        if contacts is not None:
            contacts = np.asarray(contacts) > 0.5
            if contacts.shape != (motion.num_frames, num_feet):
                raise MimicKitError("{}: extra 'foot_contacts' has shape {}; expected [{}, {}] (frames, feet)".format(
                    name, list(contacts.shape), motion.num_frames, num_feet))
            heights = k["sole"][..., 2]
            stance_height = float(np.abs(heights[contacts]).max()) if contacts.any() else 0.0
            if stance_height > th.max_stance_height:
                failures.append("a scheduled stance foot is {:.1f} mm off the ground > {:.1f} mm".format(
                    stance_height * 1e3, th.max_stance_height * 1e3))
            slip = max([slip] + [_stance_slip(k["sole"][:, i], contacts[:, i], wrap, k["root_pos"], heading)
                                 for i in range(num_feet)])
            apexes = [apex for i in range(num_feet) for apex in _interval_maxima(heights[:, i], ~contacts[:, i], wrap)]
            swing_clearance = min(apexes) if apexes else None
            if swing_clearance is not None and swing_clearance < th.min_swing_clearance:
                failures.append("a swing foot rises only {:.1f} mm < {:.1f} mm".format(
                    swing_clearance * 1e3, th.min_swing_clearance * 1e3))
        if slip > th.max_slip:
            failures.append("stance foot slips {:.1f} mm > {:.1f} mm".format(slip * 1e3, th.max_slip * 1e3))
        penetration = max(0.0, -float(k["lowest"].min()))
        if penetration > th.max_penetration:
            failures.append("ground penetration {:.1f} mm > {:.1f} mm".format(
                penetration * 1e3, th.max_penetration * 1e3))
        low, high = self.kin.dof_low.numpy(), self.kin.dof_high.numpy()
        excess_per_dof = np.maximum(k["dof_pos"] - high, low - k["dof_pos"]).max(0)
        limit_excess = max(0.0, float(excess_per_dof.max()))
        if limit_excess > th.limit_tol:
            worst = self.kin.dof_names[int(np.argmax(excess_per_dof))]
            failures.append("joint {} exceeds its limit by {:.3f} rad".format(worst, limit_excess))

        seam_jump = None
        if wrap:
            local = _heading_frame_positions(k["body_pos"][[0, -1]], k["root_pos"][[0, -1]], heading[[0, -1]])
            seam_jump = float(np.linalg.norm(local[1] - local[0], axis=-1).max())
            if seam_jump > th.max_seam_jump:
                failures.append("pose jumps {:.1f} mm at the loop seam > {:.1f} mm".format(
                    seam_jump * 1e3, th.max_seam_jump * 1e3))

        measured = measure_root_velocity(k["root_pos"], k["root_rot"], motion.fps)
        command = motion.extras.get("command")
        if command is not None:
            command = np.asarray(command, dtype=np.float64).reshape(3)
            lin_err = float(np.linalg.norm(measured[:2] - command[:2]))
            lin_tol = max(th.velocity_tol * float(np.linalg.norm(command[:2])), th.linear_floor)
            ang_err = abs(float(measured[2] - command[2]))
            ang_tol = max(th.velocity_tol * abs(float(command[2])), th.angular_floor)
            if lin_err > lin_tol:
                failures.append("root velocity {} m/s is {:.3f} m/s off the command {} (allowed {:.3f})".format(
                    np.round(measured[:2], 3).tolist(), lin_err, np.round(command[:2], 3).tolist(), lin_tol))
            if ang_err > ang_tol:
                failures.append("turn rate {:.3f} rad/s is {:.3f} rad/s off the command {:.3f} (allowed {:.3f})".format(
                    measured[2], ang_err, command[2], ang_tol))
        return ClipReport(name=name, slip=slip, penetration=penetration, limit_excess=limit_excess,
                          seam_jump=seam_jump, command=command, measured=measured, failures=failures,
                          stance_height=stance_height, swing_clearance=swing_clearance)


def _heading_frame_positions(points: np.ndarray, root_pos: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Points ``[T, N, 3]`` in each frame's heading frame at the root (z kept)."""
    rel = points - np.concatenate([root_pos[:, None, :2], np.zeros_like(root_pos[:, None, :1])], axis=-1)
    c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
    return np.stack([c * rel[..., 0] + s * rel[..., 1], -s * rel[..., 0] + c * rel[..., 1], rel[..., 2]], axis=-1)


def _stance_by_height(sole: np.ndarray, contact_height: float, wrap: bool) -> np.ndarray:
    """Stance flags ``[T]`` of a sole ``[T, 3]``: low (below ``contact_height``) in a frame
    and in both neighbours, since the frame before a lift-off and the first frame of a
    touch-down still move with the swing."""
    low = sole[:, 2] < contact_height
    before = np.concatenate([low[-1:] if wrap else low[:1], low[:-1]])
    after = np.concatenate([low[1:], low[:1] if wrap else low[-1:]])
    return low & before & after


def _intervals(flags: np.ndarray) -> List[Tuple[int, int]]:
    """``(start, end)`` of each run of True in ``flags`` ``[T]`` (end exclusive)."""
    intervals = []
    t = 0
    while t < len(flags):
        if flags[t]:
            start = t
            while t < len(flags) and flags[t]:
                t += 1
            intervals.append((start, t))
        else:
            t += 1
    return intervals


def _interval_maxima(values: np.ndarray, flags: np.ndarray, wrap: bool) -> List[float]:
    """The largest value ``[T]`` of each run of True in ``flags`` ``[T]``; for a wrap clip a
    run at the end and one at the start are one run across the seam."""
    intervals = _intervals(flags)
    maxima = [float(values[a:b].max()) for a, b in intervals]
    if wrap and len(intervals) >= 2 and intervals[0][0] == 0 and intervals[-1][1] == len(flags):
        maxima = [max(maxima[0], maxima[-1])] + maxima[1:-1]
    return maxima


def _stance_slip(sole: np.ndarray, stance: np.ndarray, wrap: bool, root_pos: np.ndarray,
                 heading: np.ndarray) -> float:
    """Largest horizontal drift (m) of a sole ``[T, 3]`` within one stance (a run of True in
    ``stance`` ``[T]``). For a wrap clip, the stance at the end continues into the stance
    at the start of the next cycle, moved by the cycle's root displacement and turn."""
    intervals = _intervals(stance)
    paths = [sole[a:b, :2] for a, b in intervals]
    if wrap and len(intervals) >= 2 and intervals[0][0] == 0 and intervals[-1][1] == len(sole):
        # Next cycle: rotate about the first root by the turn, then move to the last root.
        turn = heading[-1] - heading[0]
        c, s = math.cos(turn), math.sin(turn)
        rot = np.array([[c, -s], [s, c]])
        first = (paths[0] - root_pos[0, :2]) @ rot.T + root_pos[-1, :2]
        paths = [np.concatenate([paths[-1], first])] + paths[1:-1]
    slip = 0.0
    for path in paths:
        slip = max(slip, float(np.linalg.norm(path - path[0], axis=-1).max()))
    return slip


def format_report(reports: List[ClipReport]) -> str:
    """A table of the reports, one clip per line, then the number that failed."""
    scheduled = any(r.stance_height is not None for r in reports)
    extra_head = " {:>8} {:>8}".format("stand mm", "swing mm") if scheduled else ""
    lines = ["{:<28} {:>8} {:>8} {:>8} {:>8}{}  {:<22} {:<22} {}".format(
        "clip", "slip mm", "pen mm", "lim rad", "seam mm", extra_head, "command vx vy wz", "measured vx vy wz",
        "result")]

    def mm(value: Optional[float]) -> str:
        return "-" if value is None else "{:.2f}".format(value * 1e3)

    for r in reports:
        cmd = "-" if r.command is None else " ".join("{:+.3f}".format(v) for v in r.command)
        meas = " ".join("{:+.3f}".format(v) for v in r.measured)
        extra = " {:>8} {:>8}".format(mm(r.stance_height), mm(r.swing_clearance)) if scheduled else ""
        lines.append("{:<28} {:>8.2f} {:>8.2f} {:>8.4f} {:>8}{}  {:<22} {:<22} {}".format(
            r.name, r.slip * 1e3, r.penetration * 1e3, r.limit_excess, mm(r.seam_jump), extra, cmd, meas,
            "ok" if r.passed else "FAIL: " + "; ".join(r.failures)))
    failed = sum(not r.passed for r in reports)
    lines.append("{} clips, {} failed".format(len(reports), failed))
    return "\n".join(lines)

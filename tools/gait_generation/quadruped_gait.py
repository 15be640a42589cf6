"""Kinematic gaits for a quadruped with A1-style legs: trot, pace, turns, standing. No placo.

A clip is made in three steps, all closed form:

1. **Root.** The trunk follows a constant command ``[vx m/s, vy m/s, wz rad/s]`` in its
   heading frame at a constant height (``body_height``), level: its heading is
   ``wz t`` and its path the arc ``p(t) = integral of R(wz s) [vx, vy] ds``. Such a motion
   is a one-parameter group, ``Root(t + T) = Root(T) o Root(t)``, so one cycle repeats
   exactly after moving by ``Root(T)``.
2. **Feet.** Each leg stands for ``duty * period`` s of every cycle, starting at its phase
   offset (trot: diagonal pairs FL+RR and FR+RL half a cycle apart; pace: lateral pairs).
   A standing foot stays where the root, at the middle of that stance, puts the leg's
   nominal foothold (below the thigh joint, in the heading frame): the stance sweeps
   symmetrically about the nominal foothold, and a turn places feet on the turn's arcs. A
   swing foot moves from one foothold to the next along a cycloid: horizontally
   ``s - sin(2 pi s) / (2 pi)`` of the way, vertically ``step_height (1 - cos(2 pi s)) / 2``
   (``s`` from 0 to 1 over the swing), so it leaves and lands with zero velocity.
3. **Joints.** Each foot, in its hip's frame, goes through the closed-form leg IK of
   :mod:`tools.gait_generation.leg_ik`.

Clips are one (or ``cycles``) gait cycle in ``wrap`` mode, starting at the origin facing
+x; the frame rate is adjusted so a cycle has a whole number of frames. Extras:
``command`` and ``measured_root_vel`` as for the biped clips (heading frame), and
``foot_contacts`` ``[num_frames, num_legs]`` (1 while a foot stands, in ``legs`` order),
which :class:`~tools.gait_generation.quality.ClipChecker` uses for the stance and swing checks.
The standing clip holds the feet still while the trunk sways.

Settings: ``tools/gait_generation/robots/quadruped.yaml`` (:class:`QuadrupedConfig`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import mujoco
import numpy as np

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.util.errors import MimicKitError
from tools.gait_generation.clip import make_motion
from tools.gait_generation.leg_ik import LegGeometry, leg_geometry, solve_leg_ik
from tools.gait_generation.robot import REPO_ROOT, QualityThresholds

GENERATOR = "quadruped"
STAND = "stand"
JOINTS = ("hip", "thigh", "calf")


@dataclasses.dataclass
class GaitParams:
    """One gait. period: s per cycle; duty: fraction of the cycle each foot stands, in
    (0, 1); offsets: per leg, the fraction of the cycle at which its stance begins;
    step_height: m, the swing foot's apex above its stance height."""

    period: float
    duty: float
    offsets: Dict[str, float]
    step_height: float = 0.07


@dataclasses.dataclass
class ClipParams:
    """One clip: ``gait`` (a key of ``gaits``, or ``stand``), ``command`` ``[vx m/s, vy m/s,
    wz rad/s]`` in the heading frame (ignored by ``stand``), and an optional ``period`` (s)
    replacing the gait's."""

    gait: str
    command: List[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    period: Optional[float] = None


@dataclasses.dataclass
class StandParams:
    """The standing clip: ``duration`` s (one sway cycle), lateral trunk sway amplitude
    ``sway`` m and vertical bob ``bob`` m (two bobs per sway); the feet stay still."""

    duration: float = 2.0
    sway: float = 0.01
    bob: float = 0.005


@dataclasses.dataclass
class RandomParams:
    """The ``random`` preset: ``gait`` with commands drawn uniformly in ``[low, high]`` of
    ``vx`` (m/s), ``vy`` (m/s) and ``wz`` (rad/s)."""

    gait: str = "trot"
    vx: List[float] = dataclasses.field(default_factory=lambda: [-0.5, 1.0])
    vy: List[float] = dataclasses.field(default_factory=lambda: [-0.3, 0.3])
    wz: List[float] = dataclasses.field(default_factory=lambda: [-1.0, 1.0])


@dataclasses.dataclass
class QuadrupedConfig:
    """A quadruped's gait settings (``robots/<robot>.yaml`` with ``generator: quadruped``).

    Attributes:
        generator: ``quadruped``.
        char_file: the MJCF (bodies and joints as :func:`leg_geometry` expects).
        legs: leg prefixes (``FL``, ``FR``, ``RL``, ``RR``); the foot bodies are
            ``<leg>_foot`` and ``foot_contacts`` columns follow this order.
        body_height: trunk origin above the ground (m) while walking.
        foot_offset: ``[forward, outward]`` m shift of each nominal foothold from straight
            below its thigh joint.
        gaits: named gaits; clips: named clips; shipped: clips written by ``--preset all``.
        fps: nominal frame rate (Hz); cycles: gait cycles per clip.
        stand, random: the standing clip and the ``random`` preset.
        quality: pass limits of the quality checks.
        out_dir, dataset_file: where ``--preset all`` writes (repository-relative).
    """

    generator: str
    char_file: str
    legs: List[str]
    body_height: float
    gaits: Dict[str, GaitParams]
    clips: Dict[str, ClipParams]
    shipped: List[str]
    out_dir: str
    dataset_file: str
    trunk_body: str = "trunk"
    foot_offset: List[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    fps: float = 50.0
    cycles: int = 1
    stand: StandParams = dataclasses.field(default_factory=StandParams)
    random: RandomParams = dataclasses.field(default_factory=RandomParams)
    quality: QualityThresholds = dataclasses.field(default_factory=QualityThresholds)

    def validate(self, source: str) -> None:
        if self.generator != GENERATOR:
            raise MimicKitError("{}: key 'generator' must be '{}' for these settings, got '{}'".format(
                source, GENERATOR, self.generator))
        if self.fps <= 0 or self.cycles < 1 or self.body_height <= 0 or len(self.foot_offset) != 2:
            raise MimicKitError("{}: expected fps > 0, cycles >= 1, body_height > 0 m and foot_offset "
                                "[forward, outward]".format(source))
        for name, gait in self.gaits.items():
            if gait.period <= 0 or not 0.0 < gait.duty < 1.0 or gait.step_height <= 0:
                raise MimicKitError("{}: gaits.{}: expected period > 0 s, 0 < duty < 1 and step_height > 0 m".format(
                    source, name))
            if sorted(gait.offsets) != sorted(self.legs):
                raise MimicKitError("{}: gaits.{}.offsets: expected one offset per leg ({}), got {}".format(
                    source, name, ", ".join(self.legs), ", ".join(gait.offsets)))
        for name, clip in self.clips.items():
            if clip.gait != STAND and clip.gait not in self.gaits:
                raise MimicKitError("{}: clips.{}.gait: unknown gait '{}'; expected {} or one of {}".format(
                    source, name, clip.gait, STAND, ", ".join(self.gaits)))
            if len(clip.command) != 3 or (clip.period is not None and clip.period <= 0):
                raise MimicKitError("{}: clips.{}: expected command [vx, vy, wz] and period > 0 s".format(source, name))
        for name in self.shipped:
            if name not in self.clips:
                raise MimicKitError("{}: shipped clip '{}' is not under 'clips' (known: {})".format(
                    source, name, ", ".join(self.clips)))
        if self.random.gait not in self.gaits:
            raise MimicKitError("{}: random.gait: unknown gait '{}'".format(source, self.random.gait))

    def path(self, relative: str) -> str:
        """``relative`` resolved against the repository root."""
        return relative if os.path.isabs(relative) else os.path.join(REPO_ROOT, relative)

    def foot_bodies(self) -> List[str]:
        """The foot body of each leg, in ``legs`` order."""
        return [leg + "_foot" for leg in self.legs]


@dataclasses.dataclass
class QuadrupedRequest:
    """One clip to make: ``gait`` (a gait name or ``stand``), ``command`` ``[vx, vy, wz]``
    (m/s, m/s, rad/s, heading frame) and the cycle ``period`` (s; None: the gait's)."""

    name: str
    gait: str
    command: Tuple[float, float, float]
    period: Optional[float] = None


def quadruped_requests(config: QuadrupedConfig, preset: str, num_random: int, seed: int) -> List[QuadrupedRequest]:
    """The clips of ``preset``: ``all`` (shipped), ``grid`` (every clip under ``clips``),
    ``random`` (``num_random`` commands drawn with ``seed``) or one clip name.

    Raises:
        MimicKitError: on an unknown clip name.
    """
    if preset == "random":
        rng = np.random.default_rng(seed)
        r = config.random
        return [QuadrupedRequest("random_{:03d}".format(i), r.gait,
                                 (float(rng.uniform(*r.vx)), float(rng.uniform(*r.vy)), float(rng.uniform(*r.wz))))
                for i in range(num_random)]
    names = {"all": config.shipped, "grid": list(config.clips)}.get(preset, [preset])
    out = []
    for name in names:
        if name not in config.clips:
            raise MimicKitError("--preset: unknown clip '{}'; expected all, grid, random or one of {}".format(
                name, ", ".join(config.clips)))
        clip = config.clips[name]
        out.append(QuadrupedRequest(name, clip.gait, tuple(float(v) for v in clip.command), clip.period))
    return out


def root_path(command: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Planar root poses of a constant heading-frame command from the origin, heading +x.

    command: ``[vx m/s, vy m/s, wz rad/s]``; t: ``[T]`` s. Returns ``xy`` ``[T, 2]`` m (world)
    and ``yaw`` ``[T]`` rad, the exact integral of ``R(yaw) [vx, vy]`` with ``yaw = wz t``.
    """
    vx, vy, wz = (float(v) for v in command)
    yaw = wz * t
    if abs(wz) < 1e-9:
        return np.stack([vx * t, vy * t], axis=-1), yaw
    s, c = np.sin(yaw), np.cos(yaw)
    return np.stack([(vx * s + vy * (c - 1.0)) / wz, (vx * (1.0 - c) + vy * s) / wz], axis=-1), yaw


def _to_world(xy: np.ndarray, yaw: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Points ``local`` ``[..., 2]`` of the heading frames at ``xy`` ``[..., 2]``, ``yaw`` ``[...]``, in the world."""
    c, s = np.cos(yaw), np.sin(yaw)
    return xy + np.stack([c * local[..., 0] - s * local[..., 1], s * local[..., 0] + c * local[..., 1]], axis=-1)


def _to_heading(xy: np.ndarray, yaw: np.ndarray, world: np.ndarray) -> np.ndarray:
    """World points ``[..., 2]`` in the heading frames at ``xy``, ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    d = world - xy
    return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)


def swing_profile(s: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Cycloid swing at progress ``s`` ``[T]`` in [0, 1]: the horizontal fraction travelled
    and the height as a fraction of the step height; both have zero rate at 0 and 1."""
    two_pi_s = 2.0 * np.pi * s
    return s - np.sin(two_pi_s) / (2.0 * np.pi), 0.5 * (1.0 - np.cos(two_pi_s))


def foot_track(nominal: np.ndarray, command: np.ndarray, t: np.ndarray, period: float, duty: float,
               offset: float, step_height: float, ground_z: float) -> Tuple[np.ndarray, np.ndarray]:
    """One foot's world positions ``[T, 3]`` (m) and stance flags ``[T]`` at times ``t`` (s).

    nominal: ``[2]`` m foothold in the root's heading frame. The foot's stance ``k`` spans
    ``[(k + offset) period, (k + offset + duty) period]``; there it stays at the foothold the
    root puts at ``nominal`` at mid-stance. Between stances it swings along
    :func:`swing_profile`, ``step_height`` m high, from ``ground_z`` (the foot centre's
    stance height).
    """
    cycle = t / period - offset
    k = np.floor(cycle)
    phase = cycle - k
    stance = phase < duty

    def foothold(j: np.ndarray) -> np.ndarray:
        xy, yaw = root_path(command, (j + offset + 0.5 * duty) * period)
        return _to_world(xy, yaw, np.broadcast_to(nominal, xy.shape))

    here, there = foothold(k), foothold(k + 1.0)
    s = np.clip((phase - duty) / (1.0 - duty), 0.0, 1.0)
    along, up = swing_profile(s)
    xy = np.where(stance[:, None], here, here + (there - here) * along[:, None])
    z = np.where(stance, ground_z, ground_z + step_height * up)
    return np.concatenate([xy, z[:, None]], axis=-1), stance


class QuadrupedGait:
    """Makes the clips of :class:`QuadrupedConfig` for its MJCF.

    Raises:
        MimicKitError: if the MJCF's legs do not fit the A1 layout (see :func:`leg_geometry`)
            or its dofs are not exactly the legs' hip, thigh and calf joints.
    """

    def __init__(self, config: QuadrupedConfig):
        self.config = config
        self.char_file = config.path(config.char_file)
        self.kin = KinCharModel(self.char_file)
        model = mujoco.MjModel.from_xml_path(self.char_file)
        self.legs: Dict[str, LegGeometry] = {leg: leg_geometry(model, leg, config.trunk_body) for leg in config.legs}
        joints = ["{}_{}_joint".format(leg, j) for leg in config.legs for j in JOINTS]
        if sorted(joints) != sorted(self.kin.dof_names):
            raise MimicKitError("{}: expected the dofs {} (the legs' hip, thigh and calf joints), got {}".format(
                self.char_file, ", ".join(joints), ", ".join(self.kin.dof_names)))
        self.columns = {leg: [self.kin.dof_names.index("{}_{}_joint".format(leg, j)) for j in JOINTS]
                        for leg in config.legs}
        forward, outward = config.foot_offset
        self.nominal = {}  # foothold in the heading frame, m
        for leg, g in self.legs.items():
            side = np.sign(g.thigh_offset_y)
            self.nominal[leg] = np.array([g.hip_pos[0] + forward, g.hip_pos[1] + g.thigh_offset_y + side * outward])

    def clip(self, request: QuadrupedRequest) -> Motion:
        """The clip of ``request`` (see the module docstring).

        Raises:
            MimicKitError: if a foot target is out of the leg's reach.
        """
        if request.gait == STAND:
            return self._stand(request)
        gait = self.config.gaits[request.gait]
        period = request.period or gait.period
        frames_per_cycle = max(2, int(round(period * self.config.fps)))
        fps = frames_per_cycle / period
        t = np.arange(frames_per_cycle * self.config.cycles + 1) / fps
        command = np.asarray(request.command, dtype=np.float64)
        xy, yaw = root_path(command, t)
        feet, contacts = {}, []
        for leg in self.config.legs:
            ground_z = self.legs[leg].foot_radius
            feet[leg], stance = foot_track(self.nominal[leg], command, t, period, gait.duty, gait.offsets[leg],
                                           gait.step_height, ground_z)
            contacts.append(stance)
        root_z = np.full(len(t), self.config.body_height)
        return self._motion(request, xy, yaw, root_z, feet, fps, np.stack(contacts, axis=-1))

    def _stand(self, request: QuadrupedRequest) -> Motion:
        st = self.config.stand
        frames = max(2, int(round(st.duration * self.config.fps)))
        fps = frames / st.duration
        t = np.arange(frames + 1) / fps
        angle = 2.0 * np.pi * t / st.duration
        xy = np.stack([np.zeros_like(t), st.sway * np.sin(angle)], axis=-1)
        yaw = np.zeros_like(t)
        root_z = self.config.body_height + st.bob * np.sin(2.0 * angle)
        feet = {leg: np.concatenate([np.broadcast_to(self.nominal[leg], (len(t), 2)),
                                     np.full((len(t), 1), self.legs[leg].foot_radius)], axis=-1)
                for leg in self.config.legs}
        contacts = np.ones((len(t), len(self.config.legs)), dtype=bool)
        return self._motion(request, xy, yaw, root_z, feet, fps, contacts, command=np.zeros(3))

    def _motion(self, request: QuadrupedRequest, xy: np.ndarray, yaw: np.ndarray, root_z: np.ndarray,
                feet: Dict[str, np.ndarray], fps: float, contacts: np.ndarray,
                command: Optional[np.ndarray] = None) -> Motion:
        """Leg IK of world foot positions under a level root, then the clip."""
        dof_pos = np.zeros((len(yaw), self.kin.num_dofs))
        for leg, g in self.legs.items():
            local_xy = _to_heading(xy, yaw, feet[leg][:, :2])
            local = np.concatenate([local_xy, (feet[leg][:, 2] - root_z)[:, None]], axis=-1) - g.hip_pos
            dof_pos[:, self.columns[leg]] = solve_leg_ik(g, local, where="clip {}, leg {}".format(request.name, leg))
        root_pos = np.concatenate([xy, root_z[:, None]], axis=-1)
        root_rot = np.stack([np.zeros_like(yaw), np.zeros_like(yaw), np.sin(0.5 * yaw), np.cos(0.5 * yaw)], axis=-1)
        if command is None:
            command = np.asarray(request.command, dtype=np.float64)
        return make_motion(self.kin, root_pos, root_rot, dof_pos, fps, "wrap", command,
                           extras={"foot_contacts": contacts.astype(np.float32)})

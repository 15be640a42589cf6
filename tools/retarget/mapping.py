"""The retargeting mapping, read from a YAML file.

Which target body follows which source body, how hard, and how the source is scaled.

Example (``tools/retarget/mappings/humanoid_to_g1.yaml``)::

    scale: auto                 # a number, or auto: the target's hip-to-ankle length / the source's
    leg: {source: [left_thigh, left_foot], target: [left_hip_pitch_link, left_ankle_roll_link]}
    feet: [left_foot, right_foot]          # source bodies that stand on the floor (mapped below)
    bodies:
      - {source: pelvis, target: pelvis, position_weight: 5.0, orientation_weight: 2.0, position_offset: auto}
      - {source: right_hand, target: right_wrist_yaw_link, position_weight: 2.0, orientation_weight: 0.0,
         rotation_offset_rpy: [0, 0, 0]}    # or rotation_offset: [x, y, z, w]
    velocity_limit: 30.0        # rad/s for every hinge; or {default: 30.0, some_joint: 20.0}
    posture_weight: 0.01        # pull of every hinge towards the target's default pose
    max_iterations: 8           # IK steps per frame at most ...
    tolerance: 1.0e-4           # ... stopping once a step is shorter than this (norm, rad and m)

Target body orientation: ``R_target(t) = R_source(t) @ offset``; without an offset it is
``R_source_rest.T @ R_target_rest`` (both characters at zero joint angles), i.e. the target
body turns in the world as the source body turns from its rest pose. Rotation offsets are
quaternions (x, y, z, w) or roll-pitch-yaw in degrees (extrinsic x, y, z). Positions: the
source's world positions times ``scale``, plus a ``position_offset`` ([x, y, z] m in the
source body's frame, turning with it), ``auto`` for the rest-pose difference
``R_source_rest.T @ (p_target_rest - scale * p_source_rest)`` (e.g. a robot whose feet stand
wider or whose pelvis sits higher above its hips than the scaled human's); none by default.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
from scipy.spatial.transform import Rotation

from mimickit.util.config import load_yaml
from mimickit.util.errors import MimicKitError

_BODY_KEYS = {"source", "target", "position_weight", "orientation_weight", "rotation_offset", "rotation_offset_rpy",
              "position_offset"}
_TOP_KEYS = {"scale", "leg", "feet", "bodies", "velocity_limit", "posture_weight", "max_iterations", "tolerance",
             "first_frame_iterations", "damping", "stance_lock", "contact_speed", "min_stance_time", "stance_height"}


@dataclasses.dataclass
class BodyMap:
    """One frame task: ``target`` body follows ``source`` body.

    Attributes:
        source, target: body names.
        position_weight: cost per m of the position error.
        orientation_weight: cost per rad of the orientation error.
        rotation_offset: ``[3, 3]`` the target's rotation relative to the source body's, or
            None for the rest-pose offset (module docstring).
        position_offset: ``[3]`` m in the source body's frame, added to its scaled position;
            ``"auto"`` for the rest-pose offset; None for none.
    """
    source: str
    target: str
    position_weight: float
    orientation_weight: float
    rotation_offset: Optional[np.ndarray] = None
    position_offset: Union[None, str, np.ndarray] = None


@dataclasses.dataclass
class RetargetMapping:
    """A mapping YAML (see the module docstring); ``file`` names it in messages.

    Attributes:
        bodies: the frame tasks.
        scale: the source-to-target length factor, or None for ``auto`` (from ``leg``).
        leg: ``((source hip, source ankle), (target hip, target ankle))`` body names, or None.
        feet: source bodies that stand on the floor (each one mapped in ``bodies``).
        velocity_limits: rad/s per target hinge name, ``"default"`` for the others (inf: none).
        posture_weight: cost per rad of each hinge's distance to the default pose.
        max_iterations, first_frame_iterations: IK steps per frame at most (the first frame
            starts from the default pose and gets more).
        tolerance: a frame is converged when a step is shorter than this.
        damping: Levenberg-Marquardt damping of the IK's QP.
        stance_lock: hold each stance foot's horizontal target at its mean over the stance.
        contact_speed, min_stance_time, stance_height: stance detection on the source: the
            foot slower than this (m/s) this long (s), its lowest point at most this high
            above the floor (m).
    """
    file: str
    bodies: List[BodyMap]
    scale: Optional[float] = None
    leg: Optional[Tuple[Tuple[str, str], Tuple[str, str]]] = None
    feet: List[str] = dataclasses.field(default_factory=list)
    velocity_limits: Dict[str, float] = dataclasses.field(default_factory=lambda: {"default": float("inf")})
    posture_weight: float = 0.01
    max_iterations: int = 8
    first_frame_iterations: int = 200
    tolerance: float = 1e-4
    damping: float = 1e-3
    stance_lock: bool = True
    contact_speed: float = 0.5
    min_stance_time: float = 0.03
    stance_height: float = 0.02

    def target_of(self, source_body: str) -> str:
        """The target body mapped from ``source_body``."""
        for b in self.bodies:
            if b.source == source_body:
                return b.target
        raise MimicKitError("{}: foot '{}' is not mapped in bodies".format(self.file, source_body))

    def check_bodies(self, source_bodies: List[str], target_bodies: List[str], source_file: str,
                     target_file: str) -> None:
        """Raise MimicKitError naming the mapping, character and body when one is missing."""
        names = [(b.source, b.target) for b in self.bodies]
        if self.leg is not None:
            names += list(zip(self.leg[0], self.leg[1]))
        for src, tgt in names:
            if src not in source_bodies:
                raise MimicKitError("{}: source character {} has no body '{}' (bodies: {})".format(
                    self.file, source_file, src, ", ".join(source_bodies)))
            if tgt not in target_bodies:
                raise MimicKitError("{}: target character {} has no body '{}' (bodies: {})".format(
                    self.file, target_file, tgt, ", ".join(target_bodies)))
        for f in self.feet:
            self.target_of(f)


def _number(path: str, key: str, value: object, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MimicKitError("{}: '{}' must be a number, got {!r}".format(path, key, value))
    if value < 0 or (positive and value == 0):
        raise MimicKitError("{}: '{}' must be {}, got {}".format(path, key, "> 0" if positive else ">= 0", value))
    return float(value)


def _rotation(path: str, where: str, entry: dict) -> Optional[np.ndarray]:
    if "rotation_offset" in entry and "rotation_offset_rpy" in entry:
        raise MimicKitError("{}: {}: give rotation_offset or rotation_offset_rpy, not both".format(path, where))
    try:
        if "rotation_offset" in entry:
            q = np.asarray(entry["rotation_offset"], dtype=np.float64)
            if q.shape != (4,) or not np.linalg.norm(q) > 0:
                raise ValueError("expected a quaternion [x, y, z, w]")
            return Rotation.from_quat(q).as_matrix()
        if "rotation_offset_rpy" in entry:
            rpy = np.asarray(entry["rotation_offset_rpy"], dtype=np.float64)
            if rpy.shape != (3,):
                raise ValueError("expected [roll, pitch, yaw] in degrees")
            return Rotation.from_euler("xyz", rpy, degrees=True).as_matrix()
    except (ValueError, TypeError) as e:
        raise MimicKitError("{}: {}: bad rotation offset: {}".format(path, where, e)) from e
    return None


def _offset(path: str, where: str, value: object) -> Union[None, str, np.ndarray]:
    if value is None or value == "auto":
        return value
    try:
        out = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        out = np.zeros(0)
    if out.shape != (3,):
        raise MimicKitError("{}: {}.position_offset must be auto or [x, y, z] (m), got {!r}".format(path, where, value))
    return out


def _pair(path: str, leg: dict, side: str) -> Tuple[str, str]:
    value = leg.get(side)
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise MimicKitError("{}: leg.{} must be [hip body, ankle body]".format(path, side))
    return value[0], value[1]


def load_mapping(path: str) -> RetargetMapping:
    """Read and check a mapping YAML (module docstring).

    Raises:
        MimicKitError: naming the file and key: missing file, unknown key, bad value, no
            bodies, ``scale: auto`` without ``leg``, a foot that is not mapped.
    """
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise MimicKitError("{}: expected a mapping at the top level".format(path))
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise MimicKitError("{}: unknown key '{}' (keys: {})".format(path, unknown[0], ", ".join(sorted(_TOP_KEYS))))
    entries = data.get("bodies")
    if not isinstance(entries, list) or not entries:
        raise MimicKitError("{}: 'bodies' must be a non-empty list of {{source, target, ...}}".format(path))
    bodies = []
    for i, e in enumerate(entries):
        where = "bodies[{}]".format(i)
        if not isinstance(e, dict) or not isinstance(e.get("source"), str) or not isinstance(e.get("target"), str):
            raise MimicKitError("{}: {} must have a source and a target body name".format(path, where))
        bad = sorted(set(e) - _BODY_KEYS)
        if bad:
            raise MimicKitError("{}: {}: unknown key '{}'".format(path, where, bad[0]))
        bodies.append(BodyMap(e["source"], e["target"],
                              _number(path, where + ".position_weight", e.get("position_weight", 1.0)),
                              _number(path, where + ".orientation_weight", e.get("orientation_weight", 0.0)),
                              _rotation(path, where, e), _offset(path, where, e.get("position_offset"))))
    targets = [b.target for b in bodies]
    dup = next((t for t in targets if targets.count(t) > 1), None)
    if dup is not None:
        raise MimicKitError("{}: target body '{}' is mapped twice".format(path, dup))
    scale = data.get("scale", "auto")
    leg = None
    if "leg" in data:
        if not isinstance(data["leg"], dict):
            raise MimicKitError("{}: leg must be {{source: [hip, ankle], target: [hip, ankle]}}".format(path))
        leg = (_pair(path, data["leg"], "source"), _pair(path, data["leg"], "target"))
    if scale == "auto":
        if leg is None:
            raise MimicKitError("{}: scale: auto needs 'leg' (hip and ankle bodies of both characters)".format(path))
        scale = None
    else:
        scale = _number(path, "scale", scale, positive=True)
    vel = data.get("velocity_limit", float("inf"))
    if isinstance(vel, dict):
        limits = {str(k): _number(path, "velocity_limit." + str(k), v, positive=True) for k, v in vel.items()}
        limits.setdefault("default", float("inf"))
    else:
        limits = {"default": _number(path, "velocity_limit", vel, positive=True)}
    feet = data.get("feet", [])
    if not isinstance(feet, list) or not all(isinstance(f, str) for f in feet):
        raise MimicKitError("{}: feet must be a list of source body names".format(path))
    out = RetargetMapping(file=path, bodies=bodies, scale=scale, leg=leg, feet=list(feet), velocity_limits=limits)
    for key in ("posture_weight", "tolerance", "damping", "contact_speed", "min_stance_time", "stance_height"):
        if key in data:
            setattr(out, key, _number(path, key, data[key]))
    for key in ("max_iterations", "first_frame_iterations"):
        if key in data:
            if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 1:
                raise MimicKitError("{}: '{}' must be an integer >= 1, got {!r}".format(path, key, data[key]))
            setattr(out, key, int(data[key]))
    if "stance_lock" in data:
        if not isinstance(data["stance_lock"], bool):
            raise MimicKitError("{}: stance_lock must be true or false".format(path))
        out.stance_lock = data["stance_lock"]
    for f in out.feet:
        out.target_of(f)
    return out

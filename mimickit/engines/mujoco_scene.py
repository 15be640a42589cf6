"""The MuJoCo scene the ``mujoco`` and ``mujoco_warp`` engines share.

Both engines simulate the same :class:`mujoco.MjModel`, built here with :class:`mujoco.MjSpec`:
a ground plane (geom ``ground``, the plane z = 0), a light and a sky, then each character's
file attached under the name prefix ``"<name>/"``. Options: ``implicitfast`` integrator
(stable at stiff PD gains and damping), timestep ``1 / sim_freq``. ``pos`` control mode
uses the file's position actuators (ctrl = PD target, rad); ``torque`` mode turns them into
motors (ctrl = torque, N·m, clipped to the actuator's forcerange). Joint dynamics
(:meth:`Engine.set_joint_dynamics`) set the joints' ``armature`` and ``frictionloss``; a
torque-speed line of slope ``b = tau_max / max_speed`` is the actuator's force
``clip(PD + b qdot, +-tau_max)`` plus a joint damping ``b``: below the clip the two ``b`` terms
cancel, at the clip the torque is ``+-tau_max - b qdot``, the line. A reference character
has no actuators, no collisions (contype = conaffinity = 0), no joint limits and gravity
compensation on every body; it is drawn semi-transparent blue.

Characters are read and checked by :func:`mimickit.engines.character.load_character`; the
scene attaches the spec it parsed.

Readback sensors, added per character by :func:`add_sensors`, hold every per-body quantity:
``framepos``, ``framequat``, ``framelinvel``, ``frameangvel`` of each body frame, a
``netforce`` contact sensor per body, a contact sensor per body against the ground,
``jointactuatorfrc`` per dof. An engine reads ``qpos``, ``qvel`` and ``sensordata`` of each
env into one float32 row ``[qpos, qvel, sensordata]``; :func:`locate_character` says which
columns of that row each getter reads (``Character.readback``). Frames: body positions and
rotations are those of the body frames (``xpos``/``xquat``), velocities are of the body
frame origins, all in the world frame.

MuJoCo conventions both engines convert at their boundary:
- quaternions are (w, x, y, z) in MuJoCo, (x, y, z, w) outside;
- a free joint's angular velocity (``qvel[3:6]``) is in the root body's local frame in
  MuJoCo, in the world frame outside (getters read the root's ``frameangvel`` sensor;
  setters rotate by the root rotation); its linear velocity (``qvel[0:3]``) is world frame.

:class:`MujocoSceneEngine` holds what both engines do alike: adding and describing
characters, compiling the scene, PD gain checks, the viewer and offscreen frames.
"""
from __future__ import annotations

import abc
import atexit
import dataclasses
import os
import re
import sys
import threading
import time
import warnings
from typing import Dict, List, Optional, Tuple, Union

import mujoco
import numpy as np
from torch import Tensor

from mimickit.engines.character import (
    COLLISION_SHAPES,
    CharacterFile,
    CharacterTable,
    fit_collision_meshes,
    load_character,
)
from mimickit.engines.engine import Engine, EngineConfig, JointDynamics
from mimickit.util.errors import MimicKitError

GROUND_NAME = "ground"
REFERENCE_RGBA = (0.35, 0.55, 0.95, 0.35)
MAX_FRAME_SIZE = (1920, 1080)  # largest render_frame width, height (px)

# contact sensor intprm: (data fields bit mask, reduction, number of slots)
_CONTACT_DATA_FOUND = 1
_CONTACT_DATA_FORCE = 2
_CONTACT_REDUCE_NONE = 0
_CONTACT_REDUCE_NETFORCE = 3

# (sensor block, values per item, items: "body" or "dof"); per character, in this order
SENSOR_BLOCKS = (("pos", 3, "body"), ("rot", 4, "body"), ("vel", 3, "body"), ("ang_vel", 3, "body"),
                 ("contact_force", 3, "body"), ("ground_contact", 1, "body"), ("dof_force", 1, "dof"))

IndexLike = Union[slice, np.ndarray]

# how long close() waits for the viewer's window thread to end (s) before leaving it to the exit
VIEWER_CLOSE_TIMEOUT_S = 5.0
_NO_DISPLAY = ("--visualize: no display for the MuJoCo viewer ({}); record a video instead with --video true "
               "(with MUJOCO_GL=egl, or MUJOCO_GL=osmesa without a GPU), or run under a virtual display: "
               "xvfb-run -a python mimickit/run.py ...")

# why the first offscreen OpenGL context failed in this process: MuJoCo aborts the process
# (libc++ "recursive initialization") when a renderer is made again after such a failure
_offscreen_error: Optional[str] = None


@dataclasses.dataclass
class MujocoSceneConfig(EngineConfig):
    """Keys of both MuJoCo engines' YAML configs.

    urdf_kp, urdf_kd: gains of the position actuators given to the joints a character file
        does not drive with position actuators of its own: a ``.urdf`` character's joints
        (see :mod:`mimickit.engines.urdf_character`) and, in ``pos`` mode, an MJCF's
        ``motor`` joints (N·m/rad, N·m·s/rad); MJCF position actuators keep their gains.
    pd_gains: per joint-name pattern, ``{substring: [kp, kd]}`` for those joints, the first
        matching key in order (legged_gym's stiffness/damping dicts,
        :func:`mimickit.engines.character.joint_gains`); unmatched joints take ``urdf_kp``/``urdf_kd``.
    collision_meshes: ``keep`` (default) lets the characters collide through their mesh geoms;
        ``box``, ``capsule``, ``cylinder`` or ``ellipsoid`` replaces each colliding mesh by that
        primitive, fitted to the mesh by MuJoCo
        (:func:`mimickit.engines.character.fit_collision_meshes`): faster stepping for vendor
        robot files, whose collision geoms are their meshes.
    """

    urdf_kp: float = 20.0
    urdf_kd: float = 0.5
    pd_gains: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    collision_meshes: str = "keep"

    def validate(self, where: str) -> None:
        """The common checks, then the gains, ``pd_gains`` and ``collision_meshes``; MimicKitError naming the key."""
        super().validate(where)
        if not 0 < self.urdf_kp < np.inf:
            raise MimicKitError("{}: key 'urdf_kp': expected a finite stiffness > 0 (N·m/rad), got {}".format(
                where, self.urdf_kp))
        if not 0 <= self.urdf_kd < np.inf:
            raise MimicKitError("{}: key 'urdf_kd': expected a finite damping >= 0 (N·m·s/rad), got {}".format(
                where, self.urdf_kd))
        for key, gains in self.pd_gains.items():
            if len(gains) != 2 or not (0 < gains[0] < np.inf and 0 <= gains[1] < np.inf):
                raise MimicKitError("{}: key 'pd_gains.{}': expected [kp > 0, kd >= 0] (N·m/rad, N·m·s/rad), "
                                    "got {}".format(where, key, gains))
        if self.collision_meshes not in COLLISION_SHAPES:
            raise MimicKitError("{}: key 'collision_meshes': expected one of {}, got {!r}".format(
                where, ", ".join(COLLISION_SHAPES), self.collision_meshes))


@dataclasses.dataclass
class Character(CharacterFile):
    """One character's description and its place in the compiled MuJoCo model."""

    spec: Optional[mujoco.MjSpec] = None  # the parsed file, until attached to the scene
    # filled by locate_character(): indices into the compiled model's arrays
    root_body_id: int = -1
    body_ids: Optional[np.ndarray] = None  # model body id of each body, in body_names order
    root_qpos: int = -1  # qpos address of the free joint (3 position + 4 quaternion)
    root_qvel: int = -1  # qvel address of the free joint (3 linear + 3 angular)
    dof_qpos: Optional[IndexLike] = None  # qpos column of each dof
    dof_qvel: Optional[IndexLike] = None
    actuators: Optional[IndexLike] = None  # actuator (= ctrl column) of each dof
    actuator_ids: Optional[np.ndarray] = None
    dynamics: Optional[JointDynamics] = None  # set_joint_dynamics(), applied when the scene is compiled
    speed_damping: Optional[np.ndarray] = None  # [num_dofs] N·m·s/rad, b of the torque-speed line (0: none)
    # getter name -> (columns of the readback row [qpos, qvel, sensordata], shape after num_envs)
    readback: Dict[str, Tuple[IndexLike, Tuple[int, ...]]] = dataclasses.field(default_factory=dict)


def as_index(ids: np.ndarray) -> IndexLike:
    """A slice where ``ids`` is a contiguous ascending run (cheaper indexing), else ``ids``."""
    if len(ids) > 0 and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


def index_array(index: IndexLike) -> np.ndarray:
    """The indices an :data:`IndexLike` selects, as an int64 array."""
    if isinstance(index, slice):
        return np.arange(index.start, index.stop, dtype=np.int64)
    return np.asarray(index, dtype=np.int64)


# ===================================================================== characters
def prepare_character_spec(char: Character, control_mode: str) -> mujoco.MjSpec:
    """Edit the character's spec before attaching it to the scene.

    Keyframes are dropped (the env sets every state; the default pose is read by
    :class:`mimickit.anim.kin_char_model.KinCharModel`), and so are geoms on the file's
    world body (a vendor file's floor, with a warning: the scene has its ground); a reference character is made
    display-only, and ``torque`` mode turns position actuators into motors (see the module
    docstring).
    """
    spec = char.spec
    assert spec is not None, "the spec of character '{}' is attached already".format(char.name)
    for key in list(spec.keys):
        spec.delete(key)
    world_geoms = list(spec.worldbody.geoms)
    if world_geoms:  # a vendor file's own floor: the scene has its ground, which ground contacts are read from
        warnings.warn("{}: left out {} geom(s) of the file's world body ({}): the scene has its own ground".format(
            char.asset_file, len(world_geoms), ", ".join(g.name or "unnamed" for g in world_geoms)), stacklevel=2)
        for geom in world_geoms:
            spec.delete(geom)
    if char.is_reference:
        for actuator in list(spec.actuators):
            spec.delete(actuator)
        for geom in spec.geoms:
            geom.contype = 0
            geom.conaffinity = 0
            geom.rgba = REFERENCE_RGBA
        for body in spec.bodies:
            body.gravcomp = 1.0
        for joint in spec.joints:
            joint.limited = mujoco.mjtLimited.mjLIMITED_FALSE
        return spec
    if control_mode == "torque":
        limit_of_joint = dict(zip(char.dof_names, char.torque_limits))  # for motors limited by their joint alone
        for actuator in spec.actuators:
            limit = float(limit_of_joint[actuator.target])
            own = actuator.forcelimited != mujoco.mjtLimited.mjLIMITED_FALSE and np.any(np.array(actuator.forcerange))
            force_range = np.array(actuator.forcerange) if own else np.array([-limit, limit])
            actuator.set_to_motor()
            actuator.inheritrange = 0.0
            actuator.ctrlrange = force_range
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    if char.dynamics is not None:
        apply_joint_dynamics(spec, char, control_mode)
    return spec


def velocity_bias(kd, speed_damping):
    """A position actuator's ``biasprm[2]`` for PD damping ``kd``: ``-kd``, plus ``b`` of a torque-speed line.

    ``kd`` ``[..., num_dofs]`` (numpy or torch), ``speed_damping`` ``[num_dofs]`` numpy or None.
    """
    if speed_damping is None:
        return -kd
    return speed_damping - kd if isinstance(kd, np.ndarray) else kd.new_tensor(speed_damping) - kd


def apply_joint_dynamics(spec: mujoco.MjSpec, char: Character, control_mode: str) -> None:
    """Put ``char.dynamics`` (armature, friction, torque-speed line) into the character's spec.

    The torque-speed line (module docstring) adds ``b`` to each joint's damping; a torque-mode
    motor gets an affine bias and a forcerange of its torque limit. The actuators' ``b`` goes
    into the compiled model (:func:`locate_character`): in a spec, a positive velocity bias of a
    position actuator would be read as a damping ratio.
    """
    dynamics = char.dynamics
    assert dynamics is not None and char.speed_damping is not None
    index = {name: i for i, name in enumerate(char.dof_names)}
    for joint in spec.joints:
        i = index.get(joint.name)
        if i is None:
            continue
        if np.isfinite(dynamics.armature[i]):
            joint.armature = float(dynamics.armature[i])
        if np.isfinite(dynamics.friction[i]):
            joint.frictionloss = float(dynamics.friction[i])
        damping = np.array(joint.damping)
        damping[0] += char.speed_damping[i]
        joint.damping = damping
    if control_mode == "torque":
        for actuator in spec.actuators:
            i = index[actuator.target]
            if char.speed_damping[i] > 0:
                limit = float(char.torque_limits[i])
                actuator.biastype = mujoco.mjtBias.mjBIAS_AFFINE  # its b, set in the compiled model
                actuator.forcerange = [-limit, limit]
                actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE


# ===================================================================== scene
def build_scene_spec(chars: List[Character], sim_dt: float, control_mode: str) -> mujoco.MjSpec:
    """The scene (see the module docstring) holding ``chars``, with their readback sensors."""
    spec = mujoco.MjSpec()
    spec.modelname = "mimickit"
    spec.option.timestep = sim_dt
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.global_.offwidth = MAX_FRAME_SIZE[0]
    spec.visual.global_.offheight = MAX_FRAME_SIZE[1]
    spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=512, height=512,
                     rgb1=[0.2, 0.3, 0.4], rgb2=[0.1, 0.2, 0.3])
    material = spec.add_material(name="grid", texrepeat=[1, 1], texuniform=True, reflectance=0.1)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
    spec.worldbody.add_geom(name=GROUND_NAME, type=mujoco.mjtGeom.mjGEOM_PLANE,
                            size=[0.0, 0.0, 1.0], material="grid")
    spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, width=512, height=512,
                     rgb1=[0.4, 0.6, 0.8], rgb2=[0.0, 0.0, 0.0])
    spec.worldbody.add_light(name="sun", type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                             pos=[0.0, 0.0, 5.0], dir=[0.3, 0.3, -1.0], castshadow=False)
    for char in chars:
        frame = spec.worldbody.add_frame()
        spec.attach(prepare_character_spec(char, control_mode), prefix=char.name + "/", frame=frame)
    for char in chars:
        add_sensors(spec, char)
    return spec


def add_sensors(spec: mujoco.MjSpec, char: Character) -> None:
    """Per character, one contiguous sensordata block per quantity (see :data:`SENSOR_BLOCKS`)."""
    prefix = char.name + "/"
    bodies = [prefix + b for b in char.body_names]
    joints = [prefix + j for j in char.dof_names]
    xbody = mujoco.mjtObj.mjOBJ_XBODY
    for kind, sensor_type in (("pos", mujoco.mjtSensor.mjSENS_FRAMEPOS),
                              ("rot", mujoco.mjtSensor.mjSENS_FRAMEQUAT),
                              ("vel", mujoco.mjtSensor.mjSENS_FRAMELINVEL),
                              ("ang_vel", mujoco.mjtSensor.mjSENS_FRAMEANGVEL)):
        for body in bodies:
            spec.add_sensor(name="mimickit/{}/{}".format(kind, body), type=sensor_type,
                            objtype=xbody, objname=body)
    # contact sensors match the body as "body2": the force is then the one acting on it
    for body in bodies:
        spec.add_sensor(name="mimickit/contact_force/" + body, type=mujoco.mjtSensor.mjSENS_CONTACT,
                        reftype=mujoco.mjtObj.mjOBJ_BODY, refname=body,
                        intprm=[_CONTACT_DATA_FORCE, _CONTACT_REDUCE_NETFORCE, 1])
    for body in bodies:
        spec.add_sensor(name="mimickit/ground_contact/" + body, type=mujoco.mjtSensor.mjSENS_CONTACT,
                        objtype=mujoco.mjtObj.mjOBJ_GEOM, objname=GROUND_NAME,
                        reftype=mujoco.mjtObj.mjOBJ_BODY, refname=body,
                        intprm=[_CONTACT_DATA_FOUND, _CONTACT_REDUCE_NONE, 1])
    for joint in joints:
        spec.add_sensor(name="mimickit/dof_force/" + joint, type=mujoco.mjtSensor.mjSENS_JOINTACTFRC,
                        objtype=mujoco.mjtObj.mjOBJ_JOINT, objname=joint)


def locate_character(model: mujoco.MjModel, char: Character) -> None:
    """Find the character's joints, actuators and sensor blocks in the compiled model; add its actuators' ``b``."""
    prefix = char.name + "/"
    char.body_ids = np.array([model.body(prefix + b).id for b in char.body_names], dtype=np.int64)
    char.root_body_id = int(char.body_ids[0])
    root = model.body(char.root_body_id)
    free_joint = int(root.jntadr[0])
    char.root_qpos = int(model.jnt_qposadr[free_joint])
    char.root_qvel = int(model.jnt_dofadr[free_joint])
    joint_ids = np.array([model.joint(prefix + n).id for n in char.dof_names], dtype=np.int64)
    char.dof_qpos = as_index(model.jnt_qposadr[joint_ids].astype(np.int64))
    char.dof_qvel = as_index(model.jnt_dofadr[joint_ids].astype(np.int64))
    if not char.is_reference:
        act_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
        ids = np.array([act_of_joint[j] for j in joint_ids], dtype=np.int64)
        char.actuator_ids = ids
        char.actuators = as_index(ids)
    # readback row columns: qpos, qvel, sensordata
    nq, nv = model.nq, model.nv
    num_bodies, num_dofs = len(char.body_names), len(char.dof_names)
    sensor_cols = {}
    for block, width, items in SENSOR_BLOCKS:
        names = char.body_names if items == "body" else char.dof_names
        adrs = [int(model.sensor("mimickit/{}/{}{}".format(block, prefix, n)).adr[0]) for n in names]
        start = adrs[0] if adrs else 0
        # add_sensors added each block's sensors consecutively: check they are contiguous
        assert adrs == list(range(start, start + width * len(names), width)), block
        sensor_cols[block] = nq + nv + start

    def cols(start: int, count: int) -> slice:
        return slice(start, start + count)
    if char.speed_damping is not None:
        model.actuator_biasprm[char.actuator_ids, 2] += char.speed_damping
    char.readback = {
        "root_pos": (cols(char.root_qpos, 3), ()),
        "root_rot": (cols(sensor_cols["rot"], 4), ()),
        "root_vel": (cols(nq + char.root_qvel, 3), ()),
        "root_ang_vel": (cols(sensor_cols["ang_vel"], 3), ()),
        "dof_pos": (char.dof_qpos, ()),
        "dof_vel": (as_index(nq + model.jnt_dofadr[joint_ids].astype(np.int64)), ()),
        "dof_forces": (cols(sensor_cols["dof_force"], num_dofs), ()),
        "body_pos": (cols(sensor_cols["pos"], 3 * num_bodies), (num_bodies, 3)),
        "body_rot": (cols(sensor_cols["rot"], 4 * num_bodies), (num_bodies, 4)),
        "body_vel": (cols(sensor_cols["vel"], 3 * num_bodies), (num_bodies, 3)),
        "body_ang_vel": (cols(sensor_cols["ang_vel"], 3 * num_bodies), (num_bodies, 3)),
        "contact_forces": (cols(sensor_cols["contact_force"], 3 * num_bodies), (num_bodies, 3)),
        "ground_contacts": (cols(sensor_cols["ground_contact"], num_bodies), ()),
    }


# ===================================================================== engine base
class MujocoSceneEngine(CharacterTable, Engine):
    """What the MuJoCo engines share: characters, the compiled scene, display.

    Subclasses build their simulation from :meth:`_compile_scene` in ``initialize()`` and
    implement :meth:`_env0_data` for the viewer and offscreen frames.
    """

    config_class = MujocoSceneConfig
    _config: MujocoSceneConfig

    def __init__(self, config: MujocoSceneConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._chars: List[Character] = []
        self._model: Optional[mujoco.MjModel] = None
        # (char_id, getter name) -> tensor read since the last refresh (see _read)
        self._readback: Dict[Tuple[int, str], Tensor] = {}
        self._viewer: Optional[mujoco.viewer.Handle] = None
        self._viewer_threads: List[threading.Thread] = []
        self._viewer_data: Optional[mujoco.MjData] = None
        self._renderer: Optional[mujoco.Renderer] = None
        self._render_data: Optional[mujoco.MjData] = None
        self._camera: Optional[mujoco.MjvCamera] = None

    @property
    def model(self) -> mujoco.MjModel:
        """The compiled scene (after :meth:`initialize`), for tools and benchmarks; do not edit."""
        return self._model

    # ================================================================= scene setup
    def add_character(self, asset_file: str, name: str, is_reference: bool = False) -> int:
        """Read and check the MJCF or URDF character file (:func:`load_character`); see the base class."""
        self._check_new_character(asset_file, name, initialized=self._model is not None)
        read, spec = load_character(asset_file, name, is_reference, self.control_mode,
                                    self._config.urdf_kp, self._config.urdf_kd, self._config.pd_gains)
        if not is_reference:
            fit_collision_meshes(spec, self._config.collision_meshes)
        self._chars.append(Character(spec=spec, **read.file_fields()))
        return len(self._chars) - 1

    def set_joint_dynamics(self, char_id: int, dynamics: JointDynamics) -> None:
        """As :meth:`Engine.set_joint_dynamics`: kept with the character, put in the scene by :meth:`initialize`."""
        char = self._sim_char(char_id)
        if self._model is not None:
            raise RuntimeError("set_joint_dynamics: call before initialize()")
        num_dofs = len(char.dof_names)
        arrays = [np.asarray(a, dtype=np.float64) for a in (dynamics.armature, dynamics.friction, dynamics.max_speed)]
        if any(a.shape != (num_dofs,) for a in arrays):
            raise ValueError("set_joint_dynamics: expected arrays of shape [{}], got {}".format(
                num_dofs, [list(a.shape) for a in arrays]))
        limited = np.isfinite(arrays[2])
        if not (arrays[2][~np.isnan(arrays[2])] > 0).all():
            raise ValueError("set_joint_dynamics: max_speed must be > 0 rad/s, got {}".format(arrays[2]))
        unlimited = [name for name, lim, tau in zip(char.dof_names, limited, char.torque_limits)
                     if lim and not np.isfinite(tau)]
        if unlimited:
            raise MimicKitError("{}: joint(s) {} have no torque limit (actuator forcerange or joint actuatorfrcrange), "
                                "which a max_speed (torque-speed line) starts from".format(
                                    char.asset_file, ", ".join(unlimited)))
        char.dynamics = JointDynamics(*arrays)
        char.speed_damping = char.dynamics.speed_damping(char.torque_limits)

    def _compile_scene(self) -> mujoco.MjModel:
        """Compile the scene of the added characters into :attr:`model` and locate them in it.

        Raises:
            MimicKitError: called twice, no character, MuJoCo refusing the scene.
        """
        if self._model is not None:
            raise MimicKitError("initialize() called twice")
        if not self._chars:
            raise MimicKitError("initialize(): no character was added")
        spec = build_scene_spec(self._chars, self.sim_dt, self.control_mode)
        try:
            self._model = spec.compile()
        except Exception as e:
            raise MimicKitError("cannot build the MuJoCo scene from {}: {}".format(
                ", ".join(c.asset_file for c in self._chars), str(e).replace("\n", " "))) from e
        for char in self._chars:
            locate_character(self._model, char)
            char.spec = None  # attached; no longer needed
        return self._model

    def _flat_body_com(self, char_id: int, env_ids: Tensor, com: Tensor) -> Tensor:
        """``com`` ``[k, num_bodies, 3]`` of :meth:`Engine.set_body_com` as ``[k, 3 * num_bodies]``.

        Raises:
            ValueError: another shape.
        """
        expected = (len(env_ids), len(self._char(char_id).body_names), 3)
        if tuple(com.shape) != expected:
            raise ValueError("set_body_com: expected values of shape {}, got {}".format(
                list(expected), list(com.shape)))
        return com.reshape(len(env_ids), -1)

    def _store_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> Tuple[Character, np.ndarray, np.ndarray]:
        """Check ``kp``, ``kd`` ``[num_dofs]`` and keep them as the character's gains.

        In ``pos`` mode they are also put in :attr:`model` (the viewer's and renderer's copy).
        Returns the character and the gains as float64 arrays for the simulation.

        Raises:
            RuntimeError: before :meth:`initialize`.
            ValueError: wrong shapes.
        """
        if self._model is None:
            raise RuntimeError("set_pd_gains: call initialize() first")
        char, kp_np, kd_np = self._keep_pd_gains(char_id, kp, kd)
        if self.control_mode == "pos":
            self._model.actuator_gainprm[char.actuator_ids, 0] = kp_np
            self._model.actuator_biasprm[char.actuator_ids, 1] = -kp_np
            self._model.actuator_biasprm[char.actuator_ids, 2] = velocity_bias(kd_np, char.speed_damping)
        return char, kp_np, kd_np

    # ================================================================= getters
    # Both engines read the same readback layout (qpos, qvel and the sensors of
    # add_sensors, quaternions reordered): root_vel is the free joint's qvel[0:3] (world
    # frame), root_rot/root_ang_vel the root's framequat/frameangvel sensors (the free
    # joint's qvel[3:6] is body-local), contact_forces the netforce contact sensors,
    # dof_forces the jointactuatorfrc sensors.
    @abc.abstractmethod
    def _refresh(self) -> None:
        """Bring the readback (``self._buf``) up to date after a step or setters; clear ``self._readback``."""

    @abc.abstractmethod
    def _gather(self, char_id: int, name: str, columns: IndexLike) -> Tensor:
        """``[num_envs, len(columns)]`` columns of the up-to-date readback."""

    def _read(self, char_id: int, name: str) -> Tensor:
        """The character's ``name`` quantity (a getter name without ``get_``), ``[num_envs, ...]``.

        Read after the last step or setter, cached until the next refresh.
        """
        self._refresh()
        key = (char_id, name)
        tensor = self._readback.get(key)
        if tensor is None:
            columns, shape = self._char(char_id).readback[name]
            tensor = self._gather(char_id, name, columns)
            if name == "ground_contacts":
                tensor = tensor > 0
            if shape:
                tensor = tensor.reshape((self.num_envs,) + shape)
            self._readback[key] = tensor
        return tensor

    def get_root_pos(self, char_id: int) -> Tensor:
        """Root position ``[num_envs, 3]`` (m, world): the free joint's ``qpos[0:3]``."""
        return self._read(char_id, "root_pos")

    def get_root_rot(self, char_id: int) -> Tensor:
        """Root rotation ``[num_envs, 4]`` (x, y, z, w; world): the root's ``framequat`` sensor."""
        return self._read(char_id, "root_rot")

    def get_root_vel(self, char_id: int) -> Tensor:
        """Root origin velocity ``[num_envs, 3]`` (m/s, world): the free joint's ``qvel[0:3]``."""
        return self._read(char_id, "root_vel")

    def get_root_ang_vel(self, char_id: int) -> Tensor:
        """Root angular velocity ``[num_envs, 3]`` (rad/s, world): the root's ``frameangvel`` sensor."""
        return self._read(char_id, "root_ang_vel")

    def get_dof_pos(self, char_id: int) -> Tensor:
        """Dof positions ``[num_envs, num_dofs]`` (rad; m for a slide joint): the joints' qpos."""
        return self._read(char_id, "dof_pos")

    def get_dof_vel(self, char_id: int) -> Tensor:
        """Dof velocities ``[num_envs, num_dofs]`` (rad/s; m/s for a slide joint): the joints' qvel."""
        return self._read(char_id, "dof_vel")

    def get_dof_forces(self, char_id: int) -> Tensor:
        """Actuator torques ``[num_envs, num_dofs]`` (N·m) of the last substep: ``jointactuatorfrc`` sensors.

        With a torque-speed line (:meth:`set_joint_dynamics`) the motor's net torque is this
        minus ``b qdot`` (the line's joint damping, module docstring).
        """
        return self._read(char_id, "dof_forces")

    def get_body_pos(self, char_id: int) -> Tensor:
        """Body frame origins ``[num_envs, num_bodies, 3]`` (m, world): ``framepos`` sensors."""
        return self._read(char_id, "body_pos")

    def get_body_rot(self, char_id: int) -> Tensor:
        """Body frame rotations ``[num_envs, num_bodies, 4]`` (x, y, z, w; world): ``framequat`` sensors."""
        return self._read(char_id, "body_rot")

    def get_body_vel(self, char_id: int) -> Tensor:
        """Body origin velocities ``[num_envs, num_bodies, 3]`` (m/s, world): ``framelinvel`` sensors."""
        return self._read(char_id, "body_vel")

    def get_body_ang_vel(self, char_id: int) -> Tensor:
        """Body angular velocities ``[num_envs, num_bodies, 3]`` (rad/s, world): ``frameangvel`` sensors."""
        return self._read(char_id, "body_ang_vel")

    def get_contact_forces(self, char_id: int) -> Tensor:
        """Net contact force per body ``[num_envs, num_bodies, 3]`` (N, world): ``netforce`` contact sensors."""
        return self._read(char_id, "contact_forces")

    def get_ground_contacts(self, char_id: int) -> Tensor:
        """BoolTensor ``[num_envs, num_bodies]``: the body's contact sensor against the ground found one."""
        return self._read(char_id, "ground_contacts")

    # ================================================================= display
    @abc.abstractmethod
    def _env0_data(self, data: mujoco.MjData) -> mujoco.MjData:
        """Copy env 0's current state, with its derived fields, into ``data`` (of :attr:`model`)."""

    def _make_camera(self) -> mujoco.MjvCamera:
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = self._chars[0].root_body_id
        camera.distance = 4.0
        camera.azimuth = 120.0
        camera.elevation = -15.0
        return camera

    def _launch_viewer(self) -> None:
        """Open MuJoCo's passive viewer on env 0, its window run by a thread of its own.

        Raises:
            MimicKitError: no display (checked first: MuJoCo's viewer thread ends the
                process when GLFW cannot start), no glfw package, or the viewer refusing.
        """
        check_display()
        import mujoco.viewer  # needs glfw; imported only when asked for
        self._viewer_data = self._env0_data(mujoco.MjData(self._model))
        before = set(threading.enumerate())
        try:
            self._viewer = mujoco.viewer.launch_passive(self._model, self._viewer_data)
        except Exception as e:
            raise MimicKitError("cannot open the MuJoCo viewer (--visualize): {}".format(e)) from e
        # the window's threads, started by launch_passive: close() waits for them
        self._viewer_threads = [t for t in threading.enumerate() if t not in before]
        camera = self._make_camera()
        self._viewer.cam.type = camera.type
        self._viewer.cam.trackbodyid = camera.trackbodyid
        self._viewer.cam.distance = camera.distance
        self._viewer.cam.azimuth = camera.azimuth
        self._viewer.cam.elevation = camera.elevation

    def render(self) -> None:
        """Show env 0's current state in the viewer, if it is open (a closed window is skipped)."""
        if self._viewer is None or not self._viewer.is_running():
            return
        with self._viewer.lock():
            self._env0_data(self._viewer_data)
        self._viewer.sync()

    def render_frame(self, width: int, height: int) -> np.ndarray:
        """Offscreen image of env 0 ``[height, width, 3]`` uint8, tracking the first character's root.

        Raises:
            MimicKitError: a size beyond :data:`MAX_FRAME_SIZE`, or no offscreen OpenGL
                context (the message names the ``MUJOCO_GL`` settings to try).
        """
        global _offscreen_error
        if width > MAX_FRAME_SIZE[0] or height > MAX_FRAME_SIZE[1]:
            raise MimicKitError("render_frame: {}x{} exceeds the largest frame size {}x{}".format(
                width, height, MAX_FRAME_SIZE[0], MAX_FRAME_SIZE[1]))
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
            if _offscreen_error is None:
                try:
                    self._renderer = mujoco.Renderer(self._model, height=height, width=width)
                except Exception as e:
                    _offscreen_error = str(e).replace("\n", " ")
            if self._renderer is None:
                raise MimicKitError(
                    "cannot create an offscreen OpenGL context for video ({}); set the environment "
                    "variable MUJOCO_GL=egl (GPU) or MUJOCO_GL=osmesa (software)".format(_offscreen_error))
            self._render_data = mujoco.MjData(self._model)
            self._camera = self._make_camera()
        self._env0_data(self._render_data)
        self._renderer.update_scene(self._render_data, camera=self._camera)
        return self._renderer.render()

    def _close_display(self) -> None:
        """Close the viewer and the offscreen renderer."""
        if self._viewer is not None:
            viewer, self._viewer = self._viewer, None
            threads, self._viewer_threads = self._viewer_threads, []
            close_viewer(viewer, threads)
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def check_display() -> None:
    """Raise :class:`MimicKitError` unless GLFW can start here (the viewer opens a window with it).

    GLFW's own complaints (``GLFWError`` warnings) are caught and put in the message.
    """
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise MimicKitError(_NO_DISPLAY.format("neither DISPLAY nor WAYLAND_DISPLAY is set"))
    try:
        import glfw
    except ImportError as e:
        raise MimicKitError("--visualize needs the glfw package (pip install glfw): {}".format(e)) from e
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = glfw.init()
    if not started:
        # glfw words them "(65550) b'X11: Failed to open display :1'"
        reasons = "; ".join(re.sub(r"^\(\d+\) b(['\"])(.*)\1$", r"\2", str(w.message)) for w in caught)
        reasons = reasons or "glfwInit failed"
        raise MimicKitError(_NO_DISPLAY.format("GLFW cannot start: " + reasons))


def close_viewer(viewer: "mujoco.viewer.Handle", threads: List[threading.Thread]) -> None:
    """Ask the viewer to close and wait up to :data:`VIEWER_CLOSE_TIMEOUT_S` for its ``threads``.

    The viewer registers ``glfw.terminate`` to run at exit; run while its window thread is
    still alive, it can block the exit forever (a SIGTERM'd run hung there). A thread still
    alive after the wait, or an interrupt during it, unregisters it, with a warning: the
    process exit then releases the window.
    """
    viewer.close()  # the window thread leaves its render loop and destroys the window
    deadline = time.monotonic() + VIEWER_CLOSE_TIMEOUT_S
    try:
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        alive = [t for t in threads if t.is_alive() and t is not threading.current_thread()]
        if alive:
            try:
                import glfw
            except ImportError:
                pass
            else:
                atexit.unregister(glfw.terminate)
            warnings.warn("the MuJoCo viewer's window did not close within {:g} s; leaving it to the process "
                          "exit".format(VIEWER_CLOSE_TIMEOUT_S), UserWarning, stacklevel=3)

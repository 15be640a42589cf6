"""The MuJoCo scene the ``mujoco`` and ``mujoco_warp`` engines share.

Both engines simulate the same :class:`mujoco.MjModel`, built here with :class:`mujoco.MjSpec`:
a ground plane (geom ``ground``, the plane z = 0), a light and a sky, then each character's
file attached under the name prefix ``"<name>/"``. Options: ``implicitfast`` integrator
(stable at stiff PD gains and damping), timestep ``1 / sim_freq``. ``pos`` control mode
uses the file's position actuators (ctrl = PD target, rad); ``torque`` mode turns them into
motors (ctrl = torque, N·m, clipped to the actuator's forcerange). A reference character
has no actuators, no collisions (contype = conaffinity = 0), no joint limits and gravity
compensation on every body; it is drawn semi-transparent blue.

Characters: :func:`load_character_spec` is the one place a character file is parsed (MJCF,
or URDF through :mod:`mimickit.engines.urdf_character`); :func:`load_character` checks it
(one free joint on a single root body, hinge and slide joints below it, one actuator per
dof) and reads its limits and gains.

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
import dataclasses
from typing import Any, Dict, List, Optional, Tuple, Union

import mujoco
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.engine import Engine, EngineConfig
from mimickit.engines.urdf_character import is_urdf, load_urdf_spec
from mimickit.util.errors import MimicKitError, require_file

GROUND_NAME = "ground"
# enum values as ints: MuJoCo's enums do not compare equal to numpy integers
JNT_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
JNT_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)
JNT_HINGE = int(mujoco.mjtJoint.mjJNT_HINGE)
_TRN_JOINT = int(mujoco.mjtTrn.mjTRN_JOINT)
_GAIN_FIXED = int(mujoco.mjtGain.mjGAIN_FIXED)
_BIAS_AFFINE = int(mujoco.mjtBias.mjBIAS_AFFINE)
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

# why the first offscreen OpenGL context failed in this process: MuJoCo aborts the process
# (libc++ "recursive initialization") when a renderer is made again after such a failure
_offscreen_error: Optional[str] = None


@dataclasses.dataclass
class MujocoSceneConfig(EngineConfig):
    """Keys of both MuJoCo engines' YAML configs.

    urdf_kp, urdf_kd: gains of the position actuators given to a ``.urdf`` character's
        joints (N·m/rad, N·m·s/rad; see :mod:`mimickit.engines.urdf_character`); MJCF
        characters carry their own.
    """

    urdf_kp: float = 20.0
    urdf_kd: float = 0.5

    def validate(self, where: str) -> None:
        super().validate(where)
        if not self.urdf_kp > 0 or not self.urdf_kd >= 0:
            raise MimicKitError("{}: keys 'urdf_kp', 'urdf_kd': expected kp > 0 and kd >= 0, got {} and {}".format(
                where, self.urdf_kp, self.urdf_kd))


@dataclasses.dataclass
class CharacterFile:
    """What every engine reads of a character file (:func:`load_character`)."""

    name: str
    asset_file: str
    is_reference: bool
    body_names: List[str]
    dof_names: List[str]
    dof_low: np.ndarray  # [num_dofs] rad
    dof_high: np.ndarray
    torque_limits: np.ndarray  # [num_dofs] N·m
    kp: np.ndarray  # [num_dofs] N·m/rad
    kd: np.ndarray  # [num_dofs] N·m·s/rad

    def file_fields(self) -> Dict[str, Any]:
        """These fields by name, to build another engine's character record from this one."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(CharacterFile)}


@dataclasses.dataclass
class Character(CharacterFile):
    """One character's description and its place in the compiled MuJoCo model."""

    spec: Optional[mujoco.MjSpec] = None  # the parsed file, until attached to the scene
    # filled by locate_character(): indices into the compiled model's arrays
    root_body_id: int = -1
    root_qpos: int = -1  # qpos address of the free joint (3 position + 4 quaternion)
    root_qvel: int = -1  # qvel address of the free joint (3 linear + 3 angular)
    dof_qpos: Optional[IndexLike] = None  # qpos column of each dof
    dof_qvel: Optional[IndexLike] = None
    actuators: Optional[IndexLike] = None  # actuator (= ctrl column) of each dof
    actuator_ids: Optional[np.ndarray] = None
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
def load_character_spec(asset_file: str, urdf_kp: float, urdf_kd: float) -> mujoco.MjSpec:
    """Parse a character file: MJCF, or URDF (``.urdf``) given ``urdf_kp``/``urdf_kd`` gains.

    Raises:
        MimicKitError: from the URDF loader; MuJoCo's parser raises its own errors
            (:func:`load_character` turns them into MimicKitError).
    """
    if is_urdf(asset_file):
        return load_urdf_spec(asset_file, urdf_kp, urdf_kd)
    return mujoco.MjSpec.from_file(asset_file)


def load_character(asset_file: str, name: str, is_reference: bool, control_mode: str,
                   urdf_kp: float, urdf_kd: float) -> Character:
    """Parse and check the character file; read its limits and gains from it compiled alone.

    Raises:
        MimicKitError: naming ``asset_file``: not a valid MJCF/URDF, no body, no single
            root body with one free joint, a ball joint below the root, an actuator not on
            a joint, a dof without or with two actuators, a non-position actuator in
            ``pos`` mode, an actuator without forcerange in ``torque`` mode.
    """
    try:
        spec = load_character_spec(asset_file, urdf_kp, urdf_kd)
        model = spec.compile()
    except MimicKitError:
        raise
    except Exception as e:  # mujoco raises ValueError with the parser's message
        raise MimicKitError("{}: not a valid MJCF character: {}".format(
            asset_file, str(e).replace("\n", " ")))
    if model.nbody < 2:
        raise MimicKitError("{}: holds no body".format(asset_file))
    free = [j for j in range(model.njnt) if model.jnt_type[j] == JNT_FREE]
    if free != [0] or model.jnt_bodyid[0] != 1:
        raise MimicKitError("{}: expected one free joint, on the root body '{}'".format(
            asset_file, model.body(1).name))
    root_children = [b for b in range(2, model.nbody) if model.body_parentid[b] == 0]
    if root_children:
        raise MimicKitError("{}: expected a single root body, found also '{}'".format(
            asset_file, model.body(root_children[0]).name))
    dof_joints = list(range(1, model.njnt))
    for j in dof_joints:
        if model.jnt_type[j] not in (JNT_HINGE, JNT_SLIDE):
            raise MimicKitError("{}: joint '{}' is a {}; only hinge and slide joints are supported "
                                "below the root (3-dof joints as hinge triplets)".format(
                                    asset_file, model.joint(j).name,
                                    mujoco.mjtJoint(model.jnt_type[j]).name))
    num_dofs = len(dof_joints)
    dof_names = [model.joint(j).name for j in dof_joints]
    dof_low = np.full(num_dofs, -np.pi)
    dof_high = np.full(num_dofs, np.pi)
    for i, j in enumerate(dof_joints):
        if model.jnt_limited[j]:
            dof_low[i], dof_high[i] = model.jnt_range[j]
        elif model.jnt_type[j] == JNT_SLIDE:
            dof_low[i], dof_high[i] = -np.inf, np.inf
    torque_limits = np.full(num_dofs, np.inf)
    kp = np.zeros(num_dofs)
    kd = np.zeros(num_dofs)
    if not is_reference:
        act_of_joint = {}
        for a in range(model.nu):
            if model.actuator_trntype[a] != _TRN_JOINT:
                raise MimicKitError("{}: actuator '{}' does not act on a joint".format(
                    asset_file, model.actuator(a).name))
            j = int(model.actuator_trnid[a, 0])
            if j in act_of_joint:
                raise MimicKitError("{}: joint '{}' has two actuators".format(asset_file, model.joint(j).name))
            act_of_joint[j] = a
        for i, j in enumerate(dof_joints):
            if j not in act_of_joint:
                raise MimicKitError("{}: joint '{}' has no actuator (expected one per dof)".format(
                    asset_file, model.joint(j).name))
            a = act_of_joint[j]
            if model.actuator_forcelimited[a]:
                torque_limits[i] = np.abs(model.actuator_forcerange[a]).max()
            gain = model.actuator_gainprm[a]
            bias = model.actuator_biasprm[a]
            is_position = (model.actuator_gaintype[a] == _GAIN_FIXED
                           and model.actuator_biastype[a] == _BIAS_AFFINE
                           and bias[1] == -gain[0] and gain[0] > 0)
            if is_position:
                kp[i], kd[i] = gain[0], -bias[2]
            elif control_mode == "pos":
                raise MimicKitError("{}: actuator '{}' is not a position actuator; control_mode "
                                    "'pos' needs <position kp=... kv=...> actuators".format(
                                        asset_file, model.actuator(a).name))
            if control_mode == "torque" and not model.actuator_forcelimited[a]:
                raise MimicKitError("{}: actuator '{}' has no forcerange; control_mode 'torque' "
                                    "takes the torque limits from it".format(
                                        asset_file, model.actuator(a).name))
    body_names = [model.body(b).name for b in range(1, model.nbody)]
    return Character(name=name, asset_file=asset_file, is_reference=is_reference, spec=spec,
                     body_names=body_names, dof_names=dof_names, dof_low=dof_low,
                     dof_high=dof_high, torque_limits=torque_limits, kp=kp, kd=kd)


def prepare_character_spec(char: Character, control_mode: str) -> mujoco.MjSpec:
    """Edit the character's spec before attaching: keyframes dropped (the env sets every
    state; the default pose is read by :class:`mimickit.anim.kin_char_model.KinCharModel`),
    reference display, torque mode."""
    spec = char.spec
    for key in list(spec.keys):
        spec.delete(key)
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
    elif control_mode == "torque":
        for actuator in spec.actuators:
            force_range = np.array(actuator.forcerange)
            actuator.set_to_motor()
            actuator.inheritrange = 0.0
            actuator.ctrlrange = force_range
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return spec


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
    """Find the character's joints, actuators and sensor blocks in the compiled model."""
    prefix = char.name + "/"
    char.root_body_id = model.body(prefix + char.body_names[0]).id
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


# ===================================================================== character table
class CharacterTable:
    """The description getters of :class:`~mimickit.engines.engine.Engine` over a list
    ``self._chars`` of characters with ``name``, ``is_reference``, ``dof_names``,
    ``body_names``, ``dof_low``/``dof_high`` (rad), ``torque_limits`` (N·m) and ``kp``/``kd``
    arrays, for every engine that loads characters with :func:`load_character`.
    Mix in before :class:`Engine`."""

    _chars: list
    device: torch.device

    def _check_new_character(self, asset_file: str, name: str, initialized: bool) -> None:
        """Checks of :meth:`Engine.add_character`'s arguments.

        Raises:
            MimicKitError: called after ``initialize()``, a bad or repeated name, a missing file.
        """
        if initialized:
            raise MimicKitError("add_character('{}'): the engine is already initialized; add every "
                                "character before initialize()".format(name))
        if not name or "/" in name:
            raise MimicKitError("character name {!r}: expected a non-empty name without '/'".format(name))
        if any(c.name == name for c in self._chars):
            raise MimicKitError("character name '{}' used twice".format(name))
        require_file(asset_file, "character file")

    def _keep_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> Tuple[Any, np.ndarray, np.ndarray]:
        """Check ``kp``, ``kd`` ``[num_dofs]`` and keep them as the character's gains.

        Returns the character and the gains as float64 arrays.

        Raises:
            ValueError: a reference character or wrong shapes.
        """
        char = self._sim_char(char_id)
        num_dofs = len(char.dof_names)
        kp_np = kp.detach().cpu().numpy().astype(np.float64).reshape(-1)
        kd_np = kd.detach().cpu().numpy().astype(np.float64).reshape(-1)
        if kp_np.shape != (num_dofs,) or kd_np.shape != (num_dofs,):
            raise ValueError("set_pd_gains: expected kp and kd of shape [{}], got {} and {}".format(
                num_dofs, tuple(kp.shape), tuple(kd.shape)))
        char.kp, char.kd = kp_np, kd_np
        return char, kp_np, kd_np

    def _char(self, char_id: int) -> Any:
        if not 0 <= char_id < len(self._chars):
            raise IndexError("char_id {} out of range (0..{})".format(char_id, len(self._chars) - 1))
        return self._chars[char_id]

    def _sim_char(self, char_id: int) -> Any:
        char = self._char(char_id)
        if char.is_reference:
            raise ValueError("character '{}' is a reference character: it has no actuators".format(char.name))
        return char

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device)

    def get_dof_names(self, char_id: int) -> List[str]:
        return list(self._char(char_id).dof_names)

    def get_body_names(self, char_id: int) -> List[str]:
        return list(self._char(char_id).body_names)

    def get_dof_limits(self, char_id: int) -> Tuple[Tensor, Tensor]:
        char = self._char(char_id)
        return self._tensor(char.dof_low), self._tensor(char.dof_high)

    def get_torque_limits(self, char_id: int) -> Tensor:
        return self._tensor(self._sim_char(char_id).torque_limits)

    def get_pd_gains(self, char_id: int) -> Tuple[Tensor, Tensor]:
        char = self._sim_char(char_id)
        return self._tensor(char.kp), self._tensor(char.kd)


# ===================================================================== engine base
class MujocoSceneEngine(CharacterTable, Engine):
    """What the MuJoCo engines share: characters, the compiled scene, display.

    Subclasses build their simulation from :meth:`_compile_scene` in ``initialize()`` and
    implement :meth:`_env0_data` for the viewer and offscreen frames.
    """

    config_class = MujocoSceneConfig

    def __init__(self, config: MujocoSceneConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._chars: List[Character] = []
        self._model: Optional[mujoco.MjModel] = None
        self._viewer = None
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
        self._check_new_character(asset_file, name, initialized=self._model is not None)
        self._chars.append(load_character(asset_file, name, is_reference, self.control_mode,
                                          self._config.urdf_kp, self._config.urdf_kd))
        return len(self._chars) - 1

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
                ", ".join(c.asset_file for c in self._chars), str(e).replace("\n", " ")))
        for char in self._chars:
            locate_character(self._model, char)
            char.spec = None  # attached; no longer needed
        return self._model

    def _store_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> Tuple[Character, np.ndarray, np.ndarray]:
        """Check ``kp``, ``kd`` ``[num_dofs]``, keep them as the character's gains and put them
        in :attr:`model` (the viewer's and renderer's copy) in ``pos`` mode.

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
            self._model.actuator_biasprm[char.actuator_ids, 2] = -kd_np
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
        """The character's ``name`` quantity (a getter name without ``get_``) after the last
        step or setter, shaped ``[num_envs, ...]``; cached until the next refresh."""
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
        return self._read(char_id, "root_pos")

    def get_root_rot(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_rot")

    def get_root_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_vel")

    def get_root_ang_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_ang_vel")

    def get_dof_pos(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_pos")

    def get_dof_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_vel")

    def get_dof_forces(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_forces")

    def get_body_pos(self, char_id: int) -> Tensor:
        return self._read(char_id, "body_pos")

    def get_body_rot(self, char_id: int) -> Tensor:
        return self._read(char_id, "body_rot")

    def get_body_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "body_vel")

    def get_body_ang_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "body_ang_vel")

    def get_contact_forces(self, char_id: int) -> Tensor:
        return self._read(char_id, "contact_forces")

    def get_ground_contacts(self, char_id: int) -> Tensor:
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
        import mujoco.viewer  # needs a display; imported only when asked for
        self._viewer_data = self._env0_data(mujoco.MjData(self._model))
        try:
            self._viewer = mujoco.viewer.launch_passive(self._model, self._viewer_data)
        except Exception as e:
            raise MimicKitError("cannot open the MuJoCo viewer (--visualize needs a display): {}".format(e))
        camera = self._make_camera()
        self._viewer.cam.type = camera.type
        self._viewer.cam.trackbodyid = camera.trackbodyid
        self._viewer.cam.distance = camera.distance
        self._viewer.cam.azimuth = camera.azimuth
        self._viewer.cam.elevation = camera.elevation

    def render(self) -> None:
        if self._viewer is None or not self._viewer.is_running():
            return
        with self._viewer.lock():
            self._env0_data(self._viewer_data)
        self._viewer.sync()

    def render_frame(self, width: int, height: int) -> np.ndarray:
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
            self._viewer.close()
            self._viewer = None
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

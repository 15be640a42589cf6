"""MuJoCo engine (``engine_name: mujoco``): the default, on the CPU. Needs mujoco >= 3.17
(:mod:`mujoco.batch`).

Scene: one :class:`mujoco.MjModel` built with :class:`mujoco.MjSpec`: a ground plane (geom
``ground``, the plane z = 0), a light and a sky, then each character's MJCF attached under
the name prefix ``"<name>/"``. Options: ``implicitfast`` integrator (stable at stiff PD
gains and damping), timestep ``1 / sim_freq``. ``pos`` control mode uses the file's
position actuators (ctrl = PD target, rad); ``torque`` mode turns them into motors
(ctrl = torque, N·m, clipped to the actuator's forcerange). A reference character has no
actuators, no collisions (contype = conaffinity = 0), no joint limits and gravity
compensation on every body; it is drawn semi-transparent blue.

Stepping: :class:`mujoco.batch.Batch` keeps one ``MjData`` per env (``persistent``) and
steps the envs on ``num_threads`` native threads with the GIL released. ``step()`` runs
``substeps`` ``mj_step`` calls per env and then the position and velocity stages at the
new state (``mjSTAGE_VEL``, as ``mj_step1``; the next step continues from them with
``mj_step2``, so this costs nothing extra). Hence positions, rotations, velocities and
ground contacts describe the state after the step, while acceleration-stage quantities
(contact forces, actuator forces) are those of the last substep's solve. Setters write the
state rows; the touched envs get a full ``mj_forward`` before the next read.

Readback: sensors added at build time hold every per-body quantity (``framepos``,
``framequat``, ``framelinvel``, ``frameangvel`` of each body frame, a ``netforce``
contact sensor per body, a contact sensor per body against the ground, ``jointactuatorfrc``
per dof). A read after a step copies ``qpos``, ``qvel`` and ``sensordata`` of all envs into
one float32 array (numpy, quaternions reordered on the way); every getter is a view of it
as a tensor. Frames: body positions and rotations are those of the body frames
(``xpos``/``xquat``), velocities are of the body frame origins, all in the world frame.

MuJoCo conventions converted here and nowhere else:
- quaternions are (w, x, y, z) in MuJoCo, (x, y, z, w) outside;
- a free joint's angular velocity (``qvel[3:6]``) is in the root body's local frame in
  MuJoCo, in the world frame outside (getters read the root's ``frameangvel`` sensor;
  setters rotate by the root rotation); its linear velocity (``qvel[0:3]``) is world frame.

Failed envs: MuJoCo resets an ``MjData`` whose qpos, qvel or qacc goes bad (NaN, Inf or
above 1e10) and counts a warning; the engine flags envs whose warning counters rose (also
contact or constraint buffer full), whose call raised an error
(:class:`mujoco.batch.SimulationError`, e.g. arena overflow; the env keeps its previous
state) and envs read back with a non-finite state after setters.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple, Union

import mujoco
import mujoco.batch
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.engine import Engine, EngineConfig, register_engine
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError, require_file

_GROUND_NAME = "ground"
# enum values as ints: MuJoCo's enums do not compare equal to numpy integers
_JNT_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
_JNT_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)
_JNT_HINGE = int(mujoco.mjtJoint.mjJNT_HINGE)
_TRN_JOINT = int(mujoco.mjtTrn.mjTRN_JOINT)
_GAIN_FIXED = int(mujoco.mjtGain.mjGAIN_FIXED)
_BIAS_AFFINE = int(mujoco.mjtBias.mjBIAS_AFFINE)
_REFERENCE_RGBA = (0.35, 0.55, 0.95, 0.35)
_MAX_FRAME_SIZE = (1920, 1080)  # largest render_frame width, height (px)

# contact sensor intprm: (data fields bit mask, reduction, number of slots)
_CONTACT_DATA_FOUND = 1
_CONTACT_DATA_FORCE = 2
_CONTACT_REDUCE_NONE = 0
_CONTACT_REDUCE_NETFORCE = 3

IndexLike = Union[slice, np.ndarray]


@dataclasses.dataclass
class MujocoEngineConfig(EngineConfig):
    """``data/engines/mujoco_engine.yaml``.

    num_threads: threads stepping the envs; 0 uses every CPU this process may run on.
    """

    num_threads: int = 0

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.num_threads < 0:
            raise MimicKitError("{}: key 'num_threads': expected 0 (all CPUs) or a positive "
                                "integer, got {}".format(where, self.num_threads))


@dataclasses.dataclass
class _Character:
    """One character's description and its place in the compiled model."""

    name: str
    asset_file: str
    is_reference: bool
    spec: Optional[mujoco.MjSpec]  # the parsed file, until attached to the scene
    body_names: List[str]
    dof_names: List[str]
    dof_low: np.ndarray  # [num_dofs] rad
    dof_high: np.ndarray
    torque_limits: np.ndarray  # [num_dofs] N·m
    kp: np.ndarray  # [num_dofs] N·m/rad
    kd: np.ndarray  # [num_dofs] N·m·s/rad
    # filled by initialize(): indices into the compiled model's arrays
    root_body_id: int = -1
    root_qpos: int = -1  # qpos address of the free joint (3 position + 4 quaternion)
    root_qvel: int = -1  # qvel address of the free joint (3 linear + 3 angular)
    dof_qpos: Optional[IndexLike] = None  # qpos column of each dof
    dof_qvel: Optional[IndexLike] = None
    actuators: Optional[IndexLike] = None  # actuator (= ctrl column) of each dof
    actuator_ids: Optional[np.ndarray] = None
    # getter name -> (columns of the readback buffer, shape after num_envs)
    readback: Dict[str, Tuple[IndexLike, Tuple[int, ...]]] = dataclasses.field(default_factory=dict)


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _as_index(ids: np.ndarray) -> IndexLike:
    """A slice where ``ids`` is a contiguous ascending run (cheaper numpy indexing), else ``ids``."""
    if len(ids) > 0 and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


@register_engine("mujoco")
class MujocoEngine(Engine):
    """MuJoCo on the CPU, one ``MjData`` per env, stepped on native threads.

    See the module docstring for the scene, stepping and readback details.
    """

    config_class = MujocoEngineConfig

    def __init__(self, config: MujocoEngineConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._chars: List[_Character] = []
        self._model: Optional[mujoco.MjModel] = None
        self._batch: Optional[mujoco.batch.Batch] = None
        self._num_threads = config.num_threads if config.num_threads > 0 else _available_cpus()
        self._viewer = None
        self._viewer_data: Optional[mujoco.MjData] = None
        self._renderer: Optional[mujoco.Renderer] = None
        self._render_data: Optional[mujoco.MjData] = None
        self._camera: Optional[mujoco.MjvCamera] = None
        self._gainprm: Optional[np.ndarray] = None
        self._biasprm: Optional[np.ndarray] = None

    @property
    def model(self) -> mujoco.MjModel:
        """The compiled scene (after :meth:`initialize`), for tools and benchmarks; do not edit."""
        return self._model

    @property
    def num_threads(self) -> int:
        """Threads stepping the envs."""
        return self._num_threads

    # ================================================================= scene setup
    def add_character(self, asset_file: str, name: str, is_reference: bool = False) -> int:
        if self._model is not None:
            raise MimicKitError("add_character('{}'): the engine is already initialized; add every "
                                "character before initialize()".format(name))
        if not name or "/" in name:
            raise MimicKitError("character name {!r}: expected a non-empty name without '/'".format(name))
        if any(c.name == name for c in self._chars):
            raise MimicKitError("character name '{}' used twice".format(name))
        require_file(asset_file, "character file")
        self._chars.append(self._load_character(asset_file, name, is_reference))
        return len(self._chars) - 1

    def _load_character(self, asset_file: str, name: str, is_reference: bool) -> _Character:
        """Parse and check the character file; read its limits and gains from it compiled alone."""
        try:
            spec = mujoco.MjSpec.from_file(asset_file)
            model = spec.compile()
        except Exception as e:  # mujoco raises ValueError with the parser's message
            raise MimicKitError("{}: not a valid MJCF character: {}".format(
                asset_file, str(e).replace("\n", " ")))
        if model.nbody < 2:
            raise MimicKitError("{}: holds no body".format(asset_file))
        free = [j for j in range(model.njnt) if model.jnt_type[j] == _JNT_FREE]
        if free != [0] or model.jnt_bodyid[0] != 1:
            raise MimicKitError("{}: expected one free joint, on the root body '{}'".format(
                asset_file, model.body(1).name))
        root_children = [b for b in range(2, model.nbody) if model.body_parentid[b] == 0]
        if root_children:
            raise MimicKitError("{}: expected a single root body, found also '{}'".format(
                asset_file, model.body(root_children[0]).name))
        dof_joints = list(range(1, model.njnt))
        for j in dof_joints:
            if model.jnt_type[j] not in (_JNT_HINGE, _JNT_SLIDE):
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
            elif model.jnt_type[j] == _JNT_SLIDE:
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
                elif self.control_mode == "pos":
                    raise MimicKitError("{}: actuator '{}' is not a position actuator; control_mode "
                                        "'pos' needs <position kp=... kv=...> actuators".format(
                                            asset_file, model.actuator(a).name))
                if self.control_mode == "torque" and not model.actuator_forcelimited[a]:
                    raise MimicKitError("{}: actuator '{}' has no forcerange; control_mode 'torque' "
                                        "takes the torque limits from it".format(
                                            asset_file, model.actuator(a).name))
        body_names = [model.body(b).name for b in range(1, model.nbody)]
        return _Character(name=name, asset_file=asset_file, is_reference=is_reference, spec=spec,
                          body_names=body_names, dof_names=dof_names, dof_low=dof_low,
                          dof_high=dof_high, torque_limits=torque_limits, kp=kp, kd=kd)

    def _prepare_character_spec(self, char: _Character) -> mujoco.MjSpec:
        """Edit the character's spec before attaching: reference display, torque mode."""
        spec = char.spec
        if char.is_reference:
            for actuator in list(spec.actuators):
                spec.delete(actuator)
            for geom in spec.geoms:
                geom.contype = 0
                geom.conaffinity = 0
                geom.rgba = _REFERENCE_RGBA
            for body in spec.bodies:
                body.gravcomp = 1.0
            for joint in spec.joints:
                joint.limited = mujoco.mjtLimited.mjLIMITED_FALSE
        elif self.control_mode == "torque":
            for actuator in spec.actuators:
                force_range = np.array(actuator.forcerange)
                actuator.set_to_motor()
                actuator.inheritrange = 0.0
                actuator.ctrlrange = force_range
                actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        return spec

    def _build_spec(self) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.modelname = "mimickit"
        spec.option.timestep = self.sim_dt
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.visual.global_.offwidth = _MAX_FRAME_SIZE[0]
        spec.visual.global_.offheight = _MAX_FRAME_SIZE[1]
        spec.add_texture(name="grid", type=mujoco.mjtTexture.mjTEXTURE_2D,
                         builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=512, height=512,
                         rgb1=[0.2, 0.3, 0.4], rgb2=[0.1, 0.2, 0.3])
        material = spec.add_material(name="grid", texrepeat=[1, 1], texuniform=True, reflectance=0.1)
        material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "grid"
        spec.worldbody.add_geom(name=_GROUND_NAME, type=mujoco.mjtGeom.mjGEOM_PLANE,
                                size=[0.0, 0.0, 1.0], material="grid")
        spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                         builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, width=512, height=512,
                         rgb1=[0.4, 0.6, 0.8], rgb2=[0.0, 0.0, 0.0])
        spec.worldbody.add_light(name="sun", type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                                 pos=[0.0, 0.0, 5.0], dir=[0.3, 0.3, -1.0], castshadow=False)
        for char in self._chars:
            frame = spec.worldbody.add_frame()
            spec.attach(self._prepare_character_spec(char), prefix=char.name + "/", frame=frame)
        for char in self._chars:
            self._add_sensors(spec, char)
        return spec

    def _add_sensors(self, spec: mujoco.MjSpec, char: _Character) -> None:
        """Per character, one contiguous sensordata block per quantity (see ``_SENSOR_BLOCKS``)."""
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
                            objtype=mujoco.mjtObj.mjOBJ_GEOM, objname=_GROUND_NAME,
                            reftype=mujoco.mjtObj.mjOBJ_BODY, refname=body,
                            intprm=[_CONTACT_DATA_FOUND, _CONTACT_REDUCE_NONE, 1])
        for joint in joints:
            spec.add_sensor(name="mimickit/dof_force/" + joint, type=mujoco.mjtSensor.mjSENS_JOINTACTFRC,
                            objtype=mujoco.mjtObj.mjOBJ_JOINT, objname=joint)

    # (sensor block, values per item, items: "body" or "dof")
    _SENSOR_BLOCKS = (("pos", 3, "body"), ("rot", 4, "body"), ("vel", 3, "body"), ("ang_vel", 3, "body"),
                      ("contact_force", 3, "body"), ("ground_contact", 1, "body"), ("dof_force", 1, "dof"))

    def _locate_character(self, model: mujoco.MjModel, char: _Character) -> None:
        """Find the character's joints, actuators and sensor blocks in the compiled model."""
        prefix = char.name + "/"
        char.root_body_id = model.body(prefix + char.body_names[0]).id
        root = model.body(char.root_body_id)
        free_joint = int(root.jntadr[0])
        char.root_qpos = int(model.jnt_qposadr[free_joint])
        char.root_qvel = int(model.jnt_dofadr[free_joint])
        joint_ids = np.array([model.joint(prefix + n).id for n in char.dof_names], dtype=np.int64)
        char.dof_qpos = _as_index(model.jnt_qposadr[joint_ids].astype(np.int64))
        char.dof_qvel = _as_index(model.jnt_dofadr[joint_ids].astype(np.int64))
        if not char.is_reference:
            act_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
            ids = np.array([act_of_joint[j] for j in joint_ids], dtype=np.int64)
            char.actuator_ids = ids
            char.actuators = _as_index(ids)
        # readback buffer columns: qpos, qvel, sensordata (see _refresh)
        nq, nv = model.nq, model.nv
        num_bodies, num_dofs = len(char.body_names), len(char.dof_names)
        sensor_cols = {}
        for block, width, items in self._SENSOR_BLOCKS:
            names = char.body_names if items == "body" else char.dof_names
            adrs = [int(model.sensor("mimickit/{}/{}{}".format(block, prefix, n)).adr[0]) for n in names]
            start = adrs[0] if adrs else 0
            # the engine added each block's sensors consecutively: check they are contiguous
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
            "dof_vel": (_as_index(nq + model.jnt_dofadr[joint_ids].astype(np.int64)), ()),
            "dof_forces": (cols(sensor_cols["dof_force"], num_dofs), ()),
            "body_pos": (cols(sensor_cols["pos"], 3 * num_bodies), (num_bodies, 3)),
            "body_rot": (cols(sensor_cols["rot"], 4 * num_bodies), (num_bodies, 4)),
            "body_vel": (cols(sensor_cols["vel"], 3 * num_bodies), (num_bodies, 3)),
            "body_ang_vel": (cols(sensor_cols["ang_vel"], 3 * num_bodies), (num_bodies, 3)),
            "contact_forces": (cols(sensor_cols["contact_force"], 3 * num_bodies), (num_bodies, 3)),
            "ground_contacts": (cols(sensor_cols["ground_contact"], num_bodies), ()),
        }

    def initialize(self) -> None:
        if self._model is not None:
            raise MimicKitError("initialize() called twice")
        if not self._chars:
            raise MimicKitError("initialize(): no character was added")
        spec = self._build_spec()
        try:
            self._model = spec.compile()
        except Exception as e:
            raise MimicKitError("cannot build the MuJoCo scene from {}: {}".format(
                ", ".join(c.asset_file for c in self._chars), str(e).replace("\n", " ")))
        for char in self._chars:
            self._locate_character(self._model, char)
            char.spec = None  # attached; no longer needed

        self._batch = mujoco.batch.Batch(self._model, self.num_envs, nthread=self._num_threads,
                                         persistent=True)
        self._state = self._batch.state  # [num_envs, nstate] float64, each env's integration state
        self._qpos = self._batch.bind("qpos")  # views of the state rows
        self._qvel = self._batch.bind("qvel")
        self._ctrl = self._batch.bind("ctrl")
        self._sensordata = self._batch.bind("sensordata")  # read-only, refreshed by every call
        self._warning = self._batch.warning  # [num_envs, mjNWARNING, (lastinfo, number)]
        itemsize = self._state.itemsize
        self._qpos_col = (self._qpos.ctypes.data - self._state.ctypes.data) // itemsize
        qvel_col = (self._qvel.ctypes.data - self._state.ctypes.data) // itemsize
        assert qvel_col == self._qpos_col + self._model.nq, "qvel must follow qpos in the state rows"

        self._failed = np.zeros(self.num_envs, dtype=bool)
        self._dirty = np.zeros(self.num_envs, dtype=bool)  # state written since the last forward
        self._any_dirty = False
        self._pending_ang_vel: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self._tensors_stale = True
        self._call_batch(self._batch.reset, None)
        if self._visualize:
            self._launch_viewer()

    # ================================================================= description
    def _char(self, char_id: int) -> _Character:
        if not 0 <= char_id < len(self._chars):
            raise IndexError("char_id {} out of range (0..{})".format(char_id, len(self._chars) - 1))
        return self._chars[char_id]

    def _sim_char(self, char_id: int) -> _Character:
        char = self._char(char_id)
        if char.is_reference:
            raise ValueError("character '{}' is a reference character: it has no actuators".format(char.name))
        return char

    def _tensor(self, array: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self._device)

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

    def set_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> None:
        """Set the gains of the character's position actuators in every env.

        In ``torque`` mode the gains are only stored (for an env computing its own PD).
        Call after :meth:`initialize`.
        """
        char = self._sim_char(char_id)
        if self._batch is None:
            raise RuntimeError("set_pd_gains: call initialize() first")
        num_dofs = len(char.dof_names)
        kp_np = kp.detach().cpu().numpy().astype(np.float64).reshape(-1)
        kd_np = kd.detach().cpu().numpy().astype(np.float64).reshape(-1)
        if kp_np.shape != (num_dofs,) or kd_np.shape != (num_dofs,):
            raise ValueError("set_pd_gains: expected kp and kd of shape [{}], got {} and {}".format(
                num_dofs, tuple(kp.shape), tuple(kd.shape)))
        char.kp, char.kd = kp_np, kd_np
        if self.control_mode == "pos":
            if self._gainprm is None:
                self._gainprm = self._batch.expand("actuator_gainprm")  # [num_envs, nu, 10]
                self._biasprm = self._batch.expand("actuator_biasprm")
            self._gainprm[:, char.actuators, 0] = kp_np
            self._biasprm[:, char.actuators, 1] = -kp_np
            self._biasprm[:, char.actuators, 2] = -kd_np
            self._model.actuator_gainprm[char.actuator_ids, 0] = kp_np  # for the viewer's model
            self._model.actuator_biasprm[char.actuator_ids, 1] = -kp_np
            self._model.actuator_biasprm[char.actuator_ids, 2] = -kd_np

    # ================================================================= simulation
    def _call_batch(self, fn, ids: Optional[np.ndarray], **kwargs) -> None:
        """Run a batch call; flag envs where MuJoCo raised an error instead of dying."""
        try:
            fn(ids, **kwargs)
        except mujoco.batch.SimulationError as e:
            self._failed[e.ids] = True
        self._tensors_stale = True

    def set_cmd(self, char_id: int, cmd: Tensor) -> None:
        char = self._sim_char(char_id)
        expected = (self.num_envs, len(char.dof_names))
        if tuple(cmd.shape) != expected:
            raise ValueError("set_cmd: expected cmd of shape {}, got {}".format(list(expected), list(cmd.shape)))
        self._ctrl[:, char.actuators] = cmd.detach().cpu().numpy()

    def step(self) -> None:
        if self._any_dirty:
            self._apply_pending_ang_vel()
            self._dirty[:] = False  # the step recomputes every stage of an env whose state changed
            self._any_dirty = False
        self._call_batch(self._batch.step, None, nstep=self.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)
        self._collect_warnings()

    def _collect_warnings(self) -> None:
        warned = self._warning[:, :, 1].any(axis=1)
        if warned.any():
            self._failed |= warned
            self._warning[warned] = 0

    def pop_failed_envs(self) -> Tensor:
        self._refresh()
        failed = torch.from_numpy(self._failed.copy()).to(self._device)
        self._failed[:] = False
        return failed

    def _forward_dirty(self, env_id: Optional[int] = None) -> Optional[np.ndarray]:
        """Recompute every stage at the new state of envs touched by setters; return their ids.

        ``env_id`` limits this to one env (rendering); the others stay pending.
        """
        if not self._any_dirty:
            return None
        self._apply_pending_ang_vel()
        if env_id is None:
            ids = np.flatnonzero(self._dirty).astype(np.int32)
            self._any_dirty = False
            if len(ids) == 0:
                return None
        elif self._dirty[env_id]:
            ids = np.array([env_id], dtype=np.int32)
        else:
            return None
        self._dirty[ids] = False
        self._call_batch(self._batch.forward, ids, stage=mujoco.mjtStage.mjSTAGE_ACC)
        self._collect_warnings()
        return ids

    def _refresh(self) -> None:
        """Read the state back once per step (or after setters) into one float32 array.

        Columns: qpos, qvel, sensordata, with the sensors' quaternions reordered to
        (x, y, z, w). Numpy does this work: right after a step has flushed the CPU caches,
        a numpy operation costs a fraction of a torch one.
        """
        if not self._tensors_stale:
            return
        if self._batch is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        touched = self._forward_dirty()
        nq_nv = self._model.nq + self._model.nv
        buf = np.empty((self.num_envs, nq_nv + self._model.nsensordata), dtype=np.float32)
        np.copyto(buf[:, :nq_nv], self._state[:, self._qpos_col:self._qpos_col + nq_nv], casting="same_kind")
        np.copyto(buf[:, nq_nv:], self._sensordata, casting="same_kind")
        for char in self._chars:
            columns = char.readback["body_rot"][0]
            wxyz = self._sensordata[:, columns.start - nq_nv:columns.stop - nq_nv].reshape(self.num_envs, -1, 4)
            xyzw = buf[:, columns].reshape(self.num_envs, -1, 4)
            xyzw[..., :3] = wxyz[..., 1:]
            xyzw[..., 3] = wxyz[..., 0]
        if touched is not None:
            # a step leaves a finite state (MuJoCo resets a world whose qpos, qvel or qacc
            # goes bad, with a warning); a setter may not
            finite = np.isfinite(buf[touched, :nq_nv]).all(axis=1)
            self._failed[touched[~finite]] = True
        self._buf = buf
        self._readback: Dict[Tuple[int, str], Tensor] = {}
        self._tensors_stale = False

    def _read(self, char_id: int, name: str) -> Tensor:
        """The character's ``name`` quantity as a tensor sharing the readback array (cached)."""
        self._refresh()
        key = (char_id, name)
        tensor = self._readback.get(key)
        if tensor is None:
            columns, shape = self._char(char_id).readback[name]
            array = self._buf[:, columns]
            if name == "ground_contacts":
                array = array > 0
            if shape:
                array = array.reshape((self.num_envs,) + shape)
            tensor = torch.from_numpy(array).to(self._device)
            self._readback[key] = tensor
        return tensor

    # ================================================================= getters
    def get_root_pos(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_pos")

    def get_root_rot(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_rot")  # framequat sensor of the root body

    def get_root_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "root_vel")  # free joint qvel[0:3]: world frame

    def get_root_ang_vel(self, char_id: int) -> Tensor:
        # frameangvel sensor of the root: the free joint's body-local qvel[3:6] in world frame
        return self._read(char_id, "root_ang_vel")

    def get_dof_pos(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_pos")

    def get_dof_vel(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_vel")

    def get_dof_forces(self, char_id: int) -> Tensor:
        return self._read(char_id, "dof_forces")  # jointactuatorfrc sensors

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

    # ================================================================= setters
    def _env_ids(self, env_ids: Tensor, values: Tensor, width: int, what: str) -> Tuple[np.ndarray, np.ndarray]:
        ids = env_ids.detach().cpu().numpy().astype(np.int64).reshape(-1)
        vals = values.detach().cpu().numpy().astype(np.float64)
        if vals.shape != (len(ids), width):
            raise ValueError("{}: expected values of shape [{}, {}], got {}".format(
                what, len(ids), width, list(values.shape)))
        return ids, vals

    def _set_qpos(self, ids: np.ndarray, cols: IndexLike, vals: np.ndarray) -> None:
        if isinstance(cols, slice):
            self._qpos[ids, cols] = vals
        else:
            self._qpos[ids[:, None], cols[None, :]] = vals
        self._dirty[ids] = True
        self._any_dirty = True
        self._tensors_stale = True

    def _set_qvel(self, ids: np.ndarray, cols: IndexLike, vals: np.ndarray) -> None:
        if isinstance(cols, slice):
            self._qvel[ids, cols] = vals
        else:
            self._qvel[ids[:, None], cols[None, :]] = vals
        self._dirty[ids] = True
        self._any_dirty = True
        self._tensors_stale = True

    def set_root_pos(self, char_id: int, env_ids: Tensor, root_pos: Tensor) -> None:
        adr = self._char(char_id).root_qpos
        ids, vals = self._env_ids(env_ids, root_pos, 3, "set_root_pos")
        self._set_qpos(ids, slice(adr, adr + 3), vals)

    def set_root_rot(self, char_id: int, env_ids: Tensor, root_rot: Tensor) -> None:
        adr = self._char(char_id).root_qpos
        ids, vals = self._env_ids(env_ids, torch_util.quat_xyzw_to_wxyz(root_rot), 4, "set_root_rot")
        self._set_qpos(ids, slice(adr + 3, adr + 7), vals)

    def set_root_vel(self, char_id: int, env_ids: Tensor, root_vel: Tensor) -> None:
        adr = self._char(char_id).root_qvel
        ids, vals = self._env_ids(env_ids, root_vel, 3, "set_root_vel")
        self._set_qvel(ids, slice(adr, adr + 3), vals)

    def set_root_ang_vel(self, char_id: int, env_ids: Tensor, root_ang_vel: Tensor) -> None:
        """Set the root's world-frame angular velocity.

        MuJoCo stores it in the root's local frame; the conversion uses the root rotation
        at the next step or getter, so setter order does not matter.
        """
        self._char(char_id)
        ids, vals = self._env_ids(env_ids, root_ang_vel, 3, "set_root_ang_vel")
        if char_id not in self._pending_ang_vel:
            self._pending_ang_vel[char_id] = (np.zeros((self.num_envs, 3)), np.zeros(self.num_envs, dtype=bool))
        world_ang_vel, pending = self._pending_ang_vel[char_id]
        world_ang_vel[ids] = vals
        pending[ids] = True
        self._dirty[ids] = True
        self._any_dirty = True
        self._tensors_stale = True

    def _apply_pending_ang_vel(self) -> None:
        for char_id, (world_ang_vel, pending) in self._pending_ang_vel.items():
            char = self._chars[char_id]
            ids = np.flatnonzero(pending)
            root_rot_wxyz = torch.from_numpy(self._qpos[ids, char.root_qpos + 3:char.root_qpos + 7])
            root_rot = torch_util.quat_normalize(torch_util.quat_wxyz_to_xyzw(root_rot_wxyz))
            local = torch_util.quat_rotate_inverse(root_rot, torch.from_numpy(world_ang_vel[ids]))
            self._qvel[ids, char.root_qvel + 3:char.root_qvel + 6] = local.numpy()
        self._pending_ang_vel.clear()

    def set_dof_pos(self, char_id: int, env_ids: Tensor, dof_pos: Tensor) -> None:
        char = self._char(char_id)
        ids, vals = self._env_ids(env_ids, dof_pos, len(char.dof_names), "set_dof_pos")
        self._set_qpos(ids, char.dof_qpos, vals)

    def set_dof_vel(self, char_id: int, env_ids: Tensor, dof_vel: Tensor) -> None:
        char = self._char(char_id)
        ids, vals = self._env_ids(env_ids, dof_vel, len(char.dof_names), "set_dof_vel")
        self._set_qvel(ids, char.dof_qvel, vals)

    # ================================================================= display
    def _make_camera(self) -> mujoco.MjvCamera:
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = self._chars[0].root_body_id
        camera.distance = 4.0
        camera.azimuth = 120.0
        camera.elevation = -15.0
        return camera

    def _env0_data(self, data: mujoco.MjData) -> mujoco.MjData:
        """Copy env 0's current MjData (state and derived fields) into ``data``."""
        self._forward_dirty(env_id=0)
        self._batch.get_data(0, data)
        return data

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
        if width > _MAX_FRAME_SIZE[0] or height > _MAX_FRAME_SIZE[1]:
            raise MimicKitError("render_frame: {}x{} exceeds the largest frame size {}x{}".format(
                width, height, _MAX_FRAME_SIZE[0], _MAX_FRAME_SIZE[1]))
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
            try:
                self._renderer = mujoco.Renderer(self._model, height=height, width=width)
            except Exception as e:
                raise MimicKitError(
                    "cannot create an offscreen OpenGL context for video ({}); set the environment "
                    "variable MUJOCO_GL=egl (GPU) or MUJOCO_GL=osmesa (software)".format(
                        str(e).replace("\n", " ")))
            self._render_data = mujoco.MjData(self._model)
            self._camera = self._make_camera()
        self._env0_data(self._render_data)
        self._renderer.update_scene(self._render_data, camera=self._camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._batch = None

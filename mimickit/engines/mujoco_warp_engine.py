"""MuJoCo Warp engine (``engine_name: mujoco_warp``): all envs in one batched simulation.

Every env is a world (mujoco_warp's word for one copy of the scene) of one batched
:mod:`mujoco_warp` simulation, on a CUDA GPU or (slowly) on the CPU.

Needs the ``gpu`` extra (``pip install -e ".[gpu]"``: ``mujoco-warp``, which brings
``warp-lang``); written against mujoco-warp 4.0 and warp-lang 1.19.

Scene: the same :class:`mujoco.MjModel` as the ``mujoco`` engine (ground, lights, the
characters, their readback sensors; :mod:`mimickit.engines.mujoco_scene`), put on the warp
device with ``mujoco_warp.put_model`` and ``put_data(nworld=num_envs)``. The warp device is
the engine's torch device (``cpu`` or ``cuda:N``). Physics runs in float32, MuJoCo's C
engine in float64; ``put_model`` raises the solver tolerance to at least 1e-6 for float32.

Sharing with torch: ``qpos``, ``qvel``, ``ctrl``, ``sensordata`` and the actuator gains are
warp arrays seen as torch tensors through ``warp.to_torch`` (no copies): setters, ``set_cmd``
and ``set_pd_gains`` write into them in place. The first read after a step or setter
gathers ``[qpos, qvel, sensordata]`` of every env into one new float32 tensor (one
device copy, quaternions reordered on the way) and the getters are views of it, so that
getter results stay valid after later steps as the :class:`Engine` interface promises.
On CUDA, warp runs on its own stream; the engine orders it against torch's current stream
with stream waits (no host synchronisation).

Stepping: ``step()`` runs ``step2``, then ``substeps - 1`` times (``step1``, ``step2``), then
``step1`` (mujoco_warp's split of ``mj_step``: ``step1`` is the position and velocity
stages and their sensors, ``step2`` actuation, the constraint solve, acceleration sensors
and integration). The state after a step therefore has its position and velocity stages
computed, as in the ``mujoco`` engine, at no extra cost. ``step1`` zeroes all sensor data,
so the acceleration-stage sensors (contact forces, actuator forces, ground contacts) are
copied aside after the last ``step2``: they are those of the last substep's solve, as in the
``mujoco`` engine. With ``graph_capture`` (the default) that sequence is recorded once with
``warp.ScopedCapture`` and replayed with ``warp.capture_launch``: a CUDA graph on a GPU,
warp's recorded CPU graph on the CPU (warp >= 1.19; about 10x fewer Python launches).
Setters write the state rows; before the next step (``step1``) or read (``forward``) the
engine recomputes the derived quantities of all envs (mujoco_warp has no per-world
forward); the acceleration-stage readings of untouched envs are kept.

Contact and constraint buffers: ``nconmax_per_env`` contacts per env (shared between
envs: ``naconmax = nconmax_per_env * num_envs``) and ``njmax_per_env`` constraint rows
per env, 0 = derived from the model by :func:`default_buffer_sizes`. An overflow (more
contacts, broad-phase pairs or constraint rows than allocated, or more than 64 contacts on
one contact sensor) drops the excess; the engine then warns, naming the key to raise, and
flags as failed the envs whose worlds mujoco_warp marks in ``Data.overflow`` (all envs for
the shared contact buffer).

Failed envs: mujoco_warp does not check the state. After every physics step (and before
recomputing a state written by setters) the kernel
:func:`mimickit.engines.mujoco_warp_kernels.check_state` flags envs whose qpos, qvel or
qacc is NaN or above 1e10 in magnitude, as MuJoCo's ``mj_checkPos``/``Vel``/``Acc`` do, and
``mujoco_warp.reset_data`` resets just those envs to the model's default pose, so that a
bad env neither floods the shared contact buffer nor stops stepping. Flagged envs are
returned once by :meth:`MujocoWarpEngine.pop_failed_envs`.

Per-env physics (domain randomisation): the model fields that :meth:`MujocoWarpEngine.set_body_mass`,
``set_body_com``, ``set_friction_scale`` and ``set_actuator_scales`` write, and the constants
``set_const`` derives from masses, have one row per world (``put_model``'s ``batch_sizes``,
:data:`PER_ENV_FIELDS`); until a setter changes them every row holds the model's values.
A mass or centre-of-mass change runs ``mujoco_warp.set_const`` (groups ``FIXED | INERT0``)
over every world.

Display: ``render()``/``render_frame()`` copy env 0's qpos and qvel into an ``MjData`` of
the host model, run ``mj_forward`` and draw it with the shared MuJoCo viewer/renderer code.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import mujoco
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.engine import register_engine
from mimickit.engines.mujoco_scene import (
    GROUND_NAME,
    IndexLike,
    MujocoSceneConfig,
    MujocoSceneEngine,
    index_array,
    velocity_bias,
)
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

if TYPE_CHECKING:  # imported at run time only when the engine is built (_import_warp)
    import mujoco_warp

_INSTALL_HINT = 'pip install -e ".[gpu]"'

# most contacts one geom makes with a plane in mujoco_warp's collision functions
# (collision_primitive_core.py: plane_box keeps the lowest 4 corners, plane_cylinder and
# plane_convex return up to 4, plane_capsule 2); other geom types count 4
_PLANE_CONTACTS = {
    int(mujoco.mjtGeom.mjGEOM_SPHERE): 1,
    int(mujoco.mjtGeom.mjGEOM_CAPSULE): 2,
    int(mujoco.mjtGeom.mjGEOM_ELLIPSOID): 1,
    int(mujoco.mjtGeom.mjGEOM_CYLINDER): 4,
    int(mujoco.mjtGeom.mjGEOM_BOX): 4,
    int(mujoco.mjtGeom.mjGEOM_MESH): 4,
}
# model fields with a row per world: what the per-env physics setters write and what set_const derives from them
PER_ENV_FIELDS = ("body_mass", "body_inertia", "body_ipos", "geom_friction", "actuator_gainprm", "actuator_biasprm",
                  "body_subtreemass", "body_invweight0", "dof_invweight0", "tendon_invweight0", "actuator_acc0")
_SELF_CONTACTS_PER_GEOM = 2  # allowance for contacts between a character's own geoms
_EQUALITY_ROWS = 6  # most constraint rows of one equality constraint (weld)


@dataclasses.dataclass
class MujocoWarpEngineConfig(MujocoSceneConfig):
    """``data/engines/mujoco_warp_engine.yaml`` (and the shared keys of :class:`MujocoSceneConfig`).

    nconmax_per_env: contacts allocated per env (the buffer is shared by all envs);
        0 derives it from the model (:func:`default_buffer_sizes`).
    njmax_per_env: constraint rows allocated per env (no env may have more); 0 derives it.
    graph_capture: record the control step once as a warp graph (a CUDA graph on a GPU)
        and replay it; false launches every kernel from Python (slow, for debugging).
    """

    nconmax_per_env: int = 0
    njmax_per_env: int = 0
    graph_capture: bool = True

    def validate(self, where: str) -> None:
        """The shared checks, then non-negative buffer sizes; MimicKitError naming ``where``."""
        super().validate(where)
        for key in ("nconmax_per_env", "njmax_per_env"):
            if getattr(self, key) < 0:
                raise MimicKitError("{}: key '{}': expected 0 (derived from the model) or a positive "
                                    "integer, got {}".format(where, key, getattr(self, key)))


def _import_warp():
    """``(warp, mujoco_warp, kernels)``, or a one-line MimicKitError saying how to install them."""
    try:
        import mujoco_warp
        import warp
    except ImportError as e:
        raise MimicKitError("engine 'mujoco_warp' needs the packages mujoco-warp and warp-lang ({}); "
                            "install them with {}".format(e, _INSTALL_HINT)) from e
    if warp.config.log_level < warp.LOG_WARNING:
        warp.config.log_level = warp.LOG_WARNING  # no start-up banner or per-module load messages
    from mimickit.engines import mujoco_warp_kernels
    return warp, mujoco_warp, mujoco_warp_kernels


def default_buffer_sizes(model: mujoco.MjModel) -> Tuple[int, int]:
    """``(nconmax, njmax)`` per env for the scene ``model``: contacts and constraint rows.

    Contacts: every geom that can touch the ground plane at once with its most contacts
    against a plane (:data:`_PLANE_CONTACTS`: a fallen character lying flat), plus
    :data:`_SELF_CONTACTS_PER_GEOM` for each geom that can touch a geom of another body
    that is not its parent or child (MuJoCo's default parent filter). The same number
    bounds mujoco_warp's broad-phase pairs, which share the buffer. Constraint rows: each
    contact's rows (pyramidal cone: ``2 (condim - 1)``, elliptic: ``condim``, at the largest
    condim of the geoms) plus one row per limited joint and per dof with friction loss and
    :data:`_EQUALITY_ROWS` per equality constraint. The humanoid (``data/assets/humanoid``)
    gets 69 contacts and 304 rows; tumbling onto the ground from random poses it used at
    most 23 contacts and 94 rows in one env (7 contacts per env on average).
    """
    ground = model.geom(GROUND_NAME).id
    contype, conaffinity = model.geom_contype, model.geom_conaffinity

    def collide(a: int, b: int) -> bool:
        return bool(contype[a] & conaffinity[b]) or bool(contype[b] & conaffinity[a])

    parent = model.body_parentid
    geoms = [g for g in range(model.ngeom) if g != ground and (contype[g] or conaffinity[g])]
    ground_contacts = sum(_PLANE_CONTACTS.get(int(model.geom_type[g]), 4) for g in geoms if collide(g, ground))

    def may_touch(a: int, b: int) -> bool:
        body_a, body_b = model.geom_bodyid[a], model.geom_bodyid[b]
        return body_a != body_b and parent[body_a] != body_b and parent[body_b] != body_a and collide(a, b)

    self_geoms = sum(1 for a in geoms if any(may_touch(a, b) for b in geoms))
    nconmax = ground_contacts + _SELF_CONTACTS_PER_GEOM * self_geoms
    condim = int(max([model.geom_condim[g] for g in geoms], default=1))
    rows = condim if model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC else max(1, 2 * (condim - 1))
    njmax = (nconmax * rows + int(model.jnt_limited.sum()) + int((model.dof_frictionloss > 0).sum())
             + _EQUALITY_ROWS * model.neq)
    return max(nconmax, 1), max(njmax, 1)


@register_engine("mujoco_warp")
class MujocoWarpEngine(MujocoSceneEngine):
    """MuJoCo Warp: ``num_envs`` envs, each a world of one batched simulation on the engine's device.

    See the module docstring for stepping, memory sharing, buffers and failed envs.

    Raises:
        MimicKitError: mujoco-warp or warp-lang missing, a CUDA device without CUDA.
    """

    config_class = MujocoWarpEngineConfig
    _config: MujocoWarpEngineConfig

    def __init__(self, config: MujocoWarpEngineConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._wp, self._mjw, self._kernels = _import_warp()
        wp = self._wp
        if self._device.type == "cuda":
            if not wp.is_cuda_available():
                raise MimicKitError("engine 'mujoco_warp': device '{}' asked for, but warp finds no CUDA "
                                    "device".format(device))
            index = self._device.index if self._device.index is not None else torch.cuda.current_device()
            self._device = torch.device("cuda", index)
            self._wp_device = wp.get_device("cuda:{}".format(index))
        elif self._device.type == "cpu":
            self._wp_device = wp.get_device("cpu")
        else:
            raise MimicKitError("engine 'mujoco_warp': device '{}' is neither cpu nor cuda".format(device))
        self._m: Optional[mujoco_warp.Model] = None
        self._d: Optional[mujoco_warp.Data] = None
        self._graphs: Dict[str, object] = {}
        self._nconmax = 0
        self._njmax = 0
        self._warned: set = set()  # overflow bits already warned about
        # (torch CUDA stream handle, the same as a warp stream)
        self._torch_stream_cache: Optional[Tuple[int, Any]] = None

    # ================================================================= properties
    @property
    def buffer_sizes(self) -> Tuple[int, int]:
        """``(nconmax, njmax)`` per env in use (after :meth:`initialize`)."""
        return self._nconmax, self._njmax

    @property
    def warp_model(self) -> Optional[mujoco_warp.Model]:
        """The ``mujoco_warp.Model`` (after :meth:`initialize`), for tools and tests; do not edit."""
        return self._m

    @property
    def warp_data(self) -> Optional[mujoco_warp.Data]:
        """The ``mujoco_warp.Data`` (after :meth:`initialize`), for tools; do not edit."""
        return self._d

    def _model_and_data(self) -> Tuple[mujoco_warp.Model, mujoco_warp.Data]:
        """The ``mujoco_warp`` model and data.

        Raises:
            RuntimeError: before :meth:`initialize` or after :meth:`close`.
        """
        if self._m is None or self._d is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        return self._m, self._d

    # ================================================================= scene setup
    def initialize(self) -> None:
        """Compile the scene, put it on the warp device for ``num_envs`` worlds, record the graphs.

        Raises:
            MimicKitError: called twice, no character, a scene mujoco_warp cannot simulate.
        """
        model = self._compile_scene()
        config = self._config
        default_ncon, default_nj = default_buffer_sizes(model)
        self._nconmax = config.nconmax_per_env or default_ncon
        self._njmax = config.njmax_per_env or default_nj
        wp, mjw = self._wp, self._mjw
        # the default state without its contacts: put_data refuses initial contacts beyond
        # nconmax; the first forward below computes them and reports an overflow as a step would
        host_data = mujoco.MjData(model)
        with wp.ScopedDevice(self._wp_device):
            try:
                m = mjw.put_model(model, batch_sizes={name: self.num_envs for name in PER_ENV_FIELDS})
                d = mjw.put_data(model, host_data, nworld=self.num_envs, nconmax=self._nconmax,
                                 njmax=self._njmax)
            except (NotImplementedError, ValueError) as e:
                raise MimicKitError("engine 'mujoco_warp' cannot simulate the scene of {}: {}".format(
                    ", ".join(c.asset_file for c in self._chars), str(e).replace("\n", " "))) from e
            self._m, self._d = m, d
            # the engine reports overflows itself (see _check_overflow), once, not per kernel
            m.opt.warn_overflow = 0
            self._bad = wp.zeros(self.num_envs, dtype=bool)  # envs found bad by the last check
            self._bad_flags = wp.zeros(self.num_envs, dtype=int)  # 1 where a check found the env bad
            self._acc_sensordata = wp.zeros_like(d.sensordata)  # acceleration-stage sensors, set aside
        self._qpos = wp.to_torch(d.qpos)  # [num_envs, nq] float32, shared
        self._qvel = wp.to_torch(d.qvel)
        self._ctrl = wp.to_torch(d.ctrl)
        self._sensordata = wp.to_torch(d.sensordata)
        self._acc_sensordata_t = wp.to_torch(self._acc_sensordata)
        self._overflow = wp.to_torch(d.overflow)  # [num_envs] int32 OverflowType bits
        self._bad_flags_t = wp.to_torch(self._bad_flags)
        self._gainprm = wp.to_torch(m.actuator_gainprm)  # [num_envs, nu, 10]
        self._biasprm = wp.to_torch(m.actuator_biasprm)
        self._body_mass = wp.to_torch(m.body_mass)  # [num_envs, nbody]
        self._body_inertia = wp.to_torch(m.body_inertia)  # [num_envs, nbody, 3]
        self._body_ipos = wp.to_torch(m.body_ipos)
        self._geom_friction = wp.to_torch(m.geom_friction)  # [num_envs, ngeom, 3]
        self._nominal = {name: getattr(self, "_" + name)[:1].clone()  # [1, ...]: the model's values
                         for name in ("body_mass", "body_inertia", "gainprm", "geom_friction")}
        # char_id -> [3, num_envs, num_dofs] (kp, kd, strength) of set_actuator_scales
        self._actuator_scales: Dict[int, Tensor] = {}
        self._acc_columns = torch.as_tensor(self._acc_sensor_columns(model), device=self._device)
        self._overflow_kinds = self._overflow_messages()

        self._failed = torch.zeros(self.num_envs, dtype=torch.bool, device=self._device)
        self._dirty = torch.zeros(self.num_envs, dtype=torch.bool, device=self._device)
        self._any_dirty = False
        self._pending_ang_vel: Dict[int, Tuple[Tensor, Tensor]] = {}
        self._index_cache: Dict[Tuple[int, str], Tensor] = {}
        self._tensors_stale = True
        self._buf: Optional[Tensor] = None
        self._readback: Dict[Tuple[int, str], Tensor] = {}

        self._build_graphs()
        if self._visualize:
            self._launch_viewer()

    @staticmethod
    def _acc_sensor_columns(model: mujoco.MjModel) -> np.ndarray:
        """Columns of sensordata holding the acceleration-stage sensors (cleared by ``step1``)."""
        columns = [np.arange(model.sensor_adr[s], model.sensor_adr[s] + model.sensor_dim[s])
                   for s in range(model.nsensor) if model.sensor_needstage[s] == mujoco.mjtStage.mjSTAGE_ACC]
        return np.concatenate(columns).astype(np.int64) if columns else np.zeros(0, dtype=np.int64)

    def _overflow_messages(self) -> List[Tuple[int, str]]:
        """(OverflowType bit, warning) for the overflows that flag envs as failed."""
        kind = self._mjw.OverflowType
        contacts = ("contacts were dropped; raise key 'nconmax_per_env' of the mujoco_warp engine config "
                    "(now {} per env, naconmax = {} for {} envs)".format(
                        self._nconmax, self._nconmax * self.num_envs, self.num_envs))
        rows = ("constraint rows were dropped; raise key 'njmax_per_env' of the mujoco_warp engine config "
                "(now {})".format(self._njmax))
        return [
            (int(kind.NARROWPHASE), "mujoco_warp: the contact buffer is full: " + contacts),
            (int(kind.BROADPHASE), "mujoco_warp: the broad-phase pair buffer is full: " + contacts),
            (int(kind.CCD), "mujoco_warp: the convex-collision contact buffer is full: " + contacts),
            (int(kind.NEFC), "mujoco_warp: an env has more constraint rows than allocated: " + rows),
            (int(kind.NJMAX_NNZ), "mujoco_warp: the sparse constraint Jacobian is full: " + rows),
            (int(kind.CONTACT_MATCH), "mujoco_warp: more than {} contacts matched one contact sensor; the "
             "extra contacts are missing from the contact forces".format(
                 self._model_and_data()[0].opt.contact_sensor_maxmatch)),
        ]

    # ================================================================= graphs
    def _check_and_reset(self) -> None:
        """Flag envs with a bad state and reset them to the default pose (see the module docstring)."""
        m, d = self._model_and_data()
        self._wp.launch(self._kernels.check_state, dim=self.num_envs,
                        inputs=[d.qpos, d.qvel, d.qacc], outputs=[self._bad, self._bad_flags])
        self._mjw.reset_data(m, d, reset=self._bad)

    def _run_step(self) -> None:
        """``substeps`` physics steps from a state whose ``step1`` stages are computed."""
        mjw = self._mjw
        m, d = self._model_and_data()
        for i in range(self.substeps):
            if i > 0:
                mjw.step1(m, d)
            mjw.step2(m, d)
            self._check_and_reset()
        self._wp.copy(self._acc_sensordata, d.sensordata)
        mjw.step1(m, d)

    def _run_prepare(self) -> None:
        """After setters, before a step: check the written state, recompute the ``step1`` stages."""
        self._check_and_reset()
        self._mjw.step1(*self._model_and_data())

    def _run_forward(self) -> None:
        """After setters, before a read: check the written state, recompute every stage."""
        self._check_and_reset()
        self._mjw.forward(*self._model_and_data())

    def _build_graphs(self) -> None:
        """Compile the kernels and record the step sequences as graphs (with ``graph_capture``).

        Each sequence runs once (compiling its kernels), the default state is restored, then
        each is recorded.
        """
        wp, mjw = self._wp, self._mjw
        runs = {"step": self._run_step, "prepare": self._run_prepare, "forward": self._run_forward}
        with wp.ScopedDevice(self._wp_device):
            for run in runs.values():
                run()
            mjw.reset_data(*self._model_and_data())
            self._bad_flags.zero_()
            self._overflow.zero_()
            self._run_forward()
            wp.synchronize_device(self._wp_device)
            if self._config.graph_capture:
                for name, run in runs.items():
                    with wp.ScopedCapture(device=self._wp_device) as capture:
                        run()
                    self._graphs[name] = capture.graph
        self._acc_sensordata_t.copy_(self._sensordata)

    def _launch(self, name: str) -> None:
        """Run sequence ``name`` on the warp device after torch's pending work on the tensors."""
        wp = self._wp
        self._warp_after_torch()
        with wp.ScopedDevice(self._wp_device):
            graph = self._graphs.get(name)
            if graph is not None:
                wp.capture_launch(graph)
            else:
                {"step": self._run_step, "prepare": self._run_prepare, "forward": self._run_forward}[name]()

    def _torch_stream(self):
        """Torch's current CUDA stream on the engine's device, as a warp stream (cached)."""
        stream = torch.cuda.current_stream(self._device)
        if self._torch_stream_cache is None or self._torch_stream_cache[0] != stream.cuda_stream:
            self._torch_stream_cache = (stream.cuda_stream, self._wp.stream_from_torch(stream))
        return self._torch_stream_cache[1]

    def _warp_after_torch(self) -> None:
        """Make warp's stream wait for the work torch has queued (CUDA; nothing on the CPU)."""
        if self._device.type == "cuda":
            self._wp.get_stream(self._wp_device).wait_stream(self._torch_stream())

    def _torch_after_warp(self) -> None:
        """Make torch's stream wait for the work warp has queued (CUDA; nothing on the CPU)."""
        if self._device.type == "cuda":
            self._torch_stream().wait_stream(self._wp.get_stream(self._wp_device))

    # ================================================================= gains
    def set_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> None:
        """Set the gains of the character's position actuators in every env.

        In ``torque`` mode the gains are only stored (for an env computing its own PD).
        Call after :meth:`initialize`.
        """
        self._store_pd_gains(char_id, kp, kd)
        if self.control_mode == "pos":
            self._write_actuators(char_id, torch.arange(self.num_envs, device=self._device))

    def _write_actuators(self, char_id: int, ids: Tensor) -> None:
        """Write the character's actuator parameters of envs ``ids``: its gains times its scales."""
        char = self._sim_char(char_id)
        acts = self._index(char_id, "actuators", char.actuators)
        scales = self._actuator_scales.get(char_id)
        rows = ids[:, None]
        self._torch_after_warp()
        if self.control_mode == "torque":
            assert scales is not None  # only set_actuator_scales writes motors
            self._gainprm[rows, acts, 0] = scales[2, ids] * self._nominal["gainprm"][0, acts, 0]
            return
        kp = torch.as_tensor(char.kp, dtype=torch.float32, device=self._device).expand(len(ids), -1)
        kd = torch.as_tensor(char.kd, dtype=torch.float32, device=self._device).expand(len(ids), -1)
        if scales is not None:
            kp, kd = scales[2, ids] * scales[0, ids] * kp, scales[2, ids] * scales[1, ids] * kd
        self._gainprm[rows, acts, 0] = kp
        self._biasprm[rows, acts, 1] = -kp
        self._biasprm[rows, acts, 2] = velocity_bias(kd, char.speed_damping)

    # ================================================================= per-env physics
    def set_actuator_scales(self, char_id: int, env_ids: Tensor, kp_scale: Tensor, kd_scale: Tensor,
                            strength_scale: Tensor) -> None:
        """As :meth:`Engine.set_actuator_scales`: the worlds' actuator_gainprm and biasprm, scaled."""
        num_dofs = len(self._sim_char(char_id).dof_names)
        if char_id not in self._actuator_scales:
            self._actuator_scales[char_id] = torch.ones(3, self.num_envs, num_dofs, device=self._device)
        scales = self._actuator_scales[char_id]
        for i, values in enumerate((kp_scale, kd_scale, strength_scale)):
            ids, vals = self._rows(env_ids, values, num_dofs, "set_actuator_scales")
            scales[i, ids] = vals
        self._write_actuators(char_id, ids)

    def _body_ids(self, char_id: int) -> Tensor:
        """Model body ids of the character's bodies, in :meth:`get_body_names` order (cached on the device)."""
        ids = self._char(char_id).body_ids
        assert ids is not None, "call initialize() first"
        return self._index(char_id, "bodies", ids)

    def get_body_mass(self, char_id: int) -> Tensor:
        """Body masses ``[num_envs, num_bodies]`` (kg): the worlds' ``body_mass``."""
        self._torch_after_warp()
        return self._body_mass[:, self._body_ids(char_id)]

    def get_body_com(self, char_id: int) -> Tensor:
        """Centres of mass ``[num_envs, num_bodies, 3]`` (m, body frame): the worlds' ``body_ipos``."""
        self._torch_after_warp()
        return self._body_ipos[:, self._body_ids(char_id)]

    def set_body_mass(self, char_id: int, env_ids: Tensor, mass: Tensor) -> None:
        """As :meth:`Engine.set_body_mass`: the worlds' ``body_mass`` and ``body_inertia``, then ``set_const``."""
        bodies = self._body_ids(char_id)
        ids, vals = self._rows(env_ids, mass, len(bodies), "set_body_mass")
        if not bool((vals > 0).all()):
            raise ValueError("set_body_mass: masses must be > 0 kg, got {}".format(float(vals.min())))
        nominal = self._nominal["body_mass"][0, bodies]
        ratio = torch.where(nominal > 0, vals / nominal.clamp_min(1e-30), torch.ones_like(vals))
        rows = ids[:, None]
        self._torch_after_warp()
        self._body_mass[rows, bodies] = vals
        self._body_inertia[rows, bodies] = self._nominal["body_inertia"][0, bodies] * ratio.unsqueeze(-1)
        self._set_const(ids)

    def set_body_com(self, char_id: int, env_ids: Tensor, com: Tensor) -> None:
        """As :meth:`Engine.set_body_com`: the worlds' ``body_ipos``, then ``set_const``."""
        bodies = self._body_ids(char_id)
        ids, vals = self._rows(env_ids, self._flat_body_com(char_id, env_ids, com), 3 * len(bodies), "set_body_com")
        self._torch_after_warp()
        self._body_ipos[ids[:, None], bodies] = vals.reshape(len(ids), len(bodies), 3)
        self._set_const(ids)

    def _set_const(self, ids: Tensor) -> None:
        """Recompute the mass-derived constants of every world (``mujoco_warp.set_const``); envs ``ids`` changed."""
        m, d = self._model_and_data()
        self._warp_after_torch()
        with self._wp.ScopedDevice(self._wp_device):
            self._mjw.set_const(m, d, groups=self._mjw.SetConstGroup.FIXED | self._mjw.SetConstGroup.INERT0)
        self._mark_dirty(ids)

    def set_friction_scale(self, env_ids: Tensor, scale: Tensor) -> None:
        """As :meth:`Engine.set_friction_scale`: the sliding column of the worlds' ``geom_friction``."""
        ids, vals = self._rows(env_ids, scale.reshape(-1, 1), 1, "set_friction_scale")
        self._torch_after_warp()
        self._geom_friction[ids, :, 0] = vals * self._nominal["geom_friction"][0, :, 0]

    # ================================================================= simulation
    def _index(self, char_id: int, what: str, index: IndexLike) -> Tensor:
        """``index`` as a LongTensor on the device (cached per character and ``what``)."""
        key = (char_id, what)
        tensor = self._index_cache.get(key)
        if tensor is None:
            tensor = torch.as_tensor(index_array(index), device=self._device)
            self._index_cache[key] = tensor
        return tensor

    def set_cmd(self, char_id: int, cmd: Tensor) -> None:
        """Write ``cmd`` ``[num_envs, num_dofs]`` into the character's actuators' ctrl (float32).

        Raises:
            ValueError: a reference character or a wrong shape.
        """
        char = self._sim_char(char_id)
        expected = (self.num_envs, len(char.dof_names))
        if tuple(cmd.shape) != expected:
            raise ValueError("set_cmd: expected cmd of shape {}, got {}".format(list(expected), list(cmd.shape)))
        self._torch_after_warp()
        self._ctrl[:, self._index(char_id, "actuators", char.actuators)] = cmd.detach().to(
            device=self._device, dtype=torch.float32)

    def step(self) -> None:
        """Replay the step sequence (module docstring), then check the buffers for overflows."""
        self._model_and_data()
        if self._any_dirty:
            self._prepare_dirty("prepare")
        self._launch("step")
        self._tensors_stale = True
        self._check_overflow()

    def _check_overflow(self) -> None:
        """Warn about buffer overflows of the last call and flag the envs they hit (never silent)."""
        self._torch_after_warp()
        mask = 0
        for bit, _ in self._overflow_kinds:
            mask |= bit
        hit = (self._overflow & mask) != 0
        if bool(hit.any()):
            bits = int(np.bitwise_or.reduce(self._overflow.cpu().numpy()))
            for bit, message in self._overflow_kinds:
                if bits & bit and bit not in self._warned:
                    warnings.warn(message, RuntimeWarning, stacklevel=3)
                    self._warned.add(bit)
            self._failed |= hit
        self._overflow.zero_()

    def _prepare_dirty(self, name: str) -> None:
        """Recompute the envs touched by setters with sequence ``name`` (``prepare`` or ``forward``)."""
        self._apply_pending_ang_vel()
        self._launch(name)
        self._torch_after_warp()
        if name == "forward":
            # untouched envs keep the acceleration-stage readings of their last step
            dirty = self._dirty
            self._acc_sensordata_t[dirty] = self._sensordata[dirty]
        self._dirty[:] = False
        self._any_dirty = False
        self._check_overflow()

    def pop_failed_envs(self) -> Tensor:
        """BoolTensor ``[num_envs]``: bad states or buffer overflows since the last call."""
        self._refresh()
        self._torch_after_warp()
        self._failed |= self._bad_flags_t != 0
        self._bad_flags_t.zero_()
        failed = self._failed.clone()
        self._failed[:] = False
        return failed

    def _refresh(self) -> None:
        """Gather the state of every env once per step (or after setters) into a new tensor.

        The tensor is float32 ``[num_envs, nq + nv + nsensordata]``: qpos, qvel, sensordata
        (acceleration-stage sensors from the copy set aside), body quaternions reordered to
        (x, y, z, w).
        """
        if not self._tensors_stale:
            return
        self._model_and_data()
        model = self._model
        assert model is not None  # compiled before the warp model was made
        if self._any_dirty:
            self._prepare_dirty("forward")
        self._torch_after_warp()
        nq, nv = model.nq, model.nv
        buf = torch.cat([self._qpos, self._qvel, self._sensordata], dim=1)
        if len(self._acc_columns) > 0:
            buf[:, nq + nv + self._acc_columns] = self._acc_sensordata_t[:, self._acc_columns]
        for char in self._chars:
            columns = char.readback["body_rot"][0]
            block = buf[:, columns].reshape(self.num_envs, -1, 4)
            buf[:, columns] = torch_util.quat_wxyz_to_xyzw(block).reshape(self.num_envs, -1)
        self._buf = buf
        self._readback = {}
        self._tensors_stale = False

    def _gather(self, char_id: int, name: str, columns: IndexLike) -> Tensor:
        """Columns of the gathered state (a view for a slice)."""
        assert self._buf is not None  # _read refreshes first
        if isinstance(columns, slice):
            return self._buf[:, columns]
        return self._buf[:, self._index(char_id, "readback/" + name, columns)]

    # ================================================================= setters
    def _rows(self, env_ids: Tensor, values: Tensor, width: int, what: str) -> Tuple[Tensor, Tensor]:
        ids = env_ids.detach().to(device=self._device, dtype=torch.long).reshape(-1)
        vals = values.detach().to(device=self._device, dtype=torch.float32)
        if tuple(vals.shape) != (len(ids), width):
            raise ValueError("{}: expected values of shape [{}, {}], got {}".format(
                what, len(ids), width, list(values.shape)))
        return ids, vals

    def _write(self, target: Tensor, ids: Tensor, columns: Tensor, vals: Tensor) -> None:
        """Write ``vals`` ``[k, c]`` into rows ``ids`` and ``columns`` of a state tensor."""
        self._model_and_data()
        self._torch_after_warp()
        target[ids[:, None], columns[None, :]] = vals
        self._mark_dirty(ids)

    def _mark_dirty(self, ids: Tensor) -> None:
        self._dirty[ids] = True
        self._any_dirty = True
        self._tensors_stale = True

    def _columns(self, char_id: int, what: str, start: int, count: int) -> Tensor:
        return self._index(char_id, what, slice(start, start + count))

    def set_root_pos(self, char_id: int, env_ids: Tensor, root_pos: Tensor) -> None:
        """Write the free joint's ``qpos[0:3]`` (m, world) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._rows(env_ids, root_pos, 3, "set_root_pos")
        self._write(self._qpos, ids, self._columns(char_id, "root_pos", char.root_qpos, 3), vals)

    def set_root_rot(self, char_id: int, env_ids: Tensor, root_rot: Tensor) -> None:
        """Write the free joint's quaternion ``qpos[3:7]`` (given (x, y, z, w), stored (w, x, y, z))."""
        char = self._char(char_id)
        ids, vals = self._rows(env_ids, torch_util.quat_xyzw_to_wxyz(root_rot), 4, "set_root_rot")
        self._write(self._qpos, ids, self._columns(char_id, "root_rot", char.root_qpos + 3, 4), vals)

    def set_root_vel(self, char_id: int, env_ids: Tensor, root_vel: Tensor) -> None:
        """Write the free joint's ``qvel[0:3]`` (m/s, world) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._rows(env_ids, root_vel, 3, "set_root_vel")
        self._write(self._qvel, ids, self._columns(char_id, "root_vel", char.root_qvel, 3), vals)

    def set_root_ang_vel(self, char_id: int, env_ids: Tensor, root_ang_vel: Tensor) -> None:
        """Set the root's world-frame angular velocity.

        MuJoCo stores it in the root's local frame; the conversion uses the root rotation
        at the next step or getter, so setter order does not matter.
        """
        self._char(char_id)
        ids, vals = self._rows(env_ids, root_ang_vel, 3, "set_root_ang_vel")
        if char_id not in self._pending_ang_vel:
            self._pending_ang_vel[char_id] = (
                torch.zeros(self.num_envs, 3, device=self._device),
                torch.zeros(self.num_envs, dtype=torch.bool, device=self._device))
        world_ang_vel, pending = self._pending_ang_vel[char_id]
        world_ang_vel[ids] = vals
        pending[ids] = True
        self._mark_dirty(ids)

    def _apply_pending_ang_vel(self) -> None:
        if not self._pending_ang_vel:
            return
        self._torch_after_warp()
        for char_id, (world_ang_vel, pending) in self._pending_ang_vel.items():
            char = self._chars[char_id]
            ids = torch.nonzero(pending).reshape(-1)
            root_rot_wxyz = self._qpos[ids, char.root_qpos + 3:char.root_qpos + 7]
            root_rot = torch_util.quat_normalize(torch_util.quat_wxyz_to_xyzw(root_rot_wxyz))
            local = torch_util.quat_rotate_inverse(root_rot, world_ang_vel[ids])
            self._qvel[ids, char.root_qvel + 3:char.root_qvel + 6] = local
        self._pending_ang_vel.clear()

    def set_dof_pos(self, char_id: int, env_ids: Tensor, dof_pos: Tensor) -> None:
        """Write the character's joints' qpos (rad; m for a slide joint) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._rows(env_ids, dof_pos, len(char.dof_names), "set_dof_pos")
        self._write(self._qpos, ids, self._index(char_id, "dof_qpos", char.dof_qpos), vals)

    def set_dof_vel(self, char_id: int, env_ids: Tensor, dof_vel: Tensor) -> None:
        """Write the character's joints' qvel (rad/s; m/s for a slide joint) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._rows(env_ids, dof_vel, len(char.dof_names), "set_dof_vel")
        self._write(self._qvel, ids, self._index(char_id, "dof_qvel", char.dof_qvel), vals)

    # ================================================================= display
    def _env0_data(self, data: mujoco.MjData) -> mujoco.MjData:
        """Env 0's qpos and qvel in ``data``, with every stage recomputed by MuJoCo on the host."""
        self._refresh()
        data.qpos[:] = self._qpos[0].detach().cpu().numpy()
        data.qvel[:] = self._qvel[0].detach().cpu().numpy()
        mujoco.mj_forward(self._model, data)
        return data

    def close(self) -> None:
        """Close the viewer and renderer and drop the graphs and the warp model and data."""
        self._close_display()
        self._graphs = {}
        self._m = None
        self._d = None

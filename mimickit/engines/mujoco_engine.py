"""MuJoCo engine (``engine_name: mujoco``): the default, on the CPU.

Needs mujoco >= 4.0 (:mod:`mujoco.batch`).

Scene, characters, readback sensors and the MuJoCo conventions converted at this boundary
(quaternion order, the free joint's local angular velocity): :mod:`mimickit.engines.mujoco_scene`,
shared with the ``mujoco_warp`` engine.

Stepping: :class:`mujoco.batch.Batch` keeps one ``MjData`` per env (``persistent``) and
steps the envs on ``num_threads`` native threads with the GIL released. ``step()`` runs
``substeps`` ``mj_step`` calls per env and then the position and velocity stages at the
new state (``mjSTAGE_VEL``, as ``mj_step1``; the next step continues from them with
``mj_step2``, so this costs nothing extra). Hence positions, rotations, velocities and
ground contacts describe the state after the step, while acceleration-stage quantities
(contact forces, actuator forces) are those of the last substep's solve. Setters write the
state rows; the touched envs get a full ``mj_forward`` before the next read.

Readback: a read after a step copies ``qpos``, ``qvel`` and ``sensordata`` of all envs into
one float32 array (numpy, quaternions reordered on the way); every getter is a view of it
as a tensor (columns from :func:`mimickit.engines.mujoco_scene.locate_character`).

Failed envs: MuJoCo resets an ``MjData`` whose qpos, qvel or qacc goes bad (NaN, Inf or
above 1e10) and counts a warning; the engine flags envs whose warning counters rose (also
contact or constraint buffer full), whose call raised an error
(:class:`mujoco.batch.SimulationError`, e.g. arena overflow; the env keeps its previous
state) and envs read back with a non-finite state after setters.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

import mujoco
import mujoco.batch
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.engine import register_engine
from mimickit.engines.mujoco_scene import IndexLike, MujocoSceneConfig, MujocoSceneEngine, velocity_bias
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class MujocoEngineConfig(MujocoSceneConfig):
    """``data/engines/mujoco_engine.yaml`` (and the shared keys of :class:`MujocoSceneConfig`).

    num_threads: threads stepping the envs; 0 uses every CPU this process may run on.
    """

    num_threads: int = 0

    def validate(self, where: str) -> None:
        """The shared checks, then ``num_threads >= 0``; MimicKitError naming ``where``."""
        super().validate(where)
        if self.num_threads < 0:
            raise MimicKitError("{}: key 'num_threads': expected 0 (all CPUs) or a positive "
                                "integer, got {}".format(where, self.num_threads))


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@register_engine("mujoco")
class MujocoEngine(MujocoSceneEngine):
    """MuJoCo on the CPU, one ``MjData`` per env, stepped on native threads.

    See the module docstring for the scene, stepping and readback details.
    """

    config_class = MujocoEngineConfig

    def __init__(self, config: MujocoEngineConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._batch: Optional[mujoco.batch.Batch] = None
        self._num_threads = config.num_threads if config.num_threads > 0 else _available_cpus()
        self._gainprm: Optional[np.ndarray] = None
        self._biasprm: Optional[np.ndarray] = None
        # char_id -> [3, num_envs, num_dofs] float64 (kp, kd, strength) of set_actuator_scales
        self._actuator_scales: Dict[int, np.ndarray] = {}

    @property
    def num_threads(self) -> int:
        """Threads stepping the envs."""
        return self._num_threads

    @property
    def batch(self) -> Optional[mujoco.batch.Batch]:
        """The batch of per-env MjData and model fields (after :meth:`initialize`), for tools and tests; do not edit."""
        return self._batch

    def _live_batch(self) -> mujoco.batch.Batch:
        """The batch of per-env MjData.

        Raises:
            RuntimeError: before :meth:`initialize` or after :meth:`close`.
        """
        if self._batch is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        return self._batch

    # ================================================================= scene setup
    def initialize(self) -> None:
        """Compile the scene and make one persistent MjData per env, at the model's default pose."""
        model = self._compile_scene()
        self._batch = mujoco.batch.Batch(model, self.num_envs, nthread=self._num_threads, persistent=True)
        self._state = self._batch.state  # [num_envs, nstate] float64, each env's integration state
        self._qpos = self._batch.bind("qpos")  # views of the state rows
        self._qvel = self._batch.bind("qvel")
        self._ctrl = self._batch.bind("ctrl")
        self._sensordata = self._batch.bind("sensordata")  # read-only, refreshed by every call
        self._warning = self._batch.warning  # [num_envs, mjNWARNING, (lastinfo, number)]
        itemsize = self._state.itemsize
        self._qpos_col = (self._qpos.ctypes.data - self._state.ctypes.data) // itemsize
        qvel_col = (self._qvel.ctypes.data - self._state.ctypes.data) // itemsize
        assert qvel_col == self._qpos_col + model.nq, "qvel must follow qpos in the state rows"

        self._failed = np.zeros(self.num_envs, dtype=bool)
        self._dirty = np.zeros(self.num_envs, dtype=bool)  # state written since the last forward
        self._any_dirty = False
        self._pending_ang_vel: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self._tensors_stale = True
        self._call_batch(self._batch.reset, None)
        if self._visualize:
            self._launch_viewer()

    # ================================================================= gains
    def set_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> None:
        """Set the gains of the character's position actuators in every env.

        In ``torque`` mode the gains are only stored (for an env computing its own PD).
        Call after :meth:`initialize`.
        """
        char, kp_np, kd_np = self._store_pd_gains(char_id, kp, kd)
        if self.control_mode == "pos":
            self._write_actuators(char_id, np.arange(self.num_envs))

    def _write_actuators(self, char_id: int, ids: np.ndarray) -> None:
        """Write the character's actuator parameters of envs ``ids``: its gains times its scales.

        Without scales (no :meth:`set_actuator_scales`) the gains are written as they are.
        """
        char = self._sim_char(char_id)
        if self._gainprm is None or self._biasprm is None:
            batch = self._live_batch()
            self._gainprm = batch.expand("actuator_gainprm")  # [num_envs, nu, 10]
            self._biasprm = batch.expand("actuator_biasprm")
        scales = self._actuator_scales.get(char_id)
        rows = ids[:, None]
        if self.control_mode == "torque":
            assert self._model is not None and scales is not None  # only set_actuator_scales writes motors
            nominal = self._model.actuator_gainprm[char.actuator_ids, 0]
            self._gainprm[rows, char.actuator_ids, 0] = scales[2, ids] * nominal
            return
        kp, kd = char.kp, char.kd
        if scales is not None:
            kp, kd = scales[2, ids] * scales[0, ids] * kp, scales[2, ids] * scales[1, ids] * kd
        self._gainprm[rows, char.actuator_ids, 0] = kp
        self._biasprm[rows, char.actuator_ids, 1] = -kp
        self._biasprm[rows, char.actuator_ids, 2] = velocity_bias(kd, char.speed_damping)

    # ================================================================= per-env physics
    def set_actuator_scales(self, char_id: int, env_ids: Tensor, kp_scale: Tensor, kd_scale: Tensor,
                            strength_scale: Tensor) -> None:
        """As :meth:`Engine.set_actuator_scales`: the envs' actuator_gainprm and biasprm, scaled."""
        num_dofs = len(self._sim_char(char_id).dof_names)
        scales = self._actuator_scales.setdefault(char_id, np.ones((3, self.num_envs, num_dofs)))
        for i, values in enumerate((kp_scale, kd_scale, strength_scale)):
            ids, vals = self._env_ids(env_ids, values, num_dofs, "set_actuator_scales")
            scales[i, ids] = vals
        self._write_actuators(char_id, ids)

    def _body_ids(self, char_id: int) -> np.ndarray:
        """Model body ids of the character's bodies, in :meth:`get_body_names` order."""
        ids = self._char(char_id).body_ids
        assert ids is not None, "call initialize() first"
        return ids

    def _model_rows(self, name: str) -> np.ndarray:
        """``[num_envs, ...]`` per-env values of model field ``name`` (the model's, when not expanded)."""
        rows = self._live_batch().expanded(name)
        if rows is None:
            value = getattr(self._model, name)
            rows = np.broadcast_to(value, (self.num_envs,) + value.shape)
        return rows

    def get_body_mass(self, char_id: int) -> Tensor:
        """Body masses ``[num_envs, num_bodies]`` (kg): the envs' ``body_mass``."""
        return self._tensor(self._model_rows("body_mass")[:, self._body_ids(char_id)])

    def get_body_com(self, char_id: int) -> Tensor:
        """Centres of mass ``[num_envs, num_bodies, 3]`` (m, body frame): the envs' ``body_ipos``."""
        return self._tensor(self._model_rows("body_ipos")[:, self._body_ids(char_id)])

    def set_body_mass(self, char_id: int, env_ids: Tensor, mass: Tensor) -> None:
        """As :meth:`Engine.set_body_mass`: ``body_mass`` and ``body_inertia`` of the envs, then ``set_const``."""
        bodies = self._body_ids(char_id)
        ids, vals = self._env_ids(env_ids, mass, len(bodies), "set_body_mass")
        if not (vals > 0).all():
            raise ValueError("set_body_mass: masses must be > 0 kg, got {}".format(vals.min()))
        model = self._model
        assert model is not None
        batch = self._live_batch()
        batch.expand("body_mass")[ids[:, None], bodies] = vals
        nominal = model.body_mass[bodies]
        ratio = np.divide(vals, nominal, out=np.ones_like(vals), where=nominal > 0)
        batch.expand("body_inertia")[ids[:, None], bodies] = model.body_inertia[bodies] * ratio[..., None]
        self._set_const(ids)

    def set_body_com(self, char_id: int, env_ids: Tensor, com: Tensor) -> None:
        """As :meth:`Engine.set_body_com`: ``body_ipos`` of the envs, then ``set_const``."""
        bodies = self._body_ids(char_id)
        ids, vals = self._env_ids(env_ids, self._flat_body_com(char_id, env_ids, com), 3 * len(bodies),
                                  "set_body_com")
        self._live_batch().expand("body_ipos")[ids[:, None], bodies] = vals.reshape(len(ids), len(bodies), 3)
        self._set_const(ids)

    def _set_const(self, ids: np.ndarray) -> None:
        """Recompute the mass-derived model constants of envs ``ids`` (``mj_setConst``) and their state."""
        self._call_batch(self._live_batch().set_const, ids.astype(np.int32))
        self._dirty[ids] = True
        self._any_dirty = True
        self._tensors_stale = True

    def set_friction_scale(self, env_ids: Tensor, scale: Tensor) -> None:
        """As :meth:`Engine.set_friction_scale`: the sliding column of the envs' ``geom_friction``."""
        ids, vals = self._env_ids(env_ids, scale.reshape(-1, 1), 1, "set_friction_scale")
        model = self._model
        assert model is not None
        self._live_batch().expand("geom_friction")[ids, :, 0] = vals * model.geom_friction[:, 0]

    # ================================================================= simulation
    def _call_batch(self, fn, ids: Optional[np.ndarray], **kwargs) -> None:
        """Run a batch call; flag envs where MuJoCo raised an error instead of dying."""
        try:
            fn(ids, **kwargs)
        except mujoco.batch.SimulationError as e:
            self._failed[e.ids] = True
        self._tensors_stale = True

    def set_cmd(self, char_id: int, cmd: Tensor) -> None:
        """Write ``cmd`` ``[num_envs, num_dofs]`` into the character's actuators' ctrl.

        Raises:
            ValueError: a reference character or a wrong shape.
        """
        char = self._sim_char(char_id)
        expected = (self.num_envs, len(char.dof_names))
        if tuple(cmd.shape) != expected:
            raise ValueError("set_cmd: expected cmd of shape {}, got {}".format(list(expected), list(cmd.shape)))
        self._ctrl[:, char.actuators] = cmd.detach().cpu().numpy()

    def step(self) -> None:
        """``substeps`` ``mj_step`` per env, then the position and velocity stages (module docstring)."""
        if self._any_dirty:
            self._apply_pending_ang_vel()
            self._dirty[:] = False  # the step recomputes every stage of an env whose state changed
            self._any_dirty = False
        self._call_batch(self._live_batch().step, None, nstep=self.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)
        self._collect_warnings()

    def _collect_warnings(self) -> None:
        warned = self._warning[:, :, 1].any(axis=1)
        if warned.any():
            self._failed |= warned
            self._warning[warned] = 0

    def pop_failed_envs(self) -> Tensor:
        """BoolTensor ``[num_envs]``: warnings, batch errors or non-finite states since the last call."""
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
        self._call_batch(self._live_batch().forward, ids, stage=mujoco.mjtStage.mjSTAGE_ACC)
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
        self._live_batch()
        model = self._model
        assert model is not None  # compiled before the batch was made
        touched = self._forward_dirty()
        nq_nv = model.nq + model.nv
        buf = np.empty((self.num_envs, nq_nv + model.nsensordata), dtype=np.float32)
        np.copyto(buf[:, :nq_nv], self._state[:, self._qpos_col:self._qpos_col + nq_nv], casting="same_kind")
        np.copyto(buf[:, nq_nv:], self._sensordata, casting="same_kind")
        for char in self._chars:
            columns = char.readback["body_rot"][0]
            assert isinstance(columns, slice)  # sensor blocks are contiguous (locate_character)
            wxyz = self._sensordata[:, columns.start - nq_nv:columns.stop - nq_nv].reshape(self.num_envs, -1, 4)
            xyzw = buf[:, columns].reshape(self.num_envs, -1, 4)
            xyzw[..., :3] = wxyz[..., 1:]
            xyzw[..., 3] = wxyz[..., 0]
        if touched is not None:
            # a step leaves a finite state (MuJoCo resets an env's MjData when its qpos, qvel or
            # qacc goes bad, with a warning); a setter may not
            finite = np.isfinite(buf[touched, :nq_nv]).all(axis=1)
            self._failed[touched[~finite]] = True
        self._buf = buf
        self._readback = {}
        self._tensors_stale = False

    def _gather(self, char_id: int, name: str, columns: IndexLike) -> Tensor:
        """Columns of the readback array as a tensor sharing it (on the CPU)."""
        return torch.from_numpy(self._buf[:, columns]).to(self._device)

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
        """Write the free joint's ``qpos[0:3]`` (m, world) of envs ``env_ids``."""
        adr = self._char(char_id).root_qpos
        ids, vals = self._env_ids(env_ids, root_pos, 3, "set_root_pos")
        self._set_qpos(ids, slice(adr, adr + 3), vals)

    def set_root_rot(self, char_id: int, env_ids: Tensor, root_rot: Tensor) -> None:
        """Write the free joint's quaternion ``qpos[3:7]`` (given (x, y, z, w), stored (w, x, y, z))."""
        adr = self._char(char_id).root_qpos
        ids, vals = self._env_ids(env_ids, torch_util.quat_xyzw_to_wxyz(root_rot), 4, "set_root_rot")
        self._set_qpos(ids, slice(adr + 3, adr + 7), vals)

    def set_root_vel(self, char_id: int, env_ids: Tensor, root_vel: Tensor) -> None:
        """Write the free joint's ``qvel[0:3]`` (m/s, world) of envs ``env_ids``."""
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
        """Rotate the pending world-frame root angular velocities into the root frame, into qvel."""
        for char_id, (world_ang_vel, pending) in self._pending_ang_vel.items():
            char = self._chars[char_id]
            ids = np.flatnonzero(pending)
            root_rot_wxyz = torch.from_numpy(self._qpos[ids, char.root_qpos + 3:char.root_qpos + 7])
            root_rot = torch_util.quat_normalize(torch_util.quat_wxyz_to_xyzw(root_rot_wxyz))
            local = torch_util.quat_rotate_inverse(root_rot, torch.from_numpy(world_ang_vel[ids]))
            self._qvel[ids, char.root_qvel + 3:char.root_qvel + 6] = local.numpy()
        self._pending_ang_vel.clear()

    def set_dof_pos(self, char_id: int, env_ids: Tensor, dof_pos: Tensor) -> None:
        """Write the character's joints' qpos (rad; m for a slide joint) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._env_ids(env_ids, dof_pos, len(char.dof_names), "set_dof_pos")
        self._set_qpos(ids, char.dof_qpos, vals)

    def set_dof_vel(self, char_id: int, env_ids: Tensor, dof_vel: Tensor) -> None:
        """Write the character's joints' qvel (rad/s; m/s for a slide joint) of envs ``env_ids``."""
        char = self._char(char_id)
        ids, vals = self._env_ids(env_ids, dof_vel, len(char.dof_names), "set_dof_vel")
        self._set_qvel(ids, char.dof_qvel, vals)

    # ================================================================= display
    def _env0_data(self, data: mujoco.MjData) -> mujoco.MjData:
        """Copy env 0's current MjData (state and derived fields) into ``data``."""
        self._forward_dirty(env_id=0)
        self._live_batch().get_data(0, data)
        return data

    def close(self) -> None:
        """Close the viewer and renderer and drop the batch (its threads and MjData)."""
        self._close_display()
        self._batch = None

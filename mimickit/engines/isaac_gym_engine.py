"""Isaac Gym engine (``engine_name: isaac_gym``): PhysX on the GPU through Isaac Gym Preview 4.

**Never run here.** Isaac Gym is not on PyPI and needs an NVIDIA GPU; this module is only
type-checked against the ``isaacgym-stubs`` package (``tests/test_type_check.py``,
mypy), and its pure conversion functions are tested against scipy and MuJoCo. Everything said
below about Isaac Gym's behaviour comes from its documentation, PhysX's and IsaacGymEnvs'
source, not from a run.

Install: download Isaac Gym Preview 4 from https://developer.nvidia.com/isaac-gym and
``pip install -e isaacgym/python`` in a Python 3.6-3.8 environment. ``isaacgym`` is imported
when the engine is built, never at module import, so the engine registry works without it.
Isaac Gym refuses to load once torch is imported (its ``gymdeps`` raises "PyTorch was
imported before isaacgym modules"), and ``run.py`` imports torch before building the engine,
so start a run with Isaac Gym imported first::

    python -c "import isaacgym, sys, mimickit.run as r; sys.exit(r.main())" --arg_file ...

The engine raises :class:`MimicKitError` with that command when the order is wrong.
On Python 3.8 (Isaac Gym's bindings exist for 3.6-3.8 only) this package installs mujoco
3.2.3, the last release for 3.8, which is used here only to read character files
(:mod:`mimickit.engines.character`); the ``mujoco`` engine needs mujoco 4.0
(``mujoco.batch``) and is then unavailable, which fails only a run that asks for it (the
registry imports the named engine's module alone). That combination has not been tried.

Scene: one PhysX sim (``SIM_PHYSX``, TGS solver, Z up, gravity -9.81 m/s^2, ``dt = 1 /
sim_freq``), the GPU pipeline when the engine's device is CUDA (tensors then live on that
GPU), a ground plane, and ``num_envs`` envs laid out on a grid ``env_spacing`` apart. Every
position crossing the interface is relative to its env's origin (``gym.get_env_origin``),
so each env has the world frame of :mod:`mimickit.engines.engine`. Characters are loaded
with ``gym.load_asset`` from their MJCF (URDF is refused); names, limits, gains and torque
limits are read from the same file by MuJoCo, with the checks every engine shares
(:func:`mimickit.engines.character.load_character`). Drives: ``pos`` mode sets every dof
to ``DOF_MODE_POS`` with stiffness ``kp`` and damping ``kd`` of the file's position
actuators, effort limit from their forcerange; ``torque`` mode uses ``DOF_MODE_EFFORT`` and
clips the torques to the forcerange. The file's passive joint damping is not carried
over (in ``pos`` mode the drive's damping is the actuator's ``kv``). Actors of env ``i`` share
collision group ``i``; a reference character gets a group of its own (it never touches
the simulated one; Isaac Gym's ground plane may still push it), no gravity, no drives.

Conventions converted here and nowhere else:

- Quaternions: Isaac Gym's are already (x, y, z, w), as ours; nothing is reordered.
- Angular velocities of roots and bodies are world frame in Isaac Gym's state tensors, as ours.
- Linear velocities: PhysX reports the velocity of each body's centre of mass (the
  convention of ``PxRigidBody``; Isaac Lab documents the same for its PhysX views,
  isaac-sim/IsaacLab#942). Ours is the velocity of the body frame origin:
  ``v_origin = v_com - omega x (R com)``, with ``com`` from ``get_actor_rigid_body_properties``.
- Dof and body order: Isaac Gym's order is looked up by name (``get_asset_dof_names``,
  ``get_asset_rigid_body_names``) and permuted to the file's order.
- **Hinge triplets.** Isaac Gym's MJCF importer turns a body's three hinges into one
  spherical (D6) articulation joint with three dofs. PhysX defines a spherical joint's
  coordinates as the exponential map of the joint rotation in the joint frame: the joint
  pose is ``PxExp(PxVec3(twistPos, swing1Pos, swing2Pos))`` (PhysX 5,
  ``PxArticulationJointReducedCoordinate::setJointPosition``; its Featherstone solver
  recomputes them after each step as ``axis * angle`` of the relative rotation projected on
  the joint axes, ``computeSphericalJointPositions``), and its joint velocities are the
  relative angular velocity on the same axes, which are fixed in the child link.
  IsaacGymEnvs' HumanoidAMP relies on the same reading: its motion library writes a 3-dof
  joint's ``quat_to_exp_map`` of the local rotation as dof positions and PD targets, and
  the child-frame rotation rate ``q0^-1 q1`` as dof velocities (``_local_rotation_to_dof``,
  ``_local_rotation_to_dof_vel``). **Decision:** a triplet's Isaac Gym coordinates are
  ``v_k = s_k . e`` where ``e`` is the exp map (rad) of the joint rotation (as in motion
  files, :func:`mimickit.util.torch_util.quat_to_exp_map`) and ``s_k`` the k-th hinge's axis;
  its velocities are ``s_k . (q^-1 omega)``, omega the joint's angular velocity in the
  parent frame; generalised forces map by the transpose of the velocity map. Our
  ``dof_pos`` stays the MuJoCo engine's intrinsic Euler angles: :class:`PhysxDofMap`
  converts at the boundary, for getters, setters, PD targets (so PhysX's PD acts on
  exp-map coordinates: same target pose, gains in other coordinates away from it; joint
  limits on the three axes are the importer's), torques and dof forces. At
  :meth:`IsaacGymEngine.initialize` each dof's axis as Isaac Gym reports it
  (``get_actor_dof_frames``) is compared with the file's: a reversed axis (e.g. to make the
  left-handed x, z, y triplets of ``humanoid.xml`` a proper frame) flips that coordinate,
  any other difference raises :class:`MimicKitError`. PhysX 4's articulations used twist
  and swing angles instead, which agree with the exp map only to first order; which PhysX
  Isaac Gym Preview 4 builds on is not documented, IsaacGymEnvs' use of the exp map with it
  is the evidence for the decision.

Getters after setters: setters write into a copy of the state in our conventions; the
touched envs' bodies are then recomputed by forward kinematics
(:func:`kinematic_body_state`), their contact forces and dof forces read zero until the
next step, and :meth:`IsaacGymEngine.step` writes the copy into the sim with the indexed
tensor setters before simulating (Isaac Gym itself updates body states only in
``simulate``). Ground contacts are bodies with a non-zero net contact force (the tensor API
has no per-pair contacts, so touching another body counts too). Failed envs: a non-finite
root or dof state (Isaac Gym reports no solver warnings). Rendering shows the state of the
last step; ``render_frame`` needs ``graphics_device >= 0``.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import os
import typing
import warnings
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.character import CharacterFile, CharacterTable, load_character
from mimickit.engines.engine import Engine, EngineConfig, register_engine
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

if TYPE_CHECKING:  # resolved by mypy against isaacgym-stubs; never imported at run time here
    from typing import Protocol

    from isaacgym import gymapi

    class _GymTorch(Protocol):
        """The two functions of ``isaacgym.gymtorch`` used here.

        isaacgym-stubs has no gymtorch stub; the signatures are from Isaac Gym Preview 4's
        ``gymtorch.py``.
        """

        def wrap_tensor(self, gym_tensor: gymapi.Tensor, offsets: Optional[Tuple[int, ...]] = None,
                        counts: Optional[Tuple[int, ...]] = None) -> Tensor: ...

        def unwrap_tensor(self, torch_tensor: Tensor) -> gymapi.Tensor: ...

INSTALL_HINT = ("Isaac Gym is not installed: download Isaac Gym Preview 4 from "
                "https://developer.nvidia.com/isaac-gym and `pip install -e isaacgym/python` "
                "in a Python 3.6-3.8 environment")
IMPORT_ORDER_HINT = ("Isaac Gym must be imported before torch: run `python -c \"import isaacgym, sys, "
                     "mimickit.run as r; sys.exit(r.main())\" --arg_file ...` (or import isaacgym first "
                     "in your script)")
_GRAVITY = 9.81
_CONTACT_EPS = 1e-4  # N: a body with a larger net contact force touches something
_MAX_EFFORT = 1e6  # N·m: PhysX's effort limit for dofs without a forcerange
_AXIS_TOL = 0.99  # |cos| above which Isaac Gym's dof axis is taken as the file's, or its reverse


def import_isaac_gym() -> "_GymTorch":
    """Import Isaac Gym (``gymapi`` and ``gymtorch``) and return ``isaacgym.gymtorch``.

    ``gymapi`` is then imported where it is used, ``from isaacgym import gymapi`` (cached).

    Raises:
        MimicKitError: Isaac Gym is not installed (:data:`INSTALL_HINT`), or torch was
            imported first (:data:`IMPORT_ORDER_HINT`), or it fails to load.
    """
    if importlib.util.find_spec("isaacgym") is None:
        raise MimicKitError(INSTALL_HINT)
    try:
        importlib.import_module("isaacgym.gymapi")  # Isaac Gym checks the import order here
        gymtorch = importlib.import_module("isaacgym.gymtorch")
    except ImportError as e:
        if "before isaacgym" in str(e):
            raise MimicKitError(IMPORT_ORDER_HINT) from e
        raise MimicKitError("cannot load Isaac Gym ({}); {}".format(
            str(e).replace("\n", " "), INSTALL_HINT)) from e
    return typing.cast("_GymTorch", gymtorch)


@dataclasses.dataclass
class IsaacGymEngineConfig(EngineConfig):
    """``data/engines/isaac_gym_engine.yaml``.

    env_spacing: half the side (m) of each env's cell on Isaac Gym's grid.
    graphics_device: GPU index for the viewer and camera sensors; -1: no rendering.
    num_position_iterations, num_velocity_iterations: PhysX TGS solver iterations.
    num_threads: PhysX CPU worker threads (CPU pipeline, ``--device cpu``).
    """

    env_spacing: float = 5.0
    graphics_device: int = 0
    num_position_iterations: int = 4
    num_velocity_iterations: int = 0
    num_threads: int = 4

    def validate(self, where: str) -> None:
        """The common checks, then each key's range; MimicKitError naming ``where`` and the key."""
        super().validate(where)
        if not 0 < self.env_spacing < float("inf"):
            raise MimicKitError("{}: key 'env_spacing': expected a finite positive distance (m), got {}".format(
                where, self.env_spacing))
        if self.graphics_device < -1:
            raise MimicKitError("{}: key 'graphics_device': expected a GPU index or -1 (no rendering), "
                                "got {}".format(where, self.graphics_device))
        if not 1 <= self.num_position_iterations <= 255:
            raise MimicKitError("{}: key 'num_position_iterations': expected 1 to 255, got {}".format(
                where, self.num_position_iterations))
        if not 0 <= self.num_velocity_iterations <= 255:
            raise MimicKitError("{}: key 'num_velocity_iterations': expected 0 to 255, got {}".format(
                where, self.num_velocity_iterations))
        if self.num_threads < 0:
            raise MimicKitError("{}: key 'num_threads': expected 0 or more, got {}".format(
                where, self.num_threads))


# ===================================================================== pure conversions
def rotation_to_physx_triplet(joint_rot: Tensor, axes: Tensor) -> Tensor:
    """PhysX spherical-joint coordinates ``[..., 3]`` (rad) of joint rotations ``[..., 4]``.

    ``v_k = s_k . e``: the exp map ``e`` of the rotation projected on the joint's axes ``s_k``,
    the rows of ``axes`` ``[..., 3, 3]`` (orthonormal, in the frame the rotation is expressed
    in). See the module docstring for the source of this convention.
    """
    e = torch_util.quat_to_exp_map(joint_rot)
    return (axes.to(e) @ e.unsqueeze(-1)).squeeze(-1)


def physx_triplet_to_rotation(coords: Tensor, axes: Tensor) -> Tensor:
    """Joint rotations ``[..., 4]`` of PhysX spherical-joint coordinates ``[..., 3]`` (rad).

    Inverse of :func:`rotation_to_physx_triplet`: ``e = sum_k v_k s_k``, rotation ``exp(e)``.
    """
    e = (axes.to(coords).transpose(-1, -2) @ coords.unsqueeze(-1)).squeeze(-1)
    return torch_util.exp_map_to_quat(e)


def dof_axes(kin: KinCharModel) -> Tensor:
    """Each dof's hinge axis ``[num_dofs, 3]`` (unit, in its body's frame), float64.

    Read through the public conversion: a quarter turn on dof ``d`` alone makes its joint's
    rotation ``(sin(pi/4) a_d, cos(pi/4))``.
    """
    n = kin.num_dofs
    joint_of_dof = torch.repeat_interleave(torch.arange(kin.num_joints), kin.joint_num_dofs)
    turns = torch.eye(n, dtype=torch.float64) * (0.5 * math.pi)
    joint_rot = kin.dof_pos_to_joint_rot(turns)  # [n, num_joints, 4]
    q = joint_rot[torch.arange(n), joint_of_dof]
    return q[:, :3] / math.sin(0.25 * math.pi)


class PhysxDofMap:
    """Maps a character's dof coordinates between ours and Isaac Gym's.

    Ours are hinge angles and hinge-triplet Euler angles, as in the MuJoCo engine; Isaac
    Gym's are PhysX exp-map coordinates for triplets.

    Args:
        kin: the character.
        sim_axes: ``[num_dofs, 3]`` each dof's axis as the simulator has it, in the body
            frame; default the file's axes (:func:`dof_axes`). A reversed axis flips the sign
            of that coordinate.

    Shapes: ``[..., num_dofs]`` in the file's dof order; rad, rad/s, N·m.
    """

    def __init__(self, kin: KinCharModel, sim_axes: Optional[Tensor] = None):
        self.kin = kin
        device = torch.device(kin.device)
        file_axes = dof_axes(kin)
        sim = file_axes if sim_axes is None else sim_axes.detach().to("cpu", torch.float64)
        cos = (sim * file_axes).sum(-1)
        offsets = kin.joint_dof_offsets
        triplets = [j for j in range(kin.num_joints) if int(kin.joint_num_dofs[j]) == 3]
        self.triplet_joints = torch.tensor(triplets, dtype=torch.long)
        self.triplet_dofs = (offsets[self.triplet_joints].unsqueeze(-1) + torch.arange(3)).reshape(-1, 3)
        mask = torch.zeros(kin.num_dofs, dtype=torch.bool)
        mask[self.triplet_dofs.reshape(-1)] = True
        if (cos.abs()[~mask] < _AXIS_TOL).any():
            raise ValueError("PhysxDofMap: a single hinge's simulator axis is not along the file's axis")
        self.sim_axes = sim.to(device)
        self.triplet_axes = sim[self.triplet_dofs].to(device)  # [num_triplets, 3, 3], rows = axes
        self.triplet_mask = mask.to(device)
        self.hinge_sign = cos.sign().to(device)  # a single hinge: the simulator's angle is ours times it

    @property
    def has_triplets(self) -> bool:
        """Whether the character has a hinge triplet (else only signs are converted)."""
        return len(self.triplet_joints) > 0

    def _joint_rot(self, dof_pos: Tensor) -> Tensor:
        return self.kin.dof_pos_to_joint_rot(dof_pos)[..., self.triplet_joints, :]

    def pos_to_sim(self, dof_pos: Tensor) -> Tensor:
        """Our dof positions to Isaac Gym's (rad)."""
        out = dof_pos * self.hinge_sign.to(dof_pos)
        if self.has_triplets:
            out[..., self.triplet_dofs] = rotation_to_physx_triplet(self._joint_rot(dof_pos), self.triplet_axes)
        return out

    def pos_from_sim(self, sim_pos: Tensor) -> Tensor:
        """Isaac Gym's dof positions to ours (rad); triplets through their rotation."""
        out = sim_pos * self.hinge_sign.to(sim_pos)
        if self.has_triplets:
            joint_rot = torch_util.quat_identity(sim_pos.shape[:-1] + (self.kin.num_joints,),
                                                 dtype=sim_pos.dtype, device=sim_pos.device)
            joint_rot[..., self.triplet_joints, :] = physx_triplet_to_rotation(
                sim_pos[..., self.triplet_dofs], self.triplet_axes)
            euler = self.kin.joint_rot_to_dof_pos(joint_rot)
            out[..., self.triplet_mask] = euler[..., self.triplet_mask]
        return out

    def vel_to_sim(self, dof_pos: Tensor, dof_vel: Tensor) -> Tensor:
        """Our dof velocities at ``dof_pos`` to Isaac Gym's (rad/s).

        A triplet's Euler rates become its angular velocity on the joint axes fixed in the
        child body.
        """
        out = dof_vel * self.hinge_sign.to(dof_vel)
        if self.has_triplets:
            omega_parent = self.kin.dof_vel_to_joint_dof_vel(dof_pos, dof_vel)[..., self.triplet_dofs]
            omega_child = torch_util.quat_rotate_inverse(self._joint_rot(dof_pos), omega_parent)
            out[..., self.triplet_dofs] = (self.triplet_axes.to(dof_vel) @ omega_child.unsqueeze(-1)).squeeze(-1)
        return out

    def vel_from_sim(self, dof_pos: Tensor, sim_vel: Tensor) -> Tensor:
        """Isaac Gym's dof velocities to ours (rad/s) at our ``dof_pos``."""
        out = sim_vel * self.hinge_sign.to(sim_vel)
        if self.has_triplets:
            axes = self.triplet_axes.to(sim_vel)
            omega_child = (axes.transpose(-1, -2) @ sim_vel[..., self.triplet_dofs].unsqueeze(-1)).squeeze(-1)
            joint_dof_vel = torch.zeros_like(sim_vel)
            joint_dof_vel[..., self.triplet_dofs] = torch_util.quat_rotate(self._joint_rot(dof_pos), omega_child)
            rates = self.kin.joint_dof_vel_to_dof_vel(dof_pos, joint_dof_vel)
            out[..., self.triplet_mask] = rates[..., self.triplet_mask]
        return out

    def triplet_vel_matrix(self, dof_pos: Tensor) -> Tensor:
        """``[..., num_triplets, 3, 3]`` M with Isaac Gym's triplet velocities ``= M`` our Euler rates."""
        cols = []
        for k in range(3):
            unit = torch.zeros_like(dof_pos)
            unit[..., self.triplet_dofs[:, k]] = 1.0
            cols.append(self.vel_to_sim(dof_pos, unit)[..., self.triplet_dofs])
        return torch.stack(cols, dim=-1)

    def force_from_sim(self, dof_pos: Tensor, sim_force: Tensor) -> Tensor:
        """Isaac Gym's generalised forces (N·m) to ours: ``M^T f`` for triplets (same power)."""
        out = sim_force * self.hinge_sign.to(sim_force)
        if self.has_triplets:
            m = self.triplet_vel_matrix(dof_pos)
            f = sim_force[..., self.triplet_dofs].unsqueeze(-1)
            out[..., self.triplet_dofs] = (m.transpose(-1, -2) @ f).squeeze(-1)
        return out

    def force_to_sim(self, dof_pos: Tensor, force: Tensor) -> Tensor:
        """Our generalised forces (N·m) to Isaac Gym's: ``M^-T f`` (least squares at a gimbal lock)."""
        out = force * self.hinge_sign.to(force)
        if self.has_triplets:
            m_t_pinv = torch.linalg.pinv(self.triplet_vel_matrix(dof_pos).transpose(-1, -2))
            out[..., self.triplet_dofs] = (m_t_pinv @ force[..., self.triplet_dofs].unsqueeze(-1)).squeeze(-1)
        return out


def kinematic_body_state(kin: KinCharModel, root_pos: Tensor, root_rot: Tensor, root_vel: Tensor,
                         root_ang_vel: Tensor, dof_pos: Tensor, dof_vel: Tensor,
                         step: float = 1e-4) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Body states of a character in a given state, by forward kinematics.

    Args: root_pos ``[..., 3]`` m, root_rot ``[..., 4]``, root_vel ``[..., 3]`` m/s (root
    origin), root_ang_vel ``[..., 3]`` rad/s, all world frame; dof_pos, dof_vel
    ``[..., num_dofs]`` (rad, rad/s; hinge and Euler angles).

    Returns world body positions ``[..., num_bodies, 3]`` (m), rotations ``[..., num_bodies, 4]``,
    velocities of the body frame origins ``[..., num_bodies, 3]`` (m/s) and angular
    velocities ``[..., num_bodies, 3]`` (rad/s). Velocities are central differences of the
    kinematics along the state's velocities, in float64 (error ~ ``step``^2 relative).
    """
    f64 = torch.float64
    rp, rr, rv, rw = (x.to(f64) for x in (root_pos, root_rot, root_vel, root_ang_vel))
    dp, dv = dof_pos.to(f64), dof_vel.to(f64)

    def fk(t: float) -> Tuple[Tensor, Tensor]:
        rot = torch_util.quat_mul(torch_util.exp_map_to_quat(rw * t), rr)
        return kin.forward_kinematics(rp + rv * t, rot, kin.dof_pos_to_joint_rot(dp + dv * t))

    body_pos, body_rot = fk(0.0)
    pos_p, rot_p = fk(step)
    pos_m, rot_m = fk(-step)
    body_vel = (pos_p - pos_m) / (2.0 * step)
    turn = torch_util.quat_mul(rot_p, torch_util.quat_conjugate(rot_m))  # world-frame rotation over 2 * step
    body_ang_vel = torch_util.quat_to_exp_map(turn) / (2.0 * step)
    dtype = root_pos.dtype
    return body_pos.to(dtype), body_rot.to(dtype), body_vel.to(dtype), body_ang_vel.to(dtype)


# ===================================================================== the engine
@dataclasses.dataclass
class _Character(CharacterFile):
    """One character: the file's description (MuJoCo reading) and its place in the sim."""

    kin: KinCharModel
    dof_map: Optional[PhysxDofMap] = None
    # filled by initialize()
    asset: Optional["gymapi.Asset"] = None
    handles: List[int] = dataclasses.field(default_factory=list)  # actor handle in each env
    actor_ids: Optional[Tensor] = None  # [num_envs] int32, actor index in the sim
    actor_slot: int = 0  # actor index within an env
    dof_index: Optional[Tensor] = None  # [num_dofs] long: Isaac Gym's index of each dof in the actor
    body_index: Optional[Tensor] = None  # [num_bodies] long: Isaac Gym's index of each body in the actor
    dof_cols: Optional[Tensor] = None  # [num_dofs] long: column of each dof in the env's dof block
    body_cols: Optional[Tensor] = None  # [num_bodies] long: row of each body in the env's body block
    com: Optional[Tensor] = None  # [num_bodies, 3] m, centre of mass in the body frame


@dataclasses.dataclass
class _State:
    """A character's state in our conventions, ``[num_envs, ...]`` on the engine's device."""

    root_pos: Tensor
    root_rot: Tensor
    root_vel: Tensor
    root_ang_vel: Tensor
    dof_pos: Tensor
    dof_vel: Tensor
    dof_forces: Tensor
    body_pos: Tensor
    body_rot: Tensor
    body_vel: Tensor
    body_ang_vel: Tensor
    contact_forces: Tensor
    dirty: Tensor  # [num_envs] bool: written by setters since the last step
    bodies_stale: bool = False  # body states of dirty envs need forward kinematics


@register_engine("isaac_gym")
class IsaacGymEngine(CharacterTable, Engine):
    """Isaac Gym Preview 4 (PhysX, GPU pipeline on CUDA devices), through its tensor API.

    See the module docstring for conventions, the hinge-triplet conversion and what was
    verified (type checks only: it was never run).

    Raises:
        MimicKitError: at construction, when Isaac Gym is not installed or was imported
            after torch.
    """

    config_class = IsaacGymEngineConfig

    def __init__(self, config: IsaacGymEngineConfig, num_envs: int, device: str, visualize: bool):
        super().__init__(config, num_envs, device, visualize)
        self._gymtorch = import_isaac_gym()
        from isaacgym import gymapi
        self._cfg = config
        self._gym: gymapi.Gym = gymapi.acquire_gym()
        self._sim: Optional[gymapi.Sim] = None
        self._envs: List[gymapi.Env] = []
        self._chars: List[_Character] = []
        self._states: List[_State] = []
        self._viewer: Optional[gymapi.Viewer] = None
        self._camera: Optional[int] = None
        self._camera_size: Tuple[int, int] = (0, 0)
        self._gpu_pipeline = self.device.type == "cuda"

    # ================================================================= scene setup
    def add_character(self, asset_file: str, name: str, is_reference: bool = False) -> int:
        """Read and check the MJCF file (:func:`load_character`; URDF is refused); see the base class."""
        self._check_new_character(asset_file, name, initialized=self._sim is not None)
        if asset_file.lower().endswith(".urdf"):
            raise MimicKitError("{}: the isaac_gym engine loads MJCF characters only".format(asset_file))
        # the reading and checks every engine shares: names, limits, gains, torque limits
        read, _ = load_character(asset_file, name, is_reference, self.control_mode, urdf_kp=0.0, urdf_kd=0.0)
        kin = KinCharModel(asset_file, device=str(self.device))
        if kin.dof_names != read.dof_names or kin.body_names != read.body_names:
            raise MimicKitError("{}: the kinematic model and the MuJoCo reading disagree on the dof or "
                                "body order".format(asset_file))
        self._chars.append(_Character(kin=kin, **read.file_fields()))
        return len(self._chars) - 1

    def _create_sim(self) -> gymapi.Sim:
        from isaacgym import gymapi
        params = gymapi.SimParams()
        params.dt = self.sim_dt
        params.substeps = 1
        params.up_axis = gymapi.UP_AXIS_Z
        params.gravity = gymapi.Vec3(0.0, 0.0, -_GRAVITY)
        params.use_gpu_pipeline = self._gpu_pipeline
        params.physx.use_gpu = self._gpu_pipeline
        params.physx.solver_type = 1  # TGS
        params.physx.num_position_iterations = self._cfg.num_position_iterations
        params.physx.num_velocity_iterations = self._cfg.num_velocity_iterations
        params.physx.num_threads = self._cfg.num_threads
        params.physx.contact_offset = 0.02
        params.physx.rest_offset = 0.0
        params.physx.max_depenetration_velocity = 10.0
        compute_device = (self.device.index or 0) if self._gpu_pipeline else 0
        graphics_device = self._cfg.graphics_device
        sim = self._gym.create_sim(compute_device, graphics_device, gymapi.SIM_PHYSX, params)
        if sim is None:
            raise MimicKitError("Isaac Gym could not create a PhysX sim on device {} (graphics device {})".format(
                self.device, graphics_device))
        plane = gymapi.PlaneParams()
        plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
        plane.static_friction = 1.0
        plane.dynamic_friction = 1.0
        plane.restitution = 0.0
        self._gym.add_ground(sim, plane)
        return sim

    def _load_asset(self, sim: gymapi.Sim, char: _Character) -> gymapi.Asset:
        from isaacgym import gymapi
        options = gymapi.AssetOptions()
        options.disable_gravity = char.is_reference
        options.default_dof_drive_mode = int(gymapi.DOF_MODE_NONE)
        options.angular_damping = 0.0
        options.max_angular_velocity = 100.0
        path = os.path.abspath(char.asset_file)
        asset = self._gym.load_asset(sim, os.path.dirname(path), os.path.basename(path), options)
        if asset is None:
            raise MimicKitError("{}: Isaac Gym's MJCF importer could not load it".format(char.asset_file))
        return asset

    def _match_names(self, char: _Character, what: str, ours: List[str], theirs: List[str]) -> Tensor:
        """``[len(ours)]`` long: the index in Isaac Gym's list of each of our names."""
        if sorted(ours) != sorted(theirs):
            raise MimicKitError("{}: Isaac Gym's importer made the {} [{}], the file has [{}]".format(
                char.asset_file, what, ", ".join(theirs), ", ".join(ours)))
        return torch.tensor([theirs.index(n) for n in ours], dtype=torch.long)

    def _dof_props(self, char: _Character, asset: gymapi.Asset):
        """The asset's dof properties (numpy record array) with our drives and gains."""
        from isaacgym import gymapi
        props = self._gym.get_asset_dof_properties(asset)
        assert char.dof_index is not None
        cols = char.dof_index.numpy()
        if char.is_reference:
            props["driveMode"][:] = int(gymapi.DOF_MODE_NONE)
            props["stiffness"][:] = 0.0
            props["damping"][:] = 0.0
        elif self.control_mode == "pos":
            props["driveMode"][:] = int(gymapi.DOF_MODE_POS)
            props["stiffness"][cols] = char.kp
            props["damping"][cols] = char.kd
            props["effort"][cols] = np.minimum(char.torque_limits, _MAX_EFFORT)
        else:
            props["driveMode"][:] = int(gymapi.DOF_MODE_EFFORT)
            props["stiffness"][:] = 0.0
            props["damping"][:] = 0.0
            props["effort"][cols] = np.minimum(char.torque_limits, _MAX_EFFORT)
        return props

    def initialize(self) -> None:
        """Create the sim, the envs and their actors, check the dof axes, set the start state.

        Every env starts at the file's root pose with every dof at 0.

        Raises:
            MimicKitError: called twice, no character, Isaac Gym refusing the sim, an asset or
                the viewer, a dof axis that is not the file's (module docstring).
        """
        from isaacgym import gymapi
        if self._sim is not None:
            raise MimicKitError("initialize() called twice")
        if not self._chars:
            raise MimicKitError("initialize(): no character was added")
        sim = self._create_sim()
        self._sim = sim
        gym = self._gym
        for char in self._chars:
            char.asset = self._load_asset(sim, char)
            char.dof_index = self._match_names(char, "dofs", char.dof_names, gym.get_asset_dof_names(char.asset))
            char.body_index = self._match_names(char, "bodies", char.body_names,
                                                gym.get_asset_rigid_body_names(char.asset))
        spacing = self._cfg.env_spacing
        lower, upper = gymapi.Vec3(-spacing, -spacing, 0.0), gymapi.Vec3(spacing, spacing, spacing)
        per_row = max(1, int(math.sqrt(self.num_envs)))
        dof_offset, body_offset = 0, 0
        for slot, char in enumerate(self._chars):
            char.actor_slot = slot
            assert char.dof_index is not None and char.body_index is not None
            char.dof_cols = (char.dof_index + dof_offset).to(self.device)
            char.body_cols = (char.body_index + body_offset).to(self.device)
            dof_offset += len(char.dof_names)
            body_offset += len(char.body_names)
        self._dofs_per_env, self._bodies_per_env = dof_offset, body_offset
        dof_props = [self._dof_props(char, char.asset) for char in self._chars if char.asset is not None]
        origins = []
        for i in range(self.num_envs):
            env = gym.create_env(sim, lower, upper, per_row)
            self._envs.append(env)
            origin = gym.get_env_origin(env)
            origins.append([origin.x, origin.y, origin.z])
            for char, props in zip(self._chars, dof_props):
                kin = char.kin
                root_pos = kin.body_local_pos[0].tolist()
                root_rot = kin.body_local_rot[0].tolist()
                pose = gymapi.Transform(gymapi.Vec3(*root_pos), gymapi.Quat(*root_rot))
                group = self.num_envs + i if char.is_reference else i
                assert char.asset is not None
                handle = gym.create_actor(env, char.asset, pose, char.name, group, -1 if char.is_reference else 0, 0)
                gym.set_actor_dof_properties(env, handle, props)
                if not char.is_reference:
                    gym.enable_actor_dof_force_sensors(env, handle)
                char.handles.append(handle)
        env0 = self._envs[0]
        for char in self._chars:
            char.actor_ids = torch.tensor(
                [gym.get_actor_index(env, h, gymapi.DOMAIN_SIM) for env, h in zip(self._envs, char.handles)],
                dtype=torch.int32, device=self.device)
            props = gym.get_actor_rigid_body_properties(env0, char.handles[0])
            com = torch.tensor([[p.com.x, p.com.y, p.com.z] for p in props], dtype=torch.float32)
            assert char.body_index is not None
            char.com = com[char.body_index].to(self.device)
            char.dof_map = PhysxDofMap(char.kin, self._measured_dof_axes(char))
        self._env_origins = torch.tensor(origins, dtype=torch.float32, device=self.device)

        if not gym.prepare_sim(sim):
            raise MimicKitError("Isaac Gym could not prepare the sim (gym.prepare_sim failed)")
        self._acquire_tensors()
        self._refresh_tensors()
        self._failed = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self._pd_target = torch.zeros(self.num_envs, self._dofs_per_env, device=self.device)
        self._actuation = torch.zeros(self.num_envs, self._dofs_per_env, device=self.device)
        self._states = [self._read_state(c) for c in range(len(self._chars))]
        all_ids = torch.arange(self.num_envs, device=self.device)
        for c, char in enumerate(self._chars):  # the default pose: the file's root pose, dofs at zero
            n = self.num_envs
            self.set_root_pos(c, all_ids, char.kin.body_local_pos[0].to(self._states[c].root_pos).expand(n, 3))
            self.set_root_rot(c, all_ids, char.kin.body_local_rot[0].to(self._states[c].root_rot).expand(n, 4))
            self.set_root_vel(c, all_ids, torch.zeros(n, 3, device=self.device))
            self.set_root_ang_vel(c, all_ids, torch.zeros(n, 3, device=self.device))
            self.set_dof_pos(c, all_ids, torch.zeros(n, len(char.dof_names), device=self.device))
            self.set_dof_vel(c, all_ids, torch.zeros(n, len(char.dof_names), device=self.device))
        if self._visualize:
            self._viewer = gym.create_viewer(sim, gymapi.CameraProperties())
            if self._viewer is None:
                raise MimicKitError("cannot open the Isaac Gym viewer (--visualize needs a display and "
                                    "graphics_device >= 0)")

    def _measured_dof_axes(self, char: _Character) -> Tensor:
        """Each dof's axis as Isaac Gym has it (body frame), snapped to the file's axis or its reverse.

        Compares ``get_actor_dof_frames`` (env 0, at the creation pose) with the file's axes
        turned by the bodies' rest rotations. Raises :class:`MimicKitError` when an axis is
        neither; warns and keeps the file's axes when Isaac Gym cannot report them.
        """
        file_axes = dof_axes(char.kin)
        try:
            frames: Any = self._gym.get_actor_dof_frames(self._envs[0], char.handles[0])  # record array
            axis = frames["axis"]
            world = torch.tensor(np.stack([axis["x"], axis["y"], axis["z"]], axis=-1), dtype=torch.float64)
        except Exception as e:  # not every Isaac Gym build answers before prepare_sim
            warnings.warn("Isaac Gym did not report dof axes ({}); assuming the file's axes".format(e),
                          stacklevel=3)
            return file_axes
        kin = char.kin
        assert char.dof_index is not None
        world = world[char.dof_index]
        zeros = torch.zeros(kin.num_dofs, dtype=torch.float64)
        _, body_rot = kin.forward_kinematics(kin.body_local_pos[0].cpu(), kin.body_local_rot[0].cpu(),
                                             kin.dof_pos_to_joint_rot(zeros))
        body_of_dof = torch.repeat_interleave(torch.arange(kin.num_joints), kin.joint_num_dofs) + 1
        expected = torch_util.quat_rotate(body_rot[body_of_dof], file_axes)
        cos = (world * expected).sum(-1) / world.norm(dim=-1).clamp_min(1e-9)
        bad = cos.abs() < _AXIS_TOL
        if bad.any():
            d = int(torch.nonzero(bad)[0])
            raise MimicKitError("{}: Isaac Gym turned dof '{}' about {} instead of the file's axis {}; "
                                "this engine supports only axes kept or reversed".format(
                                    char.asset_file, char.dof_names[d], world[d].tolist(), expected[d].tolist()))
        return file_axes * cos.sign().unsqueeze(-1)

    def _acquire_tensors(self) -> None:
        gym, sim, wrap = self._gym, self._sim, self._gymtorch.wrap_tensor
        assert sim is not None
        n = self.num_envs
        self._root_tensor = wrap(gym.acquire_actor_root_state_tensor(sim))  # [actors, 13]
        self._dof_tensor = wrap(gym.acquire_dof_state_tensor(sim))  # [dofs, 2]
        self._body_tensor = wrap(gym.acquire_rigid_body_state_tensor(sim))  # [bodies, 13]
        self._contact_tensor = wrap(gym.acquire_net_contact_force_tensor(sim))  # [bodies, 3]
        self._dof_force_tensor = wrap(gym.acquire_dof_force_tensor(sim))  # [dofs]
        self._root = self._root_tensor.view(n, len(self._chars), 13)
        self._dof = self._dof_tensor.view(n, self._dofs_per_env, 2)
        self._body = self._body_tensor.view(n, self._bodies_per_env, 13)
        self._contact = self._contact_tensor.view(n, self._bodies_per_env, 3)
        self._dof_force = self._dof_force_tensor.view(n, self._dofs_per_env)

    def _refresh_tensors(self) -> None:
        gym, sim = self._gym, self._sim
        assert sim is not None
        gym.refresh_actor_root_state_tensor(sim)
        gym.refresh_dof_state_tensor(sim)
        gym.refresh_rigid_body_state_tensor(sim)
        gym.refresh_net_contact_force_tensor(sim)
        gym.refresh_dof_force_tensor(sim)

    def set_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> None:
        """Set the drive stiffness and damping of the character's dofs in every env.

        In ``torque`` mode the gains are only stored. Call after :meth:`initialize`.
        """
        char, kp_np, kd_np = self._keep_pd_gains(char_id, kp, kd)
        if self.control_mode == "pos" and char.asset is not None:
            props = self._dof_props(char, char.asset)
            for env, handle in zip(self._envs, char.handles):
                self._gym.set_actor_dof_properties(env, handle, props)

    # ================================================================= state readback
    def _read_state(self, char_id: int) -> _State:
        """The character's state from the refreshed sim tensors, in our conventions."""
        char = self._chars[char_id]
        assert char.dof_map is not None and char.dof_cols is not None and char.body_cols is not None
        assert char.com is not None
        dof_cols, body_cols = char.dof_cols, char.body_cols
        root = self._root[:, char.actor_slot]
        root_rot, root_ang_vel = root[:, 3:7], root[:, 10:13]
        body = self._body[:, body_cols]
        body_rot, body_ang_vel = body[..., 3:7], body[..., 10:13]
        com_offset = torch_util.quat_rotate(body_rot, char.com.expand_as(body[..., :3]))  # origin to COM, world
        body_vel = body[..., 7:10] - torch.cross(body_ang_vel, com_offset, dim=-1)
        sim_pos, sim_vel = self._dof[:, dof_cols, 0], self._dof[:, dof_cols, 1]
        dof_map = char.dof_map
        dof_pos = dof_map.pos_from_sim(sim_pos)
        dof_forces = dof_map.force_from_sim(dof_pos, self._dof_force[:, dof_cols])
        if char.is_reference:
            dof_forces = torch.zeros_like(dof_forces)
        origin = self._env_origins
        return _State(
            root_pos=root[:, 0:3] - origin, root_rot=root_rot.clone(), root_vel=body_vel[:, 0].clone(),
            root_ang_vel=root_ang_vel.clone(), dof_pos=dof_pos, dof_vel=dof_map.vel_from_sim(dof_pos, sim_vel),
            dof_forces=dof_forces, body_pos=body[..., 0:3] - origin.unsqueeze(1), body_rot=body_rot.clone(),
            body_vel=body_vel, body_ang_vel=body_ang_vel.clone(), contact_forces=self._contact[:, body_cols].clone(),
            dirty=torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def _raw_state(self, char_id: int) -> _State:
        """The character's state as read or set, bodies of dirty envs possibly out of date."""
        self._char(char_id)
        if self._sim is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        return self._states[char_id]

    def _state(self, char_id: int) -> _State:
        """The character's state, bodies of envs touched by setters recomputed by kinematics."""
        state = self._raw_state(char_id)
        if state.bodies_stale:
            ids = torch.nonzero(state.dirty).squeeze(-1)
            pos, rot, vel, ang_vel = kinematic_body_state(
                self._chars[char_id].kin, state.root_pos[ids], state.root_rot[ids], state.root_vel[ids],
                state.root_ang_vel[ids], state.dof_pos[ids], state.dof_vel[ids])
            state.body_pos[ids], state.body_rot[ids] = pos, rot
            state.body_vel[ids], state.body_ang_vel[ids] = vel, ang_vel
            state.contact_forces[ids] = 0.0
            state.dof_forces[ids] = 0.0
            state.bodies_stale = False
        return state

    # ================================================================= simulation
    def set_cmd(self, char_id: int, cmd: Tensor) -> None:
        """Set PD targets or torques ``[num_envs, num_dofs]``, converted to PhysX's coordinates.

        In ``torque`` mode the converted torques are clipped to the torque limits (N·m).

        Raises:
            ValueError: a reference character or a wrong shape.
        """
        char = self._sim_char(char_id)
        expected = (self.num_envs, len(char.dof_names))
        if tuple(cmd.shape) != expected:
            raise ValueError("set_cmd: expected cmd of shape {}, got {}".format(list(expected), list(cmd.shape)))
        assert char.dof_map is not None and char.dof_cols is not None
        cols = char.dof_cols
        cmd = cmd.detach().to(self.device, torch.float32)
        if self.control_mode == "pos":
            self._pd_target[:, cols] = char.dof_map.pos_to_sim(cmd)
        else:
            limit = self._tensor(np.minimum(char.torque_limits, _MAX_EFFORT))
            torque = char.dof_map.force_to_sim(self._raw_state(char_id).dof_pos, cmd)
            self._actuation[:, cols] = torch.maximum(torch.minimum(torque, limit), -limit)

    def _flush(self) -> None:
        """Write the setters' states of dirty envs into the sim (indexed tensor setters)."""
        gym, sim, unwrap = self._gym, self._sim, self._gymtorch.unwrap_tensor
        assert sim is not None
        root_ids, dof_ids = [], []
        for c, char in enumerate(self._chars):
            state = self._states[c]
            if not bool(state.dirty.any()):
                continue
            assert char.dof_map is not None and char.dof_cols is not None and char.com is not None
            ids = torch.nonzero(state.dirty).squeeze(-1)
            rot, ang_vel = state.root_rot[ids], state.root_ang_vel[ids]
            com_offset = torch_util.quat_rotate(rot, char.com[0].expand(len(ids), 3))
            com_vel = state.root_vel[ids] + torch.cross(ang_vel, com_offset, dim=-1)
            self._root[ids, char.actor_slot] = torch.cat(
                [state.root_pos[ids] + self._env_origins[ids], rot, com_vel, ang_vel], dim=-1)
            cols = char.dof_cols
            dof_pos = state.dof_pos[ids]
            self._dof[ids.unsqueeze(-1), cols, 0] = char.dof_map.pos_to_sim(dof_pos)
            self._dof[ids.unsqueeze(-1), cols, 1] = char.dof_map.vel_to_sim(dof_pos, state.dof_vel[ids])
            finite = (torch.isfinite(self._root[ids, char.actor_slot]).all(-1)
                      & torch.isfinite(self._dof[ids][:, cols]).all(-1).all(-1))
            self._failed[ids[~finite]] = True
            assert char.actor_ids is not None
            root_ids.append(char.actor_ids[ids])
            if char.dof_names:
                dof_ids.append(char.actor_ids[ids])
            state.dirty[:] = False
        if root_ids:
            actors = torch.cat(root_ids)
            gym.set_actor_root_state_tensor_indexed(sim, unwrap(self._root_tensor), unwrap(actors), len(actors))
        if dof_ids:
            actors = torch.cat(dof_ids)
            gym.set_dof_state_tensor_indexed(sim, unwrap(self._dof_tensor), unwrap(actors), len(actors))

    def step(self) -> None:
        """Write the setters' states and the commands, simulate ``substeps`` times, read the state.

        Raises:
            RuntimeError: before :meth:`initialize` or after :meth:`close`.
        """
        gym, sim, unwrap = self._gym, self._sim, self._gymtorch.unwrap_tensor
        if sim is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        self._flush()
        if self.control_mode == "pos":
            gym.set_dof_position_target_tensor(sim, unwrap(self._pd_target))
        else:
            gym.set_dof_actuation_force_tensor(sim, unwrap(self._actuation))
        for _ in range(self.substeps):
            gym.simulate(sim)
        if not self._gpu_pipeline:
            gym.fetch_results(sim, True)
        self._refresh_tensors()
        self._states = [self._read_state(c) for c in range(len(self._chars))]
        for state in self._states:
            bad = ~(torch.isfinite(state.root_pos).all(-1) & torch.isfinite(state.root_rot).all(-1)
                    & torch.isfinite(state.dof_pos).all(-1) & torch.isfinite(state.dof_vel).all(-1))
            self._failed |= bad

    def pop_failed_envs(self) -> Tensor:
        """BoolTensor ``[num_envs]``: a non-finite root or dof state since the last call."""
        failed = self._failed.clone()
        self._failed[:] = False
        return failed

    # ================================================================= getters
    def get_root_pos(self, char_id: int) -> Tensor:
        """Root position ``[num_envs, 3]`` (m, relative to the env's origin)."""
        return self._state(char_id).root_pos

    def get_root_rot(self, char_id: int) -> Tensor:
        """Root rotation ``[num_envs, 4]`` (x, y, z, w; world)."""
        return self._state(char_id).root_rot

    def get_root_vel(self, char_id: int) -> Tensor:
        """Root origin velocity ``[num_envs, 3]`` (m/s, world; from PhysX's centre-of-mass velocity)."""
        return self._state(char_id).root_vel

    def get_root_ang_vel(self, char_id: int) -> Tensor:
        """Root angular velocity ``[num_envs, 3]`` (rad/s, world)."""
        return self._state(char_id).root_ang_vel

    def get_dof_pos(self, char_id: int) -> Tensor:
        """Dof positions ``[num_envs, num_dofs]`` (rad; triplets as Euler angles, from PhysX's exp map)."""
        return self._state(char_id).dof_pos

    def get_dof_vel(self, char_id: int) -> Tensor:
        """Dof velocities ``[num_envs, num_dofs]`` (rad/s; triplets as Euler angle rates)."""
        return self._state(char_id).dof_vel

    def get_dof_forces(self, char_id: int) -> Tensor:
        """Dof forces ``[num_envs, num_dofs]`` (N·m) of the last step; 0 in envs set since the last step."""
        return self._state(char_id).dof_forces

    def get_body_pos(self, char_id: int) -> Tensor:
        """Body frame origins ``[num_envs, num_bodies, 3]`` (m, relative to the env's origin)."""
        return self._state(char_id).body_pos

    def get_body_rot(self, char_id: int) -> Tensor:
        """Body frame rotations ``[num_envs, num_bodies, 4]`` (x, y, z, w; world)."""
        return self._state(char_id).body_rot

    def get_body_vel(self, char_id: int) -> Tensor:
        """Body origin velocities ``[num_envs, num_bodies, 3]`` (m/s, world)."""
        return self._state(char_id).body_vel

    def get_body_ang_vel(self, char_id: int) -> Tensor:
        """Body angular velocities ``[num_envs, num_bodies, 3]`` (rad/s, world)."""
        return self._state(char_id).body_ang_vel

    def get_contact_forces(self, char_id: int) -> Tensor:
        """Net contact force per body ``[num_envs, num_bodies, 3]`` (N, world); 0 in envs set since the last step."""
        return self._state(char_id).contact_forces

    def get_ground_contacts(self, char_id: int) -> Tensor:
        """BoolTensor ``[num_envs, num_bodies]``: net contact force above 1e-4 N (any contact, not only ground)."""
        return self._state(char_id).contact_forces.norm(dim=-1) > _CONTACT_EPS

    # ================================================================= setters
    def _set(self, char_id: int, env_ids: Tensor, values: Tensor, field: str, width: int, what: str) -> None:
        state = self._raw_state(char_id)
        ids = env_ids.to(self.device, torch.long).reshape(-1)
        if tuple(values.shape) != (len(ids), width):
            raise ValueError("{}: expected values of shape [{}, {}], got {}".format(
                what, len(ids), width, list(values.shape)))
        getattr(state, field)[ids] = values.detach().to(self.device, torch.float32)
        state.dirty[ids] = True
        state.bodies_stale = True

    def set_root_pos(self, char_id: int, env_ids: Tensor, root_pos: Tensor) -> None:
        """Root positions ``[k, 3]`` (m, from the env's origin) of envs ``env_ids``; sent at the next step."""
        self._set(char_id, env_ids, root_pos, "root_pos", 3, "set_root_pos")

    def set_root_rot(self, char_id: int, env_ids: Tensor, root_rot: Tensor) -> None:
        """Root rotations ``[k, 4]`` (x, y, z, w) of envs ``env_ids``; sent at the next step."""
        self._set(char_id, env_ids, root_rot, "root_rot", 4, "set_root_rot")

    def set_root_vel(self, char_id: int, env_ids: Tensor, root_vel: Tensor) -> None:
        """Root origin velocities ``[k, 3]`` (m/s, world) of envs ``env_ids``; sent at the next step."""
        self._set(char_id, env_ids, root_vel, "root_vel", 3, "set_root_vel")

    def set_root_ang_vel(self, char_id: int, env_ids: Tensor, root_ang_vel: Tensor) -> None:
        """Root angular velocities ``[k, 3]`` (rad/s, world) of envs ``env_ids``; sent at the next step."""
        self._set(char_id, env_ids, root_ang_vel, "root_ang_vel", 3, "set_root_ang_vel")

    def set_dof_pos(self, char_id: int, env_ids: Tensor, dof_pos: Tensor) -> None:
        """Dof positions ``[k, num_dofs]`` (rad, ours) of envs ``env_ids``; converted and sent at the next step."""
        self._set(char_id, env_ids, dof_pos, "dof_pos", len(self._char(char_id).dof_names), "set_dof_pos")

    def set_dof_vel(self, char_id: int, env_ids: Tensor, dof_vel: Tensor) -> None:
        """Dof velocities ``[k, num_dofs]`` (rad/s, ours) of envs ``env_ids``; converted and sent at the next step."""
        self._set(char_id, env_ids, dof_vel, "dof_vel", len(self._char(char_id).dof_names), "set_dof_vel")

    # ================================================================= display
    def _camera_pose(self) -> Tuple[gymapi.Vec3, gymapi.Vec3]:
        """Camera position and target (env 0's frame) tracking the first character's root."""
        from isaacgym import gymapi
        target = self._state(0).root_pos[0].tolist()
        azimuth, elevation, distance = math.radians(120.0), math.radians(-15.0), 4.0
        forward = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                   math.sin(elevation))
        eye = [t - distance * f for t, f in zip(target, forward)]
        return gymapi.Vec3(*eye), gymapi.Vec3(*target)

    def _step_graphics(self) -> None:
        assert self._sim is not None
        if self._gpu_pipeline:
            self._gym.fetch_results(self._sim, True)
        self._gym.step_graphics(self._sim)

    def render(self) -> None:
        """Draw the last step in the viewer, if it is open, looking at the first character."""
        viewer = self._viewer
        if viewer is None or self._sim is None or self._gym.query_viewer_has_closed(viewer):
            return
        eye, target = self._camera_pose()
        self._gym.viewer_camera_look_at(viewer, self._envs[0], eye, target)
        self._step_graphics()
        self._gym.draw_viewer(viewer, self._sim, True)

    def render_frame(self, width: int, height: int) -> np.ndarray:
        """Env 0's camera sensor image ``[height, width, 3]`` uint8 of the last step.

        Raises:
            RuntimeError: before :meth:`initialize` or after :meth:`close`.
            MimicKitError: ``graphics_device`` is -1, or no camera sensor of that size.
        """
        from isaacgym import gymapi
        if self._sim is None:
            raise RuntimeError("the engine is not initialized (call initialize()) or is closed")
        if self._cfg.graphics_device < 0:
            raise MimicKitError("render_frame: the Isaac Gym engine was configured without rendering; "
                                "set key 'graphics_device' to a GPU index in the engine config")
        env0 = self._envs[0]
        if self._camera is None or self._camera_size != (width, height):
            props = gymapi.CameraProperties()
            props.width, props.height = width, height
            camera = self._gym.create_camera_sensor(env0, props)
            if camera == gymapi.INVALID_HANDLE:
                raise MimicKitError("render_frame: Isaac Gym could not create a {}x{} camera sensor".format(
                    width, height))
            self._camera, self._camera_size = camera, (width, height)
        eye, target = self._camera_pose()
        self._gym.set_camera_location(self._camera, env0, eye, target)
        self._step_graphics()
        self._gym.render_all_camera_sensors(self._sim)
        image = self._gym.get_camera_image(self._sim, env0, self._camera, gymapi.IMAGE_COLOR)
        return np.asarray(image, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()

    def close(self) -> None:
        """Destroy the viewer and the sim."""
        if self._viewer is not None:
            self._gym.destroy_viewer(self._viewer)
            self._viewer = None
        if self._sim is not None:
            self._gym.destroy_sim(self._sim)
            self._sim = None

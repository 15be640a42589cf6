"""Reading a character file, for every engine.

:func:`load_character_spec` is the one place a character file is parsed (MJCF, or URDF
through :mod:`mimickit.engines.urdf_character`); :func:`load_character` checks it (one free
joint on a single root body, hinge and slide joints below it, one actuator per dof) and
reads its names, limits and gains into a :class:`CharacterFile`. A vendor's file is taken
as it is: joints it drives with ``motor`` actuators (torque) are driven by position
actuators (PD) in ``pos`` control mode, and their torque limits come from the actuator's
``forcerange`` or the joint's ``actuatorfrcrange``; joints without a position actuator of
the file's own (a URDF's, a motor's) get their gains from :func:`joint_gains` (a
name-pattern table, else the engine's ``urdf_kp``/``urdf_kd``). MuJoCo reads the file for
every engine, Isaac Gym's included: the MuJoCo engines attach the parsed spec to their
scene, the others keep only the description.

:class:`CharacterTable` answers the description getters of
:class:`~mimickit.engines.engine.Engine` from those descriptions.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import mujoco
import numpy as np
import torch
from torch import Tensor

from mimickit.engines.urdf_character import is_urdf, load_urdf_spec
from mimickit.util.errors import MimicKitError, one_line, require_file

# enum values as ints: MuJoCo's enums do not compare equal to numpy integers
JNT_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
JNT_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)
JNT_HINGE = int(mujoco.mjtJoint.mjJNT_HINGE)
_TRN_JOINT = int(mujoco.mjtTrn.mjTRN_JOINT)
_GAIN_FIXED = int(mujoco.mjtGain.mjGAIN_FIXED)
_BIAS_AFFINE = int(mujoco.mjtBias.mjBIAS_AFFINE)
_BIAS_NONE = int(mujoco.mjtBias.mjBIAS_NONE)


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


GainTable = Mapping[str, Sequence[float]]  # joint-name substring -> [kp N·m/rad, kd N·m·s/rad]

# collision_meshes choices -> the primitive MuJoCo fits to each collision mesh (None: keep the meshes)
COLLISION_SHAPES: Dict[str, Optional[mujoco.mjtGeom]] = {
    "keep": None, "box": mujoco.mjtGeom.mjGEOM_BOX, "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER, "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID,
}


def joint_gains(joint_name: str, table: Optional[GainTable], default_kp: float,
                default_kd: float) -> Tuple[float, float]:
    """``(kp, kd)`` of a joint: the first entry of ``table``, in order, whose key ``joint_name`` contains.

    As legged_gym's ``stiffness``/``damping`` dicts (``{hip: [100, 2.5], knee: [150, 4]}``);
    ``(default_kp, default_kd)`` when no key matches or there is no table.
    """
    for key, (kp, kd) in (table or {}).items():
        if key in joint_name:
            return float(kp), float(kd)
    return default_kp, default_kd


def fit_collision_meshes(spec: mujoco.MjSpec, shape: str) -> int:
    """Replace the spec's colliding mesh geoms by the primitive ``shape`` MuJoCo fits to each mesh.

    A geom of type mesh that collides (``contype`` or ``conaffinity`` set) keeps its mesh
    name and takes the primitive type; MuJoCo's compiler then sizes the primitive from the
    mesh (its equivalent-inertia box, or the bounding box under ``<compiler fitaabb="true">``),
    in the mesh's frame. Visual-only meshes are left as they are. Vendor robots collide
    through their meshes, which costs several times the stepping time of primitives.

    Args:
        spec: a character's parsed file (edited in place).
        shape: a key of :data:`COLLISION_SHAPES`; ``keep`` changes nothing.

    Returns:
        The number of geoms replaced.
    """
    geom_type = COLLISION_SHAPES[shape]
    if geom_type is None:
        return 0
    replaced = 0
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and (geom.contype or geom.conaffinity):
            geom.type = geom_type
            replaced += 1
    return replaced


# ===================================================================== reading a file
def load_character_spec(asset_file: str, urdf_kp: float, urdf_kd: float,
                        gain_table: Optional[GainTable] = None) -> mujoco.MjSpec:
    """Parse a character file: MJCF, or URDF (``.urdf``) whose joints get :func:`joint_gains`.

    Raises:
        MimicKitError: from the URDF loader; MuJoCo's parser raises its own errors
            (:func:`load_character` turns them into MimicKitError).
    """
    if not is_urdf(asset_file):
        return mujoco.MjSpec.from_file(asset_file)
    spec = load_urdf_spec(asset_file, urdf_kp, urdf_kd)
    if gain_table:
        for actuator in spec.actuators:  # named as their joints
            kp, kd = joint_gains(actuator.name, gain_table, urdf_kp, urdf_kd)
            actuator.set_to_position(kp=kp, kv=kd)
    return spec


def load_character(asset_file: str, name: str, is_reference: bool, control_mode: str,
                   urdf_kp: float, urdf_kd: float,
                   gain_table: Optional[GainTable] = None) -> Tuple[CharacterFile, mujoco.MjSpec]:
    """Parse and check the character file; read its limits and gains from it compiled alone.

    Args:
        asset_file: MJCF or URDF file of one character.
        name: the character's name in the scene.
        is_reference: a display-only character: its actuators are neither read nor checked
            (torque limits inf, gains 0).
        control_mode: ``pos`` or ``torque`` (:class:`~mimickit.engines.engine.EngineConfig`).
        urdf_kp: stiffness given to the joints without a position actuator of the file's own
            (a URDF's; a ``motor``'s in ``pos`` mode) that ``gain_table`` does not name (N·m/rad).
        urdf_kd: their damping (N·m·s/rad).
        gain_table: joint-name substring -> ``[kp, kd]`` for those joints (:func:`joint_gains`).
        urdf_kd: damping given to a URDF's joints (N·m·s/rad).

    Returns:
        The description, and the parsed spec (uncompiled) for an engine to attach.

    Warns:
        UserWarning: once, naming the actuators, when ``motor`` actuators are turned into PD.

    Raises:
        MimicKitError: naming ``asset_file``: not a valid MJCF/URDF, no body, no single
            root body with one free joint, a ball joint below the root, an actuator not on
            a joint, a dof without or with two actuators, an actuator that is neither a
            position actuator nor a motor in ``pos`` mode, a dof without torque limit
            (actuator ``forcerange`` or joint ``actuatorfrcrange``) in ``torque`` mode.
    """
    spec, model = _compile_alone(asset_file, urdf_kp, urdf_kd, gain_table)
    _check_root(model, asset_file)
    dof_joints = _dof_joints(model, asset_file)
    dof_low, dof_high = _dof_limits(model, dof_joints)
    if is_reference:
        num_dofs = len(dof_joints)
        torque_limits, kp, kd = np.full(num_dofs, np.inf), np.zeros(num_dofs), np.zeros(num_dofs)
    else:
        act_of_joint = _actuator_of_joint(model, asset_file)
        if control_mode == "pos" and _motors_to_pd(spec, model, asset_file, act_of_joint, urdf_kp, urdf_kd,
                                                   gain_table):
            model = spec.compile()
        torque_limits, kp, kd = _actuator_gains(model, asset_file, dof_joints, act_of_joint, control_mode)
    char = CharacterFile(name=name, asset_file=asset_file, is_reference=is_reference,
                         body_names=[model.body(b).name for b in range(1, model.nbody)],
                         dof_names=[model.joint(j).name for j in dof_joints],
                         dof_low=dof_low, dof_high=dof_high, torque_limits=torque_limits, kp=kp, kd=kd)
    return char, spec


def _compile_alone(asset_file: str, urdf_kp: float, urdf_kd: float,
                   gain_table: Optional[GainTable]) -> Tuple[mujoco.MjSpec, mujoco.MjModel]:
    """The file's spec and that spec compiled on its own.

    Raises:
        MimicKitError: the file does not parse or compile (MuJoCo's message included).
    """
    try:
        spec = load_character_spec(asset_file, urdf_kp, urdf_kd, gain_table)
        model = spec.compile()
    except MimicKitError:
        raise
    except Exception as e:  # mujoco raises ValueError with the parser's message
        raise MimicKitError("{}: not a valid MJCF character: {}".format(asset_file, one_line(str(e)))) from e
    return spec, model


def _check_root(model: mujoco.MjModel, asset_file: str) -> None:
    """Check that the model has one root body (body 1), holding the only free joint (joint 0).

    Raises:
        MimicKitError: no body, a free joint missing, misplaced or repeated, a second root body.
    """
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


def _dof_joints(model: mujoco.MjModel, asset_file: str) -> List[int]:
    """Joint ids of the dofs, in file order: every joint after the root's free joint.

    Raises:
        MimicKitError: one of them is not a hinge or slide joint.
    """
    dof_joints = list(range(1, model.njnt))
    for j in dof_joints:
        if model.jnt_type[j] not in (JNT_HINGE, JNT_SLIDE):
            raise MimicKitError("{}: joint '{}' is a {}; only hinge and slide joints are supported "
                                "below the root (3-dof joints as hinge triplets)".format(
                                    asset_file, model.joint(j).name,
                                    mujoco.mjtJoint(model.jnt_type[j]).name))
    return dof_joints


def _dof_limits(model: mujoco.MjModel, dof_joints: List[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits ``[num_dofs]`` of the joints ``dof_joints``.

    A joint's range where it is limited, else ±pi (rad) for a hinge and ±inf (m) for a slide.
    """
    dof_low = np.full(len(dof_joints), -np.pi)
    dof_high = np.full(len(dof_joints), np.pi)
    for i, j in enumerate(dof_joints):
        if model.jnt_limited[j]:
            dof_low[i], dof_high[i] = model.jnt_range[j]
        elif model.jnt_type[j] == JNT_SLIDE:
            dof_low[i], dof_high[i] = -np.inf, np.inf
    return dof_low, dof_high


def _actuator_of_joint(model: mujoco.MjModel, asset_file: str) -> Dict[int, int]:
    """The actuator id acting on each joint id that has one.

    Raises:
        MimicKitError: an actuator not on a joint, a joint with two actuators.
    """
    act_of_joint: Dict[int, int] = {}
    for a in range(model.nu):
        if model.actuator_trntype[a] != _TRN_JOINT:
            raise MimicKitError("{}: actuator '{}' does not act on a joint".format(
                asset_file, model.actuator(a).name))
        j = int(model.actuator_trnid[a, 0])
        if j in act_of_joint:
            raise MimicKitError("{}: joint '{}' has two actuators".format(asset_file, model.joint(j).name))
        act_of_joint[j] = a
    return act_of_joint


def _is_position(model: mujoco.MjModel, a: int) -> bool:
    """Whether actuator ``a`` is a position actuator (PD: fixed gain kp, affine bias -kp q - kd qdot)."""
    gain, bias = model.actuator_gainprm[a], model.actuator_biasprm[a]
    return bool(model.actuator_gaintype[a] == _GAIN_FIXED and model.actuator_biastype[a] == _BIAS_AFFINE
                and bias[1] == -gain[0] and gain[0] > 0)


def _is_motor(model: mujoco.MjModel, a: int) -> bool:
    """Whether actuator ``a`` is a ``motor``: force = gear * ctrl, no bias."""
    return bool(model.actuator_gaintype[a] == _GAIN_FIXED and model.actuator_biastype[a] == _BIAS_NONE)


def _motors_to_pd(spec: mujoco.MjSpec, model: mujoco.MjModel, asset_file: str, act_of_joint: Dict[int, int],
                  default_kp: float, default_kd: float, gain_table: Optional[GainTable]) -> bool:
    """Turn the file's ``motor`` actuators into position actuators (PD) on their joints, in ``spec``.

    Gains from :func:`joint_gains`; control range the joint's range; force range the
    motor's ``forcerange``, else the joint's ``actuatorfrcrange`` (the vendor G1's way).
    Returns whether any actuator was changed (the caller compiles again).
    """
    motors = [(j, a) for j, a in act_of_joint.items() if _is_motor(model, a) and not _is_position(model, a)]
    for j, a in motors:
        actuator = spec.actuators[a]
        kp, kd = joint_gains(model.joint(j).name, gain_table, default_kp, default_kd)
        actuator.set_to_position(kp=kp, kv=kd)
        actuator.gear = [1.0, 0, 0, 0, 0, 0]
        if model.jnt_limited[j]:  # the joint's range, in the file's angle units, as MuJoCo's inheritrange reads it
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            actuator.ctrlrange = [0.0, 0.0]
            actuator.inheritrange = 1.0
        else:
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        if not model.actuator_forcelimited[a] and model.jnt_actfrclimited[j]:
            actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            actuator.forcerange = list(model.jnt_actfrcrange[j])
    if motors:
        warnings.warn("{}: {} motor actuator(s) ({}) driven as position actuators (PD) for control_mode 'pos', "
                      "gains from the engine's pd_gains / urdf_kp, urdf_kd".format(
                          asset_file, len(motors), ", ".join(model.joint(j).name for j, _ in motors[:4])
                          + (", ..." if len(motors) > 4 else "")), stacklevel=3)
    return bool(motors)


def _actuator_gains(model: mujoco.MjModel, asset_file: str, dof_joints: List[int], act_of_joint: Dict[int, int],
                    control_mode: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torque limits (N·m), kp (N·m/rad) and kd (N·m·s/rad) ``[num_dofs]`` of each dof's actuator.

    The torque limit is the largest magnitude of the actuator's forcerange and of the
    joint's actuatorfrcrange, the smaller where both are set (inf without either); kp and
    kd are a position actuator's gains (0 for another actuator).

    Raises:
        MimicKitError: a dof without actuator, a non-position actuator in ``pos`` mode, an
            actuator without forcerange in ``torque`` mode.
    """
    torque_limits = np.full(len(dof_joints), np.inf)
    kp = np.zeros(len(dof_joints))
    kd = np.zeros(len(dof_joints))
    for i, j in enumerate(dof_joints):
        if j not in act_of_joint:
            raise MimicKitError("{}: joint '{}' has no actuator (expected one per dof)".format(
                asset_file, model.joint(j).name))
        a = act_of_joint[j]
        if model.actuator_forcelimited[a]:
            torque_limits[i] = np.abs(model.actuator_forcerange[a]).max()
        if model.jnt_actfrclimited[j]:
            torque_limits[i] = min(torque_limits[i], np.abs(model.jnt_actfrcrange[j]).max())
        if _is_position(model, a):
            kp[i], kd[i] = model.actuator_gainprm[a][0], -model.actuator_biasprm[a][2]
        elif control_mode == "pos":
            raise MimicKitError("{}: actuator '{}' is neither a position actuator nor a motor; control_mode "
                                "'pos' needs <position kp=... kv=...> (or <motor>) actuators".format(
                                    asset_file, model.actuator(a).name))
        if control_mode == "torque" and not np.isfinite(torque_limits[i]):
            raise MimicKitError("{}: actuator '{}' has no forcerange and its joint no actuatorfrcrange; "
                                "control_mode 'torque' takes the torque limits from them".format(
                                    asset_file, model.actuator(a).name))
    return torque_limits, kp, kd


# ===================================================================== character table
class CharacterTable:
    """The description getters of :class:`~mimickit.engines.engine.Engine` over ``self._chars``.

    ``self._chars`` lists :class:`CharacterFile` records (an engine's subclass of it) read
    with :func:`load_character`. Mix in before :class:`~mimickit.engines.engine.Engine`.
    """

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
        """Names of the character's dofs, in file order.

        Raises:
            IndexError: ``char_id`` out of range.
        """
        return list(self._char(char_id).dof_names)

    def get_body_names(self, char_id: int) -> List[str]:
        """Names of the character's bodies, root first, in file order.

        Raises:
            IndexError: ``char_id`` out of range.
        """
        return list(self._char(char_id).body_names)

    def get_dof_limits(self, char_id: int) -> Tuple[Tensor, Tensor]:
        """Lower and upper dof limits ``([num_dofs], [num_dofs])`` (rad; m for a slide joint).

        Raises:
            IndexError: ``char_id`` out of range.
        """
        char = self._char(char_id)
        return self._tensor(char.dof_low), self._tensor(char.dof_high)

    def get_torque_limits(self, char_id: int) -> Tensor:
        """Largest actuator torque magnitude per dof ``[num_dofs]`` (N·m; inf without a forcerange).

        Raises:
            IndexError: ``char_id`` out of range.
            ValueError: a reference character.
        """
        return self._tensor(self._sim_char(char_id).torque_limits)

    def get_pd_gains(self, char_id: int) -> Tuple[Tensor, Tensor]:
        """PD gains ``(kp [num_dofs] N·m/rad, kd [num_dofs] N·m·s/rad)``.

        Raises:
            IndexError: ``char_id`` out of range.
            ValueError: a reference character.
        """
        char = self._sim_char(char_id)
        return self._tensor(char.kp), self._tensor(char.kd)

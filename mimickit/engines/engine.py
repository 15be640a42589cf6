"""The simulator interface every engine implements, and the engine registry.

An engine holds ``num_envs`` copies of one scene (a ground plane and the characters added
with :meth:`Engine.add_character`) and steps them together. Everything crosses this
interface as batched torch float32 tensors on the engine's device:

- Frames: all positions, rotations, velocities and forces are in the **world frame**
  (Z up, gravity -z). Quaternions are (x, y, z, w) (see :mod:`mimickit.util.torch_util`).
- Units: m, rad, s, m/s, rad/s, N, N·m.
- Shapes: ``[num_envs, ...]``; per-character arrays are ``[num_envs, num_dofs]`` and
  ``[num_envs, num_bodies, ...]`` in the order of :meth:`Engine.get_dof_names` and
  :meth:`Engine.get_body_names` (body 0 is the root).
- Setters take ``env_ids`` (LongTensor ``[k]``) and values ``[k, ...]``; after a setter
  the getters describe the new state, derived quantities included.

Engines register themselves with ``@register_engine(name)``; ``engine_builder`` looks the
``engine_name`` of a YAML config up in :data:`ENGINES` (a :class:`mimickit.util.registry.Registry`).
"""
from __future__ import annotations

import abc
import dataclasses
import warnings
from typing import List, Tuple, Type

import numpy as np
import torch
from torch import Tensor

from mimickit.util.errors import MimicKitError
from mimickit.util.registry import Registry

CONTROL_MODES = ("pos", "torque")

# Physics rates (Hz). Measured on the shipped characters (humanoid, quadruped, duckling), each
# dropped 2 cm onto the ground in its default pose and held there by its PD actuators for 2 s
# with the mujoco engine: at 30 Hz the humanoid and the duckling fall over and at 20 Hz the
# quadruped's feet sink 2 cm into the floor; from 60 Hz up all three stand.
MIN_SIM_FREQ = 60  # below: an error
SOFT_MIN_SIM_FREQ = 120  # below: a warning


@dataclasses.dataclass
class EngineConfig:
    """Keys common to every engine's YAML config.

    engine_name: the registry name (``mujoco``, ...).
    control_mode: ``pos``: :meth:`Engine.set_cmd` takes PD targets (rad), tracked by the
        character's position actuators; ``torque``: it takes joint torques (N·m).
    sim_freq: physics steps per second (Hz), at least :data:`MIN_SIM_FREQ` (60 Hz; below,
        none of the shipped characters can stand holding its default pose: see the
        measurement above it). Below :data:`SOFT_MIN_SIM_FREQ` (120 Hz) the config loads with
        a warning: the stiffest PD loop of the humanoid (ankle, kp = 400 N·m/rad on
        0.022 kg·m², omega = sqrt(kp / I) = 135 rad/s) is integrated with its stiffness
        explicit, which is stable only for a time step under 2 / omega = 15 ms (67 Hz), and
        accurate with a 2x margin (~135 Hz); and MuJoCo's contacts soften below 100 Hz (its
        ``refsafe`` rule uses max(solref timeconst, 2 timesteps), default timeconst 0.02 s).
        120 Hz is the rate the shipped configs and models use.
    control_freq: control steps per second (Hz); ``sim_freq`` must be a multiple of it.
    """

    engine_name: str
    control_mode: str = "pos"
    sim_freq: int = 120
    control_freq: int = 30

    def validate(self, where: str) -> None:
        """Check the keys together; raise :class:`MimicKitError` naming ``where`` and the key.

        Warns (``UserWarning``, naming ``where`` and the key) for a ``sim_freq`` below
        :data:`SOFT_MIN_SIM_FREQ`.
        """
        if self.control_mode not in CONTROL_MODES:
            raise MimicKitError("{}: key 'control_mode': expected one of {}, got {!r}".format(
                where, ", ".join(CONTROL_MODES), self.control_mode))
        if self.sim_freq <= 0:
            raise MimicKitError("{}: key 'sim_freq': expected a positive integer (Hz), got {}".format(
                where, self.sim_freq))
        if self.control_freq <= 0:
            raise MimicKitError("{}: key 'control_freq': expected a positive integer (Hz), got {}".format(
                where, self.control_freq))
        if self.sim_freq % self.control_freq != 0:
            raise MimicKitError(
                "{}: key 'sim_freq' ({} Hz) must be a multiple of key 'control_freq' ({} Hz)".format(
                    where, self.sim_freq, self.control_freq))
        if self.sim_freq < MIN_SIM_FREQ:
            raise MimicKitError(
                "{}: key 'sim_freq': {} Hz is below the lowest physics rate, {} Hz (the characters fall "
                "over or sink into the ground; {} Hz is the tested rate)".format(
                    where, self.sim_freq, MIN_SIM_FREQ, SOFT_MIN_SIM_FREQ))
        if self.sim_freq < SOFT_MIN_SIM_FREQ:
            # reported at the key's line in the file (Python prints that line below the message)
            warnings.warn_explicit(
                "{}: key 'sim_freq': {} Hz is below {} Hz, the rate the shipped characters are tested at; stiff "
                "PD gains may oscillate or diverge and contacts are softer (see EngineConfig)".format(
                    where, self.sim_freq, SOFT_MIN_SIM_FREQ), UserWarning, where, _key_line(where, "sim_freq"))


def _key_line(path: str, key: str) -> int:
    """Line number (from 1) of the top-level ``key:`` in the YAML file ``path``; 1 when not found."""
    try:
        with open(path, "r") as f:
            for number, line in enumerate(f, start=1):
                if line.startswith(key + ":"):
                    return number
    except (OSError, UnicodeDecodeError):
        pass
    return 1


@dataclasses.dataclass
class JointDynamics:
    """Per-dof joint and motor properties that replace a character file's (:meth:`Engine.set_joint_dynamics`).

    Each is ``[num_dofs]`` float64, in :meth:`Engine.get_dof_names` order; NaN keeps the file's value.

    armature: kg·m², the motor's reflected rotor inertia added to the joint's.
    friction: N·m, the joint's dry (Coulomb) friction (MuJoCo's ``frictionloss``).
    max_speed: rad/s, the motor's no-load speed: the torque it can give at joint speed ``w`` is
        the line of a DC motor at its voltage limit, ``tau_max (1 - w / max_speed)`` in the direction
        of motion and ``tau_max (1 + |w| / max_speed)`` against it (a back-driven motor brakes harder),
        ``tau_max`` the torque limit (the stall torque, :meth:`Engine.get_torque_limits`); inf: no limit.
    """

    armature: np.ndarray
    friction: np.ndarray
    max_speed: np.ndarray

    def speed_damping(self, torque_limits: np.ndarray) -> np.ndarray:
        """``[num_dofs]`` N·m·s/rad, the slope ``tau_max / max_speed`` of the torque-speed line (0 without one)."""
        limited = np.isfinite(self.max_speed)
        return np.where(limited, torque_limits / np.where(limited, self.max_speed, 1.0), 0.0)


# A lookup imports only the named engine's module (mimickit.util.registry): listing Isaac Gym or MuJoCo
# Warp costs nothing where they are not installed.
ENGINES = Registry("engine", "engine_name", {"mujoco": "mimickit.engines.mujoco_engine",
                                             "mujoco_warp": "mimickit.engines.mujoco_warp_engine",
                                             "isaac_gym": "mimickit.engines.isaac_gym_engine"})
register_engine = ENGINES.register


class Engine(abc.ABC):
    """Batched physics simulation of ``num_envs`` identical scenes.

    Use: ``add_character`` for each character, ``initialize()``, then per control step
    ``set_cmd`` for each simulated character, ``step()``, the getters; setters reset chosen
    envs. Subclasses set :attr:`config_class` to their config dataclass.

    Getters return tensors that are new after every step or setter but shared between
    calls in between: treat them as read-only.
    """

    config_class: Type[EngineConfig] = EngineConfig

    def __init__(self, config: EngineConfig, num_envs: int, device: str, visualize: bool):
        if num_envs <= 0:
            raise MimicKitError("num_envs must be positive, got {}".format(num_envs))
        self._config = config
        self._num_envs = num_envs
        self._device = torch.device(device)
        self._visualize = visualize
        self._substeps = config.sim_freq // config.control_freq

    # ----------------------------------------------------------------- properties
    @property
    def config(self) -> EngineConfig:
        """The engine's config, as read from its YAML (do not edit)."""
        return self._config

    @property
    def num_envs(self) -> int:
        """Number of envs simulated together (the leading dimension of every tensor)."""
        return self._num_envs

    @property
    def device(self) -> torch.device:
        """Torch device of the tensors the engine takes and returns."""
        return self._device

    @property
    def sim_dt(self) -> float:
        """Physics time step (s)."""
        return 1.0 / self._config.sim_freq

    @property
    def control_dt(self) -> float:
        """Time advanced by one :meth:`step` (s): ``substeps * sim_dt``."""
        return 1.0 / self._config.control_freq

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return self._substeps

    @property
    def control_mode(self) -> str:
        """``pos`` (:meth:`set_cmd` takes PD targets, rad) or ``torque`` (joint torques, N·m)."""
        return self._config.control_mode

    # ------------------------------------------------------------------ scene setup
    @abc.abstractmethod
    def add_character(self, asset_file: str, name: str, is_reference: bool = False) -> int:
        """Add a character from an MJCF ``asset_file`` to every env; return its char_id.

        The file holds only the character, with a free joint on its root body and one
        actuator per dof; the engine adds the ground and lights. A reference character
        (``is_reference``) is display-only: it does not collide, has no actuators and is
        not pulled by gravity; the env sets its state every control step.

        Raises:
            MimicKitError: missing or malformed file, name used twice, called after
                :meth:`initialize`.
        """

    @abc.abstractmethod
    def initialize(self) -> None:
        """Build the simulation once all characters are added; envs start at the default pose."""

    # ------------------------------------------------------------------ description
    @abc.abstractmethod
    def get_dof_names(self, char_id: int) -> List[str]:
        """Names of the character's dofs (joint names, without the engine's prefix)."""

    @abc.abstractmethod
    def get_body_names(self, char_id: int) -> List[str]:
        """Names of the character's bodies, root first (without the engine's prefix)."""

    def get_num_dofs(self, char_id: int) -> int:
        """Number of the character's dofs (``len(get_dof_names(char_id))``)."""
        return len(self.get_dof_names(char_id))

    def get_num_bodies(self, char_id: int) -> int:
        """Number of the character's bodies, root included (``len(get_body_names(char_id))``)."""
        return len(self.get_body_names(char_id))

    @abc.abstractmethod
    def get_dof_limits(self, char_id: int) -> Tuple[Tensor, Tensor]:
        """Lower and upper dof limits ``([num_dofs], [num_dofs])`` (rad)."""

    @abc.abstractmethod
    def get_torque_limits(self, char_id: int) -> Tensor:
        """Largest actuator torque magnitude per dof ``[num_dofs]`` (N·m)."""

    @abc.abstractmethod
    def get_pd_gains(self, char_id: int) -> Tuple[Tensor, Tensor]:
        """PD gains ``(kp [num_dofs] N·m/rad, kd [num_dofs] N·m·s/rad)``."""

    @abc.abstractmethod
    def set_pd_gains(self, char_id: int, kp: Tensor, kd: Tensor) -> None:
        """Set the PD gains ``kp``, ``kd`` ``[num_dofs]`` of the character in every env."""

    # ------------------------------------------------------------------ simulation
    def set_joint_dynamics(self, char_id: int, dynamics: JointDynamics) -> None:
        """Give the character's dofs the armature, friction and torque-speed limit of ``dynamics``.

        Call between :meth:`add_character` and :meth:`initialize`; every env gets them. Below
        the torque-speed line the actuators follow their PD law (or torque command) unchanged.

        Raises:
            MimicKitError: the engine cannot set them; a ``max_speed`` on a dof without a torque limit.
            RuntimeError: after :meth:`initialize`.
            ValueError: a reference character, wrong shapes or a ``max_speed`` that is not > 0.
        """
        raise MimicKitError("engine '{}' cannot set joint armature, friction or torque-speed limits (the env YAML's "
                            "'actuators' block): use the mujoco or mujoco_warp engine, or leave the block out".format(
                                self._config.engine_name))

    @abc.abstractmethod
    def set_cmd(self, char_id: int, cmd: Tensor) -> None:
        """Command ``[num_envs, num_dofs]`` applied from the next :meth:`step` on.

        ``pos`` control mode: PD targets (rad); ``torque``: joint torques (N·m). Values
        beyond the actuator's range are clipped by the simulator.
        """

    @abc.abstractmethod
    def step(self) -> None:
        """Advance every env by :attr:`control_dt` with :attr:`substeps` physics steps."""

    @abc.abstractmethod
    def pop_failed_envs(self) -> Tensor:
        """BoolTensor ``[num_envs]``: envs whose simulation went bad since the last call.

        Bad means a non-finite state or a simulator warning (diverged accelerations,
        contact buffer full, ...). The simulator keeps running them; the caller should
        reset them.
        """

    # ------------------------------------------------------------------ getters
    @abc.abstractmethod
    def get_root_pos(self, char_id: int) -> Tensor:
        """Root body position ``[num_envs, 3]`` (m, world)."""

    @abc.abstractmethod
    def get_root_rot(self, char_id: int) -> Tensor:
        """Root body rotation ``[num_envs, 4]`` (x, y, z, w; world)."""

    @abc.abstractmethod
    def get_root_vel(self, char_id: int) -> Tensor:
        """Linear velocity of the root body's origin ``[num_envs, 3]`` (m/s, world)."""

    @abc.abstractmethod
    def get_root_ang_vel(self, char_id: int) -> Tensor:
        """Angular velocity of the root body ``[num_envs, 3]`` (rad/s, world)."""

    @abc.abstractmethod
    def get_dof_pos(self, char_id: int) -> Tensor:
        """Dof positions ``[num_envs, num_dofs]`` (rad)."""

    @abc.abstractmethod
    def get_dof_vel(self, char_id: int) -> Tensor:
        """Dof velocities ``[num_envs, num_dofs]`` (rad/s)."""

    @abc.abstractmethod
    def get_dof_forces(self, char_id: int) -> Tensor:
        """Actuator torque at each dof in the last physics step ``[num_envs, num_dofs]`` (N·m)."""

    @abc.abstractmethod
    def get_body_pos(self, char_id: int) -> Tensor:
        """Body frame origins ``[num_envs, num_bodies, 3]`` (m, world)."""

    @abc.abstractmethod
    def get_body_rot(self, char_id: int) -> Tensor:
        """Body frame rotations ``[num_envs, num_bodies, 4]`` (x, y, z, w; world)."""

    @abc.abstractmethod
    def get_body_vel(self, char_id: int) -> Tensor:
        """Linear velocities of the body frame origins ``[num_envs, num_bodies, 3]`` (m/s, world)."""

    @abc.abstractmethod
    def get_body_ang_vel(self, char_id: int) -> Tensor:
        """Body angular velocities ``[num_envs, num_bodies, 3]`` (rad/s, world)."""

    @abc.abstractmethod
    def get_contact_forces(self, char_id: int) -> Tensor:
        """Net contact force on each body ``[num_envs, num_bodies, 3]`` (N, world), from all contacts."""

    @abc.abstractmethod
    def get_ground_contacts(self, char_id: int) -> Tensor:
        """BoolTensor ``[num_envs, num_bodies]``: the body touches the ground plane."""

    # ------------------------------------------------------------------ setters
    @abc.abstractmethod
    def set_root_pos(self, char_id: int, env_ids: Tensor, root_pos: Tensor) -> None:
        """Set the root position ``[k, 3]`` (m, world) of envs ``env_ids`` ``[k]``."""

    @abc.abstractmethod
    def set_root_rot(self, char_id: int, env_ids: Tensor, root_rot: Tensor) -> None:
        """Set the root rotation ``[k, 4]`` (x, y, z, w; world)."""

    @abc.abstractmethod
    def set_root_vel(self, char_id: int, env_ids: Tensor, root_vel: Tensor) -> None:
        """Set the root linear velocity ``[k, 3]`` (m/s, world)."""

    @abc.abstractmethod
    def set_root_ang_vel(self, char_id: int, env_ids: Tensor, root_ang_vel: Tensor) -> None:
        """Set the root angular velocity ``[k, 3]`` (rad/s, world)."""

    @abc.abstractmethod
    def set_dof_pos(self, char_id: int, env_ids: Tensor, dof_pos: Tensor) -> None:
        """Set the dof positions ``[k, num_dofs]`` (rad)."""

    @abc.abstractmethod
    def set_dof_vel(self, char_id: int, env_ids: Tensor, dof_vel: Tensor) -> None:
        """Set the dof velocities ``[k, num_dofs]`` (rad/s)."""

    # ------------------------------------------------------------------ per-env physics
    # Domain randomisation (mimickit/envs/domain_rand.py) changes these per env. Engines that
    # cannot raise MimicKitError (the defaults below); the mujoco and mujoco_warp engines can.
    def get_body_mass(self, char_id: int) -> Tensor:
        """Mass of each of the character's bodies in each env ``[num_envs, num_bodies]`` (kg)."""
        raise self._unsupported("body masses")

    def set_body_mass(self, char_id: int, env_ids: Tensor, mass: Tensor) -> None:
        """Set the body masses ``[k, num_bodies]`` (kg, > 0) of envs ``env_ids``.

        Each body's rotational inertia is scaled with its mass from the file's values (the
        same shape, denser or lighter), and the model's mass-derived constants follow.

        Raises:
            MimicKitError: the engine cannot change masses per env.
            ValueError: wrong shapes or a mass <= 0.
        """
        raise self._unsupported("body masses")

    def get_body_com(self, char_id: int) -> Tensor:
        """Centre of mass of each body in its body frame ``[num_envs, num_bodies, 3]`` (m)."""
        raise self._unsupported("centres of mass")

    def set_body_com(self, char_id: int, env_ids: Tensor, com: Tensor) -> None:
        """Set the centres of mass ``[k, num_bodies, 3]`` (m, each body's frame) of envs ``env_ids``.

        Raises:
            MimicKitError: the engine cannot move centres of mass per env.
            ValueError: wrong shapes.
        """
        raise self._unsupported("centres of mass")

    def set_friction_scale(self, env_ids: Tensor, scale: Tensor) -> None:
        """Scale the sliding friction of every geom of envs ``env_ids`` (ground included) by ``scale`` ``[k]``.

        The scale multiplies the file's (and the ground's) coefficients, not the current
        ones; a contact's coefficient (the larger of its two geoms') is scaled by the same
        factor. ``scale = 1`` restores them.

        Raises:
            MimicKitError: the engine cannot change friction per env.
            ValueError: wrong shapes.
        """
        raise self._unsupported("friction")

    def set_actuator_scales(self, char_id: int, env_ids: Tensor, kp_scale: Tensor, kd_scale: Tensor,
                            strength_scale: Tensor) -> None:
        """Scale the actuators of the character in envs ``env_ids``, each ``[k, num_dofs]`` (unitless).

        ``pos`` mode: the PD law becomes ``strength * (kp_scale * kp * (target - q) - kd_scale * kd * qd)``
        with the gains of :meth:`set_pd_gains` (which keeps the scales); ``torque`` mode: the
        applied torque is ``strength * cmd`` (``cmd`` clipped to the torque limits first) and
        the gain scales are only stored. Ones restore the nominal actuators.

        Raises:
            MimicKitError: the engine cannot scale actuators per env.
            ValueError: a reference character or wrong shapes.
        """
        raise self._unsupported("actuator scales")

    def _unsupported(self, what: str) -> MimicKitError:
        return MimicKitError("engine '{}' cannot set {} per env (domain randomisation): use the mujoco or "
                             "mujoco_warp engine, or leave the domain_rand keys that need it out".format(
                                 self._config.engine_name, what))

    # ------------------------------------------------------------------ display
    @abc.abstractmethod
    def render(self) -> None:
        """Update the interactive viewer (env 0) if the engine was built with ``visualize``."""

    @abc.abstractmethod
    def render_frame(self, width: int, height: int) -> np.ndarray:
        """Offscreen image of env 0, ``[height, width, 3]`` uint8, tracking the first character.

        Raises:
            MimicKitError: no offscreen OpenGL context could be made.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the viewer, renderers and simulation threads."""

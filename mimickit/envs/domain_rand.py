"""Domain randomisation of a character env: the ``domain_rand`` block of its YAML.

Every key is optional and off when absent; an absent or empty block changes nothing (no
random numbers are drawn, the engine is not touched). Ranges are ``[low, high]`` and each
value is drawn **per env at every reset, uniform** in its range (per body or per dof
where the key says so, independently), unless a key says otherwise:

- ``friction_scale`` (unitless): multiplies the sliding friction of every geom of the env,
  ground included (:meth:`Engine.set_friction_scale`); the shipped characters' and the
  ground's coefficients are 1, so it is the contacts' coefficient.
- ``added_base_mass`` (kg): added to the root body's mass.
- ``com_offset`` (m, root body frame): ``[[x_low, x_high], [y_low, y_high], [z_low, z_high]]``,
  added to the root body's centre of mass.
- ``link_mass_scale`` (unitless): multiplies the mass of every non-root body, one draw per body.
- ``kp_scale``, ``kd_scale`` (unitless, ``pos`` control mode only): multiply each dof's PD
  gains, one draw per dof.
- ``motor_strength_scale`` (unitless): multiplies each dof's actuator output, one draw per dof
  (:meth:`Engine.set_actuator_scales`).
- ``push`` (:class:`PushConfig`): velocity impulses on the root at random times.
- ``obs_noise`` (``{term: std}``, in the term's units of :meth:`BaseEnv.get_obs_layout`):
  zero-mean Gaussian noise added to each element of the named terms of the policy's
  observation at every reset and step (fresh each time).
- ``action_delay_steps`` (control steps, integers): ``[low, high]``; the engine receives the
  command of ``d`` steps ago, ``d`` drawn uniform in ``{low, ..., high}`` per env at reset.
- ``action_filter`` (:class:`ActionFilterConfig`): a first-order low-pass on the commands
  (the role of AWD's ``use_filter``), before the delay.

Masses are set with the bodies' inertias scaled alike (:meth:`Engine.set_body_mass`). The drawn
values are :meth:`DomainRand.values` (in ``info["domain_rand"]`` of every step).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mimickit.engines.engine import Engine
from mimickit.envs.base_env import ObsSlice
from mimickit.util.config import check_key, from_dict, load_yaml
from mimickit.util.errors import MimicKitError, require_file


def _check_range(value: Optional[Sequence[float]], source: str, key: str, low: float = -math.inf,
                 strict: bool = False) -> None:
    """Raise :class:`MimicKitError` unless ``value`` is None or ``[a, b]`` with ``low <= a <= b`` (``low < a``)."""
    if value is None:
        return
    ok = len(value) == 2 and value[0] <= value[1] and (value[0] > low if strict else value[0] >= low)
    bound = "" if low == -math.inf else " and low {} {:g}".format(">" if strict else ">=", low)
    check_key(ok, source, key, value, "[low, high] with low <= high" + bound)


@dataclasses.dataclass
class PushConfig:
    """``domain_rand.push``: the root's velocity changed by a random impulse at random times.

    Attributes:
        interval_s: ``[low, high]`` s from a reset to the first push and between pushes, uniform.
        max_lin_vel: ``[x, y, z]`` m/s, world frame: each component of the root's linear
            velocity change is uniform in ``[-max, max]``.
        max_ang_vel: ``[x, y, z]`` rad/s, world frame: likewise for its angular velocity.
        horizontal_speed: m/s; when given, each push changes the root's horizontal velocity by
            exactly this much, in a direction uniform on the circle (a push of a given
            magnitude, for robustness tests), instead of by ``max_lin_vel``.
    """

    interval_s: List[float]
    max_lin_vel: List[float] = dataclasses.field(default_factory=lambda: [0.5, 0.5, 0.0])
    max_ang_vel: List[float] = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0])
    horizontal_speed: Optional[float] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for a bad range or bound."""
        _check_range(self.interval_s, source, "interval_s", 0.0, strict=True)
        for key in ("max_lin_vel", "max_ang_vel"):
            value = getattr(self, key)
            check_key(len(value) == 3 and min(value) >= 0, source, key, value, "[x, y, z] >= 0")
        speed = self.horizontal_speed
        check_key(speed is None or speed >= 0, source, "horizontal_speed", speed, ">= 0 (m/s)")


@dataclasses.dataclass
class ActionFilterConfig:
    """``domain_rand.action_filter``: ``y_t = y_(t-1) + alpha (a_t - y_(t-1))`` on the commands.

    Give exactly one of ``alpha`` (in (0, 1]; 1: no filtering) or ``cutoff_hz`` (Hz, > 0;
    ``alpha = w / (1 + w)``, ``w = 2 pi cutoff_hz dt``, dt the control step: the discretised
    RC filter). After a reset the env's first command passes unfiltered.
    """

    alpha: Optional[float] = None
    cutoff_hz: Optional[float] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` unless exactly one key is given, in range."""
        if (self.alpha is None) == (self.cutoff_hz is None):
            raise MimicKitError("{}: give exactly one of keys 'alpha' and 'cutoff_hz'".format(source))
        if self.alpha is not None:
            check_key(0 < self.alpha <= 1, source, "alpha", self.alpha, "in (0, 1]")
        if self.cutoff_hz is not None:
            check_key(self.cutoff_hz > 0, source, "cutoff_hz", self.cutoff_hz, "> 0 (Hz)")

    def coefficient(self, dt: float) -> float:
        """The filter's ``alpha`` at control step ``dt`` (s)."""
        if self.alpha is not None:
            return self.alpha
        assert self.cutoff_hz is not None
        w = 2.0 * math.pi * self.cutoff_hz * dt
        return w / (1.0 + w)


@dataclasses.dataclass
class DomainRandConfig:
    """The ``domain_rand`` block of an env YAML; keys, units and distributions in the module docstring."""

    friction_scale: Optional[List[float]] = None
    added_base_mass: Optional[List[float]] = None
    com_offset: Optional[List[List[float]]] = None
    link_mass_scale: Optional[List[float]] = None
    kp_scale: Optional[List[float]] = None
    kd_scale: Optional[List[float]] = None
    motor_strength_scale: Optional[List[float]] = None
    push: Optional[PushConfig] = None
    obs_noise: Dict[str, float] = dataclasses.field(default_factory=dict)
    action_delay_steps: Optional[List[int]] = None
    action_filter: Optional[ActionFilterConfig] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for a bad range."""
        for key in ("friction_scale", "link_mass_scale", "kp_scale", "kd_scale", "motor_strength_scale"):
            _check_range(getattr(self, key), source, key, 0.0, strict=True)
        _check_range(self.added_base_mass, source, "added_base_mass")
        if self.com_offset is not None:
            check_key(len(self.com_offset) == 3, source, "com_offset", self.com_offset,
                      "[[x_low, x_high], [y_low, y_high], [z_low, z_high]] (m)")
            for axis, value in zip("xyz", self.com_offset):
                _check_range(value, source, "com_offset ({})".format(axis))
        for term, std in self.obs_noise.items():
            check_key(std >= 0, source, "obs_noise.{}".format(term), std, ">= 0 (the term's units)")
        _check_range(self.action_delay_steps, source, "action_delay_steps", 0.0)


# the keys added to the file's value (nominal 0); the others multiply it (nominal 1)
ADDITIVE_KEYS = ("added_base_mass", "com_offset")


def load_perturbations(path: str) -> Dict[str, DomainRandConfig]:
    """A perturbation set (``--perturbations``): a YAML mapping of names to ``domain_rand`` blocks.

    Each named perturbation is a randomisation as the env YAML's (keys above), e.g.
    ``push_1.0: {push: {interval_s: [3, 4], horizontal_speed: 1.0}}`` or
    ``friction_0.3: {friction_scale: [0.3, 0.3]}``; ``nominal: {}`` tests the file's physics.

    Raises:
        MimicKitError: a missing or empty file, or a bad block (naming the file and the key).
    """
    data = load_yaml(require_file(path, "perturbation set (--perturbations)"))
    if not data:
        raise MimicKitError("{}: expected a mapping of perturbation names to domain_rand blocks".format(path))
    sets = {}
    for name, block in data.items():
        if not isinstance(block, dict):
            raise MimicKitError("{}: key '{}': expected a domain_rand block (a mapping), got {!r}".format(
                path, name, block))
        sets[str(name)] = from_dict(DomainRandConfig, block, "{}: key '{}'".format(path, name))
    return sets


def uniform(low: float, high: float, shape: tuple, device: torch.device) -> Tensor:
    """``shape`` draws, uniform in ``[low, high]``."""
    return low + (high - low) * torch.rand(shape, device=device)


def low_pass(prev: Tensor, action: Tensor, alpha: float) -> Tensor:
    """First-order low-pass step ``prev + alpha (action - prev)``; ``[n, dim]`` in, ``[n, dim]`` out."""
    return prev + alpha * (action - prev)


class PhysicsRand:
    """Per-episode physics of one character: friction, masses, centre of mass, actuators.

    Raises:
        MimicKitError: ``kp_scale``/``kd_scale`` in ``torque`` mode, or an ``added_base_mass``
            that would leave the root without mass (naming ``source`` and the key); the
            engine's own error when it cannot set a quantity per env.
    """

    def __init__(self, cfg: DomainRandConfig, engine: Engine, char_id: int, source: str):
        self._cfg, self._engine, self._char_id = cfg, engine, char_id
        n, device = engine.num_envs, engine.device
        for key in ("kp_scale", "kd_scale"):
            if getattr(cfg, key) is not None and engine.control_mode != "pos":
                raise MimicKitError("{}: key '{}' needs the engine's control_mode pos (it is {})".format(
                    source, key, engine.control_mode))
        self._mass = cfg.added_base_mass is not None or cfg.link_mass_scale is not None
        self._actuators = any(getattr(cfg, k) is not None for k in ("kp_scale", "kd_scale", "motor_strength_scale"))
        self._nominal_mass = engine.get_body_mass(char_id)[0].clone() if self._mass else None
        self._nominal_com = engine.get_body_com(char_id)[0].clone() if cfg.com_offset is not None else None
        if cfg.added_base_mass is not None and self._nominal_mass is not None:
            base = float(self._nominal_mass[0])
            check_key(base + cfg.added_base_mass[0] > 0, source, "added_base_mass", cfg.added_base_mass,
                      "above -{:g} kg (the root's mass)".format(base))
        # the drawn values, [num_envs, ...], nominal until the first reset
        num_bodies, num_dofs = engine.get_num_bodies(char_id), engine.get_num_dofs(char_id)
        shapes = {"friction_scale": (n,), "added_base_mass": (n,), "com_offset": (n, 3),
                  "link_mass_scale": (n, num_bodies - 1), "kp_scale": (n, num_dofs), "kd_scale": (n, num_dofs),
                  "motor_strength_scale": (n, num_dofs)}
        self.values: Dict[str, Tensor] = {
            key: (torch.zeros if key in ADDITIVE_KEYS else torch.ones)(shape, device=device)
            for key, shape in shapes.items() if getattr(cfg, key) is not None}

    def _draw(self, key: str, env_ids: Tensor) -> None:
        """Draw ``values[key]`` of ``env_ids`` uniform in the key's range (per axis for ``com_offset``)."""
        value = self.values[key]
        shape = (len(env_ids),) + tuple(value.shape[1:])
        if key == "com_offset":
            ranges = torch.tensor(self._cfg.com_offset, device=value.device)  # [3, 2]
            value[env_ids] = ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * torch.rand(shape, device=value.device)
        else:
            low, high = getattr(self._cfg, key)
            value[env_ids] = uniform(low, high, shape, value.device)

    def reset(self, env_ids: Tensor) -> None:
        """Draw the configured quantities of envs ``env_ids`` ``[k]`` and set them in the engine."""
        for key in self.values:
            self._draw(key, env_ids)
        self._write(env_ids)

    def restore(self) -> None:
        """Give every env the nominal value of each configured quantity (the file's physics)."""
        for key, value in self.values.items():
            value.fill_(0.0 if key in ADDITIVE_KEYS else 1.0)
        self._write(torch.arange(self._engine.num_envs, device=self._engine.device))

    def _write(self, env_ids: Tensor) -> None:
        """Set the current values of envs ``env_ids`` in the engine."""
        engine, char_id, v = self._engine, self._char_id, self.values
        if "friction_scale" in v:
            engine.set_friction_scale(env_ids, v["friction_scale"][env_ids])
        if self._nominal_mass is not None:
            mass = self._nominal_mass.expand(len(env_ids), -1).clone()
            if "link_mass_scale" in v:
                mass[:, 1:] *= v["link_mass_scale"][env_ids]
            if "added_base_mass" in v:
                mass[:, 0] += v["added_base_mass"][env_ids]
            engine.set_body_mass(char_id, env_ids, mass)
        if self._nominal_com is not None:
            com = self._nominal_com.expand(len(env_ids), -1, -1).clone()
            com[:, 0] += v["com_offset"][env_ids]
            engine.set_body_com(char_id, env_ids, com)
        if self._actuators:
            ones = torch.ones(len(env_ids), engine.get_num_dofs(char_id), device=engine.device)
            scales = [v[k][env_ids] if k in v else ones for k in ("kp_scale", "kd_scale", "motor_strength_scale")]
            engine.set_actuator_scales(char_id, env_ids, *scales)


class ActionChannel:
    """What happens to a command between the policy and the engine: low-pass, then delay.

    ``delay_range``: ``[low, high]`` control steps (None: no delay); ``alpha``: the filter's
    coefficient (None: no filter). Commands are ``[num_envs, dim]``.
    """

    def __init__(self, delay_range: Optional[List[int]], alpha: Optional[float], num_envs: int, dim: int,
                 device: torch.device):
        self._delay_range, self._alpha = delay_range, alpha
        depth = 1 + (delay_range[1] if delay_range is not None else 0)
        self._history = torch.zeros(num_envs, depth, dim, device=device)  # newest first
        self._filtered = torch.zeros(num_envs, dim, device=device)
        self._fresh = torch.ones(num_envs, dtype=torch.bool, device=device)  # no command since the reset
        self.delay = torch.zeros(num_envs, dtype=torch.long, device=device)

    def reset(self, env_ids: Tensor) -> None:
        """Forget the commands of ``env_ids`` and draw their delays (uniform integers in the range)."""
        self._fresh[env_ids] = True
        if self._delay_range is not None:
            low, high = self._delay_range
            self.delay[env_ids] = torch.randint(low, high + 1, (len(env_ids),), device=self.delay.device)

    def __call__(self, action: Tensor) -> Tensor:
        """The command ``[num_envs, dim]`` the engine receives this step for the policy's ``action``.

        Until an env has ``d`` commands since its reset, the oldest one stands in for the missing.
        """
        fresh = self._fresh.unsqueeze(-1)
        if self._alpha is not None:
            self._filtered = torch.where(fresh, action, low_pass(self._filtered, action, self._alpha))
            action = self._filtered
        history = torch.cat([action.unsqueeze(1), self._history[:, :-1]], dim=1)
        self._history = torch.where(fresh.unsqueeze(1), action.unsqueeze(1).expand_as(history), history)
        self._fresh[:] = False
        return self._history[torch.arange(len(action), device=action.device), self.delay]


class PushSchedule:
    """Random root velocity impulses (:class:`PushConfig`) of one character."""

    def __init__(self, cfg: PushConfig, num_envs: int, device: torch.device):
        self._cfg = cfg
        self.next_time = torch.zeros(num_envs, device=device)  # s of episode time
        self.lin_vel = torch.zeros(num_envs, 3, device=device)  # the last push's change, m/s world
        self.ang_vel = torch.zeros(num_envs, 3, device=device)  # rad/s world

    def _interval(self, k: int) -> Tensor:
        return uniform(self._cfg.interval_s[0], self._cfg.interval_s[1], (k,), self.next_time.device)

    def reset(self, env_ids: Tensor) -> None:
        """Draw the first push time of ``env_ids`` (episode time, s)."""
        self.next_time[env_ids] = self._interval(len(env_ids))
        self.lin_vel[env_ids] = 0.0
        self.ang_vel[env_ids] = 0.0

    def apply(self, engine: Engine, char_id: int, time: Tensor) -> None:
        """Push the envs whose episode ``time`` ``[num_envs]`` (s) reached their push time; draw the next."""
        ids = torch.nonzero(time >= self.next_time - 1e-6).reshape(-1)
        if len(ids) == 0:
            return
        device = time.device
        if self._cfg.horizontal_speed is None:
            lin = (2.0 * torch.rand(len(ids), 3, device=device) - 1.0) * torch.tensor(self._cfg.max_lin_vel,
                                                                                      device=device)
        else:
            angle = 2.0 * math.pi * torch.rand(len(ids), device=device)
            lin = self._cfg.horizontal_speed * torch.stack([angle.cos(), angle.sin(), torch.zeros_like(angle)], -1)
        ang = (2.0 * torch.rand(len(ids), 3, device=device) - 1.0) * torch.tensor(self._cfg.max_ang_vel, device=device)
        engine.set_root_vel(char_id, ids, engine.get_root_vel(char_id)[ids] + lin)
        engine.set_root_ang_vel(char_id, ids, engine.get_root_ang_vel(char_id)[ids] + ang)
        self.lin_vel[ids], self.ang_vel[ids] = lin, ang
        self.next_time[ids] += self._interval(len(ids))


def obs_noise_std(stds: Dict[str, float], layout: List[ObsSlice], source: str, device: torch.device) -> Tensor:
    """``[obs_dim]`` noise std of each observation element: ``stds[term]`` over the term's slice, else 0.

    Raises:
        MimicKitError: naming ``source`` and the key for a term the layout does not have.
    """
    names = [part.name for part in layout]
    std = torch.zeros(layout[-1].end if layout else 0, device=device)
    for term, value in stds.items():
        if term not in names:
            raise MimicKitError("{}: key 'domain_rand.obs_noise.{}': no observation term '{}' (terms: {})".format(
                source, term, term, ", ".join(names)))
        part = layout[names.index(term)]
        std[part.start:part.end] = value
    return std


class DomainRand:
    """The randomisation of one character env, from its :class:`DomainRandConfig`.

    The env calls :meth:`reset` for the envs it resets (before placing the characters),
    :meth:`before_step` with each action (it returns the command for the engine) and
    :meth:`observe` on each observation.

    Raises:
        MimicKitError: see :class:`PhysicsRand`.
    """

    def __init__(self, cfg: DomainRandConfig, engine: Engine, char_id: int, source: str):
        self._cfg, self._engine, self._char_id, self._source = cfg, engine, char_id, source
        n, device = engine.num_envs, engine.device
        self._physics = PhysicsRand(cfg, engine, char_id, source)
        alpha = cfg.action_filter.coefficient(engine.control_dt) if cfg.action_filter is not None else None
        self._actions = (ActionChannel(cfg.action_delay_steps, alpha, n, engine.get_num_dofs(char_id), device)
                         if cfg.action_delay_steps is not None or alpha is not None else None)
        self._push = PushSchedule(cfg.push, n, device) if cfg.push is not None else None
        self._noise_std: Optional[Tensor] = None  # [obs_dim], from the env's layout at the first observation

    def reset(self, env_ids: Tensor) -> None:
        """Draw every configured quantity of envs ``env_ids`` ``[k]`` and set it in the engine."""
        self._physics.reset(env_ids)
        if self._actions is not None:
            self._actions.reset(env_ids)
        if self._push is not None:
            self._push.reset(env_ids)

    def before_step(self, action: Tensor, time: Tensor) -> Tensor:
        """Apply the pushes due at episode ``time`` ``[num_envs]`` (s); return the engine's command for ``action``."""
        if self._push is not None:
            self._push.apply(self._engine, self._char_id, time)
        return self._actions(action) if self._actions is not None else action

    def observe(self, obs: Tensor, layout: Callable[[], List[ObsSlice]]) -> Tensor:
        """``obs`` ``[num_envs, obs_dim]`` with the configured noise; ``layout`` gives the env's obs layout.

        Raises:
            MimicKitError: an ``obs_noise`` term the layout does not have (at the first call).
        """
        if not self._cfg.obs_noise:
            return obs
        if self._noise_std is None:
            self._noise_std = obs_noise_std(self._cfg.obs_noise, layout(), self._source, obs.device)
        return obs + torch.randn_like(obs) * self._noise_std

    def restore(self) -> None:
        """Put every env's randomised physics back to nominal (before another randomisation replaces this one)."""
        self._physics.restore()

    def summary(self) -> Dict[str, float]:
        """``dr_<key>_mean``, ``_min`` and ``_max`` of each current draw over envs (and bodies or dofs), for the log."""
        stats: Dict[str, float] = {}
        for key, value in self.values().items():
            value = value.float()
            stats.update({"dr_{}_mean".format(key): float(value.mean()), "dr_{}_min".format(key): float(value.min()),
                          "dr_{}_max".format(key): float(value.max())})
        return stats

    def values(self) -> Dict[str, Tensor]:
        """The current draws by key, ``[num_envs, ...]`` (units of the module docstring).

        Physics keys as configured (``link_mass_scale`` ``[num_envs, num_bodies - 1]``, the gain
        scales ``[num_envs, num_dofs]``), ``action_delay_steps`` (long), ``push_lin_vel``
        and ``push_ang_vel`` (the last push's change, 0 before the first).
        """
        values = dict(self._physics.values)
        if self._cfg.action_delay_steps is not None and self._actions is not None:
            values["action_delay_steps"] = self._actions.delay
        if self._push is not None:
            values["push_lin_vel"] = self._push.lin_vel
            values["push_ang_vel"] = self._push.ang_vel
        return values

"""The interface every environment implements.

An environment holds ``num_envs`` copies of a task simulated in lock step. All tensors
are batched over environments (first dimension ``num_envs``) and live on ``device``.

Episode ends are reported by :meth:`BaseEnv.step` in ``done`` with :class:`DoneFlags`.
``step`` does not reset environments itself: the caller resets those whose ``done`` is
not ``NULL`` with ``reset(env_ids)`` before the next step.
"""
from __future__ import annotations

import abc
import dataclasses
import enum
from typing import Any, Dict, List, NamedTuple, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import Tensor


class DoneFlags(enum.IntEnum):
    """Why an episode ended, as stored in the ``done`` tensor of :meth:`BaseEnv.step`."""

    NULL = 0  # still running
    FAIL = 1  # failed (e.g. the character fell)
    SUCC = 2  # reached the task's goal (e.g. the reference motion ended)
    TIME = 3  # ran out of time (episode length), neither success nor failure


@dataclasses.dataclass
class BoxSpace:
    """A box of real vectors: ``low <= x <= high`` elementwise.

    ``low`` and ``high`` are ``[dim]`` tensors (``-inf`` / ``inf`` where unbounded) on the
    environment's device; ``shape`` is ``(dim,)``. ``neutral`` (optional, ``[dim]``) is the
    action that leaves the system at rest (e.g. PD targets at the default pose); agents
    centre their action normalisation on it (default: the middle of the box).
    """

    low: Tensor
    high: Tensor
    neutral: Optional[Tensor] = None

    @property
    def shape(self) -> Tuple[int, ...]:
        """``(dim,)``, the shape of one sample."""
        return tuple(self.low.shape)

    @staticmethod
    def unbounded(dim: int, device: str = "cpu") -> "BoxSpace":
        """A ``[dim]`` box with no bounds."""
        inf = torch.full((dim,), float("inf"), device=device)
        return BoxSpace(low=-inf, high=inf)


class ObsSlice(NamedTuple):
    """One named part of an observation vector: ``obs[..., start:end]``.

    ``units``: ``m``, ``m/s``, ``rad/s``, ``tan_norm`` (a rotation as its rotated x and z
    axes, unitless), ``1`` (unitless), ...; ``frame``: ``world``, ``heading`` (the root's
    heading frame), ``parent`` (relative to the parent body), ``none`` or ``unspecified``.
    """

    name: str
    start: int
    end: int
    units: str
    frame: str


class BaseEnv(abc.ABC):
    """``num_envs`` environments stepped together; see the module docstring for episode ends.

    Subclasses registered with :func:`mimickit.envs.env_builder.register_env` are built
    by :func:`mimickit.envs.env_builder.build_env`, which states the constructor keywords.
    """

    def __init__(self, num_envs: int, device: str):
        self.num_envs = num_envs
        self.device = device

    @abc.abstractmethod
    def reset(self, env_ids: Optional[Tensor] = None) -> Tensor:
        """Start new episodes in ``env_ids`` (``[k]`` long; ``None``: every environment).

        Returns:
            Observations of all environments, ``[num_envs, obs_dim]``.
        """

    @abc.abstractmethod
    def step(self, action: Tensor) -> Tuple[Tensor, Tensor, Tensor, Dict[str, Any]]:
        """Apply ``action`` (``[num_envs, action_dim]``) and advance one control step.

        Returns:
            ``(obs, reward, done, info)``: observations ``[num_envs, obs_dim]``, rewards
            ``[num_envs]`` float, ``done`` ``[num_envs]`` long holding :class:`DoneFlags`
            values, and a dict of extra per-step tensors (logging, diagnostics).
        """

    @abc.abstractmethod
    def get_obs_space(self) -> BoxSpace:
        """The space of one environment's observation, shape ``(obs_dim,)``."""

    @abc.abstractmethod
    def get_action_space(self) -> BoxSpace:
        """The space of one environment's action, shape ``(action_dim,)``."""

    def get_obs_layout(self) -> List[ObsSlice]:
        """The named parts of one observation, in order, covering ``[0, obs_dim)``.

        Exported policies ship it so that a deployment can build the same vector. The
        default is one part, ``obs``, of unspecified units; environments override it.
        """
        return [ObsSlice("obs", 0, self.get_obs_space().shape[0], "unspecified", "unspecified")]

    def get_critic_obs(self) -> Optional[Tensor]:
        """The critic's privileged observation of the current state, or None (the default).

        Environments with an asymmetric actor-critic (e.g. ``actor_obs`` in a character env's
        YAML) return ``[num_envs, critic_obs_dim]``, without observation noise, of the state
        the last :meth:`reset` or :meth:`step` observed (after a step: before any reset).
        None: the critic takes the actor's observation.
        """
        return None

    def get_critic_obs_layout(self) -> Optional[List[ObsSlice]]:
        """The named parts of :meth:`get_critic_obs`, or None when it is None."""
        return None

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the simulator and any viewer or video writer. Safe to call twice; the default does nothing."""


@runtime_checkable
class AMPEnvLike(Protocol):
    """What an adversarial agent needs of an environment beside :class:`BaseEnv`.

    AMP observations of the simulation in ``info["amp_obs"]`` of every step
    (``[num_envs, amp_obs_dim]``) and of the demonstrations
    (:class:`mimickit.envs.amp_env.AMPEnv` has them).
    """

    amp_obs_dim: int

    def fetch_demo_amp_obs(self, num_samples: int) -> Tensor:
        """``[num_samples, amp_obs_dim]`` AMP observations of demonstration clips."""

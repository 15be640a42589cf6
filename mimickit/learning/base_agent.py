"""What every learning agent shares: the runner's interface, normaliser, action scaling and buffer.

:class:`BaseAgent` implements :class:`mimickit.learning.runner.Agent`; the loop (rollout,
resets, logging, checkpoints, tests) is :class:`mimickit.learning.runner.Runner`'s.

Actions. The policy acts in normalised units: on each dimension with finite bounds
``[low, high]`` the environment receives ``offset + scale * a`` with
``offset = (high + low) / 2`` and ``scale = (high - low) / 2`` (so ``a`` in ``[-1, 1]``
spans the bounds); unbounded dimensions are passed as they are. Sampled actions are not
clipped; the environment decides what to do with actions beyond the bounds.

Asymmetric actor-critic. An environment whose :meth:`BaseEnv.get_critic_obs_layout` is not
None (e.g. ``actor_obs`` in a character env's YAML) gives the critic a privileged
observation of its own: the agent stores it beside the actor's (buffers ``critic_obs``,
``next_critic_obs``) and normalises it with a normaliser of its own (:attr:`BaseAgent.critic_obs_norm`,
saved in checkpoints); the exported policy takes the actor's observation alone.

Minibatches. An update splits the iteration's ``steps_per_iter * num_envs`` samples into a
number of minibatches fixed by the config (:func:`minibatches`), whatever share of them
is valid, so every process of a distributed run takes the same optimiser steps.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, BoxSpace
from mimickit.learning.experience_buffer import ExperienceBuffer
from mimickit.learning.export import DeployModule, make_deploy_policy
from mimickit.learning.networks import MATMUL_DTYPES, resolve_matmul_dtype
from mimickit.learning.normalizer import Normalizer
from mimickit.learning.runner import RunnerConfig, Transition
from mimickit.util import distributed
from mimickit.util.config import check_key
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class OptimizerConfig:
    """A ``torch.optim`` optimiser: ``{type: Adam, learning_rate: 2e-5, args: {betas: [0.9, 0.999]}}``.

    ``type`` is the class name in ``torch.optim``; ``args`` are further keyword arguments
    of that class.
    """

    type: str = "Adam"
    learning_rate: float = 1e-4
    args: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` on an unknown ``type`` or a learning rate <= 0."""
        if not _optimizer_class(self.type):
            raise MimicKitError("{}: unknown optimizer type '{}' (expected a torch.optim class: {})".format(
                source, self.type, ", ".join(_optimizer_names())))
        if not self.learning_rate > 0:
            raise MimicKitError("{}: learning_rate must be > 0, got {}".format(source, self.learning_rate))


def _optimizer_names() -> List[str]:
    return sorted(n for n in dir(torch.optim) if _optimizer_class(n) is not None)


def _optimizer_class(name: str) -> Any:
    cls = getattr(torch.optim, name, None)
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
        return cls
    return None


def build_optimizer(config: OptimizerConfig, params: List[torch.nn.Parameter], source: str) -> torch.optim.Optimizer:
    """``torch.optim.<type>(params, lr=learning_rate, **args)``.

    Raises:
        MimicKitError: naming ``source`` (file and key) when ``args`` do not fit the class.
    """
    cls = _optimizer_class(config.type)
    try:
        return cls(params, lr=config.learning_rate, **config.args)
    except (TypeError, ValueError) as e:
        raise MimicKitError("{}: bad args for torch.optim.{}: {}".format(source, config.type, e)) from e


@dataclasses.dataclass
class BaseAgentConfig(RunnerConfig):
    """Keys every agent YAML may set (defaults here), beside :class:`RunnerConfig`'s loop keys.

    Attributes:
        discount: reward discount per control step, in [0, 1).
        normalizer_samples: observation samples after which the normaliser freezes.
        obs_norm_clip: normalised observations are clipped to ``[-obs_norm_clip, obs_norm_clip]``.
        matmul_dtype: dtype of the network bodies' matrix products in rollouts and updates
            (:func:`mimickit.learning.networks.run_body`): ``float32``, ``bfloat16`` or ``auto``
            (bfloat16 on a CPU with bfloat16 instructions). Exported policies run in float32.
    """

    discount: float = 0.99
    normalizer_samples: int = 100000000
    obs_norm_clip: float = 10.0
    matmul_dtype: str = "float32"

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key on a value out of range."""
        super().validate(source)
        check_key(self.normalizer_samples >= 1, source, "normalizer_samples", self.normalizer_samples, ">= 1")
        check_key(0.0 <= self.discount < 1.0, source, "discount", self.discount, "in [0, 1)")
        check_key(self.obs_norm_clip > 0, source, "obs_norm_clip", self.obs_norm_clip, "> 0")
        check_key(self.matmul_dtype in MATMUL_DTYPES, source, "matmul_dtype", self.matmul_dtype,
                  "one of " + ", ".join(MATMUL_DTYPES))


def minibatches(num_samples: int, batch_size: int, valid: Tensor) -> List[Tensor]:
    """Shuffled minibatches of sample indices, ``ceil(num_samples / batch_size)`` of them.

    The count depends on ``num_samples`` (``steps_per_iter * num_envs``) and the config alone;
    each minibatch then keeps its valid samples (``valid``: ``[num_samples]`` bool), so an
    update with failed envs takes as many optimiser steps as one without.

    Returns:
        Long index tensors ``[<= batch_size]``; a minibatch may be empty when none of its
        samples is valid (the caller skips it).
    """
    return [batch[valid[batch]] for batch in torch.randperm(num_samples, device=valid.device).split(batch_size)]


def optimizer_step(optimizer: torch.optim.Optimizer, loss: Optional[Tensor], params: Iterable[Tensor],
                   max_grad_norm: Optional[float]) -> None:
    """One step of ``optimizer`` on the gradient of ``loss``, averaged over the ranks of a distributed run.

    ``zero_grad``, ``backward``, :func:`mimickit.util.distributed.average_gradients`, then
    clipping to the global norm ``max_grad_norm`` (None: no clipping) and the step. Every
    network of every agent trains through here, so the ranks of a distributed run keep one
    model. ``loss`` None: this rank has no valid sample in the minibatch; alone it skips the
    step, in a distributed run it adds a zero gradient to the others' (all ranks step together).
    """
    if loss is None and not distributed.active():
        return
    params = list(params)
    optimizer.zero_grad(set_to_none=True)
    if loss is not None:
        loss.backward()
    distributed.average_gradients(params)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()


class ActionScaling:
    """Map policy actions (normalised units) to environment actions; see the module docstring.

    Args:
        space: the environment's action space, ``[action_dim]`` bounds.
        device: torch device of the policy.

    Attributes:
        offset, scale: ``[action_dim]``; ``env_action = offset + scale * action``. The
            offset is the space's ``neutral`` action (default: the middle of the box) and
            the scale reaches the farther bound, so ``[-1, 1]`` covers ``[low, high]``.
        bounded: ``[action_dim]`` bool, dimensions with finite low and high.
    """

    def __init__(self, space: BoxSpace, device: str):
        low = space.low.to(device=device, dtype=torch.float32)
        high = space.high.to(device=device, dtype=torch.float32)
        self.bounded = torch.isfinite(low) & torch.isfinite(high)
        zeros = torch.zeros_like(low)
        centre = 0.5 * (high + low) if space.neutral is None else space.neutral.to(low)
        self.offset = torch.where(self.bounded, centre, zeros)
        reach = torch.maximum(high - centre, centre - low)
        self.scale = torch.where(self.bounded, reach, torch.ones_like(low))

    def to_env(self, action: Tensor) -> Tensor:
        """``[batch, action_dim]`` normalised -> environment units."""
        return self.offset + self.scale * action


class BaseAgent(abc.ABC):
    """The algorithm interface of :class:`mimickit.learning.runner.Agent` over a model and an update.

    A subclass sets :attr:`NAME` (its ``agent_name``), calls ``super().__init__`` with its
    checked config, builds its model and optimisers, adds its own buffers (e.g. ``logp``)
    and implements :meth:`_act`, :meth:`_update`, :meth:`_model_state` and
    :meth:`_load_model_state`.

    Buffers filled by :meth:`record_step`, ``[steps_per_iter, num_envs, ...]``: ``obs`` and
    ``next_obs`` (raw, ``[obs_dim]``), ``action`` (normalised units, ``[action_dim]``),
    ``reward``, ``done`` (long :class:`DoneFlags`; ``FAIL`` for failed envs), ``valid``
    (bool), with a privileged critic ``critic_obs`` and ``next_critic_obs`` (raw,
    ``[critic_obs_dim]``), plus whatever :meth:`_act` returns.

    Args:
        config: the agent's checked config.
        config_file: its YAML file, for messages.
        env: the environments to train on.
        device: torch device of the networks.

    Attributes:
        obs_norm: the (actor's) observation normaliser.
        critic_obs_norm: the critic observation's normaliser, or None when the critic takes
            the actor's observation (and ``obs_norm``).
        critic_obs_dim: size of the critic's observation (``obs_dim`` without a privileged one).
        matmul_dtype: the resolved ``matmul_dtype`` its models' bodies run in.
    """

    NAME = ""
    TRAINS = True

    def __init__(self, config: BaseAgentConfig, config_file: str, env: BaseEnv, device: str):
        self.config = config
        self.config_file = config_file
        self.env = env
        self.device = device
        self.num_envs = env.num_envs
        self.obs_dim = env.get_obs_space().shape[0]
        self.action_dim = env.get_action_space().shape[0]
        self.action_scaling = ActionScaling(env.get_action_space(), device)
        self.matmul_dtype = resolve_matmul_dtype(config.matmul_dtype, device)
        self.obs_norm = Normalizer(self.obs_dim, config.obs_norm_clip, config.normalizer_samples, device=device)
        critic_layout = env.get_critic_obs_layout()
        self.critic_obs_dim = critic_layout[-1].end if critic_layout is not None else self.obs_dim
        self.critic_obs_norm = (Normalizer(self.critic_obs_dim, config.obs_norm_clip, config.normalizer_samples,
                                           device=device) if critic_layout is not None else None)
        self.buffer = ExperienceBuffer(config.steps_per_iter, self.num_envs, device)
        self.buffer.add("obs", (self.obs_dim,))
        self.buffer.add("next_obs", (self.obs_dim,))
        if self.critic_obs_norm is not None:
            self.buffer.add("critic_obs", (self.critic_obs_dim,))
            self.buffer.add("next_critic_obs", (self.critic_obs_dim,))
        self.buffer.add("action", (self.action_dim,))
        self.buffer.add("reward", ())
        self.buffer.add("done", (), torch.long)
        self.buffer.add("valid", (), torch.bool)

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _act(self, norm_obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Actions for ``[num_envs, obs_dim]`` normalised observations (no gradient).

        Returns:
            ``(action [num_envs, action_dim] normalised units, extras)``; each extra is a
            ``[num_envs, ...]`` tensor stored in the buffer of the same name.
        """

    @abc.abstractmethod
    def _update(self) -> Dict[str, float]:
        """Train on the filled buffer; return statistics to log (losses, ...)."""

    @abc.abstractmethod
    def _model_state(self) -> Dict[str, Any]:
        """Networks and optimiser states to save, as state dicts."""

    @abc.abstractmethod
    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        """Load what :meth:`_model_state` saved; may raise ``RuntimeError``/``KeyError``/``ValueError``."""

    def _record_step_info(self, step: int, info: Dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Store what the agent needs from ``info`` of rollout step ``step`` (before any reset) in its buffers.

        The default stores nothing.
        """

    # ------------------------------------------------------------------ the runner's interface
    @property
    def rollout_env(self) -> BaseEnv:
        """The environment training rollouts step: the one the agent was built on."""
        return self.env

    def act(self, obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """``(action, extras)`` of :meth:`_act` for raw observations ``obs`` ``[num_envs, obs_dim]``.

        ``action`` is ``[num_envs, action_dim]`` in normalised units (:meth:`env_action`
        maps it to the env's); deterministic: the Gaussian's mean, else a sample.
        """
        return self._act(self.obs_norm.normalize(obs.to(self.device)), deterministic)

    def env_action(self, action: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` normalised actions -> the env's units (:class:`ActionScaling`)."""
        return self.action_scaling.to_env(action)

    def deterministic_env_action(self, obs: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` env actions of the deterministic policy for raw ``obs``.

        The Gaussian's mean, scaled to the env's action space, as test episodes apply it;
        ``obs`` is ``[num_envs, obs_dim]``.
        """
        return self.env_action(self.act(obs, deterministic=True)[0])

    def record_step(self, step: int, transition: Transition) -> None:
        """Store rollout step ``step`` in the buffers and its observations in the normalisers' statistics."""
        t = transition
        for name, value in (("obs", t.obs), ("next_obs", t.next_obs), ("action", t.action), ("reward", t.reward),
                            ("done", t.done), ("valid", t.valid)):
            self.buffer.record(name, step, value)
        for name, value in t.extras.items():
            self.buffer.record(name, step, value)
        self._record_step_info(step, t.info)
        self.obs_norm.record(t.obs)
        if self.critic_obs_norm is not None:
            assert t.critic_obs is not None and t.next_critic_obs is not None, "the env gives no critic observation"
            self.buffer.record("critic_obs", step, t.critic_obs)
            self.buffer.record("next_critic_obs", step, t.next_critic_obs)
            self.critic_obs_norm.record(t.critic_obs)

    def norm_buffer_obs(self, name: str, critic: bool) -> Tensor:
        """The buffer's ``obs`` or ``next_obs`` (``name``), normalised, ``[steps_per_iter * num_envs, dim]``.

        ``critic``: the critic's observation (``critic_obs``/``next_critic_obs`` with
        :attr:`critic_obs_norm` when the env gives one, else the actor's), ``dim`` =
        :attr:`critic_obs_dim`; else the actor's, ``dim`` = ``obs_dim``.
        """
        if critic and self.critic_obs_norm is not None:
            return self.critic_obs_norm.normalize(self.buffer.get_flat(name.replace("obs", "critic_obs")))
        return self.obs_norm.normalize(self.buffer.get_flat(name))

    def on_reset(self, env_ids: Tensor) -> None:  # noqa: B027 (optional hook)
        """Episodes start in ``env_ids`` (long ``[k]``); nothing to do for a policy without episode state."""

    def update(self) -> Dict[str, float]:
        """Train on the iteration's buffer (:meth:`_update`), then let the normaliser take in its observations.

        The normaliser's statistics stay fixed during the rollout and the update (so the
        stored action log-probabilities match the policy being trained).
        """
        info = self._update()
        self.obs_norm.update()
        if self.critic_obs_norm is not None:
            self.critic_obs_norm.update()
        return info

    def test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """Per-step values ``[num_envs]`` the agent adds to test statistics (none here)."""
        return {}

    # ------------------------------------------------------------------ export
    def _deterministic_actor(self) -> torch.nn.Module:
        """The module behind ``_act(norm_obs, deterministic=True)``, for export.

        It maps ``[batch, obs_dim]`` normalised observations to ``[batch, action_dim]``
        actions in normalised units. Agents that can be exported override this.

        Raises:
            MimicKitError: this agent has no deterministic policy network to export.
        """
        raise MimicKitError("agent '{}' ({}) has no policy network to export".format(self.NAME, self.config_file))

    def build_deploy_policy(self) -> DeployModule:
        """The deterministic policy as one module from raw observations to environment actions.

        ``[batch, obs_dim]`` raw observations -> ``[batch, action_dim]`` environment units,
        equal to what :meth:`deterministic_env_action` applies: the observation normaliser
        (frozen at its current statistics), :meth:`_deterministic_actor` and
        :class:`ActionScaling`. A copy on the CPU in eval mode (see :mod:`mimickit.learning.export`).

        Raises:
            MimicKitError: the agent cannot be exported.
        """
        return make_deploy_policy(self._deterministic_actor(), self.obs_norm.mean, self.obs_norm.std,
                                  self.obs_norm.clip, self.action_scaling.offset, self.action_scaling.scale)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> Dict[str, Any]:
        """Observation/action sizes, the observation normaliser(s) and :meth:`_model_state`.

        With a privileged critic also ``critic_obs_dim`` and ``critic_obs_norm``.
        """
        state: Dict[str, Any] = {"obs_dim": self.obs_dim, "action_dim": self.action_dim,
                                 "obs_norm": self.obs_norm.state_dict()}
        if self.critic_obs_norm is not None:
            state["critic_obs_dim"] = self.critic_obs_dim
            state["critic_obs_norm"] = self.critic_obs_norm.state_dict()
        state.update(self._model_state())
        return state

    def load_state_dict(self, state: Dict[str, Any], source: str) -> None:
        """Load what :meth:`state_dict` returned (e.g. a checkpoint's content).

        Raises:
            MimicKitError: naming ``source`` when it was saved for other observation/action
                sizes, with a critic observation this env does not give or without the one it
                gives (a checkpoint from before ``actor_obs``), or its networks do not fit this
                agent's (e.g. another ``actor_net``).
        """
        sizes = (state.get("obs_dim"), state.get("action_dim"))
        if sizes != (self.obs_dim, self.action_dim):
            raise MimicKitError("{}: saved for obs_dim {} and action_dim {}, this environment has {} and {}".format(
                source, sizes[0], sizes[1], self.obs_dim, self.action_dim))
        critic_sizes = (state.get("critic_obs_dim"), self.critic_obs_dim if self.critic_obs_norm is not None else None)
        if critic_sizes[0] != critic_sizes[1]:
            what = ["a privileged critic observation of size {}".format(n) if n is not None
                    else "the critic on the actor's observation" for n in critic_sizes]
            raise MimicKitError("{}: saved with {}, this environment gives {} (the env YAML's actor_obs decides; "
                                "train anew or use the env config it was trained with)".format(source, *what))
        try:
            self.obs_norm.load_state_dict(state["obs_norm"])
            if self.critic_obs_norm is not None:
                self.critic_obs_norm.load_state_dict(state["critic_obs_norm"])
            self._load_model_state(state)
        except (RuntimeError, KeyError, ValueError) as e:
            first_line = str(e).strip().split("\n")[0]
            raise MimicKitError("{}: does not fit this agent ({}; check actor_net/critic_net in {})".format(
                source, first_line, self.config_file)) from e

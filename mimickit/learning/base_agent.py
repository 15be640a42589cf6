"""What every learning agent shares: the training loop, testing, logging and checkpoints.

One training iteration collects ``steps_per_iter`` control steps from each of the
``num_envs`` environments into an :class:`ExperienceBuffer`, then lets the agent update
its model (:meth:`BaseAgent._update`). Every ``iters_per_output`` iterations (and at the
last one) the agent runs ``test_episodes`` episodes with its deterministic policy, writes
a log row and saves ``<out_dir>/model.pt``.

Episode ends and bootstrapping. After ``env.step`` the agent resets the environments whose
``done`` is not ``DoneFlags.NULL`` with ``env.reset(env_ids)``. The environment contract:
the observation returned by ``step`` is that of the state the step reached, *before* any
reset; the agent stores it as ``next_obs``. An episode cut by ``DoneFlags.TIME`` (time
limit) is not a true end, so its last value target bootstraps with ``V(next_obs)``;
``FAIL`` and ``SUCC`` are terminal states (their value is 0, no bootstrap). A step in an
env listed in ``info["failed_envs"]`` (the simulation went bad) is treated as a ``FAIL``
with reward 0 and is left out of the losses (``valid`` is false); the step before it
bootstraps from its own ``next_obs``, which was still sound.

Actions. The policy acts in normalised units: on each dimension with finite bounds
``[low, high]`` the environment receives ``offset + scale * a`` with
``offset = (high + low) / 2`` and ``scale = (high - low) / 2`` (so ``a`` in ``[-1, 1]``
spans the bounds); unbounded dimensions are passed as they are. Sampled actions are not
clipped; the environment decides what to do with actions beyond the bounds.
"""
from __future__ import annotations

import abc
import collections
import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, BoxSpace, DoneFlags
from mimickit.learning.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from mimickit.learning.evaluation import run_test_episodes
from mimickit.learning.experience_buffer import ExperienceBuffer
from mimickit.learning.export import DeployPolicy, make_deploy_policy
from mimickit.learning.logger import ProgressLine, build_logger
from mimickit.learning.normalizer import Normalizer
from mimickit.learning.return_tracker import ReturnTracker
from mimickit.util.errors import MimicKitError

MODEL_FILE = "model.pt"
INT_MODEL_DIR = "int_models"


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
        raise MimicKitError("{}: bad args for torch.optim.{}: {}".format(source, config.type, e))


@dataclasses.dataclass
class BaseAgentConfig:
    """Keys every agent YAML may set (defaults here).

    Attributes:
        max_samples: environment steps to train for when ``--max_samples`` is not given.
        steps_per_iter: control steps collected from every env per iteration.
        iters_per_output: iterations between tests, log rows and saves of ``model.pt``.
        test_episodes: episodes run with the deterministic policy at each output (0: none).
        save_int_models: also keep ``int_models/model_<iteration>.pt`` at each output.
        discount: reward discount per control step, in [0, 1).
        normalizer_samples: observation samples after which the normaliser freezes.
        obs_norm_clip: normalised observations are clipped to ``[-obs_norm_clip, obs_norm_clip]``.
    """

    max_samples: int = 100000000
    steps_per_iter: int = 32
    iters_per_output: int = 50
    test_episodes: int = 10
    save_int_models: bool = False
    discount: float = 0.99
    normalizer_samples: int = 100000000
    obs_norm_clip: float = 10.0

    def validate(self, source: str) -> None:
        for key in ("max_samples", "steps_per_iter", "iters_per_output", "normalizer_samples"):
            _check(getattr(self, key) >= 1, source, key, getattr(self, key), ">= 1")
        _check(self.test_episodes >= 0, source, "test_episodes", self.test_episodes, ">= 0")
        _check(0.0 <= self.discount < 1.0, source, "discount", self.discount, "in [0, 1)")
        _check(self.obs_norm_clip > 0, source, "obs_norm_clip", self.obs_norm_clip, "> 0")


def _check(ok: bool, source: str, key: str, value: Any, expected: str) -> None:
    """Raise :class:`MimicKitError` ``<source>: key '<key>' must be <expected>, got <value>`` unless ``ok``."""
    if not ok:
        raise MimicKitError("{}: key '{}' must be {}, got {}".format(source, key, expected, value))


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
    """Training loop, testing, logging and checkpoints; subclasses supply the model and update.

    A subclass sets :attr:`NAME` (its ``agent_name``), calls ``super().__init__`` with its
    checked config, builds its model and optimisers, adds its own buffers (e.g. ``logp``)
    and implements :meth:`_act`, :meth:`_update`, :meth:`_model_state` and
    :meth:`_load_model_state`.

    Buffers filled by the rollout, ``[steps_per_iter, num_envs, ...]``: ``obs`` and
    ``next_obs`` (raw, ``[obs_dim]``), ``action`` (normalised units, ``[action_dim]``),
    ``reward``, ``done`` (long :class:`DoneFlags`; ``FAIL`` for failed envs), ``valid``
    (bool), plus whatever :meth:`_act` returns.

    Args:
        config: the agent's checked config.
        config_file: its YAML file, for messages.
        env: the environments to train on.
        device: torch device of the networks.
    """

    NAME = ""

    def __init__(self, config: BaseAgentConfig, config_file: str, env: BaseEnv, device: str):
        self.config = config
        self.config_file = config_file
        self.env = env
        self.device = device
        self.num_envs = env.num_envs
        self.obs_dim = env.get_obs_space().shape[0]
        self.action_dim = env.get_action_space().shape[0]
        self.action_scaling = ActionScaling(env.get_action_space(), device)
        self.obs_norm = Normalizer(self.obs_dim, config.obs_norm_clip, config.normalizer_samples, device=device)
        self.buffer = ExperienceBuffer(config.steps_per_iter, self.num_envs, device)
        self.buffer.add("obs", (self.obs_dim,))
        self.buffer.add("next_obs", (self.obs_dim,))
        self.buffer.add("action", (self.action_dim,))
        self.buffer.add("reward", ())
        self.buffer.add("done", (), torch.long)
        self.buffer.add("valid", (), torch.bool)
        self.return_tracker = ReturnTracker(self.num_envs, device)
        self.iteration = 0
        self.sample_count = 0
        self.wall_time = 0.0  # s since training started (tests and saves included), summed over resumed runs
        self._obs = None  # type: Optional[Tensor]  # current [num_envs, obs_dim]; None: reset all first
        self._pending_rng = None  # type: Optional[Dict[str, Any]]

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

    def _record_step_info(self, step: int, info: Dict[str, Any]) -> None:
        """Store what the agent needs from ``info`` of rollout step ``step`` (before any
        reset) in its buffers; the default stores nothing."""

    # ------------------------------------------------------------------ experience
    def _reset_all(self) -> None:
        self._obs = self.env.reset().to(self.device)
        self.return_tracker.reset_episodes()

    def _rollout(self) -> float:
        """Fill the buffer with ``steps_per_iter`` steps of the stochastic policy in every env.

        Returns:
            The time (s) spent in the environment's ``step`` and ``reset``.
        """
        env_time = 0.0
        if self._obs is None:
            self._reset_all()
        fail = torch.full((self.num_envs,), int(DoneFlags.FAIL), dtype=torch.long, device=self.device)
        for step in range(self.config.steps_per_iter):
            obs = self._obs
            with torch.no_grad():
                action, extras = self._act(self.obs_norm.normalize(obs), deterministic=False)
            start = time.perf_counter()
            next_obs, reward, done, info = self.env.step(self.action_scaling.to_env(action))
            env_time += time.perf_counter() - start
            next_obs = next_obs.to(self.device)
            valid = ~_failed_mask(info, self.num_envs, self.device)
            done = torch.where(valid, done.to(self.device), fail)
            reward = torch.where(valid, reward.to(self.device), torch.zeros_like(reward, device=self.device))
            for name, value in (("obs", obs), ("next_obs", next_obs), ("action", action), ("reward", reward),
                                ("done", done), ("valid", valid)):
                self.buffer.record(name, step, value)
            for name, value in extras.items():
                self.buffer.record(name, step, value)
            self._record_step_info(step, info)
            self.obs_norm.record(obs)
            self.return_tracker.update(reward, done)
            ended = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
            start = time.perf_counter()
            self._obs = self.env.reset(ended).to(self.device) if len(ended) > 0 else next_obs
            env_time += time.perf_counter() - start
        return env_time

    def train_iter(self) -> Dict[str, float]:
        """One iteration: collect experience, update the model, then the normaliser.

        The normaliser's statistics stay fixed during the rollout and the update (so the
        stored action log-probabilities match the policy being trained) and take in the
        iteration's observations afterwards.

        Returns:
            The statistics of :meth:`_update`, plus the iteration's time split (s):
            ``time_env_s`` (env step and reset), ``time_policy_s`` (the rest of the
            rollout: normalising, acting, recording) and ``time_update_s``.
        """
        start = time.perf_counter()
        env_time = self._rollout()
        rollout_time = time.perf_counter() - start
        info = self._update()
        self.obs_norm.update()
        info.update(time_env_s=env_time, time_policy_s=rollout_time - env_time,
                    time_update_s=time.perf_counter() - start - rollout_time)
        self.iteration += 1
        self.sample_count += self.config.steps_per_iter * self.num_envs
        return info

    # ------------------------------------------------------------------ run modes
    def deterministic_env_action(self, obs: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` env actions of the deterministic policy (the Gaussian's mean,
        scaled to the env's action space) for raw observations ``obs`` (``[num_envs, obs_dim]``),
        as :meth:`test_model` applies them."""
        action, _ = self._act(self.obs_norm.normalize(obs.to(self.device)), deterministic=True)
        return self.action_scaling.to_env(action)

    def test_model(self, num_episodes: int) -> Dict[str, float]:
        """Run ``num_episodes`` episodes with the deterministic policy (the Gaussian's mean).

        See :func:`mimickit.learning.evaluation.run_test_episodes` (every env finishes its
        share). Leaves the environments mid-episode, so training resets them all next.

        Returns:
            ``mean_return``, ``mean_ep_len``, ``num_eps``, ``success_rate``, and the env's
            and :meth:`_test_step_metrics`' per-step values averaged per episode.
        """
        self._obs = None
        return run_test_episodes(self.env, self.deterministic_env_action, num_episodes,
                                 step_metrics=self._test_step_metrics)

    def _test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """Per-step values ``[num_envs]`` the agent adds to test statistics (none here)."""
        return {}

    def _deterministic_actor(self) -> torch.nn.Module:
        """The module behind ``_act(norm_obs, deterministic=True)``, for export.

        It maps ``[batch, obs_dim]`` normalised observations to ``[batch, action_dim]``
        actions in normalised units. Agents that can be exported override this.

        Raises:
            MimicKitError: this agent has no deterministic policy network to export.
        """
        raise MimicKitError("agent '{}' ({}) has no policy network to export".format(self.NAME, self.config_file))

    def build_deploy_policy(self) -> DeployPolicy:
        """The deterministic policy as one module from raw observations to environment actions.

        ``[batch, obs_dim]`` raw observations -> ``[batch, action_dim]`` environment units,
        equal to what :meth:`test_model` applies: the observation normaliser (frozen at its
        current statistics), :meth:`_deterministic_actor` and :class:`ActionScaling`. A copy
        on the CPU in eval mode (see :mod:`mimickit.learning.export`).

        Raises:
            MimicKitError: the agent cannot be exported.
        """
        return make_deploy_policy(self._deterministic_actor(), self.obs_norm.mean, self.obs_norm.std,
                                  self.obs_norm.clip, self.action_scaling.offset, self.action_scaling.scale)

    def train_model(self, max_samples: Optional[int], out_dir: str, logger: str) -> None:
        """Train until ``max_samples`` environment steps (``None``: the config's ``max_samples``).

        Every ``iters_per_output`` iterations and at the last one: test, write a log row
        (``logger``: ``txt``, ``tb`` or ``wandb``) and save ``<out_dir>/model.pt`` (and
        ``int_models/model_<iteration>.pt`` with ``save_int_models``). A loaded
        checkpoint's counters, optimiser and random states carry on. On Ctrl-C the model
        is saved to ``model.pt`` and ``KeyboardInterrupt`` is raised again.

        Raises:
            MimicKitError: when the logger cannot be created.
        """
        max_samples = self.config.max_samples if max_samples is None else max_samples
        model_path = os.path.join(out_dir, MODEL_FILE)
        log = build_logger(logger, out_dir, append=self.iteration > 0,
                           config={"agent": self.NAME, **dataclasses.asdict(self.config)})
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        progress = ProgressLine(max_samples, self.sample_count)
        self.return_tracker.reset_stats()
        infos = []  # type: List[Dict[str, float]]
        iter_time = 0.0  # s in train_iter since the last output, for samples/s
        iter_samples = 0
        run_start, wall_time_before = time.perf_counter(), self.wall_time
        try:
            while self.sample_count < max_samples:
                start = time.perf_counter()
                infos.append(self.train_iter())
                iter_time += time.perf_counter() - start
                iter_samples += self.config.steps_per_iter * self.num_envs
                progress.update(self.config.steps_per_iter * self.num_envs,
                                self.return_tracker.mean_return(), self.return_tracker.mean_ep_len())
                if self.iteration % self.config.iters_per_output == 0 or self.sample_count >= max_samples:
                    self.wall_time = wall_time_before + time.perf_counter() - run_start
                    samples_per_s = iter_samples / iter_time if iter_time > 0 else float("nan")
                    row = self._output_row(infos, samples_per_s)
                    log.log(row, step=self.sample_count)
                    progress.summary(self.iteration, self.sample_count, samples_per_s, row["train_return"],
                                     row["train_ep_len"], row.get("test_return"))
                    self.save(model_path)
                    if self.config.save_int_models:
                        self.save(os.path.join(out_dir, INT_MODEL_DIR, "model_{}.pt".format(self.iteration)))
                    infos, iter_time, iter_samples = [], 0.0, 0
                    self.return_tracker.reset_stats()
        except KeyboardInterrupt:
            self.wall_time = wall_time_before + time.perf_counter() - run_start
            self.save(model_path)
            raise
        finally:
            progress.close()
            log.close()

    def _output_row(self, infos: List[Dict[str, float]], samples_per_s: float) -> Dict[str, float]:
        """The log row of an output iteration; runs the test episodes."""
        row = collections.OrderedDict()  # type: Dict[str, float]
        row["iteration"] = self.iteration
        row["samples"] = self.sample_count
        row["wall_time"] = self.wall_time  # s, before this output's test
        row["samples_per_s"] = samples_per_s  # over the training iterations only
        row["train_return"] = self.return_tracker.mean_return()
        row["train_ep_len"] = self.return_tracker.mean_ep_len()
        row["train_episodes"] = self.return_tracker.num_episodes
        if self.config.test_episodes > 0:
            test = self.test_model(self.config.test_episodes)
            row["test_return"] = test["mean_return"]
            row["test_ep_len"] = test["mean_ep_len"]
        for key in infos[0] if infos else ():
            row[key] = sum(info[key] for info in infos) / len(infos)
        return row

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str) -> None:
        """Write a checkpoint to ``path`` atomically (see :mod:`mimickit.learning.checkpoint`).

        Holds the networks, observation normaliser and optimiser states, ``iteration``,
        ``sample_count``, ``wall_time``, the random states and the config as a dict.
        """
        content = {"iteration": self.iteration, "sample_count": self.sample_count, "wall_time": self.wall_time,
                   "obs_dim": self.obs_dim, "action_dim": self.action_dim,
                   "obs_norm": self.obs_norm.state_dict(), "config": dataclasses.asdict(self.config)}
        content.update(self._model_state())
        save_checkpoint(path, self.NAME, content)

    def load(self, path: str) -> None:
        """Load a checkpoint saved by :meth:`save`, including counters and optimiser states.

        The random states are restored when :meth:`train_model` starts (so a resumed run
        draws what the interrupted one would have; a test run keeps ``--rand_seed``).
        Hyperparameters come from the current YAML, not the checkpoint.

        Raises:
            MimicKitError: naming ``path`` when it is missing, truncated, not a checkpoint,
                saved by another agent or for other observation/action sizes, or its
                networks do not fit this agent's (e.g. another ``actor_net``).
        """
        checkpoint = load_checkpoint(path, self.NAME, map_location=self.device)
        sizes = (checkpoint.get("obs_dim"), checkpoint.get("action_dim"))
        if sizes != (self.obs_dim, self.action_dim):
            raise MimicKitError("{}: saved for obs_dim {} and action_dim {}, this environment has {} and {}".format(
                path, sizes[0], sizes[1], self.obs_dim, self.action_dim))
        try:
            self.obs_norm.load_state_dict(checkpoint["obs_norm"])
            self._load_model_state(checkpoint)
            self.iteration = int(checkpoint["iteration"])
            self.sample_count = int(checkpoint["sample_count"])
            self.wall_time = float(checkpoint["wall_time"])
        except (RuntimeError, KeyError, ValueError) as e:
            first_line = str(e).strip().split("\n")[0]
            raise MimicKitError("{}: does not fit this agent ({}; check actor_net/critic_net in {})".format(
                path, first_line, self.config_file))
        self._pending_rng = checkpoint.get("rng")
        self._obs = None


def _failed_mask(info: Dict[str, Any], num_envs: int, device: str) -> Tensor:
    """``[num_envs]`` bool from ``info["failed_envs"]`` (bool mask or env ids; absent: none)."""
    failed = info.get("failed_envs") if info else None
    mask = torch.zeros(num_envs, dtype=torch.bool, device=device)
    if failed is None:
        return mask
    failed = torch.as_tensor(failed, device=device)
    if failed.dtype == torch.bool:
        return mask | failed
    mask[failed.long()] = True
    return mask


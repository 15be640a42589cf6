"""The training and test loop, over any agent that implements :class:`Agent`.

The runner owns what every algorithm shares: the rollout, episode resets and their
notification, the update call, return statistics, logging, checkpoints and test episodes.
The agent (PPO, AMP, ...) owns its networks, normalisers, buffers and update; it sees each
step through :meth:`Agent.record_step` and each episode start through
:meth:`Agent.on_reset` (so a latent-conditioned agent can redraw its latents there).

One training iteration collects ``steps_per_iter`` control steps from each of the
``num_envs`` environments, then calls :meth:`Agent.update`. Every ``iters_per_output``
iterations (and at the last one) the runner runs ``test_episodes`` episodes with the
deterministic policy, writes a log row and saves ``<out_dir>/model.pt``; training then
starts new episodes in every env, so a run resumed from that save continues bit for bit
as the uninterrupted one (the simulator state itself is not saved).

Episode ends and bootstrapping. After ``env.step`` the runner resets the environments
whose ``done`` is not ``DoneFlags.NULL`` with ``env.reset(env_ids)``. The environment
contract: the observation returned by ``step`` is that of the state the step reached,
*before* any reset; it is recorded as ``next_obs``. An env with a privileged critic
observation (:meth:`BaseEnv.get_critic_obs`) is asked for it after each step and reset, and
the agent gets both observations of each step. An episode cut by ``DoneFlags.TIME``
(time limit) is not a true end, so its last value target bootstraps with ``V(next_obs)``;
``FAIL`` and ``SUCC`` are terminal states (their value is 0, no bootstrap). A step in an
env listed in ``info["failed_envs"]`` (the simulation went bad) is recorded as a ``FAIL``
with reward 0 and ``valid`` false, so the agent leaves it out of its losses; the step
before it bootstraps from its own ``next_obs``, which was still sound.

Distributed runs (:mod:`mimickit.util.distributed`). Every rank runs this loop on its own
envs; the agent's updates average gradients, so the ranks keep one model. Counters are
global: an iteration is ``steps_per_iter * num_envs * world_size`` samples, and
``max_samples`` counts them all. Returns, failed-step shares and the NaN guard's decision
are merged over the ranks; test episodes are shared out among them. Rank 0 alone logs,
prints progress and writes checkpoints (holding every rank's random states).
"""
from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import math
import os
import time
import warnings
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, DoneFlags
from mimickit.learning.checkpoint import (
    get_rng_state,
    load_checkpoint,
    nonfinite_entries,
    save_checkpoint,
    set_rng_state,
)
from mimickit.learning.evaluation import run_test_episodes
from mimickit.learning.logger import NullLogger, ProgressLine, build_logger
from mimickit.learning.return_tracker import ReturnTracker
from mimickit.util import distributed
from mimickit.util.config import check_key
from mimickit.util.errors import MimicKitError

MODEL_FILE = "model.pt"
INT_MODEL_DIR = "int_models"
MAX_NONFINITE_UPDATES = 3  # non-finite updates in a row (each undone) that stop a run
MAX_FAILED_SHARE = 0.5  # share of failed env steps in an iteration ...
FAILED_SHARE_ITERS = 10  # ... for this many iterations in a row stops a run
PROGRESS_KEYS = ("style_reward", "enc_reward")  # update statistics shown beside the return


@dataclasses.dataclass
class RunnerConfig:
    """The keys of an agent YAML that drive the loop (defaults here).

    Attributes:
        max_samples: environment steps to train for when ``--max_samples`` is not given.
        steps_per_iter: control steps collected from every env per iteration.
        iters_per_output: iterations between tests, log rows and saves of ``model.pt``.
        test_episodes: episodes run with the deterministic policy at each output (0: none).
        save_int_models: also keep ``int_models/model_<iteration>.pt`` at each output.
    """

    max_samples: int = 100000000
    steps_per_iter: int = 32
    iters_per_output: int = 50
    test_episodes: int = 10
    save_int_models: bool = False

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key on a value out of range."""
        for key in ("max_samples", "steps_per_iter", "iters_per_output"):
            check_key(getattr(self, key) >= 1, source, key, getattr(self, key), ">= 1")
        check_key(self.test_episodes >= 0, source, "test_episodes", self.test_episodes, ">= 0")


@contextlib.contextmanager
def rollout_threads(device: str) -> Iterator[None]:
    """Run the block with one torch intra-op thread when ``device`` is the CPU, then restore the count.

    A rollout's tensors are small (one row per env) and the physics engine steps on its own
    threads: torch's worker threads would only compete with them for the cores (on 2 cores,
    the DeepMimic env at 256 envs steps 16 % faster with one torch thread, and twice as fast
    while another process is busy). The update's large matrix products keep every thread.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclasses.dataclass
class Transition:
    """One rollout step of every env, as the runner hands it to :meth:`Agent.record_step`.

    Attributes:
        obs: ``[num_envs, obs_dim]`` raw observations the actions were chosen from.
        action: ``[num_envs, action_dim]`` actions in the agent's (normalised) units.
        extras: what :meth:`Agent.act` returned beside the actions (e.g. ``logp``), ``[num_envs, ...]``.
        next_obs: ``[num_envs, obs_dim]`` observations of the state the step reached (before any reset).
        reward: ``[num_envs]``; 0 in failed envs.
        done: ``[num_envs]`` long :class:`DoneFlags`; ``FAIL`` in failed envs.
        valid: ``[num_envs]`` bool, false in failed envs (``info["failed_envs"]``).
        info: the env's ``info`` dict of the step.
        critic_obs, next_critic_obs: ``[num_envs, critic_obs_dim]`` the env's privileged critic
            observations (:meth:`BaseEnv.get_critic_obs`) of the same two states; None when it has none.
    """

    obs: Tensor
    action: Tensor
    extras: Dict[str, Tensor]
    next_obs: Tensor
    reward: Tensor
    done: Tensor
    valid: Tensor
    info: Dict[str, Any]
    critic_obs: Optional[Tensor] = None
    next_critic_obs: Optional[Tensor] = None


class Agent(Protocol):
    """What the runner needs of an algorithm (:class:`mimickit.learning.base_agent.BaseAgent` implements it).

    Attributes:
        NAME: the ``agent_name`` it is registered under (checkpoints record it).
        TRAINS: false for agents that only act (the runner refuses to train them).
    """

    NAME: str
    TRAINS: bool

    @property
    def config(self) -> RunnerConfig:
        """Its config; the runner reads the :class:`RunnerConfig` keys."""

    @property
    def rollout_env(self) -> BaseEnv:
        """The environment training rollouts step: the runner's, or a wrapper over it (HRL: one step per latent)."""

    def act(self, obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """``(action [num_envs, action_dim] in the agent's units, extras)`` for raw ``obs`` ``[num_envs, obs_dim]``."""

    def env_action(self, action: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` agent-unit actions -> the env's units."""

    def deterministic_env_action(self, obs: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` env actions of the deterministic policy for raw ``obs``."""

    def record_step(self, step: int, transition: Transition) -> None:
        """Store rollout step ``step`` (0 .. ``steps_per_iter - 1``) of the current iteration."""

    def on_reset(self, env_ids: Tensor) -> None:
        """Episodes start in ``env_ids`` (long ``[k]``), in training and in test episodes."""

    def update(self) -> Dict[str, float]:
        """Train on the iteration's steps; return statistics to log."""

    def test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """Per-step values ``[num_envs]`` added to test statistics, from a step's ``info``."""

    def state_dict(self) -> Dict[str, Any]:
        """Networks, normalisers and optimiser states, as plain values and tensors."""

    def load_state_dict(self, state: Dict[str, Any], source: str) -> None:
        """Load :meth:`state_dict`'s content; raise :class:`MimicKitError` naming ``source`` when it does not fit."""


class Runner:
    """Drives ``agent`` on ``env``: train, test, save and load (see the module docstring).

    Args:
        agent: the algorithm.
        env: the environments it acts in, as built by the env config; test episodes run
            here and training rollouts in :attr:`Agent.rollout_env` (the same env, or a
            wrapper over it).
        device: torch device of the agent's networks.

    Attributes:
        iteration: training iterations done (summed over resumed runs).
        sample_count: environment steps trained on.
        wall_time: s since training started (tests and saves included), summed over resumed runs.
        return_tracker: returns and lengths of the training episodes since the last output.
    """

    def __init__(self, agent: Agent, env: BaseEnv, device: str):
        self.agent = agent
        self.env = env
        self.device = device
        self.num_envs = env.num_envs
        self.return_tracker = ReturnTracker(self.num_envs, device)
        self.iteration = 0
        self.sample_count = 0
        self.wall_time = 0.0
        self._failed_steps = 0  # failed env steps in the current rollout, this rank's
        self._all_failed_steps = 0  # ... and every rank's
        self._failed_iters = 0  # iterations in a row with more than MAX_FAILED_SHARE failed steps
        self._nonfinite_updates = 0  # non-finite updates in a row
        self._obs: Optional[Tensor] = None  # current [num_envs, obs_dim] of the rollout env; None: reset all first
        self._critic_obs: Optional[Tensor] = None  # its critic observation (None: the env has none)
        self._pending_rng: Optional[Dict[str, Any]] = None

    @property
    def samples_per_iter(self) -> int:
        """Environment steps per training iteration, ``steps_per_iter * num_envs`` (times the ranks)."""
        return self.agent.config.steps_per_iter * self.num_envs * distributed.world_size()

    def sync_ranks(self) -> None:
        """Give every rank of a distributed run rank 0's agent state (networks, normalisers, optimisers).

        Called once after building (and loading), so the ranks start as one model. One
        process: nothing happens.
        """
        if distributed.active():
            self.agent.load_state_dict(distributed.broadcast_object(self.agent.state_dict()), "rank 0's agent")

    # ------------------------------------------------------------------ experience
    def _reset(self, env_ids: Optional[Tensor]) -> Tensor:
        """Reset ``env_ids`` (None: all) of the rollout env, tell the agent, return every env's observation."""
        obs = self.agent.rollout_env.reset(env_ids).to(self.device)
        self.agent.on_reset(torch.arange(self.num_envs, device=self.device) if env_ids is None else env_ids)
        return obs

    def _critic_obs_now(self) -> Optional[Tensor]:
        """The rollout env's critic observation of its current state (:meth:`BaseEnv.get_critic_obs`), or None."""
        critic_obs = self.agent.rollout_env.get_critic_obs()
        return critic_obs.to(self.device) if critic_obs is not None else None

    def rollout(self) -> float:
        """Collect ``steps_per_iter`` steps of the stochastic policy in every env into the agent.

        Returns:
            The time (s) spent in the environment's ``step`` and ``reset``.
        """
        env_time = 0.0
        failed = torch.zeros((), dtype=torch.long, device=self.device)  # read once, after the loop
        if self._obs is None:
            self._obs = self._reset(None)
            self._critic_obs = self._critic_obs_now()
            self.return_tracker.reset_episodes()
        fail = torch.full((self.num_envs,), int(DoneFlags.FAIL), dtype=torch.long, device=self.device)
        for step in range(self.agent.config.steps_per_iter):
            obs, critic_obs = self._obs, self._critic_obs
            with torch.no_grad():
                action, extras = self.agent.act(obs, deterministic=False)
            start = time.perf_counter()
            next_obs, reward, done, info = self.agent.rollout_env.step(self.agent.env_action(action))
            next_critic_obs = self._critic_obs_now()
            env_time += time.perf_counter() - start
            next_obs = next_obs.to(self.device)
            valid = ~failed_mask(info, self.num_envs, self.device)
            failed += (~valid).sum()
            done = torch.where(valid, done.to(self.device), fail)
            reward = torch.where(valid, reward.to(self.device), torch.zeros_like(reward, device=self.device))
            self.agent.record_step(step, Transition(obs, action, extras, next_obs, reward, done, valid, info,
                                                    critic_obs, next_critic_obs))
            self.return_tracker.update(reward, done)
            ended = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
            start = time.perf_counter()
            if len(ended) > 0:
                self._obs, self._critic_obs = self._reset(ended), self._critic_obs_now()
            else:
                self._obs, self._critic_obs = next_obs, next_critic_obs
            env_time += time.perf_counter() - start
        self._failed_steps = int(failed)
        self._all_failed_steps = int(distributed.all_reduce_sum(failed))
        return env_time

    def train_iter(self) -> Dict[str, float]:
        """One iteration: :meth:`rollout`, then the agent's update.

        Returns:
            The agent's update statistics, plus the iteration's time split (s):
            ``time_env_s`` (env step and reset), ``time_policy_s`` (the rest of the
            rollout: acting, recording) and ``time_update_s``; with domain randomisation, the
            envs' current draws (:meth:`mimickit.envs.domain_rand.DomainRand.summary`).
        """
        start = time.perf_counter()
        with rollout_threads(self.device):
            env_time = self.rollout()
        self._check_failed_share(self._all_failed_steps / self.samples_per_iter)
        rollout_time = time.perf_counter() - start
        info = self._guarded_update()
        info.update(time_env_s=env_time, time_policy_s=rollout_time - env_time,
                    time_update_s=time.perf_counter() - start - rollout_time)
        domain_rand = getattr(self.env, "domain_rand", None)
        if domain_rand is not None:
            info.update(domain_rand.summary())
        self.iteration += 1
        self.sample_count += self.samples_per_iter
        return info

    def _guarded_update(self) -> Dict[str, float]:
        """The agent's update, undone when it leaves a non-finite loss or parameter (NaN guard).

        The agent's state before the update is kept; after a non-finite loss (``*_loss``
        statistics) or parameter it is restored and the iteration's statistics read NaN.
        After :data:`MAX_NONFINITE_UPDATES` such updates in a row the run stops.

        Raises:
            MimicKitError: naming the quantity and the iteration, after too many non-finite updates.
        """
        good = copy.deepcopy(self.agent.state_dict())
        info = self.agent.update()
        local_samples = self.samples_per_iter // distributed.world_size()
        learned = self._failed_steps < local_samples  # else no minibatch ran here and the losses read NaN
        bad = [k for k, v in info.items() if learned and k.endswith("_loss") and not math.isfinite(v)]
        bad += nonfinite_entries(self.agent.state_dict())
        bad_ranks = int(distributed.all_reduce_sum(torch.tensor(int(bool(bad)), device=self.device)))  # undo together
        if bad_ranks == 0:
            self._nonfinite_updates = 0
            return info
        self.agent.load_state_dict(good, "the state before iteration {}".format(self.iteration + 1))
        self._nonfinite_updates += 1
        what = ", ".join(bad[:4]) if bad else "values on another rank"
        message = "iteration {}: non-finite {} after the update".format(self.iteration + 1, what)
        if self._nonfinite_updates >= MAX_NONFINITE_UPDATES:
            raise MimicKitError("{} ({} updates in a row; the model was restored to its last finite state and "
                                "model.pt holds the last output's): lower the learning rates or set "
                                "max_grad_norm".format(message, self._nonfinite_updates))
        warnings.warn(message + "; undone, the iteration's samples are dropped", stacklevel=2)
        return {k: float("nan") for k in info}

    def _check_failed_share(self, share: float) -> None:
        """Stop a run whose simulation keeps failing.

        It stops when more than :data:`MAX_FAILED_SHARE` of the env steps are in failed envs
        for :data:`FAILED_SHARE_ITERS` iterations in a row.

        Raises:
            MimicKitError: naming the share and the likely causes.
        """
        self._failed_iters = self._failed_iters + 1 if share > MAX_FAILED_SHARE else 0
        if self._failed_iters >= FAILED_SHARE_ITERS:
            raise MimicKitError(
                "iteration {}: {:.0%} of the env steps failed (NaN, Inf or MuJoCo warnings) for {} iterations in a "
                "row: the simulation is unstable; check the PD gains (kp, kd) of the character and the engine's "
                "sim_freq (raise it)".format(self.iteration + 1, share, self._failed_iters))

    def check_trainable(self) -> None:
        """Raise :class:`MimicKitError` when the agent does not learn (e.g. ``DUMMY``)."""
        if not self.agent.TRAINS:
            raise MimicKitError("--mode train: agent '{}' does not learn; use --mode test".format(self.agent.NAME))

    def restart_episodes(self) -> None:
        """Reset every env before the next rollout (after the env was stepped outside the runner)."""
        self._obs = None

    # ------------------------------------------------------------------ run modes
    def test(self, num_episodes: int) -> Dict[str, float]:
        """Run ``num_episodes`` episodes with the deterministic policy (the Gaussian's mean).

        See :func:`mimickit.learning.evaluation.run_test_episodes` (every env finishes its
        share). Leaves the environments mid-episode, so training resets them all next.

        Returns:
            ``mean_return``, ``mean_ep_len``, ``num_eps``, ``success_rate``, and the env's
            and the agent's (:meth:`Agent.test_step_metrics`) per-step values averaged per episode.
        """
        self.restart_episodes()
        with rollout_threads(self.device):
            return run_test_episodes(self.env, self.agent.deterministic_env_action, num_episodes,
                                     step_metrics=self.agent.test_step_metrics, on_reset=self.agent.on_reset)

    def train(self, max_samples: Optional[int], out_dir: str, logger: str) -> None:
        """Train until ``max_samples`` environment steps (``None``: the config's ``max_samples``).

        Every ``iters_per_output`` iterations and at the last one: test, write a log row
        (``logger``: ``txt``, ``tb`` or ``wandb``) and save ``<out_dir>/model.pt`` (and
        ``int_models/model_<iteration>.pt`` with ``save_int_models``). A loaded
        checkpoint's counters, optimiser and random states carry on. On Ctrl-C the model
        is saved to ``model.pt`` and ``KeyboardInterrupt`` is raised again.

        Raises:
            MimicKitError: the agent does not learn, or the logger cannot be created.
        """
        cfg = self.agent.config
        self.check_trainable()
        max_samples = cfg.max_samples if max_samples is None else max_samples
        model_path = os.path.join(out_dir, MODEL_FILE)
        main = distributed.is_main()
        log = build_logger(logger, out_dir, append=self.iteration > 0,
                           config={"agent": self.agent.NAME, **dataclasses.asdict(cfg)},
                           last_iteration=self.iteration) if main else NullLogger()
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        progress = ProgressLine(max_samples, self.sample_count, enabled=main)
        self.return_tracker.reset_stats()
        infos: List[Dict[str, float]] = []
        iter_time = 0.0  # s in train_iter since the last output, for samples/s
        iter_samples = 0
        run_start, wall_time_before = time.perf_counter(), self.wall_time
        try:
            while self.sample_count < max_samples:
                start = time.perf_counter()
                infos.append(self.train_iter())
                iter_time += time.perf_counter() - start
                iter_samples += self.samples_per_iter
                progress.update(self.samples_per_iter, self.return_tracker.mean_return(),
                                self.return_tracker.mean_ep_len(), _progress_extras(infos[-1]))
                if self.iteration % cfg.iters_per_output == 0 or self.sample_count >= max_samples:
                    self.wall_time = wall_time_before + time.perf_counter() - run_start
                    samples_per_s = iter_samples / iter_time if iter_time > 0 else float("nan")
                    row = self._output_row(infos, samples_per_s)
                    log.log(row, step=self.sample_count)
                    progress.summary(self.iteration, self.sample_count, samples_per_s, row["train_return"],
                                     row["train_ep_len"], row.get("test_return"), _progress_extras(row))
                    self.save(model_path)
                    if cfg.save_int_models:
                        self.save(os.path.join(out_dir, INT_MODEL_DIR, "model_{}.pt".format(self.iteration)))
                    infos, iter_time, iter_samples = [], 0.0, 0
                    self.return_tracker.reset_stats()
                    self.restart_episodes()  # as test episodes do: a run resumed from this save is exact
        except KeyboardInterrupt:
            self.wall_time = wall_time_before + time.perf_counter() - run_start
            self.save(model_path, collective=False)  # the other ranks may be gone
            raise
        finally:
            progress.close()
            log.close()

    def _output_row(self, infos: List[Dict[str, float]], samples_per_s: float) -> Dict[str, float]:
        """The log row of an output iteration; runs the test episodes."""
        row: Dict[str, float] = collections.OrderedDict()
        row["iteration"] = self.iteration
        row["samples"] = self.sample_count
        row["wall_time"] = self.wall_time  # s, before this output's test
        row["samples_per_s"] = samples_per_s  # over the training iterations only
        row["train_return"] = self.return_tracker.mean_return()
        row["train_ep_len"] = self.return_tracker.mean_ep_len()
        row["train_episodes"] = self.return_tracker.num_episodes
        if self.agent.config.test_episodes > 0:
            test = self.test(self.agent.config.test_episodes)
            row["test_return"] = test["mean_return"]
            row["test_ep_len"] = test["mean_ep_len"]
        for key in infos[0] if infos else ():
            row[key] = sum(info[key] for info in infos) / len(infos)
        return row

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str, collective: bool = True) -> None:
        """Write a checkpoint to ``path`` atomically (see :mod:`mimickit.learning.checkpoint`).

        Holds the agent's :meth:`Agent.state_dict`, ``iteration``, ``sample_count``,
        ``wall_time``, the random states and the agent's config as a dict. In a distributed
        run rank 0 writes it, with every rank's random states (``rank_rng``) unless
        ``collective`` is false (an interrupted run, whose peers may be gone).
        """
        rank_rng = distributed.gather_objects(get_rng_state()) if collective and distributed.active() else None
        if not distributed.is_main():
            return
        content: Dict[str, Any] = {"iteration": self.iteration, "sample_count": self.sample_count,
                                   "wall_time": self.wall_time, "config": dataclasses.asdict(self.agent.config)}
        if rank_rng is not None:
            content["rank_rng"] = rank_rng
        content.update(self.agent.state_dict())
        save_checkpoint(path, self.agent.NAME, content)

    def load(self, path: str) -> None:
        """Load a checkpoint saved by :meth:`save`, including counters and optimiser states.

        The random states are restored when :meth:`train` starts (so a resumed run draws
        what the interrupted one would have; a test run keeps ``--rand_seed``); each rank of
        a distributed run takes its own when the checkpoint has them for as many ranks, else
        rank 0 takes the saved ones and the others keep their seeds.
        Hyperparameters come from the current YAML, not the checkpoint.

        Raises:
            MimicKitError: naming ``path`` when it is missing, truncated, not a checkpoint,
                saved by another agent, or does not fit this agent (:meth:`Agent.load_state_dict`).
        """
        checkpoint = load_checkpoint(path, self.agent.NAME, map_location=self.device)
        bad = nonfinite_entries({k: v for k, v in checkpoint.items() if k not in ("rng", "rank_rng")})
        if bad:
            raise MimicKitError("{}: holds non-finite values in {} (a diverged model)".format(path, ", ".join(bad[:4])))
        self.agent.load_state_dict(checkpoint, path)
        try:
            self.iteration = int(checkpoint["iteration"])
            self.sample_count = int(checkpoint["sample_count"])
            self.wall_time = float(checkpoint["wall_time"])
        except KeyError as e:
            raise MimicKitError("{}: not a training checkpoint (no '{}')".format(path, e.args[0])) from e
        rank_rng = checkpoint.get("rank_rng")
        if rank_rng is not None and len(rank_rng) == distributed.world_size():
            self._pending_rng = rank_rng[distributed.rank()]
        else:
            self._pending_rng = checkpoint.get("rng") if distributed.is_main() else None
        self._obs = None


def _progress_extras(info: Dict[str, float]) -> Dict[str, float]:
    """The adversarial rewards of an update's statistics (``style_reward``, ``enc_reward``) for the progress line.

    They go beside the return, which holds the task reward alone.
    """
    return {k: info[k] for k in PROGRESS_KEYS if k in info}


def failed_mask(info: Dict[str, Any], num_envs: int, device: str) -> Tensor:
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

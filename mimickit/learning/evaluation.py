"""Test-mode episode loop shared by agents (and ``tools/sim2sim.py``), and ``eval.json``."""
from __future__ import annotations

import json
import random
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, DoneFlags
from mimickit.util import distributed
from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError


def episode_shares(num_episodes: int, num_envs: int, device: str = "cpu") -> Tensor:
    """``[num_envs]`` episodes each env runs so that they add up to ``num_episodes``."""
    shares = torch.full((num_envs,), num_episodes // num_envs, dtype=torch.long, device=device)
    shares[:num_episodes % num_envs] += 1
    return shares


def seed_generators(seed: int) -> None:
    """Seed Python's, numpy's and torch's global random number generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_test_episodes(env: BaseEnv, act: Callable[[Tensor], Tensor], num_episodes: int,
                      seed: Optional[int] = None,
                      step_metrics: Optional[Callable[[Dict[str, Any]], Dict[str, Tensor]]] = None,
                      on_reset: Optional[Callable[[Tensor], None]] = None) -> Dict[str, float]:
    """Run ``num_episodes`` episodes with ``act(obs [num_envs, obs_dim]) -> [num_envs, action_dim]``.

    Each env runs its fixed share of the episodes (:func:`episode_shares`) and the loop
    waits until every env has finished its share, so short episodes are not over-counted.
    Episodes an env runs beyond its share are discarded. With ``seed``, the random
    generators are seeded (:func:`seed_generators`) right before the first reset, so the
    same environment with the same ``num_envs`` and seed starts the same episodes,
    whatever drew random numbers before (e.g. building a network). ``on_reset(env_ids)``
    (long ``[k]``) is called after every reset, the first (all envs) included.

    In a distributed run ``num_episodes`` are shared out among the ranks
    (:func:`episode_shares` over ranks, then over each rank's envs) and the statistics are
    over every rank's episodes, the same on every rank.

    Raises:
        MimicKitError: a distributed run with fewer episodes than ranks.

    Returns:
        ``mean_return``, ``mean_ep_len`` (control steps), ``num_eps`` and ``success_rate``
        (episodes that did not end with ``DoneFlags.FAIL``); ``falls_per_min`` (failed
        episodes per minute of simulated time) when the env has ``control_dt`` (s); plus
        each per-step value of ``info["tracking_errors"]`` (the env's errors, a dict of
        ``[num_envs]`` tensors) and of ``step_metrics(info)`` (the agent's, same form),
        averaged over the steps of an episode and then over episodes.
    """
    if num_episodes < distributed.world_size():
        raise MimicKitError("--test_episodes {}: a distributed run needs at least one episode per process ({})".format(
            num_episodes, distributed.world_size()))
    num_episodes = int(episode_shares(num_episodes, distributed.world_size())[distributed.rank()])
    shares = episode_shares(num_episodes, env.num_envs, env.device)
    finished = torch.zeros_like(shares)
    ep_return = torch.zeros(env.num_envs, device=env.device)
    ep_len = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
    error_sums: Dict[str, Tensor] = {}
    episodes: Dict[str, List[Tensor]] = {"return": [], "ep_len": [], "fail": []}
    if seed is not None:
        seed_generators(seed)
    obs = env.reset()
    if on_reset is not None:
        on_reset(torch.arange(env.num_envs, device=env.device))
    with torch.no_grad():
        while bool((finished < shares).any()):
            obs, reward, done, info = env.step(act(obs))
            ep_return += reward
            ep_len += 1
            per_step = dict(info.get("tracking_errors", {}))
            if step_metrics is not None:
                per_step.update(step_metrics(info))
            for name, err in per_step.items():
                error_sums.setdefault(name, torch.zeros_like(ep_return))
                error_sums[name] += err
            ended = done != DoneFlags.NULL
            counted = ended & (finished < shares)
            episodes["return"].append(ep_return[counted])
            episodes["ep_len"].append(ep_len[counted].float())
            episodes["fail"].append((done[counted] == DoneFlags.FAIL).float())
            for name, total in error_sums.items():
                episodes.setdefault(name, []).append(total[counted] / ep_len[counted])
            finished += ended.long()
            env_ids = ended.nonzero(as_tuple=False).flatten()
            ep_return[env_ids] = 0.0
            ep_len[env_ids] = 0
            for total in error_sums.values():
                total[env_ids] = 0.0
            obs = env.reset(env_ids)
            if on_reset is not None and len(env_ids) > 0:
                on_reset(env_ids)
    per_episode = {name: distributed.all_gather_cat(torch.cat(values)) for name, values in episodes.items()}
    means = {name: float(values.mean()) for name, values in per_episode.items()}
    stats = {"mean_return": means.pop("return"), "mean_ep_len": means.pop("ep_len"),
             "num_eps": int(len(per_episode["return"])),
             "success_rate": 1.0 - means.pop("fail")}
    control_dt = getattr(env, "control_dt", None)
    if control_dt is not None:
        minutes = float(per_episode["ep_len"].sum()) * control_dt / 60.0
        stats["falls_per_min"] = float(per_episode["fail"].sum()) / max(minutes, 1e-9)
    stats.update(means)
    return stats


def evaluate_perturbations(env: BaseEnv, path: str,
                           test: Callable[[], Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """``{name: test()}`` under each perturbation of the set in ``path`` (``--perturbations``).

    Each perturbation replaces the env's randomisation (:meth:`mimickit.envs.char_env.CharEnv.set_domain_rand`)
    before ``test`` runs; a success rate per perturbation is printed as it ends.

    Raises:
        MimicKitError: a bad perturbation file, or an env without domain randomisation.
    """
    from mimickit.envs.domain_rand import load_perturbations

    sets = load_perturbations(path)
    if not hasattr(env, "set_domain_rand"):
        raise MimicKitError("--perturbations: env {} has no domain randomisation".format(type(env).__name__))
    results: Dict[str, Dict[str, float]] = {}
    for name, cfg in sets.items():
        env.set_domain_rand(cfg, "{}: key '{}'".format(path, name))
        results[name] = test()
        print("{}: success_rate {:.3f}".format(name, results[name]["success_rate"]), flush=True)
    return results


def _cell(value: Any) -> str:
    return "{:.4f}".format(value) if isinstance(value, float) else str(value)


def write_eval(stats: Dict[str, Any], path: str) -> None:
    """Print the test statistics as a table and write them to ``path`` (JSON, atomically).

    ``stats`` is one test's statistics, or ``{name: statistics}`` of several (a perturbation
    set): then a row per name.
    """
    if stats and all(isinstance(v, dict) for v in stats.values()):
        columns = list(next(iter(stats.values())))
        rows = [["perturbation"] + columns] + [[name] + [_cell(row.get(c, "")) for c in columns]
                                               for name, row in stats.items()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print("{}  {}".format(key.ljust(width), _cell(value)))
    with atomic_write(path, "w") as f:
        json.dump(stats, f, indent=2)
    print("wrote " + path)

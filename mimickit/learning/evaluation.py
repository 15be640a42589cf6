"""Test-mode episode loop shared by agents."""
from __future__ import annotations

from typing import Callable, Dict

import torch
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, DoneFlags


def episode_shares(num_episodes: int, num_envs: int, device: str = "cpu") -> Tensor:
    """``[num_envs]`` episodes each env runs so that they add up to ``num_episodes``."""
    shares = torch.full((num_envs,), num_episodes // num_envs, dtype=torch.long, device=device)
    shares[:num_episodes % num_envs] += 1
    return shares


def run_test_episodes(env: BaseEnv, act: Callable[[Tensor], Tensor], num_episodes: int) -> Dict[str, float]:
    """Run ``num_episodes`` episodes with ``act(obs [num_envs, obs_dim]) -> [num_envs, action_dim]``.

    Each env runs its fixed share of the episodes (:func:`episode_shares`) and the loop
    waits until every env has finished its share, so short episodes are not over-counted.
    Episodes an env runs beyond its share are discarded.

    Returns:
        ``mean_return``, ``mean_ep_len`` (control steps), ``num_eps`` and ``success_rate``
        (episodes that did not end with ``DoneFlags.FAIL``).
    """
    shares = episode_shares(num_episodes, env.num_envs, env.device)
    finished = torch.zeros_like(shares)
    ep_return = torch.zeros(env.num_envs, device=env.device)
    ep_len = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
    returns, lengths, failures = [], [], []
    obs = env.reset()
    with torch.no_grad():
        while bool((finished < shares).any()):
            obs, reward, done, _ = env.step(act(obs))
            ep_return += reward
            ep_len += 1
            ended = done != DoneFlags.NULL
            counted = ended & (finished < shares)
            returns.append(ep_return[counted])
            lengths.append(ep_len[counted])
            failures.append(done[counted] == DoneFlags.FAIL)
            finished += ended.long()
            env_ids = ended.nonzero(as_tuple=False).flatten()
            ep_return[env_ids] = 0.0
            ep_len[env_ids] = 0
            obs = env.reset(env_ids)
    returns_t = torch.cat(returns)
    return {"mean_return": float(returns_t.mean()) if len(returns_t) else 0.0,
            "mean_ep_len": float(torch.cat(lengths).float().mean()) if len(returns_t) else 0.0,
            "num_eps": int(len(returns_t)),
            "success_rate": 1.0 - float(torch.cat(failures).float().mean()) if len(returns_t) else 0.0}

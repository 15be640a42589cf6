"""Per-environment episode return and length, averaged over finished episodes."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from mimickit.envs.base_env import DoneFlags
from mimickit.util import distributed


class ReturnTracker:
    """Accumulates undiscounted returns and lengths of the episodes running in each env.

    :meth:`update` is called once per control step; when an env's episode ends its return
    and length are added to the totals of finished episodes, which :meth:`reset_stats`
    clears (the running episodes carry on). The statistics (:attr:`num_episodes`,
    :meth:`mean_return`, :meth:`mean_ep_len`) are over every rank of a distributed run;
    every rank must ask for them together.

    Args:
        num_envs: environments stepped together.
        device: torch device of the accumulators.
    """

    def __init__(self, num_envs: int, device: str):
        self.ep_return = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.ep_len = torch.zeros(num_envs, dtype=torch.long, device=device)
        # Totals of finished episodes, kept as tensors so that update() does not synchronise.
        self._num_episodes = torch.zeros((), dtype=torch.long, device=device)
        self._return_sum = torch.zeros((), dtype=torch.float64, device=device)
        self._len_sum = torch.zeros((), dtype=torch.long, device=device)

    def _totals(self) -> Tensor:
        """``[3]`` float64: episodes, summed return and summed length, over every rank."""
        totals = torch.stack([self._num_episodes.double(), self._return_sum, self._len_sum.double()])
        return distributed.all_reduce_sum(totals)

    @property
    def num_episodes(self) -> int:
        """Episodes finished since :meth:`reset_stats`."""
        return int(self._totals()[0])

    def update(self, reward: Tensor, done: Tensor) -> None:
        """Add one step: ``reward`` ``[num_envs]``, ``done`` ``[num_envs]`` :class:`DoneFlags`."""
        self.ep_return += reward.to(self.ep_return.dtype)
        self.ep_len += 1
        ended = done != DoneFlags.NULL
        self._num_episodes += ended.sum()
        self._return_sum += torch.where(ended, self.ep_return, torch.zeros_like(self.ep_return)).sum()
        self._len_sum += torch.where(ended, self.ep_len, torch.zeros_like(self.ep_len)).sum()
        self.ep_return.masked_fill_(ended, 0.0)
        self.ep_len.masked_fill_(ended, 0)

    def reset_episodes(self, env_ids: Optional[Tensor] = None) -> None:
        """Forget the running episodes of ``env_ids`` (``None``: all), e.g. after a full env reset."""
        if env_ids is None:
            self.ep_return.zero_()
            self.ep_len.zero_()
        else:
            self.ep_return[env_ids] = 0.0
            self.ep_len[env_ids] = 0

    def reset_stats(self) -> None:
        """Clear the totals of finished episodes."""
        self._num_episodes.zero_()
        self._return_sum.zero_()
        self._len_sum.zero_()

    def mean_return(self) -> float:
        """Mean return of the episodes finished since :meth:`reset_stats`; nan when none."""
        num, return_sum, _ = (float(v) for v in self._totals())
        return return_sum / num if num else float("nan")

    def mean_ep_len(self) -> float:
        """Mean length (control steps) of the finished episodes; nan when none."""
        num, _, len_sum = (float(v) for v in self._totals())
        return len_sum / num if num else float("nan")

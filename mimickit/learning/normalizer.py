"""Running mean and standard deviation of observations, for normalising network inputs."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mimickit.util import distributed


def merge_moments(count_a: Tensor, mean_a: Tensor, var_a: Tensor,
                  count_b: Tensor, mean_b: Tensor, var_b: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Count, mean and population variance of the union of two sample sets.

    Chan, Golub and LeVeque's pairwise update: with ``n = n_a + n_b`` and
    ``d = mean_b - mean_a``, ``mean = mean_a + d n_b / n`` and
    ``var = (n_a var_a + n_b var_b + d^2 n_a n_b / n) / n``.

    Args:
        count_a: scalar sample count of set a (float tensor); ``count_a + count_b > 0``.
        mean_a: ``[dim]`` mean of set a.
        var_a: ``[dim]`` population variance of set a.
        count_b: scalar sample count of set b (float tensor).
        mean_b: ``[dim]`` mean of set b.
        var_b: ``[dim]`` population variance of set b.

    Returns:
        ``(count, mean [dim], var [dim])``.
    """
    count = count_a + count_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (count_b / count)
    var = (count_a * var_a + count_b * var_b + delta * delta * (count_a * count_b / count)) / count
    return count, mean, var


class Normalizer(nn.Module):
    """Running mean/std over samples; ``normalize(x) = clip((x - mean) / std, -clip, clip)``.

    Samples given to :meth:`record` are held apart until :meth:`update` merges them into
    the running statistics, so the normalisation stays fixed while a batch of experience
    is collected and trained on. Once ``max_samples`` samples have been merged the
    statistics are frozen: later samples are discarded. In a distributed run :meth:`update`
    merges the samples every rank recorded, so all ranks keep the statistics one process
    that saw all samples would. Statistics are kept in float64;
    ``std`` is the population standard deviation, floored at ``eps``. The running
    statistics are buffers, so they are part of :meth:`state_dict`.

    Args:
        dim: size of one sample; samples are ``[..., dim]``.
        clip: normalised values are clipped to ``[-clip, clip]``.
        max_samples: samples after which the statistics freeze.
        eps: floor of ``std`` (a constant input normalises to 0 instead of dividing by 0).
        device: torch device of the statistics.
    """

    # Buffers (registered in __init__), float64.
    count: Tensor  # scalar: samples merged so far
    mean: Tensor  # [dim]
    var: Tensor  # [dim], population variance
    _new_count: Tensor  # scalar: samples recorded since the last update
    _new_mean: Tensor  # [dim]
    _new_var: Tensor  # [dim]

    def __init__(self, dim: int, clip: float, max_samples: int, eps: float = 1e-4, device: str = "cpu"):
        super().__init__()
        self.clip = clip
        self.max_samples = max_samples
        self.eps = eps
        f64 = dict(dtype=torch.float64, device=device)
        self.register_buffer("count", torch.zeros((), **f64))
        self.register_buffer("mean", torch.zeros(dim, **f64))
        self.register_buffer("var", torch.ones(dim, **f64))
        # Samples recorded since the last update; not saved.
        self.register_buffer("_new_count", torch.zeros((), **f64), persistent=False)
        self.register_buffer("_new_mean", torch.zeros(dim, **f64), persistent=False)
        self.register_buffer("_new_var", torch.zeros(dim, **f64), persistent=False)

    @property
    def frozen(self) -> bool:
        """Whether ``max_samples`` samples have been merged (later ones are discarded)."""
        return float(self.count) >= self.max_samples

    @property
    def std(self) -> Tensor:
        """``[dim]`` float64 standard deviation used for normalising (floored at ``eps``)."""
        return self.var.sqrt().clamp_min(self.eps)

    def record(self, x: Tensor) -> None:
        """Hold ``x`` (``[..., dim]``) for the next :meth:`update` (which discards it once frozen)."""
        x = x.detach().reshape(-1, self.mean.shape[0]).to(torch.float64)
        if x.shape[0] == 0:
            return
        var, mean = torch.var_mean(x, dim=0, unbiased=False)
        count = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=x.device)
        self._new_count, self._new_mean, self._new_var = merge_moments(
            self._new_count, self._new_mean, self._new_var, count, mean, var)

    def update(self) -> None:
        """Merge the recorded samples (of every rank, in rank order) into the running statistics, unless frozen."""
        new = self._recorded_moments()
        if float(new[0]) > 0 and not self.frozen:
            if float(self.count) == 0:
                self.count, self.mean, self.var = (new[0].clone(), new[1].clone(), new[2].clone())
            else:
                self.count, self.mean, self.var = merge_moments(self.count, self.mean, self.var, *new)
        self._new_count = torch.zeros_like(self._new_count)
        self._new_mean = torch.zeros_like(self._new_mean)
        self._new_var = torch.zeros_like(self._new_var)

    def _recorded_moments(self) -> Tuple[Tensor, Tensor, Tensor]:
        """``(count, mean, var)`` of the samples recorded since the last update, over every rank."""
        if not distributed.active():
            return self._new_count, self._new_mean, self._new_var
        dim = self.mean.shape[0]
        rows = distributed.all_gather_cat(torch.cat([self._new_count.view(1), self._new_mean, self._new_var])[None])
        count, mean, var = torch.zeros_like(self._new_count), torch.zeros_like(self._new_mean), self._new_var
        for row in rows:
            if float(row[0]) > 0:
                if float(count) == 0:
                    count, mean, var = row[0], row[1:1 + dim], row[1 + dim:]
                else:
                    count, mean, var = merge_moments(count, mean, var, row[0], row[1:1 + dim], row[1 + dim:])
        return count, mean, var

    def normalize(self, x: Tensor) -> Tensor:
        """``[..., dim]`` -> ``[..., dim]``: ``clip((x - mean) / std, -clip, clip)`` in ``x``'s dtype."""
        mean = self.mean.to(x.dtype)
        std = self.std.to(x.dtype)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def unnormalize(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`normalize` for unclipped values: ``x * std + mean``."""
        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)

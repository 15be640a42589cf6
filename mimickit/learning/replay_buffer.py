"""A fixed-size first-in-first-out store of samples, drawn from uniformly at random."""
from __future__ import annotations

import torch
from torch import Tensor


class ReplayBuffer:
    """Holds up to ``capacity`` samples of shape ``[dim]``.

    Once full, new samples overwrite the oldest.

    Args:
        capacity: the most samples held, >= 1.
        dim: size of one sample.
        device: torch device of the storage.

    Raises:
        ValueError: ``capacity`` < 1 (a programming error; configs check their keys).
    """

    def __init__(self, capacity: int, dim: int, device: str = "cpu"):
        if capacity < 1:
            raise ValueError("replay buffer capacity must be >= 1, got {}".format(capacity))
        self.capacity = capacity
        self._data = torch.zeros(capacity, dim, device=device)
        self._head = 0  # next row written
        self._count = 0

    def __len__(self) -> int:
        """Samples held, at most ``capacity``."""
        return self._count

    def add(self, samples: Tensor) -> None:
        """Store ``samples`` (``[n, dim]``); with ``n > capacity`` only the last ``capacity`` stay."""
        samples = samples.detach()[-self.capacity:]
        n = samples.shape[0]
        rows = (self._head + torch.arange(n, device=self._data.device)) % self.capacity
        self._data[rows] = samples.to(self._data)
        self._head = (self._head + n) % self.capacity
        self._count = min(self._count + n, self.capacity)

    def sample(self, n: int) -> Tensor:
        """``[n, dim]`` samples drawn uniformly with replacement from those held.

        Raises:
            ValueError: the buffer is empty.
        """
        if self._count == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = torch.randint(0, self._count, (n,), device=self._data.device)
        return self._data[rows]

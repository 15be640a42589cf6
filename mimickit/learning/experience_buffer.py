"""Preallocated storage for one iteration of experience from all environments."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import Tensor


class ExperienceBuffer:
    """Named tensors ``[steps_per_iter, num_envs, ...]`` filled one step at a time.

    Args:
        steps_per_iter: steps collected from every environment per iteration.
        num_envs: environments stepped together.
        device: torch device of the tensors.
    """

    def __init__(self, steps_per_iter: int, num_envs: int, device: str):
        self.steps_per_iter = steps_per_iter
        self.num_envs = num_envs
        self.device = device
        self._data: Dict[str, Tensor] = {}

    def add(self, name: str, shape: Tuple[int, ...], dtype: torch.dtype = torch.float32) -> None:
        """Allocate ``name`` as zeros ``[steps_per_iter, num_envs, *shape]``.

        Raises:
            ValueError: when ``name`` exists already (a programming error).
        """
        if name in self._data:
            raise ValueError("experience buffer '{}' added twice".format(name))
        self._data[name] = torch.zeros((self.steps_per_iter, self.num_envs) + tuple(shape),
                                       dtype=dtype, device=self.device)

    def names(self) -> Tuple[str, ...]:
        """The names added so far, in order."""
        return tuple(self._data)

    def record(self, name: str, step: int, value: Tensor) -> None:
        """Store ``value`` (``[num_envs, *shape]``) as step ``step`` of ``name``."""
        self._data[name][step] = value

    def get(self, name: str) -> Tensor:
        """``[steps_per_iter, num_envs, *shape]`` tensor of ``name`` (not a copy)."""
        return self._data[name]

    def get_flat(self, name: str) -> Tensor:
        """``[steps_per_iter * num_envs, *shape]`` view of ``name``, time-major."""
        data = self._data[name]
        return data.reshape((-1,) + tuple(data.shape[2:]))

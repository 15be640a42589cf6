"""Torch's intra-op thread count around work that shares the cores with the physics engine's threads."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def rollout_threads(device: str) -> Iterator[None]:
    """Run the block with one torch intra-op thread when ``device`` is the CPU, then restore the count.

    A rollout's tensors are small (one row per env) and the physics engine steps on its own
    threads: torch's worker threads would only compete with them for the cores (on 2 cores,
    the DeepMimic env at 256 envs steps 16 % faster with one torch thread, and 1.7x as fast
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

"""Multi-process training with ``torch.distributed``, launched by ``torchrun`` (or ``--num_workers``).

Every process (rank) simulates its own ``--num_envs`` environments and holds a full copy
of the agent. They stay one model because they start from rank 0's state
(:func:`broadcast_object`) and every optimiser step uses the gradient averaged over the
ranks (:func:`average_gradients`), so every rank computes the same new parameters. The
rest of the module merges what the ranks observed: normaliser statistics, episode
returns, test episodes.

A plain ``python mimickit/run.py`` sets nothing up: :func:`setup` only initialises a
process group when ``torchrun`` started this process (``WORLD_SIZE`` > 1 in the
environment), and every function here is then the identity of one process.

Backends: ``gloo`` for the CPU, ``nccl`` for CUDA; ``--device cuda`` becomes
``cuda:<LOCAL_RANK>``. Collectives time out after :data:`TIMEOUT_S`, so a rank whose peer
died stops with an error instead of waiting for ever (``torchrun`` also stops the other
ranks when one fails).
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Iterable, List

import torch
import torch.distributed as dist
from torch import Tensor

from mimickit.util.errors import MimicKitError

TIMEOUT_S = 300  # a collective waiting this long for a peer raises


def active() -> bool:
    """Whether this process is one of several ranks of a distributed run."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a distributed run)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank, 0 .. world_size - 1 (0 without a distributed run)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether the environment says this process is one of several started by ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> str:
    """Join the process group when :func:`launched_by_torchrun`; return this rank's device.

    ``device`` ``cuda`` (without an index) becomes ``cuda:<LOCAL_RANK>``; other devices
    are kept. Without ``torchrun`` nothing happens and ``device`` is returned.

    Raises:
        MimicKitError: ``cuda`` was asked for more ranks on this machine than it has GPUs.
    """
    if not launched_by_torchrun() or active():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise MimicKitError("--device cuda: rank {} on this machine needs GPU {}, it has {}".format(
                local_rank, local_rank, torch.cuda.device_count()))
        device = "cuda:{}".format(local_rank)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo",
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return device


def teardown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: Iterable[Tensor]) -> None:
    """Replace every parameter's gradient by its mean over the ranks, in one all-reduce.

    A parameter without a gradient on this rank takes part with zeros (so every rank
    steps the same optimiser). One process: nothing changes.
    """
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def all_reduce_sum(x: Tensor) -> Tensor:
    """The sum of ``x`` over the ranks (a new tensor; ``x`` itself with one process)."""
    if not active():
        return x
    total = x.clone()
    dist.all_reduce(total)
    return total


def all_gather_cat(x: Tensor) -> Tensor:
    """``[n_0 + ... + n_{K-1}, ...]``: every rank's ``[n_r, ...]`` rows, rank 0's first.

    The ranks may hold different numbers of rows (not different trailing shapes).
    """
    if not active():
        return x
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    most = int(max(int(c) for c in counts))
    padded = torch.zeros((most,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    gathered = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:int(c)] for g, c in zip(gathered, counts)])


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled); ``obj`` itself with one process."""
    if not active():
        return obj
    box: List[Any] = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> List[Any]:
    """Every rank's ``obj``, in rank order, on every rank; ``[obj]`` with one process."""
    if not active():
        return [obj]
    out: List[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out

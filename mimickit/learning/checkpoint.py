"""Saving and loading training checkpoints (``model.pt``).

A checkpoint is a dict saved with :func:`torch.save` holding only tensors and plain
Python values (so it loads with ``weights_only=True``, which runs no pickled code):

- ``format``: :data:`FORMAT`, ``version``: :data:`VERSION`, ``agent_name``;
- whatever the agent adds: network, normaliser and optimiser state dicts, iteration,
  sample count, wall time, the agent config as a dict;
- ``rng``: the torch, numpy and Python random states (:func:`get_rng_state`).

:func:`save_checkpoint` writes a temporary file next to the target and renames it over
the target with :func:`os.replace`, so an interrupted save leaves the old file intact.
"""
from __future__ import annotations

import os
import random
import re
from typing import Any, Dict

import numpy as np
import torch

from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError

FORMAT = "mimickit.checkpoint"
VERSION = 1


def get_rng_state() -> Dict[str, Any]:
    """Torch (CPU and every CUDA device), numpy and Python random states, as plain values."""
    np_state = np.random.get_state()
    if not isinstance(np_state, tuple):  # only for a non-MT19937 bit generator, which np.random never uses
        raise TypeError("numpy's global random state is not MT19937: {}".format(type(np_state).__name__))
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore the states returned by :func:`get_rng_state` (CUDA only where present on both sides)."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].cpu().numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str, agent_name: str, content: Dict[str, Any]) -> None:
    """Write ``content`` plus the format header and RNG states to ``path`` atomically.

    The folder of ``path`` is created when missing. The file is written to a temporary
    name in the same folder, flushed to disk and renamed over ``path``.
    """
    checkpoint = {"format": FORMAT, "version": VERSION, "agent_name": agent_name, "rng": get_rng_state()}
    checkpoint.update(content)
    with atomic_write(path) as f:
        torch.save(checkpoint, f)


def load_checkpoint(path: str, agent_name: str, map_location: str = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for the agent ``agent_name``.

    Returns:
        The checkpoint dict, tensors on ``map_location`` (the random states too;
        :func:`set_rng_state` moves them back to the CPU).

    Raises:
        MimicKitError: naming ``path`` when the file is missing, truncated or not a torch
            file, is a torch file that is not a MimicKit checkpoint (e.g. a bare state
            dict), has another format version, or was saved by another agent.
    """
    if not os.path.isfile(path):
        raise MimicKitError("model file not found: {}".format(path))
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; none is a programming error here
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().split("\n")[0][:120]
        raise MimicKitError("{}: cannot read it as a model file: truncated, or not a MimicKit checkpoint "
                            "({}: {})".format(path, type(e).__name__, reason)) from e
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise MimicKitError("{}: not a MimicKit checkpoint (expected a model.pt saved by training)".format(path))
    if checkpoint.get("version") != VERSION:
        raise MimicKitError("{}: checkpoint format version {} (this code reads version {})".format(
            path, checkpoint.get("version"), VERSION))
    if checkpoint.get("agent_name") != agent_name:
        raise MimicKitError("{}: saved by agent '{}', cannot load it into agent '{}'".format(
            path, checkpoint.get("agent_name"), agent_name))
    return checkpoint

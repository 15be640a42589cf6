"""Saving and loading training checkpoints (``model.pt``).

A checkpoint is a dict saved with :func:`torch.save` holding only tensors and plain
Python values (so it loads with ``weights_only=True``, which runs no pickled code):

- ``format``: :data:`FORMAT`, ``version``: :data:`VERSION`, ``agent_name``;
- whatever the agent adds: network, normaliser and optimiser state dicts, iteration,
  sample count, wall time, the agent config as a dict;
- ``rng``: the torch, numpy and Python random states (:func:`get_rng_state`).

On disk (version 2) that dict is serialised into ``payload`` (bytes) stored beside its
SHA-256 in an outer dict with ``format`` and ``version``, so that flipped or lost bytes are
found on load. :func:`save_checkpoint` writes a temporary file next to the target and
renames it over the target with :func:`os.replace`, so an interrupted save leaves the old
file intact, and it refuses content holding NaN or Inf.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import re
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np
import torch

from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError

FORMAT = "mimickit.checkpoint"
VERSION = 2  # 2: the content is a payload with its SHA-256
READ_VERSIONS = (1, 2)


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


def nonfinite_entries(content: Any, prefix: str = "") -> List[str]:
    """Names (``a/b/c``) of the floating-point tensors in nested dicts and lists ``content`` that hold NaN or Inf."""
    if isinstance(content, torch.Tensor):
        bad = content.is_floating_point() and not bool(torch.isfinite(content).all())
        return [prefix or "tensor"] if bad else []
    items: Iterable[Tuple[Any, Any]]
    if isinstance(content, dict):
        items = content.items()
    elif isinstance(content, (list, tuple)):
        items = enumerate(content)
    else:
        return []
    return [name for key, value in items for name in nonfinite_entries(value, "{}/{}".format(prefix, key).lstrip("/"))]


def save_checkpoint(path: str, agent_name: str, content: Dict[str, Any]) -> None:
    """Write ``content`` plus the format header and RNG states to ``path`` atomically, with a checksum.

    The folder of ``path`` is created when missing. The file is written to a temporary
    name in the same folder, flushed to disk and renamed over ``path``. It holds the
    header and ``payload``, the serialised checkpoint as bytes, with its SHA-256 (``sha256``)
    so that :func:`load_checkpoint` finds damaged bytes.

    Raises:
        MimicKitError: naming ``path`` and the tensors when ``content`` holds NaN or Inf
            (a diverged model is never saved over a good one).
    """
    bad = nonfinite_entries(content)
    if bad:
        raise MimicKitError("{}: not saved: non-finite values in {}".format(path, ", ".join(bad[:5])))
    checkpoint = {"format": FORMAT, "version": VERSION, "agent_name": agent_name, "rng": get_rng_state()}
    checkpoint.update(content)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    payload = buffer.getvalue()
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(payload).hexdigest(),
                    "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}, f)


def _read(source: Any, path: str, map_location: str) -> Any:
    """``torch.load`` of ``source`` (a path or a byte stream) with ``weights_only``, errors naming ``path``."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; none is a programming error here
        reason = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().split("\n")[0][:120]
        raise MimicKitError("{}: cannot read it as a model file: truncated, or not a MimicKit checkpoint "
                            "({}: {})".format(path, type(e).__name__, reason)) from e


def load_checkpoint(path: str, agent_name: str, map_location: str = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for the agent ``agent_name``.

    Version 2 files are verified against their SHA-256; version 1 files (written before
    checksums, e.g. older runs) are read without that check.

    Returns:
        The checkpoint dict, tensors on ``map_location`` (the random states too;
        :func:`set_rng_state` moves them back to the CPU).

    Raises:
        MimicKitError: naming ``path`` when the file is missing, truncated or not a torch
            file, fails its checksum (damaged bytes), is a torch file that is not a
            MimicKit checkpoint (e.g. a bare state dict), has another format version, or
            was saved by another agent.
    """
    if not os.path.isfile(path):
        raise MimicKitError("model file not found: {}".format(path))
    checkpoint = _read(path, path, map_location)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise MimicKitError("{}: not a MimicKit checkpoint (expected a model.pt saved by training)".format(path))
    if checkpoint.get("version") not in READ_VERSIONS:
        raise MimicKitError("{}: checkpoint format version {} (this code reads versions {})".format(
            path, checkpoint.get("version"), ", ".join(str(v) for v in READ_VERSIONS)))
    if checkpoint["version"] >= 2:
        payload = checkpoint["payload"].cpu().numpy().tobytes()
        if hashlib.sha256(payload).hexdigest() != checkpoint.get("sha256"):
            raise MimicKitError("{}: damaged: its content does not match the checksum stored with it "
                                "(use an earlier copy, e.g. int_models/)".format(path))
        checkpoint = _read(io.BytesIO(payload), path, map_location)
    if checkpoint.get("agent_name") != agent_name:
        raise MimicKitError("{}: saved by agent '{}', cannot load it into agent '{}'".format(
            path, checkpoint.get("agent_name"), agent_name))
    return checkpoint

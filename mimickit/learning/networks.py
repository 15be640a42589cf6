"""Network bodies looked up by a name that states their sizes.

A name such as ``fc_2layers_256units`` (two fully connected hidden layers of 256 units,
each followed by ReLU) is parsed by :func:`build_network`; any ``fc_<L>layers_<U>units``
works. Other bodies register a builder under their own name with
:func:`register_network`. A body maps ``[batch, in_dim]`` to ``[batch, out_dim]``; the
heads (policy mean, value) are added by the model that uses it.

A model may run its bodies' matrix products in bfloat16 (:func:`run_body`, the agent
YAML's ``matmul_dtype``): parameters, heads, losses and exported policies stay float32.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mimickit.util.errors import MimicKitError

MATMUL_DTYPES = ("float32", "bfloat16", "auto")

# Builder: in_dim -> (body, out_dim).
NetworkBuilder = Callable[[int], Tuple[nn.Module, int]]

NETWORKS: Dict[str, NetworkBuilder] = {}

_FC_NAME = re.compile(r"^fc_(\d+)layers_(\d+)units$")


def register_network(name: str) -> Callable[[NetworkBuilder], NetworkBuilder]:
    """Decorator: make ``builder(in_dim) -> (module, out_dim)`` available as ``name``.

    Raises:
        ValueError: when ``name`` is already taken (a programming error).
    """
    def register(builder: NetworkBuilder) -> NetworkBuilder:
        if name in NETWORKS and NETWORKS[name] is not builder:
            raise ValueError("network name '{}' registered twice".format(name))
        NETWORKS[name] = builder
        return builder
    return register


def build_mlp(in_dim: int, hidden_sizes: List[int]) -> Tuple[nn.Module, int]:
    """Fully connected ReLU network ``in_dim -> hidden_sizes[0] -> ... -> hidden_sizes[-1]``.

    Returns:
        ``(module, out_dim)``; the module maps ``[batch, in_dim]`` to ``[batch, out_dim]``
        with ``out_dim = hidden_sizes[-1]`` (``in_dim`` when ``hidden_sizes`` is empty).
    """
    layers: List[nn.Module] = []
    size = in_dim
    for units in hidden_sizes:
        layers.append(nn.Linear(size, units))
        layers.append(nn.ReLU())
        size = units
    return nn.Sequential(*layers), size


def network_names() -> List[str]:
    """The registered names plus the ``fc_<L>layers_<U>units`` pattern, for messages."""
    return sorted(NETWORKS) + ["fc_<L>layers_<U>units"]


def _fc_sizes(name: str) -> List[int]:
    """Hidden sizes of an ``fc_<L>layers_<U>units`` name; ``[]`` when it is not one."""
    match = _FC_NAME.match(name)
    if match is None:
        return []
    num_layers, units = int(match.group(1)), int(match.group(2))
    return [units] * num_layers if units >= 1 else []


def check_network_name(name: str, source: str) -> None:
    """Raise :class:`MimicKitError` naming ``source`` when ``name`` is not a known network."""
    if name not in NETWORKS and not _fc_sizes(name):
        raise MimicKitError("{}: unknown network '{}' (expected one of: {})".format(
            source, name, ", ".join(network_names())))


def build_network(name: str, in_dim: int, source: str = "network") -> Tuple[nn.Module, int]:
    """Build the body called ``name`` for ``[batch, in_dim]`` inputs.

    Args:
        name: a registered name or ``fc_<L>layers_<U>units`` (L >= 1 hidden layers of
            U >= 1 units, ReLU after each).
        in_dim: input size.
        source: where the name came from (file and key), for the error message.

    Returns:
        ``(module, out_dim)``.

    Raises:
        MimicKitError: when ``name`` is neither registered nor of the ``fc_`` pattern,
            naming ``source`` and the accepted names.
    """
    check_network_name(name, source)
    if name in NETWORKS:
        return NETWORKS[name](in_dim)
    return build_mlp(in_dim, _fc_sizes(name))


def native_bf16_cpu() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX), so bfloat16 products beat float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_matmul_dtype(name: str, device: str) -> torch.dtype:
    """The dtype of an agent YAML's ``matmul_dtype`` (one of :data:`MATMUL_DTYPES`) on ``device``.

    ``auto`` is bfloat16 on a CPU with :func:`native_bf16_cpu`, else float32 (without those
    instructions bfloat16 is emulated and slower; a GPU's float32 products use its own fast modes).
    """
    if name == "auto":
        return torch.bfloat16 if torch.device(device).type == "cpu" and native_bf16_cpu() else torch.float32
    return torch.bfloat16 if name == "bfloat16" else torch.float32


def run_body(body: nn.Module, x: Tensor, dtype: torch.dtype) -> Tensor:
    """``body(x)`` with its matrix products in ``dtype``, returned as float32.

    bfloat16 runs under ``torch.autocast`` (mixed precision: float32 parameters and
    gradients, bfloat16 inputs to each product, float32 accumulation), about 3x faster than
    float32 on a CPU with bfloat16 instructions; float32: ``body(x)`` unchanged.
    ``x`` is ``[batch, in_dim]`` float32.
    """
    if dtype == torch.float32:
        return body(x)
    with torch.autocast(x.device.type, dtype=dtype):
        return body(x).float()

"""Network bodies looked up by a name that states their sizes.

A name such as ``fc_2layers_256units`` (two fully connected hidden layers of 256 units,
each followed by ReLU) is parsed by :func:`build_network`; any ``fc_<L>layers_<U>units``
works. Other bodies register a builder under their own name with
:func:`register_network`. A body maps ``[batch, in_dim]`` to ``[batch, out_dim]``; the
heads (policy mean, value) are added by the model that uses it.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Tuple

import torch.nn as nn

from mimickit.util.errors import MimicKitError

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

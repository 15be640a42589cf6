"""Build an agent from its YAML config.

The agent YAML names its class with ``agent_name``; classes register under that name with
``@register_agent("NAME")``. Agent names are the algorithm's name in capitals (``PPO``,
``AMP``, ``ASE``, ``HRL``, ``DUMMY``). :data:`AGENTS` (a :class:`mimickit.util.registry.Registry`) maps each
name to its module, imported when that agent is first built. An agent implements
:class:`mimickit.learning.base_agent.BaseAgent`; :class:`mimickit.learning.runner.Runner`
trains and tests it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from mimickit.envs.base_env import BaseEnv
from mimickit.util.config import load_yaml
from mimickit.util.registry import Registry

if TYPE_CHECKING:
    from mimickit.learning.base_agent import BaseAgent

AGENTS = Registry("agent", "agent_name", {
    "DUMMY": "mimickit.learning.dummy_agent",
    "PPO": "mimickit.learning.ppo_agent",
    "AMP": "mimickit.learning.amp_agent",
    "ASE": "mimickit.learning.ase_agent",
    "HRL": "mimickit.learning.hrl_agent",
})
register_agent = AGENTS.register


def build_agent(agent_config_file: str, env: BaseEnv, device: str,
                overrides: Optional[Dict[str, Any]] = None) -> BaseAgent:
    """Build the agent that ``agent_config_file`` names with its ``agent_name`` key.

    The class is constructed with the keywords ``config`` (the YAML mapping without
    ``agent_name``, updated with ``overrides``; the class checks it), ``config_file`` (for
    error messages), ``env`` and ``device``.

    Raises:
        MimicKitError: when the file is missing or not a YAML mapping, or ``agent_name``
            is missing or unknown (the message lists the known names).
    """
    config = load_yaml(agent_config_file)
    agent_class = AGENTS.lookup(config, agent_config_file)
    config.pop("agent_name")
    config.update(overrides or {})
    return agent_class(config=config, config_file=agent_config_file, env=env, device=device)

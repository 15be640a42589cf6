"""Build an agent from its YAML config.

The agent YAML names its class with ``agent_name``; classes register under that name with
``@register_agent("name")``. :data:`AGENTS` (a :class:`mimickit.util.registry.Registry`)
maps each name to its module, imported when that agent is first built.

``run.py`` uses these agent methods:

- ``train_model(max_samples: Optional[int], out_dir: str, logger: str) -> None``: train
  until ``max_samples`` environment steps (``None``: the agent's own limit), writing
  ``<out_dir>/model.pt`` and logs in the ``logger`` format (``txt``, ``tb`` or ``wandb``).
- ``test_model(num_episodes: int) -> Dict[str, float]``: run the policy without
  exploration and return summary statistics (e.g. mean episode return and length).
- ``load(path: str) -> None``: load a model saved by training; raise
  :class:`mimickit.util.errors.MimicKitError` naming the file when it does not fit.
"""
from __future__ import annotations

from typing import Any

from mimickit.envs.base_env import BaseEnv
from mimickit.util.config import load_yaml
from mimickit.util.registry import Registry

AGENTS = Registry("agent", "agent_name", {
    "dummy": "mimickit.learning.dummy_agent",
    "PPO": "mimickit.learning.ppo_agent",
    "AMP": "mimickit.learning.amp_agent",
})
register_agent = AGENTS.register


def build_agent(agent_config_file: str, env: BaseEnv, device: str) -> Any:
    """Build the agent that ``agent_config_file`` names with its ``agent_name`` key.

    The class is constructed with the keywords ``config`` (the YAML mapping without
    ``agent_name``; the class checks it), ``config_file`` (for error messages), ``env``
    and ``device``.

    Raises:
        MimicKitError: when the file is missing or not a YAML mapping, or ``agent_name``
            is missing or unknown (the message lists the known names).
    """
    config = load_yaml(agent_config_file)
    agent_class = AGENTS.lookup(config, agent_config_file)
    config.pop("agent_name")
    return agent_class(config=config, config_file=agent_config_file, env=env, device=device)

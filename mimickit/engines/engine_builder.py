"""Build an engine from its YAML config (``data/engines/*.yaml``)."""
from __future__ import annotations

from mimickit.engines.engine import ENGINES, Engine
from mimickit.util.config import from_dict, load_yaml


def build_engine(config_file: str, num_envs: int, device: str, visualize: bool) -> Engine:
    """Read ``config_file`` and build the engine its ``engine_name`` names.

    Args:
        config_file: YAML file with ``engine_name`` and that engine's config keys.
        num_envs: number of parallel envs.
        device: torch device of the tensors the engine returns (``cpu``, ``cuda:0``).
        visualize: open the interactive viewer on env 0.

    Raises:
        MimicKitError: missing file, invalid YAML, missing or unknown ``engine_name``,
            unknown key, wrong type or invalid value (naming the file and key).
    """
    data = load_yaml(config_file)
    engine_class = ENGINES.lookup(data, config_file)
    config = from_dict(engine_class.config_class, data, config_file)
    return engine_class(config, num_envs, device, visualize)

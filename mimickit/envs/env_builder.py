"""Build an environment from its YAML config.

The env YAML names its class with ``env_name``; classes register under that name with
``@register_env("name")`` (see :mod:`mimickit.util.registry`). Adding an environment:
write ``mimickit/envs/my_env.py`` with ``@register_env("my_env")`` and add
``"my_env": "mimickit.envs.my_env"`` to the table below.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from mimickit.envs.base_env import BaseEnv
from mimickit.util.config import load_yaml
from mimickit.util.errors import MimicKitError
from mimickit.util.registry import Registry

ENVS = Registry("environment", "env_name", {
    "view_motion": "mimickit.envs.view_motion_env",
    "deepmimic": "mimickit.envs.deepmimic_env",
    "amp": "mimickit.envs.amp_env",
})
register_env = ENVS.register


def build_env(env_config_file: str, engine_config_file: str, num_envs: int, device: str,
              visualize: bool, motion_file: Optional[str] = None,
              video_file: Optional[str] = None, char_file: Optional[str] = None) -> BaseEnv:
    """Build the environment that ``env_config_file`` names with its ``env_name`` key.

    The class is constructed with the keywords ``config`` (the YAML mapping without
    ``env_name``; the class checks it, e.g. with :func:`mimickit.util.config.from_dict`),
    ``config_file`` (for error messages), ``engine_config_file``, ``num_envs``, ``device``,
    ``visualize`` and ``video_file``.

    Args:
        env_config_file: the env YAML.
        engine_config_file: the engine YAML; the environment builds its engine from it.
        num_envs: environments simulated side by side.
        device: torch device of the environment's tensors (e.g. ``"cpu"``, ``"cuda:0"``).
        visualize: open the engine's viewer.
        motion_file: when given, replaces the config's ``motion_file`` value.
        video_file: file to record a video of the run to; ``None``: no recording.
        char_file: when given, replaces the config's ``char_file`` value (e.g. a vendor's
            file of the robot a model was trained on).

    Raises:
        MimicKitError: when the file is missing or not a YAML mapping, ``env_name`` is
            missing or unknown (the message lists the known names), or ``motion_file``
            (``char_file``) is given for an environment whose config has no such key.
    """
    config: Dict[str, Any] = load_yaml(env_config_file)
    env_class = ENVS.lookup(config, env_config_file)
    config.pop("env_name")
    for key, value in (("motion_file", motion_file), ("char_file", char_file)):
        if value is not None:
            if key not in config:
                raise MimicKitError("--{}: the env config {} has no {} key to override".format(
                    key, env_config_file, key))
            config[key] = value
    return env_class(config=config, config_file=env_config_file, engine_config_file=engine_config_file,
                      num_envs=num_envs, device=device, visualize=visualize, video_file=video_file)

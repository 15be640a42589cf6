"""Build an environment from its YAML config.

The env YAML names its class with ``env_name``; classes register under that name with
``@register_env("name")``. The modules that hold registered environments are listed in
:data:`ENV_MODULES` and imported on the first build, so adding an environment is: write
``mimickit/envs/my_env.py`` with ``@register_env("my_env")``, add its module here.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Optional, Type

from mimickit.envs.base_env import BaseEnv
from mimickit.util.config import load_yaml
from mimickit.util.errors import MimicKitError

# Modules whose import registers environments.
ENV_MODULES = [
    "mimickit.envs.view_motion_env",
    "mimickit.envs.deepmimic_env",
]

ENVS = {}  # type: Dict[str, Type[BaseEnv]]


def register_env(name: str) -> Callable[[Type[BaseEnv]], Type[BaseEnv]]:
    """Class decorator: make the environment buildable with ``env_name: <name>``.

    Raises:
        ValueError: when ``name`` is already taken by another class (a programming error).
    """
    def register(cls: Type[BaseEnv]) -> Type[BaseEnv]:
        if name in ENVS and ENVS[name] is not cls:
            raise ValueError("env name '{}' registered twice: {} and {}".format(name, ENVS[name], cls))
        ENVS[name] = cls
        return cls
    return register


def _import_env_modules() -> None:
    for module in ENV_MODULES:
        importlib.import_module(module)


def build_env(env_config_file: str, engine_config_file: str, num_envs: int, device: str,
              visualize: bool, motion_file: Optional[str] = None,
              video_file: Optional[str] = None) -> BaseEnv:
    """Build the environment that ``env_config_file`` names with its ``env_name`` key.

    The class is constructed with the keywords ``config`` (the YAML mapping without
    ``env_name``; the class checks it, e.g. with :func:`mimickit.util.config.from_dict`),
    ``config_file`` (for error messages), ``engine_config_file`` (the class builds its
    engine), ``num_envs``, ``device``, ``visualize`` and ``video_file`` (``None``: no
    recording).

    Args:
        motion_file: when given, replaces the config's ``motion_file`` value.

    Raises:
        MimicKitError: when the file is missing or not a YAML mapping, ``env_name`` is
            missing or unknown (the message lists the known names), or ``motion_file`` is
            given for an environment whose config has no ``motion_file`` key.
    """
    config = load_yaml(env_config_file)  # type: Dict[str, Any]
    if "env_name" not in config:
        raise MimicKitError("{}: missing key 'env_name' (the environment to build)".format(env_config_file))
    name = config.pop("env_name")
    _import_env_modules()
    if name not in ENVS:
        raise MimicKitError("{}: unknown env_name '{}' (known: {})".format(
            env_config_file, name, ", ".join(sorted(ENVS)) or "none"))
    if motion_file is not None:
        if "motion_file" not in config:
            raise MimicKitError("--motion_file: the env config {} has no motion_file key to override".format(
                env_config_file))
        config["motion_file"] = motion_file
    return ENVS[name](config=config, config_file=env_config_file, engine_config_file=engine_config_file,
                      num_envs=num_envs, device=device, visualize=visualize, video_file=video_file)

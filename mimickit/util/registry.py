"""Registries of named classes: engines, environments, agents.

A config names its class with a key (``engine_name``, ``env_name``, ``agent_name``); the
class registers under that name with the registry's decorator. The modules that hold
registered classes are listed in the registry and imported on the first lookup, so adding
one is: write the module with the decorator, add its module path to the list.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List

from mimickit.util.errors import MimicKitError


class Registry:
    """Classes of one kind by name.

    Args:
        kind: what the classes are, for messages (``engine``).
        key: the config key that names a class (``engine_name``).
        modules: modules whose import registers the classes.
    """

    def __init__(self, kind: str, key: str, modules: List[str]):
        self.kind = kind
        self.key = key
        self.modules = modules
        self.classes = {}  # type: Dict[str, Any]

    def register(self, name: str) -> Callable[[Any], Any]:
        """Class decorator: make the class buildable with ``<key>: <name>``.

        Raises:
            ValueError: when ``name`` is already taken by another class (a programming error).
        """
        def add(cls: Any) -> Any:
            if name in self.classes and self.classes[name] is not cls:
                raise ValueError("{} name '{}' registered twice: {} and {}".format(
                    self.kind, name, self.classes[name], cls))
            self.classes[name] = cls
            return cls
        return add

    def lookup(self, config: Dict[str, Any], config_file: str) -> Any:
        """The class that ``config[key]`` names.

        Raises:
            MimicKitError: when the key is missing or names no registered class (the
                message names the file and lists the known names).
        """
        for module in self.modules:
            importlib.import_module(module)
        known = ", ".join(sorted(self.classes)) or "none"
        if self.key not in config:
            raise MimicKitError("{}: missing key '{}' (the {} to build; known: {})".format(
                config_file, self.key, self.kind, known))
        name = config[self.key]
        if name not in self.classes:
            raise MimicKitError("{}: key '{}': unknown {} '{}' (known: {})".format(
                config_file, self.key, self.kind, name, known))
        return self.classes[name]

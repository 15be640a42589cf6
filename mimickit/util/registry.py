"""Registries of named classes: engines, environments, agents, tasks.

A config names its class with a key (``engine_name``, ``env_name``, ``agent_name``); the
class registers under that name with the registry's decorator. Each registry maps every
name to the module that holds its class, and a lookup imports only that module, so a
module whose dependencies are missing here (Isaac Gym, MuJoCo Warp, a newer MuJoCo on an
old Python) fails only when its own name is asked for, with a message naming the package.
Adding a class is: write the module with the decorator, add ``name: module`` to the table.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict

from mimickit.util.errors import MimicKitError


class Registry:
    """Classes of one kind by name.

    Args:
        kind: what the classes are, for messages (``engine``).
        key: the config key that names a class (``engine_name``).
        modules: name -> the module whose import registers that name's class.
    """

    def __init__(self, kind: str, key: str, modules: Dict[str, str]):
        self.kind = kind
        self.key = key
        self.modules = dict(modules)
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

    def names(self):
        """Every name this registry can build, sorted."""
        return sorted(set(self.modules) | set(self.classes))

    def lookup(self, config: Dict[str, Any], config_file: str) -> Any:
        """The class that ``config[key]`` names, importing its module on first use.

        Raises:
            MimicKitError: when the key is missing, names no known class (the message names
                the file and lists the known names), or its module cannot be imported
                (the message names the missing package).
            ValueError: when the module does not register the name (a programming error).
        """
        known = ", ".join(self.names()) or "none"
        if self.key not in config:
            raise MimicKitError("{}: missing key '{}' (the {} to build; known: {})".format(
                config_file, self.key, self.kind, known))
        name = config[self.key]
        if name not in self.classes:
            if name not in self.modules:
                raise MimicKitError("{}: key '{}': unknown {} '{}' (known: {})".format(
                    config_file, self.key, self.kind, name, known))
            try:
                importlib.import_module(self.modules[name])
            except ImportError as e:
                raise MimicKitError("{}: key '{}': the {} '{}' cannot be loaded here: {}".format(
                    config_file, self.key, self.kind, name, e)) from e
            if name not in self.classes:
                raise ValueError("module {} does not register {} '{}'".format(self.modules[name], self.kind, name))
        return self.classes[name]

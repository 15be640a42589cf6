"""Checked YAML configs.

Each component declares its config as a dataclass; :func:`from_dict` builds it from a
YAML mapping and fails at start-up, naming the file and key, on an unknown key, a
missing key or a wrong type. Defaults live in the dataclass and nowhere else.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Type, TypeVar

import yaml

from mimickit.util.errors import MimicKitError, require_file

T = TypeVar("T")


def load_yaml(path: str) -> Dict[str, Any]:
    """Read a YAML file holding a mapping; raise :class:`MimicKitError` naming the file."""
    require_file(path, "config file")
    with open(path, "r") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise MimicKitError("{}: not valid YAML ({})".format(
                path, str(e).replace("\n", " "))) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MimicKitError("{}: expected a mapping of keys to values at the top level".format(path))
    return data


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _check_value(value: Any, tp, source: str, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert int to float where a float is wanted.

    ``key`` is the value's path in the file (``weights.pose``, ``key_bodies[1]``).
    """
    where = "{}: key '{}'".format(source, key)
    origin = typing.get_origin(tp) if hasattr(typing, "get_origin") else getattr(tp, "__origin__", None)
    args = getattr(tp, "__args__", ())
    if tp is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _check_value(value, a, source, key)
            except MimicKitError as e:
                errors.append(str(e))
        raise MimicKitError(errors[0])
    if origin in (list, typing.List):
        if not isinstance(value, list):
            raise MimicKitError("{}: expected a list, got {!r}".format(where, value))
        return [_check_value(v, args[0], source, "{}[{}]".format(key, i)) if args else v
                for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            raise MimicKitError("{}: expected a mapping, got {!r}".format(where, value))
        return {k: _check_value(v, args[1], source, "{}.{}".format(key, k)) if args else v
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise MimicKitError("{}: expected a mapping, got {!r}".format(where, value))
        return _build(tp, value, source, key + ".")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MimicKitError("{}: expected a number, got {!r}".format(where, value))
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MimicKitError("{}: expected an integer, got {!r}".format(where, value))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise MimicKitError("{}: expected true or false, got {!r}".format(where, value))
        return value
    if tp is str:
        if not isinstance(value, str):
            raise MimicKitError("{}: expected a string, got {!r}".format(where, value))
        return value
    return value


def _build(cls, data: Dict[str, Any], source: str, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MimicKitError("{}: unknown key '{}{}' (expected one of: {})".format(
            source, prefix, unknown[0], ", ".join(sorted(fields))))
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_value(data[name], hints[name], source, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise MimicKitError("{}: missing key '{}{}' ({})".format(
                source, prefix, name, _type_name(hints[name])))
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:  # a nested config's checks name the key that holds it
        check("{}: key '{}'".format(source, prefix[:-1]) if prefix else source)
    return obj


def check_key(ok: bool, source: str, key: str, value: Any, expected: str) -> None:
    """Raise :class:`MimicKitError` ``<source>: key '<key>' must be <expected>, got <value>`` unless ``ok``."""
    if not ok:
        raise MimicKitError("{}: key '{}' must be {}, got {}".format(source, key, expected, value))


def from_dict(cls: Type[T], data: Dict[str, Any], source: str) -> T:
    """Build the config dataclass ``cls`` from ``data`` read from ``source`` (a file name).

    A dataclass may define ``validate(self, source: str)`` for checks across keys; it
    raises :class:`MimicKitError` itself, naming ``source`` (for a nested dataclass,
    ``"<file>: key '<key>'"``).

    Raises:
        MimicKitError: on an unknown key, a missing required key or a wrong type, naming
            ``source`` and the key.
    """
    return _build(cls, data, source)


def keys_of(cls: type, data: Dict[str, Any]) -> Dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls``.

    For a config class extending another: the extended agent's constructor gets its own keys
    (the caller has checked every key against the extending class with :func:`from_dict`).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def load_config(cls: Type[T], path: str) -> T:
    """:func:`load_yaml` then :func:`from_dict`."""
    return from_dict(cls, load_yaml(path), path)

"""Registry: a lookup imports only the named class's module; every failure names the file and the key."""
import sys
import types

import pytest

from mimickit.util.errors import MimicKitError
from mimickit.util.registry import Registry


def fake_module(monkeypatch, name, registry=None, class_name=None, raise_import=None):
    """Install a module ``name`` whose import registers ``class_name`` (or raises ``raise_import``)."""
    if raise_import is not None:
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
        return
    module = types.ModuleType(name)
    if class_name is not None:
        registry.register(class_name)(type(class_name, (), {}))
    monkeypatch.setitem(sys.modules, name, module)


def test_lookup_imports_only_the_requested_module(monkeypatch):
    reg = Registry("engine", "engine_name", {"good": "fake_good_engine", "broken": "fake_broken_engine"})
    fake_module(monkeypatch, "fake_good_engine", reg, "good")
    fake_module(monkeypatch, "fake_broken_engine", raise_import=True)
    assert reg.lookup({"engine_name": "good"}, "e.yaml").__name__ == "good"


def test_a_module_that_cannot_be_imported_fails_only_for_its_own_name(monkeypatch):
    reg = Registry("engine", "engine_name", {"good": "fake_good_engine", "broken": "fake_broken_engine"})
    fake_module(monkeypatch, "fake_good_engine", reg, "good")
    fake_module(monkeypatch, "fake_broken_engine", raise_import=True)
    with pytest.raises(MimicKitError, match=r"e\.yaml: key 'engine_name': the engine 'broken' cannot be loaded"):
        reg.lookup({"engine_name": "broken"}, "e.yaml")


def test_unknown_and_missing_names_list_the_known_ones():
    reg = Registry("agent", "agent_name", {"PPO": "x", "AMP": "y"})
    with pytest.raises(MimicKitError, match=r"a\.yaml: key 'agent_name': unknown agent 'SAC' \(known: AMP, PPO\)"):
        reg.lookup({"agent_name": "SAC"}, "a.yaml")
    with pytest.raises(MimicKitError, match=r"a\.yaml: missing key 'agent_name'.*known: AMP, PPO"):
        reg.lookup({}, "a.yaml")


def test_a_module_that_does_not_register_its_name_is_a_programming_error(monkeypatch):
    reg = Registry("env", "env_name", {"amp": "fake_empty_env_module"})
    fake_module(monkeypatch, "fake_empty_env_module")
    with pytest.raises(ValueError, match="does not register env 'amp'"):
        reg.lookup({"env_name": "amp"}, "env.yaml")


def test_every_shipped_name_is_registered_by_its_module():
    from mimickit.engines.engine import ENGINES
    from mimickit.envs.env_builder import ENVS
    from mimickit.envs.tasks import TASKS
    from mimickit.learning.agent_builder import AGENTS
    for reg in (ENVS, TASKS, AGENTS):
        for name in reg.modules:
            assert reg.lookup({reg.key: name}, "test").__name__
    assert ENGINES.lookup({"engine_name": "mujoco"}, "test").__name__ == "MujocoEngine"

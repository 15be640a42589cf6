"""Checked YAML configs: every mistake fails at start-up naming the file and key."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import pytest

from mimickit.util.config import from_dict, keys_of, load_config, load_yaml
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class Gains:
    kp: float
    kd: float = 0.0


@dataclasses.dataclass
class Example:
    name: str
    num_steps: int
    scale: float = 1.0
    enabled: bool = True
    motion_file: Optional[str] = None
    key_bodies: List[str] = dataclasses.field(default_factory=list)
    weights: Dict[str, float] = dataclasses.field(default_factory=dict)
    gains: Gains = dataclasses.field(default_factory=lambda: Gains(kp=1.0))
    pd_gains: Optional[Gains] = None


@dataclasses.dataclass
class Checked:
    low: float
    high: float

    def validate(self, where: str) -> None:
        if self.low > self.high:
            raise MimicKitError("{}: low ({}) must not exceed high ({})".format(where, self.low, self.high))


SRC = "data/envs/example.yaml"


def error_of(cls, data):
    with pytest.raises(MimicKitError) as info:
        from_dict(cls, data, SRC)
    return str(info.value)


def test_values_given_replace_defaults_and_missing_optional_keys_keep_them():
    cfg = from_dict(Example, {"name": "walk", "num_steps": 3, "key_bodies": ["left_foot", "right_foot"]}, SRC)
    assert cfg == Example(name="walk", num_steps=3, key_bodies=["left_foot", "right_foot"])
    assert cfg.gains == Gains(kp=1.0) and cfg.motion_file is None


def test_unknown_key_names_the_file_the_key_and_the_known_keys():
    message = error_of(Example, {"name": "a", "num_steps": 1, "num_step": 2})
    assert SRC in message and "'num_step'" in message and "num_steps" in message


def test_missing_required_key_names_the_file_and_the_key():
    message = error_of(Example, {"name": "a"})
    assert SRC in message and "missing key 'num_steps'" in message


@pytest.mark.parametrize("key, value, bad", [
    ("num_steps", 1.5, 1.5), ("num_steps", "3", "3"), ("num_steps", True, True),
    ("scale", "big", "big"), ("scale", False, False), ("enabled", "yes", "yes"), ("enabled", 1, 1),
    ("name", 5, 5), ("key_bodies", "left_foot", "left_foot"), ("key_bodies", ["left_foot", 3], 3),
    ("weights", [1.0], [1.0]), ("weights", {"pose": "high"}, "high"), ("motion_file", 3, 3),
])
def test_wrong_type_names_the_file_the_key_and_the_bad_value(key, value, bad):
    message = error_of(Example, {"name": "a", "num_steps": 1, key: value})
    assert SRC in message and key in message and repr(bad) in message


def test_int_is_accepted_where_a_float_is_expected_and_becomes_a_float():
    cfg = from_dict(Example, {"name": "a", "num_steps": 1, "scale": 2, "weights": {"pose": 1}}, SRC)
    assert cfg.scale == 2.0 and type(cfg.scale) is float
    assert type(cfg.weights["pose"]) is float


def test_optional_accepts_null_and_a_value_of_its_type():
    assert from_dict(Example, {"name": "a", "num_steps": 1, "motion_file": None}, SRC).motion_file is None
    assert from_dict(Example, {"name": "a", "num_steps": 1, "motion_file": "m.npz"}, SRC).motion_file == "m.npz"


def test_nested_dataclass_is_built_and_its_errors_name_the_nested_key():
    cfg = from_dict(Example, {"name": "a", "num_steps": 1, "gains": {"kp": 300, "kd": 30},
                              "pd_gains": {"kp": 2}}, SRC)
    assert cfg.gains == Gains(kp=300.0, kd=30.0) and cfg.pd_gains == Gains(kp=2.0)
    unknown = error_of(Example, {"name": "a", "num_steps": 1, "gains": {"kp": 1, "kv": 2}})
    assert SRC in unknown and "'gains.kv'" in unknown
    missing = error_of(Example, {"name": "a", "num_steps": 1, "gains": {"kd": 2}})
    assert SRC in missing and "'gains.kp'" in missing
    wrong = error_of(Example, {"name": "a", "num_steps": 1, "gains": {"kp": "stiff"}})
    assert "gains" in wrong and "kp" in wrong and "'stiff'" in wrong
    not_mapping = error_of(Example, {"name": "a", "num_steps": 1, "gains": 5})
    assert "gains" in not_mapping and "mapping" in not_mapping


def test_validate_hook_runs_after_building():
    assert from_dict(Checked, {"low": 0, "high": 1}, SRC) == Checked(0.0, 1.0)
    message = error_of(Checked, {"low": 2, "high": 1})
    assert SRC in message and "low" in message


def test_load_config_reads_yaml_and_names_the_file_in_errors(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("name: run\nnum_steps: 4\ngains:\n  kp: 10\n")
    assert load_config(Example, str(path)) == Example(name="run", num_steps=4, gains=Gains(kp=10.0))
    path.write_text("name: run\nnum_steps: four\n")
    with pytest.raises(MimicKitError, match="num_steps"):
        load_config(Example, str(path))


@pytest.mark.parametrize("text, expected", [
    ("a: [1, 2\n", "not valid YAML"),
    ("- 1\n- 2\n", "mapping"),
])
def test_load_yaml_rejects_bad_yaml_and_non_mappings_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MimicKitError) as info:
        load_yaml(str(path))
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_load_yaml_of_a_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(MimicKitError, match="missing.yaml"):
        load_yaml(missing)


def test_empty_yaml_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_yaml(str(path)) == {}



def test_keys_of_keeps_the_fields_of_the_class_only():
    data = {"name": "a", "num_steps": 2, "latent_dim": 64, "motion_file": None}
    assert keys_of(Example, data) == {"name": "a", "num_steps": 2, "motion_file": None}
    assert keys_of(Example, {}) == {}

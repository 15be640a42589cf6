"""Range checks of the engine configs (mimickit/engines/engine.py and the engines' subclasses).

References: the floors stated in EngineConfig's docstring (MIN_SIM_FREQ, SOFT_MIN_SIM_FREQ)
and the physical meaning of each key (gains, distances and thread counts).
"""
import math
import warnings
from pathlib import Path

import mujoco
import pytest
import yaml

from mimickit.engines.character import joint_gains
from mimickit.engines.engine import MIN_SIM_FREQ, SOFT_MIN_SIM_FREQ
from mimickit.engines.engine_builder import build_engine
from mimickit.util.errors import MimicKitError

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path, name="mujoco", **overrides):
    config = yaml.safe_load((REPO / "data/engines/{}_engine.yaml".format(name)).read_text())
    config.update(overrides)
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_floors_are_ordered_and_the_shipped_rate_is_above_both():
    assert 0 < MIN_SIM_FREQ < SOFT_MIN_SIM_FREQ <= 120


def test_sim_freq_2_with_control_freq_2_is_refused_naming_file_key_and_floor(tmp_path):
    path = write_config(tmp_path, sim_freq=2, control_freq=2)
    with pytest.raises(MimicKitError) as error:
        build_engine(path, 1, "cpu", False)
    message = str(error.value)
    assert path in message and "'sim_freq'" in message and str(MIN_SIM_FREQ) in message
    assert "\n" not in message


def test_sim_freq_just_below_the_hard_floor_is_refused(tmp_path):
    with pytest.raises(MimicKitError, match="'sim_freq'"):
        build_engine(write_config(tmp_path, sim_freq=MIN_SIM_FREQ - 1, control_freq=1), 1, "cpu", False)


def test_sim_freq_at_the_hard_floor_warns_naming_file_key_and_soft_bound(tmp_path):
    path = write_config(tmp_path, sim_freq=MIN_SIM_FREQ, control_freq=30)
    with pytest.warns(UserWarning) as record:
        engine = build_engine(path, 1, "cpu", False)
    assert engine.sim_dt == pytest.approx(1.0 / MIN_SIM_FREQ)
    ours = [w for w in record if "'sim_freq'" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in record]
    assert path in str(ours[0].message) and str(SOFT_MIN_SIM_FREQ) in str(ours[0].message)
    key_line = 1 + Path(path).read_text().splitlines().index("sim_freq: {}".format(MIN_SIM_FREQ))
    assert (ours[0].filename, ours[0].lineno) == (path, key_line)  # shown at the key's line of the file


@pytest.mark.parametrize("name", ["mujoco", "mujoco_warp", "isaac_gym"])
def test_the_shipped_configs_neither_warn_nor_fail(tmp_path, name):
    from mimickit.engines.engine import ENGINES
    from mimickit.util.config import from_dict, load_yaml
    path = str(REPO / "data/engines/{}_engine.yaml".format(name))
    data = load_yaml(path)
    try:
        config_class = ENGINES.lookup(data, path).config_class
    except MimicKitError as error:  # the engine's module does not import here (mujoco-warp, isaacgym)
        pytest.skip(str(error))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_dict(config_class, data, path)


@pytest.mark.parametrize("key, value", [
    ("sim_freq", 0), ("sim_freq", -120), ("control_freq", 0), ("control_freq", -30),
    ("control_freq", 240),  # above sim_freq: not a divisor
    ("num_threads", -1),
    ("urdf_kp", 0.0), ("urdf_kp", -20.0), ("urdf_kp", math.inf), ("urdf_kp", math.nan),
    ("urdf_kd", -0.5), ("urdf_kd", math.inf), ("urdf_kd", math.nan),
])
def test_values_without_physical_meaning_are_refused_naming_file_and_key(tmp_path, key, value):
    path = write_config(tmp_path, **{key: value})
    with pytest.raises(MimicKitError) as error:
        build_engine(path, 1, "cpu", False)
    assert path in str(error.value) and "'{}'".format(key) in str(error.value)


@pytest.mark.parametrize("key, value", [
    ("env_spacing", 0.0), ("env_spacing", math.inf), ("env_spacing", math.nan),
    ("graphics_device", -2), ("num_position_iterations", 0), ("num_velocity_iterations", -1),
    ("num_threads", -1), ("sim_freq", MIN_SIM_FREQ - 1),
])
def test_isaac_gym_values_without_physical_meaning_are_refused(tmp_path, key, value):
    from mimickit.engines.isaac_gym_engine import IsaacGymEngineConfig  # imports without isaacgym
    from mimickit.util.config import from_dict
    config = yaml.safe_load((REPO / "data/engines/isaac_gym_engine.yaml").read_text())
    config[key] = value
    if key == "sim_freq":
        config["control_freq"] = 1
    with pytest.raises(MimicKitError, match="'{}'".format(key)):
        from_dict(IsaacGymEngineConfig, config, "isaac_gym_engine.yaml")


def test_the_g1_engine_config_is_the_default_with_the_g1_gain_table():
    """data/engines/mujoco_g1_engine.yaml: every other key as the default engine's; gains as our g1.xml's servos."""
    default = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    g1 = yaml.safe_load((REPO / "data/engines/mujoco_g1_engine.yaml").read_text())
    assert set(g1) == set(default)
    assert {k: v for k, v in g1.items() if k != "pd_gains"} == {k: v for k, v in default.items() if k != "pd_gains"}
    build_engine(str(REPO / "data/engines/mujoco_g1_engine.yaml"), 1, "cpu", False)  # valid
    ours = mujoco.MjModel.from_xml_path(str(REPO / "data/assets/g1/g1.xml"))
    for a in range(ours.nu):
        joint = ours.joint(ours.actuator_trnid[a, 0]).name
        kp, kd = joint_gains(joint, g1["pd_gains"], 0.0, 0.0)
        assert (kp, kd) == pytest.approx((ours.actuator_gainprm[a, 0], -ours.actuator_biasprm[a, 2])), joint  # kv


def test_collision_meshes_is_checked(tmp_path):
    with pytest.raises(MimicKitError, match="'collision_meshes'.*keep, box, capsule"):
        build_engine(write_config(tmp_path, collision_meshes="spheres"), 1, "cpu", False)

"""Joint armature, friction and the motors' torque-speed line (Engine.set_joint_dynamics, env YAML ``actuators``).

The reference for the torque is the DC motor's line written out here, ``tau_max (1 - w / w0)``
at full command (in torque mode at most the command, ``tau_max``), checked on MuJoCo's own
forces (``qfrc_actuator + qfrc_passive``) at a state set by hand; below the line the PD law (or the torque command) must be unchanged.
"""
import math

import mujoco
import numpy as np
import pytest
import torch
import yaml

from mimickit.engines.engine import JointDynamics
from mimickit.engines.engine_builder import build_engine
from mimickit.envs.actuators import ActuatorConfig, joint_dynamics
from mimickit.envs.env_builder import build_env
from mimickit.util.errors import MimicKitError
from tests.engines.test_engine_contract import ENGINE_NAMES, engine_config
from tests.engines.test_engine_contract import make_engine as contract_engine
from tests.engines.test_engine_domain_rand import model_field

QUADRUPED = "data/assets/quadruped/quadruped.xml"
PER_ENV_ENGINES = [n for n in ENGINE_NAMES if getattr(n, "values", (n,))[0] != "isaac_gym"]
MAX_SPEED = 10.0  # rad/s
TAU_MAX = 33.5  # N·m, the quadruped's torque limit


def make_engine(name, tmp_path, dynamics=None, num_envs=2, **overrides):
    """Engine ``name`` holding the quadruped, with ``dynamics`` set before ``initialize()``."""
    prepare = None if dynamics is None else lambda engine, char: engine.set_joint_dynamics(char, dynamics)
    engine, char, _ = contract_engine(name, tmp_path, num_envs=num_envs, asset=QUADRUPED, prepare=prepare,
                                      **overrides)
    return engine, char


def dynamics(num_dofs, armature=math.nan, friction=math.nan, max_speed=MAX_SPEED):
    return JointDynamics(np.full(num_dofs, armature), np.full(num_dofs, friction), np.full(num_dofs, max_speed))


def net_motor_torque(model, dof, w, ctrl, nominal_damping):
    """The actuator's net torque at dof ``dof`` (model index) spinning at ``w`` rad/s with ``ctrl`` in its actuator.

    MuJoCo's actuator force plus its passive force, less the file's own joint damping: what the
    motor gives, the torque-speed line's joint damping included.
    """
    data = mujoco.MjData(model)
    data.qvel[dof] = w
    actuator = int(np.nonzero(model.actuator_trnid[:, 0] == model.dof_jntid[dof])[0][0])
    data.ctrl[actuator] = ctrl
    mujoco.mj_forward(model, data)
    return data.qfrc_actuator[dof] + data.qfrc_passive[dof] + nominal_damping * w


@pytest.mark.parametrize("name", PER_ENV_ENGINES)
def test_armature_and_friction_reach_the_simulator_and_unset_dofs_keep_the_files(name, tmp_path):
    nominal, _ = make_engine(name, tmp_path)
    num_dofs = nominal.get_num_dofs(0)
    dofs = nominal.model.jnt_dofadr[nominal.model.actuator_trnid[:, 0]]
    armature, friction = np.full(num_dofs, math.nan), np.full(num_dofs, math.nan)
    armature[:3], friction[3:6] = [0.02, 0.03, 0.04], [0.1, 0.2, 0.3]
    engine, char = make_engine(name, tmp_path, JointDynamics(armature, friction, np.full(num_dofs, math.inf)))
    try:
        got_armature, got_friction = model_field(engine, "dof_armature")[0], model_field(engine, "dof_frictionloss")[0]
        np.testing.assert_allclose(got_armature[dofs[:3]], armature[:3])
        np.testing.assert_allclose(got_armature[dofs[3:]], nominal.model.dof_armature[dofs[3:]])
        np.testing.assert_allclose(got_friction[dofs[3:6]], friction[3:6])
        np.testing.assert_allclose(got_friction[dofs[6:]], nominal.model.dof_frictionloss[dofs[6:]])
        assert np.array_equal(model_field(engine, "dof_damping")[0], nominal.model.dof_damping)  # no max_speed
    finally:
        engine.close()
        nominal.close()


@pytest.mark.parametrize("mode", ["pos", "torque"])
def test_full_command_gives_the_dc_motor_line_and_a_small_one_the_unchanged_law(mode, tmp_path):
    nominal, _ = make_engine("mujoco", tmp_path, control_mode=mode)
    engine, char = make_engine("mujoco", tmp_path, dynamics(nominal.get_num_dofs(0)), control_mode=mode)
    try:
        model, model0 = engine.model, nominal.model
        dof = int(model.jnt_dofadr[model.actuator_trnid[1, 0]])  # the first thigh
        assert engine.get_torque_limits(char)[1] == TAU_MAX
        full = 100.0 if mode == "torque" else model.qpos0[model.jnt_qposadr[model.dof_jntid[dof]]] + 3.0
        for w in (0.0, 2.5, 5.0, 10.0, 15.0, -5.0):
            line = TAU_MAX * (1.0 - w / MAX_SPEED)
            if mode == "torque":  # a command is at most the torque limit, braking included
                line = min(line, TAU_MAX)
            assert net_motor_torque(model, dof, w, full, model0.dof_damping[dof]) == pytest.approx(line, abs=1e-6)
        small = 2.0 if mode == "torque" else model.qpos0[model.jnt_qposadr[model.dof_jntid[dof]]] + 0.05
        for w in (0.0, 0.5, -1.0):  # well below the line: what the file's actuator does
            assert net_motor_torque(model, dof, w, small, model0.dof_damping[dof]) == pytest.approx(
                net_motor_torque(model0, dof, w, small, model0.dof_damping[dof]), abs=1e-9)
    finally:
        engine.close()
        nominal.close()


@pytest.mark.parametrize("name", PER_ENV_ENGINES)
def test_the_pd_gains_written_by_actuator_scales_keep_the_line(name, tmp_path):
    engine, char = make_engine(name, tmp_path, dynamics(12))
    try:
        ones = torch.ones(2, 12)
        engine.set_actuator_scales(char, torch.arange(2), ones, 0.5 * ones, ones)
        acts = np.arange(12)
        _, kd = engine.get_pd_gains(char)
        b = TAU_MAX / MAX_SPEED
        np.testing.assert_allclose(model_field(engine, "actuator_biasprm")[:, acts, 2],
                                   np.broadcast_to(b - 0.5 * kd.numpy(), (2, 12)), rtol=1e-6)
    finally:
        engine.close()


def test_a_max_speed_needs_a_torque_limit_and_must_be_positive(tmp_path):
    config = engine_config("mujoco")
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), 1, "cpu", False)
    char = engine.add_character(QUADRUPED, "quadruped")
    with pytest.raises(ValueError, match="max_speed must be > 0"):
        engine.set_joint_dynamics(char, dynamics(12, max_speed=-1.0))
    with pytest.raises(ValueError, match="shape"):
        engine.set_joint_dynamics(char, dynamics(11))
    engine.initialize()
    with pytest.raises(RuntimeError, match="before initialize"):
        engine.set_joint_dynamics(char, dynamics(12))
    engine.close()


def test_the_table_takes_the_first_matching_pattern_and_refuses_one_that_matches_nothing():
    names = ["FL_hip_joint", "FL_thigh_joint", "FL_calf_joint"]
    table = {"calf": ActuatorConfig(max_speed=15.0), "": ActuatorConfig(armature=0.01, friction=0.2)}
    got = joint_dynamics(table, names, "env.yaml")
    assert np.array_equal(got.max_speed, [math.inf, math.inf, 15.0])
    assert np.isnan(got.armature[2]) and np.array_equal(got.armature[:2], [0.01, 0.01])
    with pytest.raises(MimicKitError, match="env.yaml: key 'actuators.knee': no joint"):
        joint_dynamics({"knee": ActuatorConfig(armature=0.01)}, names, "env.yaml")


@pytest.mark.parametrize("entry, expected", [
    ({"max_speed": 0.0}, "max_speed' must be > 0"),
    ({"friction": -0.1}, "friction' must be >= 0"),
    ({"stall_torque": 3.0}, "unknown key 'actuators..*stall_torque"),
])
def test_env_yaml_mistakes_name_the_file_and_the_key(entry, expected, tmp_path):
    config = yaml.safe_load(open("data/envs/amp_quadruped_command_env.yaml").read())
    config["actuators"] = {"": entry}
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(MimicKitError, match=expected) as error:
        build_env(str(path), "data/engines/mujoco_engine.yaml", num_envs=1, device="cpu", visualize=False)
    assert str(path) in str(error.value)


def test_the_shipped_quadruped_configs_give_the_a1_motors_to_the_simulator():
    env = build_env("data/envs/amp_quadruped_command_deploy_env.yaml", "data/engines/mujoco_engine.yaml",
                    num_envs=1, device="cpu", visualize=False)
    try:
        model = env.engine.model
        dofs = model.jnt_dofadr[model.actuator_trnid[:, 0]]
        np.testing.assert_allclose(model.dof_frictionloss[dofs], 0.2)
        np.testing.assert_allclose(model.dof_armature[dofs], 0.01)
        np.testing.assert_allclose(model.dof_damping[dofs], 33.5 / 21.0)  # the file's joints have none
    finally:
        env.close()

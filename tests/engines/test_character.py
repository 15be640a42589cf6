"""Reading and checking character files (mimickit/engines/character.py).

References: the numbers written into each MJCF here, and MuJoCo's compiled model of the
shipped humanoid.
"""
from pathlib import Path

import mujoco
import numpy as np
import pytest

from mimickit.engines.character import joint_gains, load_character
from mimickit.util.errors import MimicKitError

REPO = Path(__file__).resolve().parents[2]
HUMANOID = REPO / "data" / "assets" / "humanoid" / "humanoid.xml"

# a root with a free joint, a limited hinge, an unlimited hinge and an unlimited slide
TWO_LINK = """<mujoco>
  <compiler angle="radian"/>
  <worldbody>
    <body name="base" pos="0 0 1">
      <freejoint name="root"/>
      <geom type="box" size="0.1 0.1 0.1"/>
      <body name="arm">
        <joint name="hinge_a" type="hinge" axis="0 1 0" range="-0.5 1.25"/>
        <joint name="hinge_b" type="hinge" axis="1 0 0"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
        <body name="tip">
          <joint name="slide" type="slide" axis="1 0 0"/>
          <geom type="sphere" size="0.02"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""
POSITION_ACTUATORS = """<position joint="hinge_a" kp="40" kv="4" forcerange="-7 3"/>
    <position joint="hinge_b" kp="20" kv="2" forcerange="-5 5"/>
    <position joint="slide" kp="10" kv="1" forcerange="-2 2"/>"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "char.xml"
    path.write_text(text)
    return str(path)


def test_limits_gains_and_names_match_the_file(tmp_path):
    path = _write(tmp_path, TWO_LINK.format(actuators=POSITION_ACTUATORS))
    char, spec = load_character(path, "robot", False, "pos", urdf_kp=0.0, urdf_kd=0.0)
    assert isinstance(spec, mujoco.MjSpec)
    assert char.name == "robot" and char.asset_file == path and not char.is_reference
    assert char.body_names == ["base", "arm", "tip"]
    assert char.dof_names == ["hinge_a", "hinge_b", "slide"]
    np.testing.assert_allclose(char.dof_low, [-0.5, -np.pi, -np.inf])
    np.testing.assert_allclose(char.dof_high, [1.25, np.pi, np.inf])
    np.testing.assert_allclose(char.torque_limits, [7.0, 5.0, 2.0])
    np.testing.assert_allclose(char.kp, [40.0, 20.0, 10.0])
    np.testing.assert_allclose(char.kd, [4.0, 2.0, 1.0])


def test_humanoid_gains_match_mujocos_actuators():
    char, _ = load_character(str(HUMANOID), "humanoid", False, "pos", urdf_kp=0.0, urdf_kd=0.0)
    model = mujoco.MjModel.from_xml_path(str(HUMANOID))
    act_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
    acts = [act_of_joint[model.joint(n).id] for n in char.dof_names]
    np.testing.assert_allclose(char.kp, model.actuator_gainprm[acts, 0])
    np.testing.assert_allclose(char.kd, -model.actuator_biasprm[acts, 2])
    np.testing.assert_allclose(char.torque_limits, np.abs(model.actuator_forcerange[acts]).max(axis=1))


def test_reference_character_ignores_actuators(tmp_path):
    path = _write(tmp_path, TWO_LINK.format(actuators=""))  # no actuator at all
    char, _ = load_character(path, "ref", True, "pos", urdf_kp=0.0, urdf_kd=0.0)
    assert np.all(np.isinf(char.torque_limits))
    np.testing.assert_array_equal(char.kp, 0.0)
    np.testing.assert_array_equal(char.kd, 0.0)


@pytest.mark.parametrize("actuators, control_mode, message", [
    ("", "pos", "joint 'hinge_a' has no actuator"),
    (POSITION_ACTUATORS + '\n<motor joint="slide"/>', "pos", "joint 'slide' has two actuators"),
    (POSITION_ACTUATORS.replace('<position joint="hinge_b" kp="20" kv="2"', '<velocity joint="hinge_b" kv="2"'),
     "pos", "actuator '' is neither a position actuator nor a motor"),
    (POSITION_ACTUATORS.replace(' forcerange="-2 2"', ""), "torque",
     "has no forcerange and its joint no actuatorfrcrange"),
])
def test_actuator_mistakes_are_named(tmp_path, actuators, control_mode, message):
    path = _write(tmp_path, TWO_LINK.format(actuators=actuators))
    with pytest.raises(MimicKitError, match=message):
        load_character(path, "robot", False, control_mode, urdf_kp=0.0, urdf_kd=0.0)


@pytest.mark.parametrize("edit, message", [
    (('<freejoint name="root"/>', ""), "expected one free joint"),
    (('<joint name="slide" type="slide" axis="1 0 0"/>', '<joint name="slide" type="ball"/>'),
     "joint 'slide' is a mjJNT_BALL"),
    (("</worldbody>", '<body name="other"><freejoint/><geom size="0.1"/></body></worldbody>'),
     "expected one free joint"),
    (("<worldbody>", "<worldbody><bad"), "not a valid MJCF character"),
])
def test_structure_mistakes_are_named(tmp_path, edit, message):
    path = _write(tmp_path, TWO_LINK.format(actuators=POSITION_ACTUATORS).replace(*edit))
    with pytest.raises(MimicKitError, match=message):
        load_character(path, "robot", False, "pos", urdf_kp=0.0, urdf_kd=0.0)


def test_second_root_body_is_refused(tmp_path):
    text = TWO_LINK.format(actuators=POSITION_ACTUATORS).replace(
        "</worldbody>", '<body name="other"><geom size="0.1"/></body></worldbody>')
    with pytest.raises(MimicKitError, match="expected a single root body, found also 'other'"):
        load_character(_write(tmp_path, text), "robot", False, "pos", urdf_kp=0.0, urdf_kd=0.0)


def test_mjcf_syntax_error_keeps_mujocos_line_number(tmp_path):
    path = _write(tmp_path, TWO_LINK.format(actuators=POSITION_ACTUATORS).replace(
        '<geom type="box" size="0.1 0.1 0.1"/>', '<geom type="box" size="0.1 0.1 0.1"'))
    with pytest.raises(MimicKitError) as error:
        load_character(path, "char", False, "pos", 20.0, 0.5)
    message = str(error.value)
    assert path in message and "\n" not in message
    assert "XML parse error" in message and "Line number=" in message


# the vendor G1's way: torque motors, the torque limits on the joints
MOTORS = """<motor joint="hinge_a"/>
    <motor joint="hinge_b" ctrlrange="-9 9"/>
    <position joint="slide" kp="10" kv="1" forcerange="-2 2"/>"""


def test_motors_become_pd_in_pos_mode_with_table_gains_and_the_joints_torque_limits(tmp_path):
    text = TWO_LINK.format(actuators=MOTORS).replace('range="-0.5 1.25"/>',
                                                     'range="-0.5 1.25" actuatorfrcrange="-6 6"/>')
    path = _write(tmp_path, text)
    with pytest.warns(UserWarning, match="2 motor actuator.*hinge_a, hinge_b.*position actuators"):
        char, spec = load_character(path, "robot", False, "pos", 20.0, 0.5, gain_table={"_b": [70.0, 3.0]})
    np.testing.assert_allclose(char.kp, [20.0, 70.0, 10.0])  # default, table, the file's own position actuator
    np.testing.assert_allclose(char.kd, [0.5, 3.0, 1.0])
    np.testing.assert_allclose(char.torque_limits, [6.0, np.inf, 2.0])  # hinge_a from its actuatorfrcrange
    model = spec.compile()
    np.testing.assert_allclose(model.actuator_ctrlrange[0], [-0.5, 1.25])  # PD targets within the joint range
    assert not model.actuator_ctrllimited[1]  # hinge_b is unlimited: its torque ctrlrange is gone
    data = mujoco.MjData(model)  # the force is kp (target - q) - kd qdot, as MuJoCo computes it
    data.qpos[7], data.qvel[6], data.ctrl[0] = 0.1, 0.2, 0.3
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.actuator_force[0], 20.0 * (0.3 - 0.1) - 0.5 * 0.2, rtol=1e-9)
    with pytest.raises(MimicKitError, match="no forcerange and its joint no actuatorfrcrange"):
        load_character(path, "robot", False, "torque", 20.0, 0.5)  # hinge_b has no torque limit at all
    limited = _write(tmp_path, text.replace('ctrlrange="-9 9"', 'forcerange="-9 9"'))
    torque, _ = load_character(limited, "robot", False, "torque", 20.0, 0.5)  # torque mode keeps the motors
    assert torque.kp[0] == 0.0
    np.testing.assert_allclose(torque.torque_limits, [6.0, 9.0, 2.0])


def test_joint_gains_take_the_first_matching_key_in_order():
    table = {"hip": [100.0, 2.0], "hip_pitch": [1.0, 1.0], "knee": [150.0, 4.0]}
    assert joint_gains("left_hip_pitch_joint", table, 20.0, 0.5) == (100.0, 2.0)
    assert joint_gains("right_knee_joint", table, 20.0, 0.5) == (150.0, 4.0)
    assert joint_gains("waist_yaw_joint", table, 20.0, 0.5) == (20.0, 0.5)
    assert joint_gains("waist_yaw_joint", None, 20.0, 0.5) == (20.0, 0.5)

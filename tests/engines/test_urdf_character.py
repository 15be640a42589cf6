"""URDF characters in the MuJoCo engine (mimickit/engines/urdf_character.py).

References: the numbers written into each URDF here (sizes, limits, efforts), MuJoCo's
compiled model, and for the Unitree A1 (AMP_for_hardware, ``../shared/data``, skipped when
absent) the toe positions stored in its mocap clips, computed by AMP_for_hardware's own
retargeting, not by us.
"""
import json
import math
import warnings
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from mimickit.engines.engine_builder import build_engine
from mimickit.engines.urdf_character import load_urdf_spec
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

REPO = Path(__file__).resolve().parents[2]
AMP_HW = REPO.parent / "shared" / "data" / "amp_for_hardware"
A1_URDF = AMP_HW / "a1" / "urdf" / "a1.urdf"
needs_a1 = pytest.mark.skipif(not A1_URDF.is_file(), reason="A1 URDF ../shared/data/amp_for_hardware is absent")
A1_STAND = {"hip": 0.0, "thigh": 0.8, "calf": -1.5}  # rad
A1_FEET = ["FR_foot", "FL_foot", "RR_foot", "RL_foot"]
MIN_TRUNK_HEIGHT = 0.2  # m after 1 s of PD holding the standing pose (standing: ~0.31 m; fallen: < 0.12 m)

# A tiny robot: massless base welded to a body (box collision, .dae visual); a revolute leg
# (cylinder collision, an .obj visual through package://), a continuous wheel, a prismatic slider.
TINY_URDF = """<?xml version="1.0"?>
<robot name="tiny">
  <link name="base"/>
  <joint name="base_weld" type="fixed">
    <parent link="base"/><child link="body"/>
  </joint>
  <link name="body">
    <inertial><mass value="2.0"/><inertia ixx="0.01" ixy="0" ixz="0" iyy="0.01" iyz="0" izz="0.01"/></inertial>
    <visual><geometry><mesh filename="../meshes/shell.dae"/></geometry></visual>
    <collision><geometry><box size="0.4 0.2 0.1"/></geometry></collision>
  </link>
  <joint name="leg_joint" type="revolute">
    <parent link="body"/><child link="leg"/>
    <origin xyz="0.1 0 -0.05" rpy="0 0 0"/>
    <axis xyz="0 1 0"/>
    <limit lower="-0.5" upper="1.25" effort="7" velocity="10"/>
  </joint>
  <link name="leg">
    <inertial><mass value="0.5"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial>
    <visual><geometry><mesh filename="package://tiny_description/meshes/leg.obj"/></geometry></visual>
    <collision><origin xyz="0 0 -0.1"/><geometry><cylinder radius="0.02" length="0.2"/></geometry></collision>
  </link>
  <joint name="wheel_joint" type="continuous">
    <parent link="body"/><child link="wheel"/>
    <origin xyz="-0.1 0 -0.05"/>
    <axis xyz="0 1 0"/>
    <limit effort="3" velocity="10"/>
  </joint>
  <link name="wheel">
    <inertial><mass value="0.2"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial>
    <collision><geometry><sphere radius="0.03"/></geometry></collision>
  </link>
  <joint name="slider_joint" type="prismatic">
    <parent link="body"/><child link="slider"/>
    <axis xyz="0 0 1"/>
    <limit lower="0" upper="0.1" effort="40" velocity="1"/>
  </joint>
  <link name="slider">
    <inertial><mass value="0.1"/><inertia ixx="0.001" ixy="0" ixz="0" iyy="0.001" iyz="0" izz="0.001"/></inertial>
  </link>
  <joint name="tip_weld" type="fixed">
    <parent link="leg"/><child link="tip"/>
    <origin xyz="0 0 -0.2"/>
  </joint>
  <link name="tip">
    <inertial><mass value="0.01"/><inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial>
  </link>
</robot>
"""
# A tetrahedron (Wavefront OBJ) for the kept mesh.
TETRA_OBJ = """v 0 0 0
v 0.05 0 0
v 0 0.05 0
v 0 0 0.05
f 1 3 2
f 1 2 4
f 1 4 3
f 2 3 4
"""

def write_package(tmp_path, urdf_text=TINY_URDF):
    """A ROS-style package: <pkg>/urdf/tiny.urdf next to <pkg>/meshes/leg.obj."""
    package = tmp_path / "tiny_description"
    (package / "urdf").mkdir(parents=True)
    (package / "meshes").mkdir()
    (package / "meshes" / "leg.obj").write_text(TETRA_OBJ)
    path = package / "urdf" / "tiny.urdf"
    path.write_text(urdf_text)
    return path


def make_engine(tmp_path, asset, num_envs=1, **overrides):
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    config["num_threads"] = 1
    config.update(overrides)
    config_path = tmp_path / "engine.yaml"
    config_path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(config_path), num_envs, "cpu", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        char_id = engine.add_character(str(asset), "robot")
    engine.initialize()
    return engine, char_id


def test_tiny_urdf_drops_the_dae_with_one_warning_and_keeps_box_and_obj(tmp_path):
    path = write_package(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = load_urdf_spec(str(path), 20.0, 0.5)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and "shell.dae" in message and "leg.obj" not in message
    model = spec.compile()
    # the massless base is gone: the root (free joint) is the first link with mass
    assert model.body(1).name == "body"
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and model.jnt_bodyid[0] == 1
    assert [model.body(b).parentid[0] for b in range(2, model.nbody)].count(0) == 0  # a single root
    assert "tip" in [model.body(b).name for b in range(model.nbody)]  # fixed-joint child kept as a body
    box = [g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
    assert len(box) == 1 and model.geom_bodyid[box[0]] == model.body("body").id
    np.testing.assert_allclose(model.geom_size[box[0]], [0.2, 0.1, 0.05])
    assert model.geom_contype[box[0]] == 1
    meshes = [g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH]
    assert model.nmesh == 1 and len(meshes) == 1  # leg.obj resolved from package://
    assert model.geom_bodyid[meshes[0]] == model.body("leg").id
    assert model.geom_contype[meshes[0]] == 0 and model.geom_conaffinity[meshes[0]] == 0  # visual only


def test_tiny_urdf_joints_actuators_and_limits_in_the_engine(tmp_path):
    path = write_package(tmp_path)
    engine, c = make_engine(tmp_path, path, urdf_kp=7.0, urdf_kd=0.25)
    assert engine.get_dof_names(c) == ["leg_joint", "wheel_joint", "slider_joint"]
    assert engine.get_body_names(c) == ["body", "leg", "tip", "wheel", "slider"]
    model = engine.model
    types = [model.joint("robot/" + n).type[0] for n in engine.get_dof_names(c)]
    assert types == [mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE]
    assert not model.joint("robot/wheel_joint").limited[0]  # continuous: a hinge without limits
    low, high = engine.get_dof_limits(c)
    np.testing.assert_allclose(low.numpy()[[0, 2]], [-0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(high.numpy()[[0, 2]], [1.25, 0.1], atol=1e-6)
    np.testing.assert_allclose(engine.get_torque_limits(c).numpy(), [7.0, 3.0, 40.0])
    kp, kd = engine.get_pd_gains(c)
    np.testing.assert_allclose(kp.numpy(), 7.0)
    np.testing.assert_allclose(kd.numpy(), 0.25)
    np.testing.assert_allclose(model.actuator("robot/leg_joint").ctrlrange, [-0.5, 1.25])
    # the hinge sits where the URDF puts it: 0.1 m ahead of and 0.05 m below the body origin
    np.testing.assert_allclose(model.body("robot/leg").pos, [0.1, 0.0, -0.05], atol=1e-9)
    # torque mode: the actuators become motors clipped to the URDF efforts
    torque, _ = make_engine(tmp_path, path, control_mode="torque")
    np.testing.assert_allclose(torque.model.actuator("robot/slider_joint").ctrlrange, [-40.0, 40.0])


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace("</robot>", "<broken></robot>"), "not valid XML"),
    (lambda t: t.replace('type="continuous"', 'type="floating"'), "wheel_joint.*floating"),
    (lambda t: t.replace('type="prismatic"', 'type="planar"'), "slider_joint.*planar"),
    (lambda t: t.replace('type="continuous"', 'type="ball"'), "wheel_joint.*'ball'"),
    (lambda t: t.replace('"revolute"', '"fixed"').replace('"continuous"', '"fixed"').replace('"prismatic"', '"fixed"'),
     "no movable joint"),
    (lambda t: t.replace('<link name="base"/>', '<link name="base"/><link name="stray"/>'), "one root link"),
])
def test_bad_urdfs_raise_mimickit_errors_naming_the_file(tmp_path, edit, match):
    path = write_package(tmp_path, edit(TINY_URDF))
    with pytest.raises(MimicKitError, match=match) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_urdf_spec(str(path), 20.0, 0.5)
    assert str(path) in str(info.value)


def test_missing_urdf_and_bad_gains_raise(tmp_path):
    with pytest.raises(MimicKitError, match="not found"):
        load_urdf_spec(str(tmp_path / "none.urdf"), 20.0, 0.5)
    with pytest.raises(MimicKitError, match="urdf_kp"):
        make_engine(tmp_path, write_package(tmp_path), urdf_kp=0.0)


@pytest.fixture(scope="module")
def a1_engine(tmp_path_factory):
    return make_engine(tmp_path_factory.mktemp("a1"), A1_URDF, num_envs=2)


@needs_a1
def test_a1_loads_with_a_warning_naming_its_dae_meshes(tmp_path):
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    (tmp_path / "engine.yaml").write_text(yaml.safe_dump(config))
    engine = build_engine(str(tmp_path / "engine.yaml"), 1, "cpu", False)
    with pytest.warns(UserWarning, match=r"a1\.urdf.*calf\.dae"):
        engine.add_character(str(A1_URDF), "a1")
    with pytest.warns(UserWarning):
        ref = engine.add_character(str(A1_URDF), "a1_ref", is_reference=True)  # display copy: no actuators
    engine.initialize()
    assert engine.model.nu == 12 and engine.get_num_dofs(ref) == 12


@needs_a1
def test_a1_has_twelve_hinges_four_feet_and_primitive_collisions(a1_engine):
    engine, c = a1_engine
    names = engine.get_dof_names(c)
    assert len(names) == 12 and all(n.endswith(("_hip_joint", "_thigh_joint", "_calf_joint")) for n in names)
    model = engine.model
    assert all(model.joint("robot/" + n).type[0] == mujoco.mjtJoint.mjJNT_HINGE for n in names)
    bodies = engine.get_body_names(c)
    assert bodies[0] == "trunk" and set(A1_FEET) <= set(bodies)
    colliding = [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0
                 and (model.geom_contype[g] or model.geom_conaffinity[g])]
    assert len(colliding) >= 13  # trunk, 4 x (thigh, calf, foot)
    primitives = {int(t) for t in (mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_SPHERE,
                                   mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE)}
    assert all(int(model.geom_type[g]) in primitives for g in colliding)
    np.testing.assert_allclose(model.body_mass[model.body("robot/trunk").id], 4.713)
    np.testing.assert_allclose(engine.get_torque_limits(c).numpy(), [20.0, 55.0, 55.0] * 4)


def stand_pose(names, n):
    return torch.tensor([A1_STAND[name.split("_")[1]] for name in names]).repeat(n, 1)


def drop(engine, c, cmd, seconds=1.0):
    n = engine.num_envs
    ids = torch.arange(n)
    engine.set_root_pos(c, ids, torch.tensor([[0.0, 0.0, 0.34]]).repeat(n, 1))
    engine.set_root_rot(c, ids, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).repeat(n, 1))
    engine.set_root_vel(c, ids, torch.zeros(n, 3))
    engine.set_root_ang_vel(c, ids, torch.zeros(n, 3))
    engine.set_dof_pos(c, ids, stand_pose(engine.get_dof_names(c), n))
    engine.set_dof_vel(c, ids, torch.zeros(n, 12))
    for _ in range(round(seconds / engine.control_dt)):
        engine.set_cmd(c, cmd)
        engine.step()


@needs_a1
def test_a1_stands_under_pd_holding_a_standing_pose(a1_engine, tmp_path):
    engine, c = a1_engine
    drop(engine, c, stand_pose(engine.get_dof_names(c), engine.num_envs))
    height = engine.get_root_pos(c)[:, 2]
    up = torch_util.quat_rotate(engine.get_root_rot(c), torch.tensor([[0.0, 0.0, 1.0]]).repeat(engine.num_envs, 1))
    assert (height > MIN_TRUNK_HEIGHT).all(), height
    assert (up[:, 2] > math.cos(0.5)).all()  # trunk tilted less than 0.5 rad
    assert not engine.pop_failed_envs().any()
    # the same drop with weak servos collapses: the bound above tells standing from falling
    weak, cw = make_engine(tmp_path, A1_URDF, num_envs=1, urdf_kp=0.5, urdf_kd=0.05)
    drop(weak, cw, stand_pose(weak.get_dof_names(cw), 1))
    assert weak.get_root_pos(cw)[0, 2] < MIN_TRUNK_HEIGHT


def a1_trunk_com():
    """The trunk's centre of mass in the trunk frame (m), read from the A1 URDF."""
    import xml.etree.ElementTree as ET
    trunk = [link for link in ET.parse(A1_URDF).getroot().findall("link") if link.get("name") == "trunk"][0]
    return np.array([float(v) for v in trunk.find("inertial/origin").get("xyz").split()])


@needs_a1
def test_a1_feet_match_the_toe_positions_stored_in_its_mocap_clip(a1_engine):
    """AMP_for_hardware's trot0 stores, per frame, joint angles (cols 7:19) and the toe
    positions (cols 19:31), both legs FR, FL, RR, RL; the toes are relative to PyBullet's
    base frame, the trunk's centre of mass (1.3 cm ahead of the trunk link frame)."""
    engine, c = a1_engine
    frames = np.array(json.loads((AMP_HW / "mocap_motions" / "trot0.txt").read_text())["Frames"])[:2]
    file_legs = [leg + "_" + j + "_joint" for leg in ("FR", "FL", "RR", "RL") for j in ("hip", "thigh", "calf")]
    names = engine.get_dof_names(c)
    dof_pos = torch.tensor(frames[:, 7:19][:, [file_legs.index(n) for n in names]], dtype=torch.float32)
    ids = torch.arange(2)
    engine.set_root_pos(c, ids, torch.tensor([[0.0, 0.0, 1.0]]).repeat(2, 1))
    engine.set_root_rot(c, ids, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).repeat(2, 1))
    engine.set_dof_pos(c, ids, dof_pos)
    body_pos = engine.get_body_pos(c)
    feet = [engine.get_body_names(c).index(f) for f in A1_FEET]
    toe = (body_pos[:, feet] - body_pos[:, :1]).numpy()
    np.testing.assert_allclose(toe, frames[:, 19:31].reshape(2, 4, 3) + a1_trunk_com(), atol=1e-4)


@needs_a1
def test_a1_urdf_plays_a_clip_inside_an_env_with_the_engines_kinematics(tmp_path):
    """The env reads the URDF as the engine does (one loading path): its kinematic model and the simulator agree."""
    from mimickit.anim.kin_char_model import KinCharModel
    from mimickit.anim.motion import Motion
    from mimickit.envs.env_builder import build_env
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the A1's .dae meshes are dropped with a warning
        kin = KinCharModel(str(A1_URDF))
    stand = [A1_STAND[n.split("_")[1]] for n in kin.dof_names]
    frames = np.zeros((10, 6 + len(stand)), dtype=np.float32)
    frames[:, 0] = np.linspace(0.0, 0.3, 10)  # walks forward 0.3 m at the standing pose
    frames[:, 2] = 0.31
    frames[:, 6:] = stand
    Motion(30.0, "clamp", frames, kin.dof_names).save(str(tmp_path / "stand.npz"))
    (tmp_path / "env.yaml").write_text("env_name: view_motion\nchar_file: {}\nmotion_file: {}\n".format(
        A1_URDF, tmp_path / "stand.npz"))
    make_engine(tmp_path, A1_URDF)  # writes tmp_path/engine.yaml (one thread)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = build_env(str(tmp_path / "env.yaml"), str(tmp_path / "engine.yaml"), 2, "cpu", False)
    try:
        env.reset()
        for _ in range(5):
            env.step(torch.zeros(2, len(stand)))
        state = env.char_state
        joint_rot = kin.dof_pos_to_joint_rot(state.dof_pos)
        body_pos, _ = kin.forward_kinematics(state.root_pos, state.root_rot, joint_rot)
        np.testing.assert_allclose(body_pos.numpy(), state.body_pos.numpy(), atol=1e-5)
        assert float(state.root_pos[0, 0]) == pytest.approx(5 * 0.3 / 9, abs=1e-4)  # the clip's root, 5 steps in
    finally:
        env.close()

"""The duckling robot: BDX-class size and joints, and it stands under its own PD servos."""
import os

import mujoco
import numpy as np
import pytest

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.engines.mujoco_pose import frames_to_pose
from tools.gait_generation.robot import REPO_ROOT

DUCKLING = os.path.join(REPO_ROOT, "data/assets/duckling/duckling.xml")
LEG = ["hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle"]


def test_duckling_has_five_dof_legs_and_a_four_dof_neck_in_kin_char_model():
    kin = KinCharModel(DUCKLING)
    expected = ["neck_pitch", "head_pitch", "head_yaw", "head_roll"]
    expected += ["left_" + j for j in LEG] + ["right_" + j for j in LEG]
    assert kin.dof_names == expected
    assert kin.body_names[0] == "trunk"


def test_duckling_is_about_half_a_metre_and_a_few_kilograms_with_servo_like_actuators():
    model = mujoco.MjModel.from_xml_path(DUCKLING)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    assert 2.0 <= model.body_mass.sum() <= 3.0
    head = model.geom("head").id
    top = data.geom_xpos[head][2] + model.geom_size[head][2]
    assert 0.45 <= top <= 0.6
    assert model.nu == 14
    for a in range(model.nu):
        assert model.actuator_forcelimited[a] and np.abs(model.actuator_forcerange[a]).max() <= 5.0
        assert 1.0 <= model.actuator_gainprm[a, 0] <= 10.0  # kp, N·m/rad
        joint = model.actuator_trnid[a, 0]
        assert model.jnt_limited[joint] and model.dof_armature[model.jnt_dofadr[joint]] > 0


def test_duckling_stands_two_seconds_under_pd_after_a_one_centimetre_drop():
    spec = mujoco.MjSpec.from_file(DUCKLING)
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[5, 5, 0.1])
    spec.option.timestep = 1.0 / 120.0  # the engine's default
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    model = spec.compile()
    data = mujoco.MjData(model)
    kin = KinCharModel(DUCKLING)
    idle = Motion.load(os.path.join(REPO_ROOT, "data/motions/duckling/duckling_idle.npz"))
    root_pos, root_rot, dof_pos = frames_to_pose(kin, idle.frames[:1])
    data.qpos[:3] = root_pos[0] + [0.0, 0.0, 0.01]
    data.qpos[3:7] = root_rot[0][[3, 0, 1, 2]]
    for name, angle in zip(kin.dof_names, dof_pos[0]):
        data.qpos[model.joint(name).qposadr[0]] = angle
        data.ctrl[model.actuator(name).id] = angle
    start_height = root_pos[0][2]
    for _ in range(240):
        mujoco.mj_step(model, data)
    trunk_up = data.xmat[model.body("trunk").id].reshape(3, 3)[2, 2]
    assert trunk_up > 0.98
    assert data.qpos[2] == pytest.approx(start_height, abs=0.02)
    assert np.linalg.norm(data.qvel[:3]) < 0.05

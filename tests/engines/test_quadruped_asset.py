"""The quadruped robot (data/assets/quadruped/quadruped.xml): A1-class size and joints, FK
against MuJoCo, the A1's joint conventions, and it stands under its own PD servos.

References: MuJoCo's ``mj_kinematics`` on the file compiled alone; the Unitree A1 URDF from
AMP_for_hardware (``../shared/data``, skipped when absent) compiled by MuJoCo; the engine's
own contact sensors and the robot's weight.
"""
import warnings
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.engine_builder import build_engine
from mimickit.util import torch_util

REPO = Path(__file__).resolve().parents[2]
QUADRUPED = str(REPO / "data/assets/quadruped/quadruped.xml")
A1_URDF = REPO.parent / "shared/data/amp_for_hardware/a1/urdf/a1.urdf"
LEGS = ["FL", "FR", "RL", "RR"]
DOF_NAMES = ["{}_{}_joint".format(leg, j) for leg in LEGS for j in ("hip", "thigh", "calf")]
FEET = [leg + "_foot" for leg in LEGS]
STAND = np.array([0.0, 0.8, -1.5] * 4)  # hip, thigh, calf per leg (rad)
LIMITS = {"hip": (-0.80, 0.80), "thigh": (-1.05, 4.19), "calf": (-2.70, -0.92)}


def random_dof_pos(rng, n):
    low = np.array([LIMITS[name.split("_")[1]][0] for name in DOF_NAMES])
    high = np.array([LIMITS[name.split("_")[1]][1] for name in DOF_NAMES])
    return rng.uniform(low, high, (n, len(DOF_NAMES)))


def test_quadruped_has_twelve_dofs_in_fl_fr_rl_rr_order_with_a1_limits_and_gains():
    kin = KinCharModel(QUADRUPED)
    assert kin.dof_names == DOF_NAMES
    assert kin.body_names[0] == "trunk"
    for leg in LEGS:
        assert leg + "_foot" in kin.body_names
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    assert 12.0 <= model.body_mass.sum() <= 13.0
    assert model.nu == 12
    for name in DOF_NAMES:
        joint = model.joint(name)
        np.testing.assert_allclose(joint.range, LIMITS[name.split("_")[1]])
        act = model.actuator(name)
        assert act.trnid[0] == joint.id
        assert act.gainprm[0] == 20.0 and act.biasprm[1] == -20.0 and act.biasprm[2] == -0.5
        np.testing.assert_allclose(act.forcerange, [-33.5, 33.5])
    foot = model.geom("FL_foot")
    assert foot.type[0] == mujoco.mjtGeom.mjGEOM_SPHERE and foot.size[0] == pytest.approx(0.02)


def test_engine_loads_the_quadruped_with_its_twelve_dofs(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. MuJoCo's warning about attaching a spec with keyframes
        engine = make_engine(tmp_path, num_envs=1)
    assert engine.model.nkey == 0, "the character's keyframe is the env's business, not the scene's"
    assert engine.get_dof_names(0) == DOF_NAMES
    kp, kd = engine.get_pd_gains(0)
    assert torch.allclose(kp, torch.full((12,), 20.0)) and torch.allclose(kd, torch.full((12,), 0.5))


def test_kin_char_model_fk_matches_mujoco_kinematics_for_random_poses():
    kin = KinCharModel(QUADRUPED)
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    dof_pos = random_dof_pos(rng, 16)
    root_pos = rng.uniform(-1.0, 1.0, (16, 3))
    root_rot = rng.normal(size=(16, 4))
    root_rot /= np.linalg.norm(root_rot, axis=1, keepdims=True)  # x, y, z, w
    joint_rot = kin.dof_pos_to_joint_rot(torch.from_numpy(dof_pos))
    body_pos, _ = kin.forward_kinematics(torch.from_numpy(root_pos), torch.from_numpy(root_rot), joint_rot)
    for i in range(16):
        data.qpos[:3] = root_pos[i]
        data.qpos[3:7] = root_rot[i][[3, 0, 1, 2]]
        data.qpos[7:] = dof_pos[i]
        mujoco.mj_kinematics(model, data)
        for b, name in enumerate(kin.body_names):
            np.testing.assert_allclose(body_pos[i, b].numpy(), data.body(name).xpos, atol=1e-9)


@pytest.mark.skipif(not A1_URDF.exists(), reason="needs the A1 URDF in ../shared/data/amp_for_hardware")
def test_a1_joint_angles_give_the_a1_urdf_feet_and_thighs():
    """The same named angles put thighs and feet where the A1 URDF (compiled by MuJoCo) does."""
    a1 = mujoco.MjSpec.from_file(str(A1_URDF)).compile()  # fixed base at the origin; feet fused into calves
    a1_data = mujoco.MjData(a1)
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    data = mujoco.MjData(model)
    data.qpos[:7] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # trunk at the A1's fixed base
    for dof_pos in np.concatenate([STAND[None], random_dof_pos(np.random.default_rng(1), 8)]):
        for name, angle in zip(DOF_NAMES, dof_pos):
            a1_data.joint(name).qpos[0] = angle
            data.joint(name).qpos[0] = angle
        mujoco.mj_kinematics(a1, a1_data)
        mujoco.mj_kinematics(model, data)
        for leg in LEGS:
            calf = a1_data.body(leg + "_calf")
            a1_foot = calf.xpos + calf.xmat.reshape(3, 3) @ np.array([0.0, 0.0, -0.2])
            np.testing.assert_allclose(data.body(leg + "_foot").xpos, a1_foot, atol=1e-9)
            np.testing.assert_allclose(data.body(leg + "_thigh").xpos, a1_data.body(leg + "_thigh").xpos, atol=1e-9)


def test_standing_pose_puts_the_feet_under_the_hips_with_the_knees_behind():
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    data = mujoco.MjData(model)
    data.qpos[:7] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    data.qpos[7:] = STAND
    mujoco.mj_kinematics(model, data)
    for leg in LEGS:
        hip, knee, foot = (data.body(leg + s).xpos for s in ("_thigh", "_calf", "_foot"))
        assert abs(foot[0] - hip[0]) < 0.03 and knee[0] < hip[0] - 0.1
        assert -0.30 < foot[2] < -0.28


def make_engine(tmp_path, num_envs):
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    config["num_threads"] = 1
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), num_envs, "cpu", False)
    engine.add_character(QUADRUPED, "quadruped")
    engine.initialize()
    return engine


def test_quadruped_dropped_in_the_standing_pose_stands_for_two_seconds_under_pd(tmp_path):
    engine = make_engine(tmp_path, num_envs=1)
    ids = torch.arange(1)
    stand = torch.tensor(STAND, dtype=torch.float32)[None]
    engine.set_root_pos(0, ids, torch.tensor([[0.0, 0.0, 0.35]]))
    engine.set_root_rot(0, ids, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    engine.set_root_vel(0, ids, torch.zeros(1, 3))
    engine.set_root_ang_vel(0, ids, torch.zeros(1, 3))
    engine.set_dof_pos(0, ids, stand)
    engine.set_dof_vel(0, ids, torch.zeros(1, 12))
    feet = [engine.get_body_names(0).index(f) for f in FEET]
    heights = []
    for step in range(round(2.0 / engine.control_dt)):
        engine.set_cmd(0, stand)
        engine.step()
        heights.append(float(engine.get_root_pos(0)[0, 2]))
    heights = np.array(heights[round(1.0 / engine.control_dt):])  # the second second
    # kp 20 sags under 12.5 kg (as on the A1): knees and hip abductions give ~0.2-0.4 rad
    # and the trunk settles ~8 cm below the 0.31 m of the exact standing pose
    assert heights.min() > 0.20 and heights.max() < 0.30
    assert heights.max() - heights.min() < 0.01  # settled, not sinking or bouncing
    assert bool(engine.get_ground_contacts(0)[0, feet].all())
    up = torch_util.quat_rotate(engine.get_root_rot(0), torch.tensor([[0.0, 0.0, 1.0]]))
    assert float(up[0, 2]) > 0.97  # pitched < 14 deg (the rear legs sag more)
    assert float(engine.get_root_vel(0).norm()) < 0.05

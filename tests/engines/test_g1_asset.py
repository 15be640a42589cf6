"""Our G1-class humanoid (data/assets/g1/g1.xml) against Unitree's G1 and in the engine.

The Unitree G1's 29-dof kinematics and inertia, FK against the vendor's model, the default
pose on its soles, and the robot in the MuJoCo engine.

References: Unitree's g1_29dof.xml (``../shared/data/unitree_g1``, BSD-3; tests that read it
skip when it is absent) compiled by MuJoCo; MuJoCo's ``mj_kinematics`` on our file alone;
the engine's own contact sensors and failed-world flags.
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
G1 = str(REPO / "data/assets/g1/g1.xml")
VENDOR = REPO.parent / "shared/data/unitree_g1/g1_29dof.xml"
needs_vendor = pytest.mark.skipif(not VENDOR.exists(), reason="needs Unitree's G1 MJCF and meshes in "
                                  "../shared/data/unitree_g1 (reference data, not in the repository)")

LEG = ["hip_pitch", "hip_roll", "hip_yaw", "knee", "ankle_pitch", "ankle_roll"]
ARM = ["shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw"]
DOF_NAMES = (["left_{}_joint".format(j) for j in LEG] + ["right_{}_joint".format(j) for j in LEG]
             + ["waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint"]
             + ["left_{}_joint".format(j) for j in ARM] + ["right_{}_joint".format(j) for j in ARM])
FEET = ["left_ankle_roll_link", "right_ankle_roll_link"]
# kp N·m/rad, kd N·m·s/rad by joint (tools/make_g1_asset.py GAINS)
GAINS = {"hip": (100, 2), "knee": (150, 4), "ankle": (40, 2), "waist": (400, 5), "shoulder_pitch": (90, 2),
         "shoulder_roll": (60, 1), "shoulder_yaw": (20, 0.4), "elbow": (60, 1), "wrist": (20, 1)}


def gains_of(dof_name):
    """(kp, kd) of a dof by its name."""
    return next(g for key, g in GAINS.items() if key in dof_name)


def random_dof_pos(rng, model, n):
    """``[n, 29]`` angles uniform within the joint ranges of ``model``."""
    low, high = model.jnt_range[1:, 0], model.jnt_range[1:, 1]
    return rng.uniform(low, high, (n, model.njnt - 1))


def smooth_trajectory(rng, model, frames, knots=5):
    """A random smooth path through the joint ranges: cosine-blended random knots."""
    low, high = model.jnt_range[1:, 0], model.jnt_range[1:, 1]
    keys = rng.uniform(low, high, (knots, model.njnt - 1))
    s = np.linspace(0.0, knots - 1.0, frames)
    i = np.minimum(s.astype(int), knots - 2)
    w = (0.5 - 0.5 * np.cos(np.pi * (s - i)))[:, None]
    return keys[i] * (1 - w) + keys[i + 1] * w


def body_positions(model, data, names, root, dof_pos, joint_names):
    """World positions ``[len(names), 3]`` of bodies ``names`` (mj_kinematics) at root qpos and angles by name."""
    data.qpos[:7] = root
    for name, angle in zip(joint_names, dof_pos):
        data.qpos[model.joint(name).qposadr[0]] = angle
    mujoco.mj_kinematics(model, data)
    return np.array([data.body(n).xpos for n in names])


# ===================================================================== the file on its own
def test_g1_has_the_29_g1_dofs_a_free_root_primitive_geoms_and_position_servos():
    """Dof order, 35.1 kg, no meshes, one position servo per dof with its class's gains, box soles."""
    kin = KinCharModel(G1)
    assert kin.dof_names == DOF_NAMES
    assert kin.body_names[0] == "pelvis" and kin.num_bodies == 30
    model = mujoco.MjModel.from_xml_path(G1)
    assert model.body_mass.sum() == pytest.approx(35.112, abs=1e-3)
    primitives = {int(t) for t in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_BOX,
                                   mujoco.mjtGeom.mjGEOM_SPHERE)}
    assert model.nmesh == 0 and {int(t) for t in model.geom_type} <= primitives
    assert model.nu == 29
    for name in DOF_NAMES:
        joint, act = model.joint(name), model.actuator(name)
        assert act.trnid[0] == joint.id
        kp, kd = gains_of(name)
        assert act.gainprm[0] == kp and act.biasprm[1] == -kp and act.biasprm[2] == pytest.approx(-kd)
        np.testing.assert_allclose(act.ctrlrange, joint.range)
        assert model.actuator_forcelimited[act.id] and model.dof_armature[joint.dofadr[0]] > 0
    for foot in FEET:  # box soles 0.035 m below the ankle roll joint
        geom = model.geom(foot.replace("_link", ""))
        assert geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX
        assert geom.pos[2] - geom.size[2] == pytest.approx(-0.035)


def test_default_keyframe_is_the_bent_knee_stand_with_both_soles_on_the_ground():
    """KinCharModel reads keyframe ``default``; in it every sole corner lies on z = 0."""
    kin = KinCharModel(G1)
    expected = torch.zeros(29)
    for side in ("left_", "right_"):
        expected[DOF_NAMES.index(side + "hip_pitch_joint")] = -0.1
        expected[DOF_NAMES.index(side + "knee_joint")] = 0.3
        expected[DOF_NAMES.index(side + "ankle_pitch_joint")] = -0.2
    assert torch.allclose(kin.default_dof_pos, expected)
    model = mujoco.MjModel.from_xml_path(G1)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("default").id)
    mujoco.mj_kinematics(model, data)
    for foot in FEET:
        g = model.geom(foot.replace("_link", "")).id
        corners = np.array([[x, y, -1.0] for x in (-1, 1) for y in (-1, 1)]) * model.geom_size[g]
        z = (data.geom_xpos[g] + corners @ data.geom_xmat[g].reshape(3, 3).T)[:, 2]
        np.testing.assert_allclose(z, 0.0, atol=1e-6)  # flat soles, on z = 0


def test_kin_char_model_fk_matches_mujoco_kinematics_for_random_poses():
    """Body positions and rotations of KinCharModel equal MuJoCo's for random roots and angles."""
    kin = KinCharModel(G1)
    model = mujoco.MjModel.from_xml_path(G1)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    dof_pos = random_dof_pos(rng, model, 16)
    root_pos = rng.uniform(-1.0, 1.0, (16, 3))
    root_rot = rng.normal(size=(16, 4))
    root_rot /= np.linalg.norm(root_rot, axis=1, keepdims=True)  # x, y, z, w
    joint_rot = kin.dof_pos_to_joint_rot(torch.from_numpy(dof_pos))
    body_pos, body_rot = kin.forward_kinematics(torch.from_numpy(root_pos), torch.from_numpy(root_rot), joint_rot)
    for i in range(16):
        root = np.concatenate([root_pos[i], root_rot[i][[3, 0, 1, 2]]])
        expected = body_positions(model, data, kin.body_names, root, dof_pos[i], DOF_NAMES)
        np.testing.assert_allclose(body_pos[i].numpy(), expected, atol=1e-9)
        quat = torch_util.quat_wxyz_to_xyzw(torch.from_numpy(data.xquat[1:].copy()))
        dots = (body_rot[i] * quat).sum(-1).abs()
        np.testing.assert_allclose(dots.numpy(), 1.0, atol=1e-9)


# ===================================================================== against the vendor's file
@needs_vendor
def test_names_axes_ranges_offsets_masses_inertias_and_torque_limits_equal_the_vendors():
    """Body and joint names in order, axes, ranges, offsets, inertials and torque limits as Unitree's."""
    ours = mujoco.MjModel.from_xml_path(G1)
    vendor = mujoco.MjModel.from_xml_path(str(VENDOR))
    assert [ours.body(b).name for b in range(ours.nbody)] == [vendor.body(b).name for b in range(vendor.nbody)]
    assert [ours.joint(j).name for j in range(1, ours.njnt)] == [vendor.joint(j).name for j in range(1, vendor.njnt)]
    np.testing.assert_array_equal(ours.body_parentid, vendor.body_parentid)
    np.testing.assert_allclose(ours.jnt_axis, vendor.jnt_axis, atol=1e-12)
    np.testing.assert_allclose(ours.jnt_range[1:], vendor.jnt_range[1:], atol=1e-12)
    np.testing.assert_allclose(ours.body_pos[2:], vendor.body_pos[2:], atol=1e-12)  # the root's is the pose's
    np.testing.assert_allclose(ours.body_quat, vendor.body_quat, atol=1e-6)  # written with 7 digits
    np.testing.assert_allclose(ours.body_mass, vendor.body_mass, rtol=1e-12)
    np.testing.assert_allclose(ours.body_ipos, vendor.body_ipos, atol=1e-12)
    np.testing.assert_allclose(ours.body_inertia, vendor.body_inertia, rtol=1e-6)
    np.testing.assert_allclose(np.abs(ours.body_iquat), np.abs(vendor.body_iquat), atol=1e-6)
    for j in range(1, vendor.njnt):
        np.testing.assert_allclose(ours.actuator(vendor.joint(j).name).forcerange, vendor.jnt_actfrcrange[j])


@needs_vendor
def test_fk_of_every_body_matches_the_vendor_model_for_random_poses_and_a_smooth_trajectory():
    """The same root and angles put every body within 1 cm of the vendor model's (64 poses, 60 frames)."""
    ours = mujoco.MjModel.from_xml_path(G1)
    vendor = mujoco.MjModel.from_xml_path(str(VENDOR))
    ours_data, vendor_data = mujoco.MjData(ours), mujoco.MjData(vendor)
    names = [ours.body(b).name for b in range(1, ours.nbody)]
    rng = np.random.default_rng(1)
    poses = np.concatenate([random_dof_pos(rng, ours, 64), smooth_trajectory(rng, ours, 60)])
    worst = 0.0
    for dof_pos in poses:
        quat = rng.normal(size=4)
        root = np.concatenate([rng.uniform(-1.0, 1.0, 3), quat / np.linalg.norm(quat)])
        a = body_positions(ours, ours_data, names, root, dof_pos, DOF_NAMES)
        b = body_positions(vendor, vendor_data, names, root, dof_pos, DOF_NAMES)
        worst = max(worst, float(np.linalg.norm(a - b, axis=1).max()))
    assert worst < 0.01  # 1 cm; measured ~1e-7 m (quaternions written with 7 digits)


@needs_vendor
def test_the_tool_regenerates_the_committed_file():
    """tools/make_g1_asset.py writes exactly data/assets/g1/g1.xml (the file is made by our code)."""
    pytest.importorskip("scipy", reason="tools/make_g1_asset.py needs scipy (convex hulls)")
    from tools.make_g1_asset import build
    assert build(str(VENDOR)) == Path(G1).read_text(), "regenerate with: python tools/make_g1_asset.py"


# ===================================================================== in the engine
SIM_FREQ = 120  # Hz, the engine's default; holding the default pose needs no more


def make_engine(tmp_path, num_envs, sim_freq=SIM_FREQ):
    """The MuJoCo engine (one thread) holding the G1, initialised."""
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    config["num_threads"] = 1
    config["sim_freq"] = sim_freq
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), num_envs, "cpu", False)
    engine.add_character(G1, "g1")
    engine.initialize()
    return engine


def hold_default_pose(engine, kin, seconds):
    """Start in the default pose, hold it as the PD targets; pelvis heights per control step."""
    ids = torch.arange(engine.num_envs)
    n = engine.num_envs
    engine.set_root_pos(0, ids, kin.default_root_pos.expand(n, 3).clone())
    engine.set_root_rot(0, ids, kin.default_root_rot.expand(n, 4).clone())
    engine.set_root_vel(0, ids, torch.zeros(n, 3))
    engine.set_root_ang_vel(0, ids, torch.zeros(n, 3))
    engine.set_dof_pos(0, ids, kin.default_dof_pos.expand(n, -1).clone())
    engine.set_dof_vel(0, ids, torch.zeros(n, kin.num_dofs))
    target = kin.default_dof_pos.expand(n, -1).clone()
    heights, failed = [], torch.zeros(n, dtype=torch.bool)
    for _ in range(round(seconds / engine.control_dt)):
        engine.set_cmd(0, target)
        engine.step()
        heights.append(engine.get_root_pos(0)[:, 2].clone())
        failed |= engine.pop_failed_envs()
    return torch.stack(heights), failed


def test_engine_loads_the_g1_with_its_dofs_gains_and_torque_limits(tmp_path):
    """No warning (keyframe dropped at attach), the dof order, the file's gains and torque limits."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine = make_engine(tmp_path, num_envs=1)
    assert engine.get_dof_names(0) == DOF_NAMES
    kp, kd = engine.get_pd_gains(0)
    expected = torch.tensor([gains_of(n) for n in DOF_NAMES], dtype=kp.dtype)
    assert torch.allclose(kp, expected[:, 0]) and torch.allclose(kd, expected[:, 1])
    limits = engine.get_torque_limits(0)  # the vendor's actuatorfrcrange, N·m
    assert float(limits[DOF_NAMES.index("left_knee_joint")]) == 139.0
    assert float(limits[DOF_NAMES.index("right_wrist_yaw_joint")]) == 5.0


def test_default_pose_stands_three_seconds_under_stiffened_pd_in_the_engine(tmp_path):
    """The keyframe's pose held as PD targets at the engine's 120 Hz.

    The file's gains are the real robot's (a policy balances on them): with them alone the G1
    tips over its toes within about a second, as the vendor's model does (two ankles of
    40 N·m/rad against the m g L ~ 235 N·m/rad of the body above). Holding it still takes
    about 8 times those gains, which the test sets; the kinematics, keyframe, contacts and
    integration are what it checks.
    """
    engine = make_engine(tmp_path, num_envs=2)
    kin = KinCharModel(G1)
    kp, kd = engine.get_pd_gains(0)
    engine.set_pd_gains(0, kp * 8.0, kd * 8.0)
    heights, failed = hold_default_pose(engine, kin, seconds=3.0)
    start = float(kin.default_root_pos[2])
    assert not failed.any()
    assert float((heights - start).abs().max()) < 0.03
    assert float(heights[-30:].max() - heights[-30:].min()) < 0.005  # settled in the last second
    feet = [engine.get_body_names(0).index(f) for f in FEET]
    assert bool(engine.get_ground_contacts(0)[:, feet].all())
    up = torch_util.quat_rotate(engine.get_root_rot(0), torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 3))
    assert float(up[:, 2].min()) > 0.99


def test_with_the_files_own_gains_it_lands_on_its_soles_and_falls_without_failing(tmp_path):
    """With the real robot's gains the pose lands without a drop; the fall that follows stays finite."""
    engine = make_engine(tmp_path, num_envs=1)
    kin = KinCharModel(G1)
    heights, failed = hold_default_pose(engine, kin, seconds=2.0)
    start = float(kin.default_root_pos[2])
    assert float((heights[:8] - start).abs().max()) < 0.01  # the first 0.27 s: on its soles, no drop
    assert not failed.any() and bool(torch.isfinite(engine.get_dof_pos(0)).all())


def test_smooth_targets_through_the_full_joint_ranges_do_not_fail_at_120_hz(tmp_path):
    """Targets along random smooth paths (a knot per second) over whole ranges: no failed world.

    Random full-range targets jumping every control step are harder: they need ``sim_freq``
    480 (as the vendor's model does); per-step jumps of about 0.3 rad are fine at 120 Hz.
    """
    engine = make_engine(tmp_path, num_envs=8)
    kin = KinCharModel(G1)
    model = mujoco.MjModel.from_xml_path(G1)
    hold_default_pose(engine, kin, seconds=engine.control_dt)
    rng = np.random.default_rng(2)
    frames = round(4.0 / engine.control_dt)
    paths = np.stack([smooth_trajectory(rng, model, frames) for _ in range(8)], axis=1)  # [frames, envs, 29]
    failed = torch.zeros(8, dtype=torch.bool)
    for target in torch.tensor(paths, dtype=torch.float32):
        engine.set_cmd(0, target)
        engine.step()
        failed |= engine.pop_failed_envs()
    assert not failed.any()
    assert bool(torch.isfinite(engine.get_body_pos(0)).all())

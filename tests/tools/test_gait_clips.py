"""The shipped walk clips pass the quality checks, and each check catches what it is for.

Needs no placo: the clips are checked through MuJoCo's kinematics of the robots' MJCF.
"""
import copy
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.anim.motion_lib import MotionLib, load_dataset
from mimickit.util.config import load_yaml
from tools.gait_generation.quality import ClipChecker, format_report, measure_root_velocity
from tools.gait_generation.robot import REPO_ROOT, foot_sole, load_robot_config

ROBOTS = ["humanoid", "duckling"]


def _config(robot):
    return load_robot_config(robot)


def _checker(robot):
    cfg = _config(robot)
    return ClipChecker(cfg.path(cfg.char_file), [cfg.left_foot_body, cfg.right_foot_body], cfg.quality)


def _shipped(robot):
    cfg = _config(robot)
    files, _ = load_dataset(cfg.path(cfg.dataset_file))
    return files


@pytest.fixture(scope="module")
def duckling_checker():
    return _checker("duckling")


@pytest.fixture
def duckling_walk():
    return Motion.load(os.path.join(REPO_ROOT, "data/motions/duckling/duckling_walk_forward_medium.npz"))


@pytest.mark.parametrize("robot", ROBOTS)
def test_dataset_lists_exactly_the_shipped_clips_of_the_robot(robot):
    cfg = _config(robot)
    data = load_yaml(cfg.path(cfg.dataset_file))
    listed = [m["file"] for m in data["motions"]]
    assert listed == ["{}/{}_{}.npz".format(cfg.out_dir, robot, n) for n in cfg.shipped]
    assert all(not os.path.isabs(p) for p in listed)


@pytest.mark.parametrize("robot", ROBOTS)
def test_shipped_clips_pass_the_quality_checks(robot):
    checker = _checker(robot)
    reports = [checker.check(Motion.load(f), os.path.basename(f)) for f in _shipped(robot)]
    assert all(r.passed for r in reports), format_report(reports)


@pytest.mark.parametrize("robot", ROBOTS)
def test_shipped_clips_load_in_the_motion_library_as_wrap_clips(robot):
    cfg = _config(robot)
    kin = KinCharModel(cfg.path(cfg.char_file))
    lib = MotionLib(cfg.path(cfg.dataset_file), kin, "cpu")
    assert lib.num_motions == len(cfg.shipped)
    assert all(lib.get_motion(i).loop_mode == "wrap" for i in range(lib.num_motions))


def test_duckling_dataset_covers_six_directions_at_three_speeds():
    names = [os.path.basename(f) for f in _shipped("duckling")]
    for direction in ("walk_forward", "walk_backward", "walk_left", "walk_right", "turn_left", "turn_right"):
        for speed in ("slow", "medium", "fast"):
            assert "duckling_{}_{}.npz".format(direction, speed) in names


@pytest.mark.parametrize("robot", ROBOTS)
def test_walk_clips_store_command_and_the_velocity_measured_independently(robot):
    for f in _shipped(robot):
        m = Motion.load(f)
        assert m.extras["command"].shape == (3,) and m.extras["measured_root_vel"].shape == (3,)
        # Independent measurement: scipy's yaw, per-frame velocity rotated into it.
        yaw = np.unwrap(Rotation.from_rotvec(m.frames[:, 3:6].astype(np.float64)).as_euler("ZYX")[:, 0])
        vel = np.diff(m.frames[:, :2].astype(np.float64), axis=0) * m.fps
        local = np.stack([np.cos(yaw[:-1]) * vel[:, 0] + np.sin(yaw[:-1]) * vel[:, 1],
                          -np.sin(yaw[:-1]) * vel[:, 0] + np.cos(yaw[:-1]) * vel[:, 1]], -1).mean(0)
        expected = np.array([local[0], local[1], (yaw[-1] - yaw[0]) / m.length])
        np.testing.assert_allclose(m.extras["measured_root_vel"], expected, atol=2e-4)


def test_forward_walk_command_matches_step_length_over_step_time():
    cfg = _config("duckling")
    m = Motion.load(os.path.join(REPO_ROOT, "data/motions/duckling/duckling_walk_forward_medium.npz"))
    step = cfg.walk.single_support_duration * (1 + cfg.walk.double_support_ratio)
    np.testing.assert_allclose(m.extras["command"], [cfg.speeds["medium"].forward / step, 0.0, 0.0], atol=1e-6)


def test_measure_root_velocity_recovers_a_constant_twist():
    fps, v, w = 50.0, 0.3, 0.8
    t = np.arange(51) / fps
    yaw = w * t
    pos = np.stack([v / w * np.sin(yaw), v / w * (1 - np.cos(yaw)), np.full_like(t, 0.3)], -1)
    rot = Rotation.from_euler("z", yaw[:, None]).as_quat()  # x, y, z, w
    measured = measure_root_velocity(pos, rot, fps)
    np.testing.assert_allclose(measured, [v, 0.0, w], atol=5e-3)


def test_foot_sole_is_the_bottom_centre_of_the_foot_box():
    import mujoco
    model = mujoco.MjModel.from_xml_path(os.path.join(REPO_ROOT, "data/assets/humanoid/humanoid.xml"))
    sole = foot_sole(model, "left_foot")
    # humanoid.xml: box pos="0.045 0 -0.03" size="0.1 0.045 0.03"
    np.testing.assert_allclose(sole.center, [0.045, 0.0, -0.06], atol=1e-9)
    assert sole.length == pytest.approx(0.2) and sole.width == pytest.approx(0.09)


def test_slip_check_flags_a_sliding_stance_foot(duckling_checker, duckling_walk):
    m = copy.deepcopy(duckling_walk)
    m.frames[:, 0] += np.linspace(0.0, 0.03, m.num_frames)  # everything, stance feet included, drifts 3 cm
    report = duckling_checker.check(m)
    assert any("slips" in f for f in report.failures) and report.slip > 0.01


def test_penetration_check_flags_a_sunken_clip(duckling_checker, duckling_walk):
    m = copy.deepcopy(duckling_walk)
    m.frames[:, 2] -= 0.02
    report = duckling_checker.check(m)
    assert any("penetration" in f for f in report.failures)
    assert report.penetration == pytest.approx(0.02, abs=0.004)


def test_joint_limit_check_flags_an_overbent_knee(duckling_checker, duckling_walk):
    m = copy.deepcopy(duckling_walk)
    knee = 6 + m.dof_names.index("left_knee")
    m.frames[5, knee] = np.deg2rad(140.0)  # range -3..130 deg
    report = duckling_checker.check(m)
    assert any("left_knee" in f for f in report.failures)
    assert report.limit_excess == pytest.approx(np.deg2rad(10.0), abs=1e-4)


def test_seam_check_flags_a_clip_cut_mid_cycle(duckling_checker, duckling_walk):
    m = Motion(duckling_walk.fps, "wrap", duckling_walk.frames[:-6], duckling_walk.dof_names, duckling_walk.extras)
    report = duckling_checker.check(m)
    assert any("seam" in f for f in report.failures)


def test_velocity_check_flags_a_clip_slower_than_its_command(duckling_checker, duckling_walk):
    m = copy.deepcopy(duckling_walk)
    m.extras["command"] = m.extras["command"] * 1.2
    assert any("root velocity" in f for f in duckling_checker.check(m).failures)
    m.extras["command"] = duckling_walk.extras["command"] * 1.05
    assert duckling_checker.check(m).passed


def test_view_motion_duckling_arg_file_plays_every_clip(tmp_path, monkeypatch):
    from mimickit.run import main
    monkeypatch.chdir(REPO_ROOT)
    code = main(["--arg_file", "args/view_motion_duckling_args.txt", "--mode", "test", "--test_episodes", "1",
                 "--visualize", "false", "--num_envs", str(len(_shipped("duckling"))), "--out_dir", str(tmp_path)])
    assert code == 0

"""The quadruped's kinematic gait tool: closed-form leg IK against MuJoCo's kinematics, the
shipped clips against the quality checks (MuJoCo kinematics of the MJCF), the gait
patterns seen through MuJoCo, and byte-identical regeneration. No placo needed."""
import copy
import dataclasses
import os

import mujoco
import numpy as np
import pytest

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.anim.motion_lib import MotionLib, load_dataset
from mimickit.util.config import load_config, load_yaml
from mimickit.util.errors import MimicKitError
from tools.gait_generation.generate import main
from tools.gait_generation.leg_ik import leg_geometry, solve_leg_ik
from tools.gait_generation.quadruped_gait import QuadrupedConfig, root_path, swing_profile
from tools.gait_generation.quality import ClipChecker, format_report
from tools.gait_generation.robot import REPO_ROOT, foot_sole, robot_config_path

QUADRUPED = os.path.join(REPO_ROOT, "data/assets/quadruped/quadruped.xml")
LEGS = ["FL", "FR", "RL", "RR"]
LOW = np.array([-0.80, -1.05, -2.70])
HIGH = np.array([0.80, 4.19, -0.92])


@pytest.fixture(scope="module")
def config():
    return load_config(QuadrupedConfig, robot_config_path("quadruped"))


@pytest.fixture(scope="module")
def checker(config):
    return ClipChecker(config.path(config.char_file), config.foot_bodies(), config.quality)


@pytest.fixture(scope="module")
def mj():
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    return model, mujoco.MjData(model)


def mujoco_feet_in_hip_frames(model, data, leg, q):
    """Foot centres [N, 3] of leg angles q [N, 3] relative to the hip joint, trunk at the origin, by MuJoCo."""
    adr = model.joint(leg + "_hip_joint").qposadr[0]
    hip = model.body(leg + "_hip").pos
    out = np.empty((len(q), 3))
    for i, angles in enumerate(q):
        data.qpos[:] = 0.0
        data.qpos[3] = 1.0
        data.qpos[adr:adr + 3] = angles
        mujoco.mj_kinematics(model, data)
        out[i] = data.body(leg + "_foot").xpos - hip
    return out


@pytest.mark.parametrize("leg", LEGS)
def test_ik_of_reachable_targets_puts_mujocos_foot_on_the_target(mj, leg):
    model, data = mj
    rng = np.random.default_rng(LEGS.index(leg))
    targets = mujoco_feet_in_hip_frames(model, data, leg, rng.uniform(LOW, HIGH, (200, 3)))
    # and targets drawn in a box below the hip, kept where the IK finds a solution
    box = rng.uniform([-0.3, -0.3, -0.38], [0.3, 0.3, -0.05], (400, 3))
    geom = leg_geometry(model, leg)
    reachable = []
    for target in box:
        try:
            solve_leg_ik(geom, target)
            reachable.append(target)
        except MimicKitError:
            pass
    assert len(reachable) > 100
    targets = np.concatenate([targets, np.array(reachable)])
    q = solve_leg_ik(geom, targets)
    np.testing.assert_allclose(mujoco_feet_in_hip_frames(model, data, leg, q), targets, atol=1e-6)
    assert (q[:, 2] <= 1e-12).all()  # knees bend backward


@pytest.mark.parametrize("leg", LEGS)
def test_ik_of_feet_of_random_angles_recovers_the_angles_when_the_foot_is_below_the_thigh(mj, leg):
    model, data = mj
    rng = np.random.default_rng(10 + LEGS.index(leg))
    q = rng.uniform(LOW, HIGH, (300, 3))
    feet = mujoco_feet_in_hip_frames(model, data, leg, q)
    solved = solve_leg_ik(leg_geometry(model, leg), feet)
    np.testing.assert_allclose(mujoco_feet_in_hip_frames(model, data, leg, solved), feet, atol=1e-6)
    # the foot below the thigh joint in the leg's plane: the IK's branch, so the same angles
    below = -0.2 * np.cos(q[:, 1]) - 0.2 * np.cos(q[:, 1] + q[:, 2]) < -1e-3
    assert below.sum() > 100
    np.testing.assert_allclose(solved[below], q[below], atol=1e-6)


def test_ik_raises_for_targets_out_of_reach(mj):
    geom = leg_geometry(mj[0], "FL")
    with pytest.raises(MimicKitError, match="reachable"):
        solve_leg_ik(geom, np.array([0.0, 0.085, -0.45]), where="clip x")
    with pytest.raises(MimicKitError, match="hip axis"):
        solve_leg_ik(geom, np.array([0.1, 0.02, -0.02]))


def test_leg_geometry_rejects_a_character_without_the_a1_layout():
    with pytest.raises(MimicKitError, match="no body 'FL_hip'"):
        leg_geometry(mujoco.MjModel.from_xml_path(os.path.join(REPO_ROOT, "data/assets/duckling/duckling.xml")), "FL")


def test_root_path_integrates_the_heading_frame_command():
    command = np.array([0.6, -0.2, 0.9])
    t = np.linspace(0.0, 1.0, 2001)
    xy, yaw = root_path(command, t)
    # numerical integral of R(yaw) [vx, vy]
    c, s = np.cos(command[2] * t), np.sin(command[2] * t)
    vel = np.stack([c * command[0] - s * command[1], s * command[0] + c * command[1]], -1)
    integral = np.concatenate([[[0.0, 0.0]], np.cumsum(0.5 * (vel[1:] + vel[:-1]) * np.diff(t)[:, None], 0)])
    np.testing.assert_allclose(xy, integral, atol=1e-6)
    np.testing.assert_allclose(yaw, command[2] * t)


def test_swing_profile_leaves_and_lands_with_zero_velocity():
    s = np.array([0.0, 1e-4, 0.5, 1.0 - 1e-4, 1.0])
    along, up = swing_profile(s)
    np.testing.assert_allclose(along[[0, 2, 4]], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(up[[0, 2, 4]], [0.0, 1.0, 0.0], atol=1e-12)
    assert along[1] < 1e-9 and up[1] < 1e-6 and 1.0 - along[3] < 1e-9 and up[3] < 1e-6


def test_sphere_foot_sole_is_its_centre_and_radius(mj):
    sole = foot_sole(mj[0], "FL_foot")
    np.testing.assert_allclose(sole.center, 0.0)
    assert sole.radius == pytest.approx(0.02)


def test_dataset_lists_exactly_the_shipped_clips(config):
    listed = [m["file"] for m in load_yaml(config.path(config.dataset_file))["motions"]]
    assert listed == ["{}/quadruped_{}.npz".format(config.out_dir, n) for n in config.shipped]
    assert 8 <= len(listed) <= 12


def test_shipped_clips_pass_the_quality_checks(config, checker):
    files, _ = load_dataset(config.path(config.dataset_file))
    reports = [checker.check(Motion.load(f), os.path.basename(f)) for f in files]
    assert all(r.passed for r in reports), format_report(reports)
    for r in reports:
        assert r.slip < 0.005 and r.stance_height < 0.005 and r.seam_jump < 0.005
        if "stand" not in r.name:
            assert r.swing_clearance >= 0.05
            np.testing.assert_allclose(r.measured, r.command, atol=0.03 * np.abs(r.command).max())


def test_shipped_clips_are_wrap_clips_with_a1_class_timing_and_height(config):
    kin = KinCharModel(QUADRUPED)
    lib = MotionLib(config.path(config.dataset_file), kin, "cpu")
    assert lib.num_motions == len(config.shipped)
    for i in range(lib.num_motions):
        m = lib.get_motion(i)
        assert m.loop_mode == "wrap" and m.extras["command"].shape == (3,)
        assert m.extras["foot_contacts"].shape == (m.num_frames, 4)
        assert 0.28 <= m.frames[:, 2].mean() <= 0.31
        if m.extras["foot_contacts"].min() == 0:  # a gait, not standing
            assert 0.38 <= m.length <= 0.52


def _ground_contacts(checker, motion):
    """Feet [T, 4] within 1 mm of the ground, seen through MuJoCo's kinematics of the clip."""
    return checker.kinematics(motion.frames)["sole"][..., 2] < 1e-3


def test_trot_moves_diagonal_pairs_together_and_pace_lateral_pairs(checker):
    trot = Motion.load(os.path.join(REPO_ROOT, "data/motions/quadruped/quadruped_trot_forward_medium.npz"))
    pace = Motion.load(os.path.join(REPO_ROOT, "data/motions/quadruped/quadruped_pace_forward.npz"))
    fl, fr, rl, rr = _ground_contacts(checker, trot).T
    assert (fl == rr).all() and (fr == rl).all() and not (fl == fr).all()
    assert (fl | fr).all()  # some pair always stands
    half = (trot.num_frames - 1) // 2
    assert (np.roll(fl[:-1], half) == fr[:-1]).mean() > 0.9  # half a cycle apart
    fl, fr, rl, rr = _ground_contacts(checker, pace).T
    assert (fl == rl).all() and (fr == rr).all() and not (fl == fr).all()


def test_turn_clip_turns_in_place_at_the_commanded_rate(checker):
    m = Motion.load(os.path.join(REPO_ROOT, "data/motions/quadruped/quadruped_trot_turn_left.npz"))
    k = checker.kinematics(m.frames)
    assert np.abs(k["root_pos"][:, :2]).max() < 1e-6
    assert m.extras["command"][2] == pytest.approx(1.0)
    assert checker.check(m).measured[2] == pytest.approx(1.0, rel=0.01)


def test_stance_schedule_checks_flag_a_shifted_schedule_and_a_low_swing(config, checker):
    m = Motion.load(os.path.join(REPO_ROOT, "data/motions/quadruped/quadruped_trot_forward_medium.npz"))
    shifted = copy.deepcopy(m)
    shifted.extras["foot_contacts"] = np.roll(m.extras["foot_contacts"], 3, axis=0)
    assert any("off the ground" in f for f in checker.check(shifted).failures)
    standing = copy.deepcopy(m)
    standing.extras["foot_contacts"] = np.ones_like(m.extras["foot_contacts"])
    assert any("off the ground" in f for f in checker.check(standing).failures)
    # the swing apex is the gait's 7 cm step height: a 8 cm clearance requirement fails
    strict = ClipChecker(QUADRUPED, config.foot_bodies(),
                         dataclasses.replace(config.quality, min_swing_clearance=0.08))
    report = strict.check(m)
    assert any("rises only" in f for f in report.failures)
    assert report.swing_clearance == pytest.approx(0.07, abs=0.002)


def test_regenerating_gives_identical_bytes(tmp_path, config):
    assert main(["--robot", "quadruped", "--preset", "all", "--out_dir", str(tmp_path)]) == 0
    for name in config.shipped:
        file = "quadruped_{}.npz".format(name)
        with open(tmp_path / file, "rb") as new, open(config.path(os.path.join(config.out_dir, file)), "rb") as old:
            assert new.read() == old.read(), file


def test_check_of_the_shipped_dataset_passes_and_unknown_clip_is_a_usage_error(capsys):
    assert main(["--robot", "quadruped", "--check"]) == 0
    assert "10 clips, 0 failed" in capsys.readouterr().out
    assert main(["--robot", "quadruped", "--preset", "gallop_fast", "--out_dir", "/nonexistent"]) == 2
    assert "unknown clip 'gallop_fast'" in capsys.readouterr().err


def test_random_preset_is_deterministic_and_passes_the_checks(tmp_path):
    for out in ("a", "b"):
        assert main(["--robot", "quadruped", "--preset", "random", "--num_random", "3", "--seed", "2",
                     "--out_dir", str(tmp_path / out)]) == 0
    for i in range(3):
        name = "quadruped_random_{:03d}.npz".format(i)
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_view_motion_quadruped_arg_file_plays_the_clips(tmp_path, monkeypatch):
    from mimickit.run import main as run_main
    monkeypatch.chdir(REPO_ROOT)
    code = run_main(["--arg_file", "args/view_motion_quadruped_args.txt", "--test_episodes", "2",
                     "--num_envs", "2", "--out_dir", str(tmp_path)])
    assert code == 0

"""MotionLib against scipy's Slerp and rotations, MuJoCo's kinematics and analytic trajectories."""
import math

import mujoco
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.anim.motion_lib import LOOP_CLAMP, LOOP_WRAP, MotionLib, load_dataset, save_dataset
from mimickit.util import torch_util as tu
from mimickit.util.errors import MimicKitError

HUMANOID = "data/assets/humanoid/humanoid.xml"


@pytest.fixture(scope="module")
def char():
    return KinCharModel(HUMANOID)


def joint_of(char, body):
    """Joint index and first dof column (in joint_dof) of ``body``'s joint."""
    j = char.get_body_id(body) - 1
    return j, int(char.joint_dof_offsets[j])


def write_clip(path, char, fps, loop_mode, root_pos, root_rotvec, joint_dof, dof_names=None):
    frames = np.concatenate([root_pos, root_rotvec, joint_dof], axis=1)
    Motion(fps, loop_mode, frames, dof_names or char.dof_names).save(str(path))
    return str(path)


def still_clip(char, num_frames):
    """Root at rest at 0.9 m height, all joints at zero: arrays to modify per test."""
    root_pos = np.zeros((num_frames, 3))
    root_pos[:, 2] = 0.9
    return root_pos, np.zeros((num_frames, 3)), np.zeros((num_frames, char.num_dofs))


def rot_angle(q_xyzw, ref_xyzw):
    """Angles (rad) between torch rotations and reference rotations given as xyzw arrays."""
    return tu.quat_diff_angle(q_xyzw.double(), torch.as_tensor(ref_xyzw, dtype=torch.float64))


def random_clip(char, tmp_path, name, loop_mode, num_frames=12, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    root_pos = rng.normal(size=(num_frames, 3))
    root_rotvec = Rotation.random(num_frames, random_state=seed).as_rotvec()
    joint_dof = rng.uniform(-1.0, 1.0, size=(num_frames, char.num_dofs))
    path = write_clip(tmp_path / name, char, fps, loop_mode, root_pos, root_rotvec, joint_dof)
    return path, root_pos, root_rotvec, joint_dof


# ----------------------------------------------------------------- interpolation
def test_rotations_between_frames_are_scipy_slerp_not_exp_map_lerp(char, tmp_path):
    root_pos, root_rotvec, joint_dof = still_clip(char, 2)
    j, d = joint_of(char, "right_upper_arm")
    a, b = np.array([1.2, 0.3, -0.5]), np.array([-0.4, 1.5, 0.9])
    joint_dof[0, d:d + 3], joint_dof[1, d:d + 3] = a, b
    root_rotvec[0], root_rotvec[1] = [0.0, 0.0, 2.5], [0.3, -0.2, -2.8]
    fps = 10.0
    lib = MotionLib(write_clip(tmp_path / "c.npz", char, fps, "clamp", root_pos, root_rotvec, joint_dof),
                    char, "cpu")

    fracs = np.array([0.25, 0.5, 0.8])
    ids = torch.zeros(len(fracs), dtype=torch.long)
    _, root_rot, _, _, joint_rot, _ = lib.calc_motion_frame(ids, torch.tensor(fracs / fps))

    ref_joint = Slerp([0.0, 1.0], Rotation.from_rotvec([a, b]))(fracs).as_quat()
    ref_root = Slerp([0.0, 1.0], Rotation.from_rotvec(root_rotvec))(fracs).as_quat()
    assert rot_angle(joint_rot[:, j], ref_joint).max() < 1e-5
    assert rot_angle(root_rot, ref_root).max() < 1e-5
    # The check discriminates: blending the exp maps gives a visibly different rotation.
    lerped = Rotation.from_rotvec(0.5 * (a + b)).as_quat()
    assert rot_angle(joint_rot[1:2, j], lerped[None]).item() > 0.05


def test_frame_lookup_at_exact_frame_times_returns_that_frame(char, tmp_path):
    for loop_mode in ("clamp", "wrap"):
        path, root_pos, root_rotvec, joint_dof = random_clip(char, tmp_path, loop_mode + ".npz", loop_mode)
        lib = MotionLib(path, char, "cpu")
        n = root_pos.shape[0]
        ids = torch.zeros(n - 1, dtype=torch.long)  # time = length would be the next cycle for wrap
        times = torch.arange(n - 1, dtype=torch.float32) / 30.0
        pos, rot, _, _, joint_rot, _ = lib.calc_motion_frame(ids, times)

        np.testing.assert_allclose(pos.numpy(), root_pos[:-1], atol=1e-5)
        assert rot_angle(rot, Rotation.from_rotvec(root_rotvec[:-1]).as_quat()).max() < 1e-4
        j, d = joint_of(char, "left_thigh")
        ref = Rotation.from_rotvec(joint_dof[:-1, d:d + 3]).as_quat()
        assert rot_angle(joint_rot[:, j], ref).max() < 1e-4
        j, d = joint_of(char, "left_shin")  # a single hinge about y
        ref = Rotation.from_rotvec(np.outer(joint_dof[:-1, d], [0.0, 1.0, 0.0])).as_quat()
        assert rot_angle(joint_rot[:, j], ref).max() < 1e-4


def test_calc_body_pos_matches_mujoco_at_frame_times(char, tmp_path):
    path, root_pos, root_rotvec, joint_dof = random_clip(char, tmp_path, "c.npz", "clamp", num_frames=5)
    lib = MotionLib(path, char, "cpu")
    body_pos = lib.calc_body_pos(torch.zeros(5, dtype=torch.long), torch.arange(5) / 30.0)
    assert body_pos.shape == (5, char.num_bodies, 3)

    model = mujoco.MjModel.from_xml_path(HUMANOID)
    data = mujoco.MjData(model)
    dof_pos = char.joint_dof_to_dof_pos(torch.tensor(joint_dof))
    for t in range(5):
        quat = Rotation.from_rotvec(root_rotvec[t]).as_quat()  # xyzw
        data.qpos[:] = np.concatenate([root_pos[t], quat[[3, 0, 1, 2]], dof_pos[t].numpy()])
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(body_pos[t].numpy(), data.xpos[1:], atol=1e-4)


# ----------------------------------------------------------------- loop modes
def periodic_clip(char, period, fps, displacement_xy, z_drift=0.0):
    """A gait-like wrap clip: its last frame is its first pose, advanced by ``displacement_xy``
    (and raised by ``z_drift``, a seam defect the wrap must not accumulate)."""
    t = np.arange(int(round(period * fps)) + 1) / fps
    w = 2.0 * math.pi / period
    root_pos = np.stack([displacement_xy[0] * t / period + 0.1 * np.sin(w * t),
                         displacement_xy[1] * t / period + 0.2 * np.sin(w * t),
                         0.9 + 0.05 * np.sin(2 * w * t) + z_drift * t / period], axis=1)
    root_rotvec = np.stack([0.1 * np.sin(w * t), 0.05 * np.cos(w * t), 0.3 * np.sin(w * t)], axis=1)
    joint_dof = np.zeros((len(t), char.num_dofs))
    _, d = joint_of(char, "right_upper_arm")
    joint_dof[:, d:d + 3] = np.stack([0.4 * np.sin(w * t), 0.2 * np.cos(w * t), 0.8 * np.sin(w * t + 1)], 1)
    _, d = joint_of(char, "right_lower_arm")
    joint_dof[:, d] = -0.8 + 0.5 * np.sin(w * t)
    return root_pos, root_rotvec, joint_dof


def test_wrap_clip_is_continuous_across_the_seam(char, tmp_path):
    period, fps, disp = 1.2, 30.0, (2.6, 0.4)
    root_pos, root_rotvec, joint_dof = periodic_clip(char, period, fps, disp)
    lib = MotionLib(write_clip(tmp_path / "gait.npz", char, fps, "wrap", root_pos, root_rotvec, joint_dof),
                    char, "cpu")
    ids = torch.zeros(2, dtype=torch.long)
    assert lib.get_motion_loop_mode(ids[:1]).item() == LOOP_WRAP
    length = lib.get_motion_length(ids[:1]).item()
    assert length == pytest.approx(period, abs=1e-6)

    eps = 1e-3
    for cycle in (1, 2):
        times = torch.tensor([cycle * length - eps, cycle * length + eps])
        pos, rot, vel, ang_vel, joint_rot, dof_vel = lib.calc_motion_frame(ids, times)
        body_pos = lib.calc_body_pos(ids, times)
        max_body_speed = (np.linalg.norm(np.diff(lib.calc_body_pos(
            torch.zeros(len(root_pos), dtype=torch.long), torch.arange(len(root_pos)) / fps).numpy(), axis=0),
            axis=-1) * fps).max()
        assert (pos[1] - pos[0]).norm() < vel[0].norm() * 2 * eps + 1e-4
        assert (body_pos[1] - body_pos[0]).norm(dim=-1).max() < max_body_speed * 2 * eps + 1e-4
        assert tu.quat_diff_angle(rot[1], rot[0]) < ang_vel[0].norm() * 2 * eps + 1e-4
        assert tu.quat_diff_angle(joint_rot[1], joint_rot[0]).max() < 0.01
        assert (vel[1] - vel[0]).norm() < 0.05  # the last frame's velocity is the first frame's
        assert (dof_vel[1] - dof_vel[0]).abs().max() < 0.05


def test_wrap_clip_advances_the_root_by_one_horizontal_displacement_per_cycle(char, tmp_path):
    period, fps, disp = 1.2, 30.0, (2.6, 0.4)
    root_pos, root_rotvec, joint_dof = periodic_clip(char, period, fps, disp, z_drift=0.05)
    lib = MotionLib(write_clip(tmp_path / "gait.npz", char, fps, "wrap", root_pos, root_rotvec, joint_dof),
                    char, "cpu")
    torch.manual_seed(0)
    ids = torch.zeros(50, dtype=torch.long)
    t = lib.sample_time(ids)
    base = lib.calc_motion_frame(ids, t)
    for cycles in (1, 3, -1):
        shifted = lib.calc_motion_frame(ids, t + cycles * period)
        offset = torch.tensor([disp[0], disp[1], 0.0]) * cycles
        torch.testing.assert_close(shifted[0], base[0] + offset, atol=2e-4, rtol=0)
        assert tu.quat_diff_angle(shifted[1], base[1]).max() < 1e-3
        torch.testing.assert_close(shifted[2], base[2], atol=1e-3, rtol=0)
        assert tu.quat_diff_angle(shifted[4], base[4]).max() < 1e-3


def test_turning_wrap_clip_keeps_turning_on_its_circle_across_cycles(char, tmp_path):
    """A root walking a circle of radius r at yaw rate w: one cycle covers a quarter turn;
    after several cycles the pose must be the analytic circle's, not a restart."""
    fps, period, radius = 30.0, 1.0, 2.0
    rate = (math.pi / 2) / period
    times = np.arange(int(period * fps) + 1) / fps
    yaw = rate * times
    root_pos, _, joint_dof = still_clip(char, len(times))
    root_pos[:, 0] = radius * np.sin(yaw) + 0.3
    root_pos[:, 1] = radius * (1 - np.cos(yaw)) - 0.2
    root_rotvec = np.stack([np.zeros_like(yaw), np.zeros_like(yaw), yaw], axis=1)
    lib = MotionLib(write_clip(tmp_path / "turn.npz", char, fps, "wrap", root_pos, root_rotvec, joint_dof),
                    char, "cpu")
    t = torch.tensor([0.37, 1.37, 2.9, 5.2, -0.6])
    pos, rot, vel, ang_vel, _, _ = lib.calc_motion_frame(torch.zeros(len(t), dtype=torch.long), t)
    want_yaw = rate * t.double()
    want = torch.stack([radius * torch.sin(want_yaw) + 0.3, radius * (1 - torch.cos(want_yaw)) - 0.2,
                        torch.full_like(want_yaw, 0.9)], dim=-1)
    torch.testing.assert_close(pos.double(), want, atol=2e-3, rtol=0)
    torch.testing.assert_close(tu.calc_heading(rot).double(), tu.wrap_angle(want_yaw), atol=1e-3, rtol=0)
    want_vel = torch.stack([radius * rate * torch.cos(want_yaw), radius * rate * torch.sin(want_yaw),
                            torch.zeros_like(want_yaw)], dim=-1)
    # Forward differences follow the chord: off the tangent by about |v| * rate * dt / 2 = 0.08 m/s.
    torch.testing.assert_close(vel.double(), want_vel, atol=0.1, rtol=0)
    torch.testing.assert_close(ang_vel[:, 2].double(), torch.full_like(want_yaw, rate), atol=1e-3, rtol=0)


def test_clamp_clip_holds_its_last_frame_beyond_the_end(char, tmp_path):
    path, root_pos, root_rotvec, joint_dof = random_clip(char, tmp_path, "c.npz", "clamp")
    lib = MotionLib(path, char, "cpu")
    length = lib.get_motion_length(torch.tensor([0])).item()
    assert lib.get_motion_loop_mode(torch.tensor([0])).item() == LOOP_CLAMP
    times = torch.tensor([length, length + 0.01, length + 0.5, length + 10.0])
    pos, rot, _, _, joint_rot, _ = lib.calc_motion_frame(torch.zeros(4, dtype=torch.long), times)
    np.testing.assert_allclose(pos.numpy(), np.repeat(root_pos[-1:], 4, 0), atol=1e-5)
    assert rot_angle(rot, Rotation.from_rotvec(root_rotvec[-1:]).as_quat()).max() < 1e-4
    ref_joint_rot = char.joint_dof_to_joint_rot(torch.tensor(joint_dof[-1]))
    assert tu.quat_diff_angle(joint_rot.double(), ref_joint_rot.double()).max() < 1e-4

    pos_before, _, _, _, _, _ = lib.calc_motion_frame(torch.zeros(1, dtype=torch.long), torch.tensor([-2.0]))
    np.testing.assert_allclose(pos_before[0].numpy(), root_pos[0], atol=1e-5)


# ----------------------------------------------------------------- velocities
def test_root_vel_of_constant_speed_clip_equals_the_speed(char, tmp_path):
    fps, speed, heading = 30.0, 1.3, 0.5
    root_pos, root_rotvec, joint_dof = still_clip(char, 20)
    t = np.arange(20) / fps
    direction = np.array([math.cos(heading), math.sin(heading), 0.0])
    root_pos = root_pos + speed * t[:, None] * direction
    root_rotvec[:] = [0.0, 0.0, heading]
    lib = MotionLib(write_clip(tmp_path / "run.npz", char, fps, "clamp", root_pos, root_rotvec, joint_dof),
                    char, "cpu")
    times = torch.cat([torch.rand(20) * lib.get_motion_length(torch.tensor([0])), torch.tensor([t[-1]])])
    _, _, root_vel, root_ang_vel, _, _ = lib.calc_motion_frame(torch.zeros(21, dtype=torch.long), times)
    np.testing.assert_allclose(root_vel.numpy(), np.tile(speed * direction, (21, 1)), atol=1e-4)
    np.testing.assert_allclose(root_ang_vel.numpy(), 0.0, atol=1e-4)


def test_angular_velocities_of_constant_rate_rotations_equal_the_rates(char, tmp_path):
    """A joint turning about a fixed parent-frame axis at rate w has joint_dof_vel = axis * w."""
    fps, n = 30.0, 20
    t = np.arange(n) / fps
    root_pos, root_rotvec, joint_dof = still_clip(char, n)
    axis = np.array([1.0, 2.0, -1.0]) / math.sqrt(6.0)
    rate, base = 2.0, Rotation.from_rotvec([0.5, -0.3, 0.4])
    j, d = joint_of(char, "left_upper_arm")
    joint_dof[:, d:d + 3] = (Rotation.from_rotvec(np.outer(rate * t, axis)) * base).as_rotvec()
    _, d_elbow = joint_of(char, "left_lower_arm")
    joint_dof[:, d_elbow] = -0.3 - 1.5 * t
    yaw_rate, tilt = 0.7, Rotation.from_rotvec([0.2, 0.1, 0.0])
    root_rotvec[:] = (Rotation.from_rotvec(np.outer(yaw_rate * t, [0, 0, 1])) * tilt).as_rotvec()
    lib = MotionLib(write_clip(tmp_path / "spin.npz", char, fps, "clamp", root_pos, root_rotvec, joint_dof),
                    char, "cpu")

    times = torch.rand(30) * lib.get_motion_length(torch.tensor([0]))
    _, _, _, root_ang_vel, _, dof_vel = lib.calc_motion_frame(torch.zeros(30, dtype=torch.long), times)
    np.testing.assert_allclose(dof_vel[:, d:d + 3].numpy(), np.tile(rate * axis, (30, 1)), atol=1e-4)
    np.testing.assert_allclose(dof_vel[:, d_elbow].numpy(), -1.5, atol=1e-4)
    np.testing.assert_allclose(root_ang_vel.numpy(), np.tile([0.0, 0.0, yaw_rate], (30, 1)), atol=1e-4)
    others = [i for i in range(char.num_dofs) if i not in (d, d + 1, d + 2, d_elbow)]
    np.testing.assert_allclose(dof_vel[:, others].numpy(), 0.0, atol=1e-5)


def test_joint_dof_vel_matches_euler_rates_through_the_rate_jacobian(char, tmp_path):
    """Finite-difference velocities agree with KinCharModel's dof_vel -> joint_dof_vel mapping."""
    fps, n = 120.0, 40
    t = np.arange(n) / fps
    rng = np.random.default_rng(3)
    amp = rng.uniform(0.2, 0.6, char.num_dofs)
    freq = rng.uniform(0.5, 2.0, char.num_dofs)
    phase = rng.uniform(0.0, 6.0, char.num_dofs)
    dof_pos = amp * np.sin(freq * t[:, None] + phase)
    dof_vel = amp * freq * np.cos(freq * t[:, None] + phase)
    joint_dof = char.dof_pos_to_joint_dof(torch.tensor(dof_pos)).numpy()
    root_pos, root_rotvec, _ = still_clip(char, n)
    lib = MotionLib(write_clip(tmp_path / "wave.npz", char, fps, "clamp", root_pos, root_rotvec, joint_dof),
                    char, "cpu")
    # Frame k's velocity is the forward difference over [k, k + 1]: compare at the midpoint.
    tm = t[:-1] + 0.5 / fps
    ref = char.dof_vel_to_joint_dof_vel(torch.tensor(amp * np.sin(freq * tm[:, None] + phase)),
                                        torch.tensor(amp * freq * np.cos(freq * tm[:, None] + phase)))
    _, _, _, _, _, got = lib.calc_motion_frame(torch.zeros(n - 1, dtype=torch.long), torch.tensor(t[:-1]))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-3)
    assert np.abs(dof_vel).max() > 0.5  # a real motion, not a trivially zero one


# ----------------------------------------------------------------- datasets and sampling
def write_dataset(path, text):
    path.write_text(text)
    return str(path)


def test_sample_motions_follows_the_weights(char, tmp_path):
    random_clip(char, tmp_path, "a.npz", "clamp", seed=1)
    random_clip(char, tmp_path, "b.npz", "wrap", num_frames=7, seed=2)
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: a.npz\n    weight: 3.0\n"
                                             "  - file: b.npz\n    weight: 1\n")
    lib = MotionLib(ds, char, "cpu")
    assert lib.num_motions == 2
    torch.manual_seed(0)
    ids = lib.sample_motions(20000)
    assert ids.dtype == torch.long and ids.shape == (20000,)
    assert abs((ids == 0).float().mean().item() - 0.75) < 0.02
    assert set(ids.tolist()) == {0, 1}

    both = torch.tensor([0, 1])
    np.testing.assert_allclose(lib.get_motion_length(both).numpy(), [11 / 30.0, 6 / 30.0], rtol=1e-6)
    assert lib.get_motion_loop_mode(both).tolist() == [LOOP_CLAMP, LOOP_WRAP]
    np.testing.assert_array_equal(lib.get_motion(1).frames, Motion.load(str(tmp_path / "b.npz")).frames)


def test_frames_of_later_clips_in_a_dataset_are_their_own(char, tmp_path):
    _, pos_a, _, _ = random_clip(char, tmp_path, "a.npz", "clamp", seed=1)
    _, pos_b, _, _ = random_clip(char, tmp_path, "b.npz", "clamp", num_frames=7, seed=2)
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: a.npz\n  - file: b.npz\n")
    lib = MotionLib(ds, char, "cpu")
    ids = torch.tensor([0, 1, 1, 1])
    times = torch.tensor([11 / 30.0, 0.0, 3 / 30.0, 6 / 30.0])
    pos = lib.calc_motion_frame(ids, times)[0]
    np.testing.assert_allclose(pos.numpy(), np.stack([pos_a[-1], pos_b[0], pos_b[3], pos_b[6]]), atol=1e-5)


def test_sample_time_is_uniform_within_the_clip(char, tmp_path):
    path, _, _, _ = random_clip(char, tmp_path, "a.npz", "clamp", num_frames=31)  # 1 s
    lib = MotionLib(path, char, "cpu")
    torch.manual_seed(0)
    ids = torch.zeros(20000, dtype=torch.long)
    t = lib.sample_time(ids)
    assert t.min() >= 0.0 and t.max() <= 1.0 + 1e-6
    assert abs(t.mean().item() - 0.5) < 0.01 and abs(t.var().item() - 1 / 12) < 0.005
    t = lib.sample_time(ids, truncate_time=0.25)
    assert t.max() <= 0.75 + 1e-6 and abs(t.mean().item() - 0.375) < 0.01


def test_dataset_with_unknown_key_names_the_file_and_key(char, tmp_path):
    random_clip(char, tmp_path, "a.npz", "clamp")
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: a.npz\n    speed: 2.0\n")
    with pytest.raises(MimicKitError, match=r"ds\.yaml.*speed"):
        MotionLib(ds, char, "cpu")
    ds = write_dataset(tmp_path / "ds2.yaml", "motions:\n  - file: a.npz\nclips: []\n")
    with pytest.raises(MimicKitError, match=r"ds2\.yaml.*'clips'"):
        MotionLib(ds, char, "cpu")


def test_dataset_with_non_positive_weight_or_no_clips_is_refused(char, tmp_path):
    random_clip(char, tmp_path, "a.npz", "clamp")
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: a.npz\n    weight: 0\n")
    with pytest.raises(MimicKitError, match=r"ds\.yaml.*weight must be > 0"):
        MotionLib(ds, char, "cpu")
    ds = write_dataset(tmp_path / "empty.yaml", "motions: []\n")
    with pytest.raises(MimicKitError, match=r"empty\.yaml.*at least one clip"):
        MotionLib(ds, char, "cpu")


def test_dataset_with_missing_clip_names_the_clip_and_the_dataset(char, tmp_path):
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: clips/missing_walk.npz\n")
    with pytest.raises(MimicKitError) as err:
        MotionLib(ds, char, "cpu")
    assert "clips/missing_walk.npz" in str(err.value) and ds in str(err.value)


def test_dataset_clip_with_mismatched_dofs_names_clip_character_and_dataset(char, tmp_path):
    names = list(char.dof_names)
    names[3] = "tail_x"
    root_pos, root_rotvec, joint_dof = still_clip(char, 3)
    clip = write_clip(tmp_path / "alien.npz", char, 30.0, "clamp", root_pos, root_rotvec, joint_dof, names)
    ds = write_dataset(tmp_path / "ds.yaml", "motions:\n  - file: {}\n".format(clip))
    with pytest.raises(MimicKitError) as err:
        MotionLib(ds, char, "cpu")
    msg = str(err.value)
    assert clip in msg and HUMANOID in msg and ds in msg and "tail_x" in msg
    with pytest.raises(MimicKitError, match="alien.npz"):
        MotionLib(clip, char, "cpu")


def test_missing_motion_file_is_a_user_error(char, tmp_path):
    with pytest.raises(MimicKitError, match="nothing.npz"):
        MotionLib(str(tmp_path / "nothing.npz"), char, "cpu")


def test_body_frame_lookup_matches_fk_of_the_interpolated_pose_across_wrap_cycles(char, tmp_path):
    """Precomputed body states, interpolated, against FK of calc_motion_frame's pose:
    exact at frame times, within interpolation error (5 mm, 0.02 rad) between frames."""
    fps, period = 30.0, 1.0
    times = np.arange(int(period * fps) + 1) / fps
    root_pos, _, joint_dof = still_clip(char, len(times))
    yaw = 0.8 * times
    root_pos[:, 0] = np.sin(yaw)
    root_pos[:, 1] = 1 - np.cos(yaw)
    root_rotvec = np.stack([0 * yaw, 0 * yaw, yaw], axis=1)
    j, d = joint_of(char, "right_thigh")
    joint_dof[:, d:d + 3] = np.stack([0.3 * np.sin(2 * np.pi * times), 0 * times, 0.5 * np.sin(2 * np.pi * times)], 1)
    lib = MotionLib(write_clip(tmp_path / "turn.npz", char, fps, "wrap", root_pos, root_rotvec, joint_dof), char, "cpu")
    t = torch.tensor([0.0, 0.5, 1.0 + 2 / 30, 0.51, 1.77, 3.345, -0.4])
    ids = torch.zeros(len(t), dtype=torch.long)
    root_p, root_r, _, _, joint_rot, _ = lib.calc_motion_frame(ids, t)
    ref_pos, ref_rot = char.forward_kinematics(root_p.double(), root_r.double(), joint_rot.double())
    body_pos, body_rot = lib.calc_body_frame(ids, t)
    at_frames = slice(0, 3)
    torch.testing.assert_close(body_pos[at_frames].double(), ref_pos[at_frames], atol=1e-5, rtol=0)
    assert (body_pos.double() - ref_pos).norm(dim=-1).max() < 5e-3
    assert tu.quat_diff_angle(body_rot.double(), ref_rot).max() < 0.02


def test_save_dataset_round_trips_through_load_dataset_and_refuses_bad_weights(tmp_path):
    clip = tmp_path / "a.npz"
    clip.write_bytes(b"")
    path = str(tmp_path / "sub" / "ds.yaml")
    save_dataset(path, [str(clip), str(clip)], [2.0, 0.25], "# two entries\n")
    assert load_dataset(path) == ([str(clip), str(clip)], [2.0, 0.25])
    assert open(path).readline() == "# two entries\n"
    with pytest.raises(MimicKitError, match=r"motions\[1\]: weight must be > 0, got 0.0"):
        save_dataset(path, [str(clip), str(clip)], [1.0, 0.0])
    with pytest.raises(MimicKitError, match="2 clips but 1 weights"):
        save_dataset(path, [str(clip), str(clip)], [1.0])
    assert load_dataset(path)[1] == [2.0, 0.25]  # the refused writes left the file as it was

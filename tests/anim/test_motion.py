"""The native clip file: round trips, validation errors and refusal of unsafe files."""
import numpy as np
import pytest

from mimickit.anim.motion import ROOT_COLUMNS, Motion
from mimickit.util.errors import MimicKitError

DOF_NAMES = ["torso_x", "torso_z", "torso_y", "right_elbow"]


def make_frames(num_frames=5, seed=0):
    return np.random.default_rng(seed).normal(size=(num_frames, 6 + len(DOF_NAMES))).astype(np.float32)


def test_save_then_load_returns_the_same_clip(tmp_path):
    frames = make_frames()
    extras = {"root_vel_cmd": np.array([1.3, 0.0], dtype=np.float32), "phase_count": np.array(7)}
    path = str(tmp_path / "sub" / "walk.npz")
    Motion(24.0, "wrap", frames, DOF_NAMES, extras).save(path)
    clip = Motion.load(path)
    assert clip.fps == 24.0 and clip.loop_mode == "wrap" and clip.dof_names == DOF_NAMES
    np.testing.assert_array_equal(clip.frames, frames)
    assert sorted(clip.extras) == ["phase_count", "root_vel_cmd"]
    np.testing.assert_array_equal(clip.extras["root_vel_cmd"], extras["root_vel_cmd"])
    assert clip.extras["phase_count"] == 7
    assert clip.num_frames == 5 and clip.num_dofs == 4
    assert clip.length == pytest.approx(4 / 24.0)
    assert clip.column_names() == ROOT_COLUMNS + DOF_NAMES


def test_save_leaves_no_temporary_file_and_overwrites(tmp_path):
    path = tmp_path / "c.npz"
    Motion(30.0, "clamp", make_frames(seed=1), DOF_NAMES).save(str(path))
    Motion(30.0, "clamp", make_frames(seed=2), DOF_NAMES).save(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    np.testing.assert_array_equal(Motion.load(str(path)).frames, make_frames(seed=2))


def test_nan_frame_error_names_the_frame_and_column():
    frames = make_frames()
    frames[3, 7] = np.nan
    with pytest.raises(MimicKitError, match=r"frame 3 column 7 \(torso_z\)"):
        Motion(30.0, "clamp", frames, DOF_NAMES)
    frames = make_frames()
    frames[1, 2] = np.inf
    with pytest.raises(MimicKitError, match=r"frame 1 column 2 \(root_pos_z\)"):
        Motion(30.0, "clamp", frames, DOF_NAMES)


def test_bad_loop_mode_is_refused():
    with pytest.raises(MimicKitError, match="loop_mode.*'bounce'"):
        Motion(30.0, "bounce", make_frames(), DOF_NAMES)


def test_non_positive_fps_is_refused():
    with pytest.raises(MimicKitError, match="fps"):
        Motion(0.0, "clamp", make_frames(), DOF_NAMES)


def test_a_clip_needs_at_least_two_frames():
    with pytest.raises(MimicKitError, match="at least 2 frames"):
        Motion(30.0, "clamp", make_frames(num_frames=1), DOF_NAMES)


def test_frame_width_must_match_the_dof_names():
    with pytest.raises(MimicKitError, match=r"\[num_frames, 10\].*\[5, 9\]"):
        Motion(30.0, "clamp", make_frames()[:, :9], DOF_NAMES)


def test_dof_name_mismatch_names_both_files_and_the_dofs():
    clip = Motion(30.0, "clamp", make_frames(), DOF_NAMES)
    clip.check_dof_names(DOF_NAMES, "char.xml", source="walk.npz")  # the same names pass
    with pytest.raises(MimicKitError) as err:
        clip.check_dof_names(DOF_NAMES[:3] + ["left_elbow"], "char.xml", source="walk.npz")
    msg = str(err.value)
    assert "walk.npz" in msg and "char.xml" in msg and "left_elbow" in msg and "right_elbow" in msg
    with pytest.raises(MimicKitError, match="different order"):
        clip.check_dof_names(DOF_NAMES[::-1], "char.xml", source="walk.npz")


def test_a_file_that_is_not_npz_is_a_user_error(tmp_path):
    path = tmp_path / "walk.npz"
    path.write_text("frame,root_x\n0,1.0\n")
    with pytest.raises(MimicKitError, match="walk.npz"):
        Motion.load(str(path))


def test_a_plain_npy_array_is_a_user_error(tmp_path):
    path = tmp_path / "walk.npz"
    with open(path, "wb") as f:
        np.save(f, make_frames())
    with pytest.raises(MimicKitError, match="walk.npz"):
        Motion.load(str(path))


def test_an_npz_missing_a_key_is_a_user_error(tmp_path):
    path = tmp_path / "walk.npz"
    np.savez(path, fps=np.array(30.0), frames=make_frames(), dof_names=np.array(DOF_NAMES))
    with pytest.raises(MimicKitError, match="walk.npz.*'loop_mode'"):
        Motion.load(str(path))


def test_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(MimicKitError, match="nothing.npz"):
        Motion.load(str(tmp_path / "nothing.npz"))


def test_saving_the_same_clip_twice_gives_identical_bytes(tmp_path):
    motion = Motion(30.0, "wrap", make_frames(), DOF_NAMES)
    motion.save(str(tmp_path / "a.npz"))
    motion.save(str(tmp_path / "b.npz"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).bytes(2000),  # no zip or npy signature
    b"",
    b"PK\x03\x04" + np.random.default_rng(1).bytes(2000),  # a zip signature, then garbage
], ids=["random_bytes", "empty", "zip_signature_then_garbage"])
def test_garbage_bytes_are_reported_as_a_corrupt_file_naming_it(tmp_path, content):
    path = tmp_path / "walk.npz"
    path.write_bytes(content)
    with pytest.raises(MimicKitError) as error:
        Motion.load(str(path))
    message = str(error.value)
    assert "walk.npz" in message and "corrupt" in message
    assert "pickle" not in message and "object" not in message


def test_a_truncated_clip_is_reported_as_a_corrupt_file_naming_it(tmp_path):
    path = tmp_path / "walk.npz"
    Motion(30.0, "clamp", make_frames(50), DOF_NAMES).save(str(path))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(MimicKitError, match="walk.npz.*corrupt"):
        Motion.load(str(path))


def test_a_clip_with_a_damaged_member_is_reported_as_a_corrupt_file_naming_it(tmp_path):
    path = tmp_path / "walk.npz"
    Motion(30.0, "clamp", make_frames(50), DOF_NAMES).save(str(path))
    data = bytearray(path.read_bytes())
    start = data.index(b"frames.npy") + len("frames.npy") + 40  # inside the member's compressed bytes
    data[start:start + 32] = bytes(32)
    path.write_bytes(bytes(data))
    with pytest.raises(MimicKitError, match="walk.npz.*corrupt"):
        Motion.load(str(path))


def test_an_npz_holding_pickled_objects_says_so(tmp_path):
    path = tmp_path / "walk.npz"
    np.savez(path, fps=np.array(30.0), loop_mode=np.array("clamp"), frames=make_frames(),
             dof_names=np.array(DOF_NAMES, dtype=object))
    with pytest.raises(MimicKitError, match="walk.npz.*(object|pickle)") as error:
        Motion.load(str(path))
    assert "corrupt" not in str(error.value)

"""AMP_for_hardware clips (tools/motion_import/amp_hardware.py, joint_space.py) onto our quadruped.

References: the values written into a synthetic clip here, scipy rotations, and for the real
clips (``../shared/data``, skipped when absent) the toe positions AMP_for_hardware stored in
them, compared with MuJoCo's own kinematics of the imported frames on quadruped.xml.
"""
import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mimickit.anim.motion import Motion
from mimickit.util.errors import MimicKitError
from tools.import_motion import main as import_main
from tools.motion_import import Importer, detect_format
from tools.motion_import.amp_hardware import A1_TRUNK_COM

REPO = Path(__file__).parents[2]
QUADRUPED = str(REPO / "data" / "assets" / "quadruped" / "quadruped.xml")
HUMANOID = str(REPO / "data" / "assets" / "humanoid" / "humanoid.xml")
DATA = REPO / ".." / "shared" / "data"
CLIPS = DATA / "amp_for_hardware" / "mocap_motions"
needs_clips = pytest.mark.skipif(not CLIPS.is_dir(), reason="AMP_for_hardware clips ../shared/data are absent")
FILE_LEGS = ["FR", "FL", "RR", "RL"]
# per leg: hip, thigh, calf (rad), distinct for every joint
LEG_ANGLES = {"FR": (0.11, 0.61, -1.21), "FL": (-0.12, 0.72, -1.32), "RR": (0.13, 0.83, -1.43),
              "RL": (-0.14, 0.94, -1.54)}
TOE_BOUND = 0.002  # m: our robot has the A1's dimensions; the file keeps 5 decimals (measured ~9e-6 m)


def synthetic_frames(num_frames=5):
    """[T, 61] frames: a turning, rising root and per-leg angles that grow by 0.01 rad per frame."""
    t = np.arange(num_frames)
    frames = np.zeros((num_frames, 61))
    frames[:, 0:3] = np.stack([0.05 * t, 0.01 * t, 0.30 + 0.002 * t], axis=1)
    frames[:, 3:7] = Rotation.from_euler("xyz", np.stack([0.02 * t, -0.03 * t, 0.1 * t], axis=1)).as_quat()
    for i, leg in enumerate(FILE_LEGS):
        frames[:, 7 + 3 * i:10 + 3 * i] = np.array(LEG_ANGLES[leg]) + 0.01 * t[:, None]
    frames[:, 19:31] = file_toes(frames[:, 7:19])
    return frames


def file_toes(angles):
    """The toe positions [T, 12] an AMP_for_hardware file states for joint angles [T, 12] (file
    order): MuJoCo's foot origins on quadruped.xml in the trunk frame, less the A1 trunk's
    centre of mass."""
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    data = mujoco.MjData(model)
    names = ["{}_{}_joint".format(leg, j) for leg in FILE_LEGS for j in ("hip", "thigh", "calf")]
    out = []
    for row in angles:
        data.qpos[:] = model.qpos0
        for name, angle in zip(names, row):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
        mujoco.mj_kinematics(model, data)
        trunk = data.xpos[model.body("trunk").id]
        out.append(np.concatenate([data.xpos[model.body(leg + "_foot").id] - trunk - A1_TRUNK_COM
                                   for leg in FILE_LEGS]))
    return np.array(out)


def write_clip(path, frames, **keys):
    data = {"LoopMode": "Wrap", "FrameDuration": 0.025, "EnableCycleOffsetPosition": True,
            "EnableCycleOffsetRotation": True, "MotionWeight": 0.75}
    data.update(keys)
    data["Frames"] = np.asarray(frames).tolist()
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="module")
def importer():
    return Importer(QUADRUPED)


def test_synthetic_clip_lands_in_our_dofs_by_name(importer, tmp_path):
    frames = synthetic_frames()
    path = write_clip(tmp_path / "clip.txt", frames)
    assert detect_format(path) == "amp_hardware"
    result = importer.import_file(path)
    motion = result.motion
    assert motion.dof_names[:3] == ["FL_hip_joint", "FL_thigh_joint", "FL_calf_joint"]  # our order differs
    t = np.arange(len(frames))
    for leg, angles in LEG_ANGLES.items():
        for joint, angle in zip(("hip", "thigh", "calf"), angles):
            column = 6 + motion.dof_names.index("{}_{}_joint".format(leg, joint))
            np.testing.assert_allclose(motion.frames[:, column], angle + 0.01 * t, atol=1e-6)
    assert motion.fps == pytest.approx(40.0) and motion.loop_mode == "wrap"
    assert float(motion.extras["motion_weight"]) == 0.75
    # root: rotation copied (exp map = scipy rotation vector), position moved from the trunk's
    # centre of mass to the trunk frame, scale 1 (same leg length), one ground shift in z
    rot = Rotation.from_quat(frames[:, 3:7])
    np.testing.assert_allclose(motion.frames[:, 3:6], rot.as_rotvec(), atol=1e-6)
    trunk = frames[:, 0:3] - rot.apply(A1_TRUNK_COM)
    assert result.scale == 1.0
    np.testing.assert_allclose(motion.frames[:, 0:2], trunk[:, 0:2], atol=1e-6)
    np.testing.assert_allclose(motion.frames[:, 2] - trunk[:, 2], result.ground_shift, atol=1e-6)
    assert result.foot_heights.min() == pytest.approx(0.0, abs=1e-6)
    out = tmp_path / "clip.npz"
    motion.save(str(out))
    assert float(Motion.load(str(out)).extras["motion_weight"]) == 0.75


def test_deepmimic_json_is_not_taken_for_amp_hardware(tmp_path):
    path = tmp_path / "dm.txt"
    path.write_text(json.dumps({"Loop": "wrap", "Frames": [[0.03] + [0.0] * 60, [0.0] * 61]}))
    assert detect_format(str(path)) == "deepmimic"
    no_ext = tmp_path / "clip"
    write_clip(no_ext, synthetic_frames())
    assert detect_format(str(no_ext)) == "amp_hardware"


def test_clamp_loop_mode(importer, tmp_path):
    assert importer.import_file(write_clip(tmp_path / "c.txt", synthetic_frames(), LoopMode="Clamp")) \
        .motion.loop_mode == "clamp"


def test_wrong_frame_width_is_an_error(importer, tmp_path):
    frames = synthetic_frames()[:, :60]
    with pytest.raises(MimicKitError, match="frame 0 has 60 values; expected 61"):
        importer.import_file(write_clip(tmp_path / "w.txt", frames))


def test_missing_joints_are_errors_naming_joints_and_character(tmp_path):
    path = write_clip(tmp_path / "c.txt", synthetic_frames())
    with pytest.raises(MimicKitError, match=r"FR_hip_joint.*humanoid\.xml"):
        Importer(HUMANOID).import_file(path, fmt="amp_hardware")
    dropped = tmp_path / "drop.yaml"
    dropped.write_text("RL_calf_joint: null\n")
    with pytest.raises(MimicKitError, match=r"RL_calf_joint of .*quadruped\.xml"):
        Importer(QUADRUPED).import_file(path, joint_map_file=str(dropped))
    bad = tmp_path / "bad.yaml"
    bad.write_text("FR_hip_joint: FR_knee\n")
    with pytest.raises(MimicKitError, match="no dof 'FR_knee'"):
        Importer(QUADRUPED).import_file(path, joint_map_file=str(bad))


def test_joint_map_overrides_the_name_table(importer, tmp_path):
    path = write_clip(tmp_path / "c.txt", synthetic_frames())
    swap = tmp_path / "swap.yaml"
    swap.write_text("".join("FR_{0}_joint: FL_{0}_joint\nFL_{0}_joint: FR_{0}_joint\n".format(j)
                            for j in ("hip", "thigh", "calf")))
    motion = importer.import_file(path, joint_map_file=str(swap), point_tol=float("inf")).motion  # toes swapped
    np.testing.assert_allclose(motion.frames[0, 6 + motion.dof_names.index("FL_thigh_joint")], LEG_ANGLES["FR"][1],
                               atol=1e-6)


def test_floor_levelling_on_is_refused(importer, tmp_path):
    path = write_clip(tmp_path / "c.txt", synthetic_frames())
    with pytest.raises(MimicKitError, match="floor levelling"):
        importer.import_file(path, level_floor_mode="on")


def test_command_line_reports_the_toe_error(tmp_path, capsys):
    path = write_clip(tmp_path / "c.txt", synthetic_frames())
    assert import_main(["--char", QUADRUPED, "--out", str(tmp_path / "c.npz"), path]) == 0
    assert "toe error vs source" in capsys.readouterr().out
    assert (tmp_path / "c.npz").is_file()


def test_command_line_writes_a_dataset_with_the_files_motion_weights(tmp_path, capsys, monkeypatch):
    """--dataset lists the clips written (paths as given, here relative to the cwd) with each
    file's MotionWeight; a clip that fails is left out."""
    from mimickit.anim.motion_lib import load_dataset
    monkeypatch.chdir(tmp_path)
    heavy = write_clip(tmp_path / "heavy.txt", synthetic_frames(), MotionWeight=3.0)
    light = write_clip(tmp_path / "light.txt", synthetic_frames(), MotionWeight=0.5)
    bad = tmp_path / "bad.txt"
    bad.write_text("{not json")
    rc = import_main(["--char", QUADRUPED, "--out_dir", "clips", "--dataset", "clips/dataset.yaml", heavy, str(bad),
                      light])
    assert rc == 2 and "clips/dataset.yaml: 2 clips" in capsys.readouterr().out
    files, weights = load_dataset("clips/dataset.yaml")
    assert files == ["clips/heavy.npz", "clips/light.npz"] and weights == [3.0, 0.5]


def mujoco_toes_in_trunk_frame(frames, dof_names):
    """Foot origins relative to the trunk, in the trunk frame ``[T, 4 (FR, FL, RR, RL), 3]``, by
    MuJoCo on quadruped.xml with the imported frames as qpos."""
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    data = mujoco.MjData(model)
    out = []
    for frame in frames:
        data.qpos[:3] = frame[:3]
        data.qpos[3:7] = np.roll(Rotation.from_rotvec(frame[3:6]).as_quat(), 1)  # w, x, y, z
        for name, angle in zip(dof_names, frame[6:]):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
        mujoco.mj_kinematics(model, data)
        trunk = model.body("trunk").id
        rot = data.xmat[trunk].reshape(3, 3)
        out.append([rot.T @ (data.xpos[model.body(leg + "_foot").id] - data.xpos[trunk]) for leg in FILE_LEGS])
    return np.array(out)


@needs_clips
@pytest.mark.parametrize("name", ["trot0", "pace0", "leftturn0"])
def test_real_clips_import_with_toes_where_the_file_puts_them(importer, name):
    path = CLIPS / (name + ".txt")
    raw = json.loads(path.read_text())
    frames = np.array(raw["Frames"])
    result = importer.import_file(str(path))
    motion = result.motion
    assert detect_format(str(path)) == "amp_hardware"
    assert motion.num_frames == len(frames)
    assert motion.fps == pytest.approx(1.0 / raw["FrameDuration"]) and motion.loop_mode == "wrap"
    assert float(motion.extras["motion_weight"]) == raw["MotionWeight"]
    assert result.point_error < TOE_BOUND
    toes = mujoco_toes_in_trunk_frame(motion.frames.astype(np.float64), motion.dof_names)
    file_toes = frames[:, 19:31].reshape(-1, 4, 3) + A1_TRUNK_COM
    assert np.abs(toes - file_toes).max() < TOE_BOUND
    root_z = motion.frames[:, 2]
    assert 0.2 < root_z.min() and root_z.max() < 0.35
    assert result.foot_heights.min() == pytest.approx(0.0, abs=1e-6)


@needs_clips
def test_a_swapped_leg_shows_in_the_toe_error(importer, tmp_path):
    """A joint map swapping the front legs of a clip stored in the usual order: refused (the
    toes are 0.1 m off or more), accepted with the tolerance raised, the error reported."""
    swap = tmp_path / "swap.yaml"
    swap.write_text("".join("FR_{0}_joint: FL_{0}_joint\nFL_{0}_joint: FR_{0}_joint\n".format(j)
                            for j in ("hip", "thigh", "calf")))
    with pytest.raises(MimicKitError, match=r"trot0\.txt: toes \d+ mm from where the file puts them"):
        importer.import_file(str(CLIPS / "trot0.txt"), joint_map_file=str(swap))
    result = importer.import_file(str(CLIPS / "trot0.txt"), joint_map_file=str(swap), point_tol=float("inf"))
    assert result.point_error > 0.1


def stored_in_order(frames, order):
    """AMP_for_hardware frames ``[T, 61]`` (legs FR, FL, RR, RL) with their per-leg blocks (joint
    angles, toe positions, joint and toe velocities) rewritten in leg order ``order``."""
    out = frames.copy()
    for start, width in ((7, 3), (19, 3), (37, 3), (49, 3)):
        for i, leg in enumerate(order):
            j = FILE_LEGS.index(leg)
            out[:, start + width * i:start + width * (i + 1)] = frames[:, start + width * j:start + width * (j + 1)]
    return out


@needs_clips
def test_legs_stored_in_another_order_are_refused_naming_the_order_that_fits(importer, tmp_path, capsys):
    """trot0 rewritten with its legs stored FL, FR, RL, RR: read as FR, FL, RR, RL the toes are
    over 0.2 m off, so the import fails (exit 2) naming that order; with --leg_order it gives
    the original clip's import, toes within 2 mm (MuJoCo)."""
    raw = json.loads((CLIPS / "trot0.txt").read_text())
    frames = np.array(raw["Frames"])
    order = ["FL", "FR", "RL", "RR"]
    path = write_clip(tmp_path / "trot_fl_fr.txt", stored_in_order(frames, order), LoopMode=raw["LoopMode"],
                      FrameDuration=raw["FrameDuration"], MotionWeight=raw["MotionWeight"])
    with pytest.raises(MimicKitError) as e:
        importer.import_file(path)
    message = str(e.value)
    assert "the legs look stored FL, FR, RL, RR" in message and "pass --leg_order FL,FR,RL,RR" in message
    assert int(message.split("toes ")[1].split(" mm")[0]) > 200
    out = tmp_path / "trot.npz"
    assert import_main(["--char", QUADRUPED, "--out", str(out), path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--leg_order FL,FR,RL,RR" in err and not out.exists()
    assert import_main(["--char", QUADRUPED, "--out", str(out), "--leg_order", "FL,FR,RL,RR", path]) == 0
    motion = Motion.load(str(out))
    np.testing.assert_allclose(motion.frames, importer.import_file(str(CLIPS / "trot0.txt")).motion.frames,
                               atol=1e-6)
    toes = mujoco_toes_in_trunk_frame(motion.frames.astype(np.float64), motion.dof_names)
    assert np.abs(toes - (frames[:, 19:31].reshape(-1, 4, 3) + A1_TRUNK_COM)).max() < TOE_BOUND
    assert import_main(["--char", QUADRUPED, "--out", str(out), "--leg_order", "FL,FR,RL", path]) == 2
    assert "--leg_order must name each of FR, FL, RR, RL once" in capsys.readouterr().err


@needs_clips
def test_the_toe_check_applies_the_joint_map(importer, tmp_path):
    """The same file with a joint map that renames its blocks to the legs they hold instead of
    --leg_order: the toes are compared under the map, so it imports, toes within 2 mm."""
    frames = np.array(json.loads((CLIPS / "trot0.txt").read_text())["Frames"])
    path = write_clip(tmp_path / "trot_fl_fr.txt", stored_in_order(frames, ["FL", "FR", "RL", "RR"]))
    jmap = tmp_path / "legs.yaml"
    jmap.write_text("".join("{0}_{2}_joint: {1}_{2}_joint\n".format(a, b, j) for a, b in
                            (("FR", "FL"), ("FL", "FR"), ("RR", "RL"), ("RL", "RR")) for j in ("hip", "thigh", "calf")))
    result = importer.import_file(path, joint_map_file=str(jmap))
    assert result.point_error < TOE_BOUND
    toes = mujoco_toes_in_trunk_frame(result.motion.frames.astype(np.float64), result.motion.dof_names)
    assert np.abs(toes - (frames[:, 19:31].reshape(-1, 4, 3) + A1_TRUNK_COM)).max() < TOE_BOUND


def test_leg_order_is_refused_for_other_formats(tmp_path):
    frames = np.zeros((3, 44))
    frames[:, 4] = 1.0
    path = tmp_path / "dm.txt"
    path.write_text(json.dumps({"Loop": "wrap", "Frames": frames.tolist()}))
    with pytest.raises(MimicKitError, match="--leg_order is for format amp_hardware, not deepmimic"):
        Importer(HUMANOID).import_file(str(path), leg_order=("FL", "FR", "RL", "RR"))


def test_an_angle_beyond_our_range_is_refused_or_clamped(importer, tmp_path):
    """A calf 2.4 rad beyond our range (another robot's clip): refused naming the file, dof,
    frame, value and the MJCF's range; clamped to that range with clamp_joints."""
    model = mujoco.MjModel.from_xml_path(QUADRUPED)
    low, high = model.joint("RL_calf_joint").range
    frames = synthetic_frames()
    frames[2:, 7 + 3 * FILE_LEGS.index("RL") + 2] = low - 2.4
    frames[:, 19:31] = file_toes(frames[:, 7:19])  # the file's toes agree with its angles
    path = write_clip(tmp_path / "far.txt", frames)
    with pytest.raises(MimicKitError, match=r"far\.txt: dof RL_calf_joint is {:.3f} rad at frame 2, outside its "
                       r"range \[{:.3f}, {:.3f}\] rad".format(low - 2.4, low, high)):
        importer.import_file(path)
    result = importer.import_file(path, clamp_joints=True)
    column = 6 + result.motion.dof_names.index("RL_calf_joint")
    np.testing.assert_allclose(result.motion.frames[2:, column], low, atol=1e-6)
    assert any(n.startswith("clamped to the joint ranges: RL_calf_joint on 3 frames (up to 137.5 deg)")
               for n in result.notes)

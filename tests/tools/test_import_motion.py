"""Motion importers (tools/motion_import) on the real DeepMimic and IsaacGymEnvs AMP clips.

References are computed here independently of the importer: source forward kinematics with
scipy from the source files' own offsets and quaternions, foot boxes from their corners,
MimicKit input built with scipy from an AMP clip. Tests of the retargeting and the floor
levelling import with the contact cleanup off (``imported_raw``), since the cleanup moves the
legs on purpose. Tests that need ../shared/data skip when it is absent.
"""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.util import torch_util as tu
from mimickit.util.errors import MimicKitError
from tools.motion_import import Importer, fix_contacts, foot_heights, load_npy_object, load_pickle
from tools.motion_import.contacts import flatten_tilt, import_mink, kept_tilt
from tools.motion_import.ground import StanceContacts, fit_floor, geom_lowest_points, geom_lowest_z, stance_contacts

REPO = Path(__file__).parents[2]
HUMANOID = str(REPO / "data" / "assets" / "humanoid" / "humanoid.xml")
DATA = REPO / ".." / "shared" / "data"
DM_MOTIONS = DATA / "deepmimic" / "motions"
DM_CHAR = DATA / "deepmimic" / "characters" / "humanoid3d.txt"
AMP_MOTIONS = DATA / "isaacgymenvs_amp" / "motions"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="reference data ../shared/data is absent")
needs_mink = pytest.mark.skipif(import_mink() is None, reason="the contact cleanup needs mink: pip install mink")

# Y-up world -> Z-up world: x -> x, y -> z, z -> -y.
R_YZ = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
ALL_CLIPS = sorted(DM_MOTIONS.glob("*.txt")) + sorted(AMP_MOTIONS.glob("*.npy")) if DATA.is_dir() else []
WALKS = ["humanoid3d_walk.txt", "amp_humanoid_walk.npy"]


@pytest.fixture(scope="module")
def importer():
    return Importer(HUMANOID)


@pytest.fixture(scope="module")
def char():
    return KinCharModel(HUMANOID)


@pytest.fixture(scope="module")
def imported(importer):
    return {p.name: importer.import_file(str(p), clamp_joints=True) for p in ALL_CLIPS}


@pytest.fixture(scope="module")
def imported_raw(importer):
    """Every reference clip imported with the contact cleanup off."""
    return {p.name: importer.import_file(str(p), contact_fix_mode="off", clamp_joints=True) for p in ALL_CLIPS}


def body_positions(char, motion):
    """Our FK of a native clip: [T, num_bodies, 3] m."""
    f = torch.as_tensor(motion.frames)
    pos, _ = char.forward_kinematics(f[:, :3], tu.exp_map_to_quat(f[:, 3:6]), char.joint_dof_to_joint_rot(f[:, 6:]))
    return pos.double().numpy()


def deepmimic_source_fk(motion_file):
    """Joint positions [T, J, 3] (Y-up, m) of a DeepMimic clip, with scipy, and the joint names."""
    joints = json.loads(DM_CHAR.read_text())["Skeleton"]["Joints"]
    frames = np.array(json.loads(Path(motion_file).read_text())["Frames"])
    num = len(frames)
    pos = [frames[:, 1:4]]
    rot = [Rotation.from_quat(frames[:, 4:8], scalar_first=True)]
    col = 8
    for j in joints[1:]:
        if j["Type"] == "spherical":
            local = Rotation.from_quat(frames[:, col:col + 4], scalar_first=True)
            col += 4
        elif j["Type"] == "revolute":
            local = Rotation.from_rotvec(frames[:, col:col + 1] * np.array([[0.0, 0.0, 1.0]]))
            col += 1
        else:
            local = Rotation.identity(num)
        p = j["Parent"]
        pos.append(pos[p] + rot[p].apply([j["AttachX"], j["AttachY"], j["AttachZ"]]))
        rot.append(rot[p] * local)
    return np.stack(pos, axis=1), [j["Name"] for j in joints]


def angle_deg(a, b):
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# ---------------------------------------------------------------- every clip imports
@needs_data
@pytest.mark.parametrize("name", [p.name for p in ALL_CLIPS])
def test_every_reference_clip_imports_with_our_dofs(imported, char, name):
    r = imported[name]
    assert r.motion.dof_names == char.dof_names
    assert r.motion.num_frames >= 20
    assert min(abs(r.motion.fps - 30.0), abs(r.motion.fps - 60.0)) < 0.1  # these clips are 30 or 60 fps
    assert np.isfinite(r.motion.frames).all()


@needs_data
@pytest.mark.parametrize("name", WALKS)
def test_walk_root_stays_at_human_height(imported, name):
    assert 0.75 <= imported[name].motion.frames[:, 2].mean() <= 1.0


@needs_data
def test_deepmimic_walk_keeps_a_foot_within_3cm_of_the_floor_at_every_frame(imported):
    heights = foot_heights(HUMANOID, imported["humanoid3d_walk.txt"].motion)
    assert heights.min() > -0.03 and heights.max() < 0.03


def amp_source_lowest_foot(motion_file):
    """Lowest foot point [T] (m) of an AMP clip with amp_humanoid's own foot boxes (scipy FK)."""
    d = np.load(motion_file, allow_pickle=True).item()  # trusted reference data, test only
    rot = d["rotation"]["arr"]
    tree = d["skeleton_tree"]
    parents = tree["parent_indices"]["arr"]
    offsets = tree["local_translation"]["arr"]
    names = tree["node_names"]
    pos = [d["root_translation"]["arr"]]
    world = [Rotation.from_quat(rot[:, 0])]
    for b in range(1, len(names)):
        pos.append(pos[parents[b]] + world[parents[b]].apply(offsets[b]))
        world.append(world[parents[b]] * Rotation.from_quat(rot[:, b]))
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) \
        * [0.0885, 0.045, 0.0275] + [0.045, 0.0, -0.0225]  # amp_humanoid.xml foot box
    lows = []
    for foot in ("right_foot", "left_foot"):
        b = names.index(foot)
        pts = pos[b][:, None] + np.stack([world[b].apply(c) for c in corners], axis=1)
        lows.append(pts[..., 2].min(axis=1))
    return np.min(lows, axis=0)


@needs_data
def test_amp_walk_with_levelling_off_keeps_the_source_contact_profile(importer):
    """Without levelling, the AMP walk's lowest-foot curve is the source's own (amp_humanoid's
    feet, scaled) up to one constant, within 1.5 cm at every frame, with its lowest point on
    z = 0; the source's mocap floor rises over 5 cm along the walk."""
    r = importer.import_file(str(AMP_MOTIONS / "amp_humanoid_walk.npy"), level_floor_mode="off",
                             contact_fix_mode="off")
    ours = foot_heights(HUMANOID, r.motion)
    source = amp_source_lowest_foot(AMP_MOTIONS / "amp_humanoid_walk.npy") * r.scale
    assert np.ptp(ours - source) < 0.015
    assert abs(ours.min()) < 1e-4
    assert np.ptp(source) > 0.05
    assert not r.floor_levelled and r.floor_fit is None


@needs_data
def test_amp_walk_is_levelled_by_default_to_the_source_profile_minus_the_fitted_tilt(imported_raw):
    """Default levelling (contact cleanup off): the fitted tilt is removed from the root z, so
    the lowest-foot curve is the source's minus gradient . root_xy, up to one constant, within
    1.5 cm at every frame."""
    r = imported_raw["amp_humanoid_walk.npy"]
    assert r.floor_levelled and any(n.startswith("floor levelled") for n in r.notes)
    ours = foot_heights(HUMANOID, r.motion)
    source = amp_source_lowest_foot(AMP_MOTIONS / "amp_humanoid_walk.npy") * r.scale
    tilt = r.motion.frames[:, :2] @ r.floor_fit.gradient
    assert np.ptp(ours - (source - tilt)) < 0.015
    assert abs(ours.min()) < 1e-4


@needs_data
def test_amp_walk_levelled_by_default_has_no_height_drift_along_the_walk(importer, imported):
    """Theil-Sen slope (scipy) of the per-frame lowest foot against the root's forward
    position: over 0.8 deg as captured, under 0.3 deg after the default import."""
    def drift_deg(result):
        heights = foot_heights(HUMANOID, result.motion)
        slope = scipy.stats.theilslopes(heights, result.motion.frames[:, 0]).slope
        return abs(np.degrees(np.arctan(slope)))

    assert drift_deg(importer.import_file(str(AMP_MOTIONS / "amp_humanoid_walk.npy"), level_floor_mode="off",
                                          contact_fix_mode="off")) > 0.8
    assert drift_deg(imported["amp_humanoid_walk.npy"]) < 0.3


@needs_data
@needs_mink
def test_amp_walk_keeps_the_lowest_foot_within_3cm_of_the_floor_at_every_frame(imported, imported_raw):
    """The source's stance foot sinks 2.5-3.5 cm within each stance (amp_humanoid's own feet
    too), so levelled alone the lowest foot spans ~5.5 cm; the default contact cleanup plants
    the stances on the floor."""
    assert np.ptp(foot_heights(HUMANOID, imported_raw["amp_humanoid_walk.npy"].motion)) > 0.045
    assert imported["amp_humanoid_walk.npy"].contacts_fixed
    heights = foot_heights(HUMANOID, imported["amp_humanoid_walk.npy"].motion)
    assert heights.min() > -0.03 and heights.max() < 0.03


@needs_data
@pytest.mark.parametrize("name", [p.name for p in ALL_CLIPS if p.name not in WALKS])
def test_other_clips_do_not_sink_below_3cm_and_touch_the_floor(importer, tmp_path, name):
    """Run, jump, kicks, punch, spinkick: they leave the floor, so only no penetration below
    -3 cm at any frame and a grounded clip (lowest point over the clip within 3 cm) are
    required; checked on the saved and reloaded clip."""
    src = next(p for p in ALL_CLIPS if p.name == name)
    out = tmp_path / "clip.npz"
    importer.import_file(str(src), clamp_joints=True).motion.save(str(out))
    heights = foot_heights(HUMANOID, Motion.load(str(out)))
    assert heights.min() > -0.03
    assert abs(heights.min()) < 0.03


# ---------------------------------------------------------------- frame conversion
@needs_data
@pytest.mark.parametrize("name", [p.name for p in sorted(DM_MOTIONS.glob("*.txt"))] if DATA.is_dir() else [])
def test_deepmimic_root_displacement_is_the_source_displacement_turned_z_up_and_scaled(imported_raw, name):
    frames = np.array(json.loads((DM_MOTIONS / name).read_text())["Frames"])
    src_disp = R_YZ @ (frames[-1, 1:4] - frames[0, 1:4])
    r = imported_raw[name]
    disp = r.motion.frames[-1, :3] - r.motion.frames[0, :3]
    np.testing.assert_allclose(disp[:2], r.scale * src_disp[:2], atol=1e-4)


@needs_data
def test_deepmimic_walk_moves_forward_along_x_with_the_head_above_the_pelvis(imported, char):
    r = imported["humanoid3d_walk.txt"]
    disp = r.motion.frames[-1, :3] - r.motion.frames[0, :3]
    assert disp[0] > 1.0 and abs(disp[1]) < 0.05 * disp[0]
    pos = body_positions(char, r.motion)
    assert (pos[:, char.get_body_id("head"), 2] > pos[:, char.get_body_id("pelvis"), 2] + 0.3).all()


@needs_data
@pytest.mark.parametrize("name", ["humanoid3d_walk.txt", "humanoid3d_spinkick.txt", "humanoid3d_kick.txt"])
def test_deepmimic_bone_and_limb_directions_match_the_source_skeleton_fk(imported_raw, char, name):
    """Our FK against the source's own FK (scipy, Y-up turned Z-up): every bone (joint to
    child joint) points the same way within 1 degree at every frame, and the pelvis-to-ankle
    directions within 3 degrees (the skeletons' proportions differ by a few cm); frames where
    a joint was clamped to our ranges (the spinkick's 3 hyperextended knee frames, 9 ankle
    frames) are left out."""
    kept = ~imported_raw[name].joint_ranges.beyond.any(axis=1)
    assert kept.sum() > 0.8 * len(kept)
    src_pos, src_names = deepmimic_source_fk(DM_MOTIONS / name)
    src_pos = src_pos[kept] @ R_YZ.T
    ours = body_positions(char, imported_raw[name].motion)[kept]
    bones = [("chest", "neck", "torso", "head")]
    for side in ("right", "left"):
        bones += [(side + "_hip", side + "_knee", side + "_thigh", side + "_shin"),
                  (side + "_knee", side + "_ankle", side + "_shin", side + "_foot"),
                  (side + "_shoulder", side + "_elbow", side + "_upper_arm", side + "_lower_arm"),
                  (side + "_elbow", side + "_wrist", side + "_lower_arm", side + "_hand")]
    for a, b, our_a, our_b in bones:
        src_dir = src_pos[:, src_names.index(b)] - src_pos[:, src_names.index(a)]
        our_dir = ours[:, char.get_body_id(our_b)] - ours[:, char.get_body_id(our_a)]
        assert angle_deg(src_dir, our_dir).max() < 1.0, (a, b, angle_deg(src_dir, our_dir).max())
    for ankle, foot in (("right_ankle", "right_foot"), ("left_ankle", "left_foot")):
        src_dir = src_pos[:, src_names.index(ankle)] - src_pos[:, 0]
        our_dir = ours[:, char.get_body_id(foot)] - ours[:, 0]
        assert angle_deg(src_dir, our_dir).max() < 3.0, (ankle, angle_deg(src_dir, our_dir).max())


@needs_data
def test_root_translation_is_scaled_by_the_leg_length_ratio(imported):
    # humanoid3d: hip-knee 0.421546 + knee-ankle 0.40987 + ankle-sole 0.05; ours 0.42 + 0.41 + 0.06.
    assert imported["humanoid3d_walk.txt"].scale == pytest.approx(0.89 / (0.421546 + 0.40987 + 0.05), rel=1e-4)


# ---------------------------------------------------------------- MimicKit .pkl
def mimickit_frames_from_amp(motion_file):
    """MimicKit-humanoid frames for the pose of an AMP clip (T-pose-rest arms), with scipy."""
    d = np.load(motion_file, allow_pickle=True).item()  # trusted reference data, test only
    rot = d["rotation"]["arr"]
    names = d["skeleton_tree"]["node_names"]
    # MimicKit's arms rest sideways: turn our rest arm (down) onto it, per side.
    turn = {"right": Rotation.from_euler("x", 90, degrees=True), "left": Rotation.from_euler("x", -90, degrees=True)}
    cols = [d["root_translation"]["arr"], Rotation.from_quat(rot[:, 0]).as_rotvec()]
    for b, name in enumerate(names[1:], start=1):
        local = Rotation.from_quat(rot[:, b])
        side = name.split("_")[0]
        if name.endswith("upper_arm"):
            local = local * turn[side]
        elif name.endswith("lower_arm") or name.endswith("hand"):
            local = turn[side].inv() * local * turn[side]
        if name.endswith("hand"):
            continue
        rv = local.as_rotvec()
        if name.endswith("lower_arm"):
            cols.append(rv[:, 2:3])  # elbow about z
        elif name.endswith("shin"):
            cols.append(rv[:, 1:2])  # knee about y
        else:
            cols.append(rv)
    return np.concatenate(cols, axis=1), float(d["fps"])


@needs_data
def test_mimickit_pkl_with_tpose_arms_gives_the_same_pose_as_the_amp_clip(importer, char, tmp_path):
    frames, fps = mimickit_frames_from_amp(AMP_MOTIONS / "amp_humanoid_walk.npy")
    assert frames.shape[1] == 34
    pkl = tmp_path / "walk.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 1, "fps": fps, "frames": frames.tolist()}))
    from_pkl = importer.import_file(str(pkl), contact_fix_mode="off")
    from_npy = importer.import_file(str(AMP_MOTIONS / "amp_humanoid_walk.npy"), contact_fix_mode="off")
    assert from_pkl.motion.loop_mode == "wrap" and from_pkl.motion.fps == fps
    np.testing.assert_allclose(body_positions(char, from_pkl.motion), body_positions(char, from_npy.motion), atol=2e-3)


def test_mimickit_pkl_nan_names_the_frame_and_neck_column(importer, tmp_path):
    frames = np.zeros((5, 34))
    frames[:, 2] = 0.9
    frames[3, 9] = np.nan  # torso 6..8, neck 9..11
    pkl = tmp_path / "nan.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": frames.tolist()}))
    with pytest.raises(MimicKitError, match=r"nan\.pkl: frame 3 column 9 \(neck exp map x\)"):
        importer.import_file(str(pkl))


def test_mimickit_pkl_of_wrong_width_names_the_expected_width(importer, tmp_path):
    pkl = tmp_path / "short.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 0, "fps": 30, "frames": np.zeros((4, 33)).tolist()}))
    with pytest.raises(MimicKitError, match=r"short\.pkl.*expected \[num_frames, 34\]"):
        importer.import_file(str(pkl))


# ---------------------------------------------------------------- bad input
@needs_data
def test_deepmimic_nan_names_the_source_frame_and_column(importer, tmp_path):
    data = json.loads((DM_MOTIONS / "humanoid3d_walk.txt").read_text())
    data["Frames"][7][12] = float("nan")  # neck quat w
    bad = tmp_path / "motions" / "bad_walk.txt"
    bad.parent.mkdir()
    bad.write_text(json.dumps(data))
    with pytest.raises(MimicKitError, match=r"bad_walk\.txt: frame 7 column 12 \(neck quat w\)"):
        importer.import_file(str(bad))


def test_deepmimic_frame_of_wrong_width_names_the_file_and_expected_width(importer, tmp_path):
    bad = tmp_path / "short.txt"
    bad.write_text(json.dumps({"Loop": "wrap", "Frames": [[0.033] + [0.0] * 42, [0.0] * 43]}))
    with pytest.raises(MimicKitError, match=r"short\.txt: frame 0 has 43 values; expected 44"):
        importer.import_file(str(bad))


def test_deepmimic_nonuniform_durations_are_resampled_to_the_mean_rate(importer, tmp_path):
    ident = [1.0, 0.0, 0.0, 0.0]
    rows = []
    for i, dt in enumerate([0.02, 0.04, 0.02, 0.04, 0.0]):  # mean 0.03 s
        rows.append([dt, 0.1 * i, 0.9, 0.0] + ident + ident * 2 + (ident + [0.0] + ident) + (ident + [0.0])
                    + (ident + [0.0] + ident) + (ident + [0.0]))
    clip = tmp_path / "uneven.txt"
    clip.write_text(json.dumps({"Loop": "none", "Frames": rows}))
    r = importer.import_file(str(clip))
    assert r.motion.fps == pytest.approx(1 / 0.03)
    assert r.motion.num_frames == 5 and any("resampled" in n for n in r.notes)
    # root x was 0, .1, .2, .3, .4 at t = 0, .02, .06, .08, .12: at t = .03 it is 0.125 (scaled).
    assert r.motion.frames[1, 0] == pytest.approx(0.125 * r.scale, abs=1e-5)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch {}".format(self.marker),))


def test_restricted_unpickler_refuses_a_pickle_that_calls_os_system(importer, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"fps": 30, "loop_mode": 0, "frames": _Exploit(marker)}))
    with pytest.raises(MimicKitError, match=r"evil\.pkl: refusing to unpickle '(posix|os|nt)\.system'"):
        importer.import_file(str(evil))
    with pytest.raises(MimicKitError, match="refusing"):
        load_pickle(str(evil))
    assert not marker.exists()


def test_npy_reader_refuses_a_malicious_pickled_payload(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array({"rotation": _Exploit(marker)}, dtype=object), allow_pickle=True)
    with pytest.raises(MimicKitError, match=r"evil\.npy: refusing to unpickle '(posix|os|nt)\.system'"):
        load_npy_object(str(evil))
    assert not marker.exists()


def test_npy_reader_returns_arrays_and_containers(tmp_path):
    path = tmp_path / "ok.npy"
    value = {"a": {"arr": np.arange(6.0).reshape(2, 3), "context": {"dtype": "float64"}}, "b": [1, (2, 3)],
             "fps": np.float64(30.0)}
    np.save(path, np.array(value, dtype=object), allow_pickle=True)
    loaded = load_npy_object(str(path))
    np.testing.assert_array_equal(loaded["a"]["arr"], value["a"]["arr"])
    assert loaded["b"] == [1, (2, 3)] and loaded["fps"] == 30.0


@needs_data
def test_joint_map_override_unmaps_the_neck_and_rejects_unknown_names(importer, char, tmp_path):
    walk = str(DM_MOTIONS / "humanoid3d_walk.txt")
    jm = tmp_path / "map.yaml"
    jm.write_text("neck: null\n")
    r = importer.import_file(walk, joint_map_file=str(jm))
    head = int(char.joint_dof_offsets[char.get_body_id("head") - 1])
    assert np.abs(r.motion.frames[:, 6 + head:6 + head + 3]).max() < 1e-6
    jm.write_text("tail: torso\n")
    with pytest.raises(MimicKitError, match=r"map\.yaml: key 'tail' is not a joint"):
        importer.import_file(walk, joint_map_file=str(jm))
    jm.write_text("neck: antenna\n")
    with pytest.raises(MimicKitError, match=r"map\.yaml: key 'neck': our character has no body 'antenna'"):
        importer.import_file(walk, joint_map_file=str(jm))


# ---------------------------------------------------------------- foot geometry
def test_foot_heights_match_box_corners_for_random_poses(char):
    g = torch.Generator().manual_seed(0)
    n = 20
    dof_pos = torch.rand(n, char.num_dofs, generator=g) * (char.dof_high - char.dof_low) + char.dof_low
    root_rot = tu.quat_normalize(torch.randn(n, 4, generator=g))
    root_pos = torch.randn(n, 3, generator=g)
    frames = torch.cat([root_pos, tu.quat_to_exp_map(root_rot), char.dof_pos_to_joint_dof(dof_pos)], dim=1)
    motion = Motion(30, "clamp", frames.numpy(), char.dof_names)
    heights = foot_heights(HUMANOID, motion)
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    body_pos, body_rot = char.forward_kinematics(root_pos, root_rot, char.dof_pos_to_joint_rot(dof_pos))
    lows = []
    for foot in ("right_foot", "left_foot"):
        geom = model.geom(foot)
        corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * geom.size + geom.pos
        b = char.get_body_id(foot)
        rot = Rotation.from_quat(body_rot[:, b].numpy())
        lows.append(np.stack([body_pos[:, b].numpy() + rot.apply(c) for c in corners], 1)[..., 2].min(1))
    np.testing.assert_allclose(heights, np.min(lows, axis=0), atol=1e-5)


def test_foot_heights_at_rest_put_the_soles_on_the_floor(char):
    frames = np.zeros((2, 6 + char.num_dofs))
    frames[:, 2] = 0.89  # the MJCF's pelvis height: legs 0.42 + 0.41, foot box 0.06
    np.testing.assert_allclose(foot_heights(HUMANOID, Motion(30, "clamp", frames, char.dof_names)), 0.0, atol=1e-6)


# ---------------------------------------------------------------- floor levelling
def deepmimic_walk_on_a_slope(tmp_path, slope_deg, cycles=3):
    """The DeepMimic walk repeated ``cycles`` times (root advanced by the cycle's horizontal
    displacement) with ``tan(slope_deg) * forward distance`` added to its root height (Y-up)."""
    data = json.loads((DM_MOTIONS / "humanoid3d_walk.txt").read_text())
    frames = np.array(data["Frames"])
    step = np.zeros(frames.shape[1])
    step[1:4] = frames[-1, 1:4] - frames[0, 1:4]
    step[2] = 0.0  # y is up
    rows = np.concatenate([frames[:-1] + k * step for k in range(cycles)] + [frames[-1:] + (cycles - 1) * step])
    rows[:, 2] += np.tan(np.radians(slope_deg)) * (rows[:, 1] - rows[0, 1])
    data["Frames"] = rows.tolist()
    path = tmp_path / "walk_{}deg.txt".format(slope_deg)
    path.write_text(json.dumps(data))
    return path


@needs_data
@pytest.mark.parametrize("slope_deg", [2.0, -1.0])
def test_levelling_recovers_a_slope_added_to_a_deepmimic_walk_and_keeps_its_feet_on_the_floor(
        importer, tmp_path, slope_deg):
    flat = importer.import_file(str(deepmimic_walk_on_a_slope(tmp_path, 0.0)))
    sloped = importer.import_file(str(deepmimic_walk_on_a_slope(tmp_path, slope_deg)))
    assert not flat.floor_levelled and sloped.floor_levelled
    fit = sloped.floor_fit
    along_x = np.degrees(np.arctan(fit.gradient[0]))
    assert abs(along_x - slope_deg) < 0.2 and abs(fit.gradient[1]) < np.tan(np.radians(0.2))
    heights = foot_heights(HUMANOID, sloped.motion)
    assert heights.min() > -0.03 and heights.max() < 0.03
    # Levelled, the sloped walk is the flat walk up to one constant height.
    assert np.ptp(sloped.motion.frames[:, 2] - flat.motion.frames[:, 2]) < 0.005


@needs_data
def test_levelling_off_keeps_the_added_slope_in_the_root_height(importer, tmp_path):
    flat = importer.import_file(str(deepmimic_walk_on_a_slope(tmp_path, 0.0)), level_floor_mode="off",
                                contact_fix_mode="off")
    off = importer.import_file(str(deepmimic_walk_on_a_slope(tmp_path, 2.0)), level_floor_mode="off",
                               contact_fix_mode="off")
    assert not off.floor_levelled and not any("floor" in n for n in off.notes)
    rise = off.motion.frames[:, 2] - flat.motion.frames[:, 2]
    forward = off.motion.frames[:, 0] - off.motion.frames[0, 0]  # the slope scales with x: same in ours
    assert np.ptp(rise - np.tan(np.radians(2.0)) * forward) < 1e-4


@needs_data
@pytest.mark.parametrize("name", [p.name for p in ALL_CLIPS if p.name != "amp_humanoid_walk.npy"])
def test_auto_levelling_leaves_the_reference_clips_without_a_floor_tilt_unchanged(importer, imported, name):
    """DeepMimic walk, run, jump, kick, punch, spinkick and the AMP run: default import equals
    the import with levelling off, and says why it did not level."""
    off = importer.import_file(str(next(p for p in ALL_CLIPS if p.name == name)), level_floor_mode="off",
                               clamp_joints=True)
    auto = imported[name]
    assert not auto.floor_levelled and any(n.startswith("floor not levelled") for n in auto.notes)
    np.testing.assert_array_equal(auto.motion.frames, off.motion.frames)


@needs_data
def test_level_floor_on_names_the_clip_when_it_has_too_few_stances(importer):
    with pytest.raises(MimicKitError, match=r"humanoid3d_run\.txt: cannot level the floor: 2 stance contacts"):
        importer.import_file(str(DM_MOTIONS / "humanoid3d_run.txt"), level_floor_mode="on")
    with pytest.raises(MimicKitError, match=r"floor levelling must be one of auto\|on\|off, got 'yes'"):
        importer.import_file(str(DM_MOTIONS / "humanoid3d_run.txt"), level_floor_mode="yes")


def contacts_on_plane(xy, heights):
    return StanceContacts(in_stance=np.ones((len(xy), 1), dtype=bool), frames=np.arange(len(xy)),
                          feet=np.zeros(len(xy), dtype=np.int64), heights=np.asarray(heights),
                          root_xy=np.asarray(xy))


def test_fit_floor_recovers_a_known_plane_and_rejects_raised_contacts():
    rng = np.random.default_rng(0)
    xy = rng.uniform([-1.0, -1.0], [2.0, 1.5], size=(14, 2))
    gradient = np.array([0.03, -0.02])
    heights = 0.1 + xy @ gradient + rng.normal(0.0, 0.002, len(xy))
    heights[[3, 9]] += 0.08  # a foot resting on a step
    fit = fit_floor(contacts_on_plane(xy, heights), origin=np.zeros(2))
    assert fit.cross_fitted
    np.testing.assert_allclose(fit.gradient, gradient, atol=0.004)
    assert fit.height == pytest.approx(0.1, abs=0.004)
    assert list(np.flatnonzero(~fit.inliers)) == [3, 9]
    assert fit.slope_deg == pytest.approx(np.degrees(np.arctan(np.linalg.norm(gradient))), abs=0.25)
    assert fit.residual_rms < 0.004


def test_fit_floor_leaves_the_cross_slope_at_zero_for_contacts_along_a_line():
    """A walk's contacts sway a few cm sideways: only the slope along the walk is fitted."""
    x = np.linspace(0.0, 3.0, 8)
    xy = np.stack([x, 0.05 * (-1.0) ** np.arange(8)], axis=1)
    heights = 0.02 * x + 0.1 * xy[:, 1]  # the sideways term must not be fitted
    fit = fit_floor(contacts_on_plane(xy, heights), origin=xy[0])
    cross = np.array([-fit.travel_dir[1], fit.travel_dir[0]])
    assert not fit.cross_fitted and fit.gradient @ cross == pytest.approx(0.0, abs=1e-12)
    assert abs(fit.gradient[1]) < 1e-3  # fitted, the sideways term would give 0.1
    assert fit.gradient[0] == pytest.approx(0.02, abs=0.01)
    assert fit_floor(contacts_on_plane(xy[:2], heights[:2]), origin=xy[0]) is None


def test_stance_contacts_sample_each_slow_run_at_its_lowest_frame():
    """One foot: slow over frames 0-4 and 8-11, fast between, one slow blip at frame 6 (too short)."""
    fps = 30.0
    x = np.cumsum([0.0, 0.001, 0.001, 0.001, 0.001, 0.1, 0.1, 0.1, 0.1, 0.001, 0.001, 0.001])
    x[6] = x[5] + 0.001  # a single slow frame between fast ones is not a stance
    x[7] = x[6] + 0.2
    origin = np.stack([x, np.zeros_like(x), np.full_like(x, 0.1)], axis=1)[:, None]
    lowest = origin.copy()
    lowest[:, 0, 2] = [0.05, 0.02, 0.01, 0.03, 0.04, 0.2, 0.3, 0.2, 0.03, 0.05, 0.01, 0.02]
    root_xy = np.stack([x, np.ones_like(x)], axis=1)
    speed = np.linalg.norm(np.gradient(origin[:, 0], 1.0 / fps, axis=0), axis=-1)
    contacts = stance_contacts(lowest, origin, root_xy, fps, contact_speed=0.5)
    slow = speed < 0.5
    assert list(np.flatnonzero(contacts.in_stance[:, 0])) == [t for t in range(12) if slow[t] and t not in (6,)]
    assert list(contacts.frames) == [2, 10]
    np.testing.assert_allclose(contacts.heights, [0.01, 0.01])
    np.testing.assert_allclose(contacts.root_xy, root_xy[[2, 10]])


def test_geom_lowest_points_match_mujoco_plane_distance_for_every_primitive():
    """MuJoCo's mj_geomDistance to a z = 0 plane gives each geom's lowest point (fromto)."""
    xml = """<mujoco><worldbody><geom name="floor" type="plane" size="5 5 0.1"/>
    <body pos="0 0 1"><freejoint/>
      <geom type="box" size="0.1 0.05 0.03" pos="0.02 0.01 -0.03" euler="10 20 30"/>
      <geom type="sphere" size="0.07" pos="0.3 0 0"/>
      <geom type="capsule" size="0.04 0.12" pos="-0.3 0 0" euler="40 0 10"/>
      <geom type="cylinder" size="0.05 0.1" pos="0 0.3 0" euler="0 35 0"/>
      <geom type="ellipsoid" size="0.1 0.06 0.03" pos="0 -0.3 0" euler="15 -25 5"/>
    </body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    geoms = list(range(1, model.ngeom))
    for seed in range(10):
        data.qpos[:3] = [0.0, 0.0, 1.0]
        data.qpos[3:7] = Rotation.random(random_state=seed).as_quat(scalar_first=True)
        mujoco.mj_kinematics(model, data)
        points = geom_lowest_points(model, data, geoms)
        np.testing.assert_allclose(geom_lowest_z(model, data, geoms), points[:, 2])
        for i, g in enumerate(geoms):
            fromto = np.zeros(6)
            distance = mujoco.mj_geomDistance(model, data, 0, g, 10.0, fromto)
            assert points[i, 2] == pytest.approx(distance, abs=1e-6)
            np.testing.assert_allclose(points[i], fromto[3:], atol=1e-6)


# ---------------------------------------------------------------- contact cleanup
SOLE_LEVEL_DEG = 1.0  # a foot tilted less than this touches the floor with its whole sole


def foot_boxes(char, motion):
    """Per frame and foot (right, left): the foot box's 8 corners [T, 2, 8, 3] (m, world), the
    foot's world rotations (scipy) and its tilt from level [T, 2] (deg), from our FK and the
    MJCF's box geoms (not through MuJoCo qpos or the importer's foot geometry)."""
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    f = torch.as_tensor(motion.frames).double()
    pos, rot = char.forward_kinematics(f[:, :3], tu.exp_map_to_quat(f[:, 3:6]), char.joint_dof_to_joint_rot(f[:, 6:]))
    corners, rots, tilts = [], [], []
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    for foot in ("right_foot", "left_foot"):
        geom = model.geom(foot)
        b = char.get_body_id(foot)
        r = Rotation.from_quat(rot[:, b].numpy())
        local = signs * geom.size + geom.pos
        corners.append(pos[:, b, None].numpy() + np.stack([r.apply(c) for c in local], axis=1))
        rots.append(r)
        tilts.append(np.degrees(np.arccos(np.clip(r.apply([0.0, 0.0, 1.0])[:, 2], -1.0, 1.0))))
    return np.stack(corners, axis=1), rots, np.stack(tilts, axis=1), pos[:, char.get_body_ids(
        ["right_foot", "left_foot"])].numpy()


def stance_slips(char, motion, in_stance):
    """Per stance: horizontal travel (m) of the foot's material point touching the floor (the
    sole's centre when the foot is level within SOLE_LEVEL_DEG, else its lowest corner),
    followed from each stance frame to the next."""
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    corners, rots, tilts, origins = foot_boxes(char, motion)
    out = []
    for k, foot in enumerate(("right_foot", "left_foot")):
        geom = model.geom(foot)
        sole = geom.pos - [0.0, 0.0, geom.size[2]]
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], in_stance[:, k].astype(int), [0]])))
        for a, e in zip(edges[0::2], edges[1::2]):
            travel = 0.0
            for t in range(a, e - 1):
                local = sole if tilts[t, k] < SOLE_LEVEL_DEG else \
                    signs[np.argmin(corners[t, k, :, 2])] * geom.size + geom.pos
                p0 = origins[t, k] + rots[k][t].apply(local)
                p1 = origins[t + 1, k] + rots[k][t + 1].apply(local)
                travel += np.linalg.norm((p1 - p0)[:2])
            out.append(travel)
    return np.array(out)


@needs_data
@needs_mink
def test_amp_walk_stance_feet_are_planted_flat_and_do_not_slip_after_the_default_import(char, imported, imported_raw):
    """Over the stances the cleanup found: the foot box's lowest corner within 5 mm of z = 0,
    the contact point sliding less than 5 mm per stance (it slid up to ~7 cm as captured), and
    the sole level within 0.5 deg wherever the captured foot was tilted less than 10 deg."""
    fixed, raw = imported["amp_humanoid_walk.npy"], imported_raw["amp_humanoid_walk.npy"]
    in_stance = fixed.contact_fix.in_stance
    assert in_stance.any(axis=0).all()
    corners, _, tilts, _ = foot_boxes(char, fixed.motion)
    lowest = corners[..., 2].min(axis=-1)
    assert np.abs(lowest[in_stance]).max() < 0.005
    assert stance_slips(char, fixed.motion, in_stance).max() < 0.005
    assert stance_slips(char, raw.motion, in_stance).max() > 0.03
    raw_tilts = foot_boxes(char, raw.motion)[2]
    nearly_flat = in_stance & (raw_tilts < 10.0)
    assert nearly_flat.sum() > 40 and tilts[nearly_flat].max() < 0.5


def pushed_deepmimic_walk(tmp_path, depth=0.03):
    """The DeepMimic walk with its root lowered by ``depth`` m (sin^2 bump) over its second
    stance (frames 20-37, the left foot), pushing that foot into the floor."""
    data = json.loads((DM_MOTIONS / "humanoid3d_walk.txt").read_text())
    frames = np.array(data["Frames"])
    t = np.arange(len(frames))
    bump = np.where((t >= 20) & (t < 38), np.sin(np.pi * (t - 20 + 0.5) / 18.0) ** 2, 0.0)
    frames[:, 2] -= depth * bump  # y is up
    data["Frames"] = frames.tolist()
    path = tmp_path / "pushed_walk.txt"
    path.write_text(json.dumps(data))
    return path


@needs_data
@needs_mink
def test_contact_fix_brings_a_stance_pushed_3cm_into_the_floor_back_within_1cm(importer, char, tmp_path):
    path = str(pushed_deepmimic_walk(tmp_path))
    walk = importer.import_file(str(DM_MOTIONS / "humanoid3d_walk.txt"), contact_fix_mode="off")
    off = importer.import_file(path, contact_fix_mode="off")
    fixed = importer.import_file(path)
    assert fixed.contacts_fixed and any(n.startswith("contacts fixed by IK") for n in fixed.notes)
    in_stance = fixed.contact_fix.in_stance
    assert in_stance[:19, 0].all() and in_stance[21:37, 1].all()
    low_walk, low_off, low_fixed = (foot_boxes(char, r.motion)[0][..., 2].min(axis=-1) for r in (walk, off, fixed))
    # Without the fix, the second stance sinks 3 cm below where it was and the stances spread.
    assert np.ptp(low_off.min(axis=1) - low_walk.min(axis=1)) > 0.028
    assert np.abs(low_off[in_stance]).max() > 0.03
    assert np.abs(low_fixed[in_stance]).max() < 0.01
    assert low_fixed.min() > -0.01


@needs_data
@needs_mink
def test_contact_fix_keeps_the_non_foot_bodies_within_a_few_cm(char, imported, imported_raw):
    """The AMP walk's cleanup (before ground alignment) against its input, the levelled clip:
    the feet move by centimetres, the upper body (pelvis, torso, head, arms) less than 3 cm and
    the thighs and shins less than 5 cm; the clip's joint dofs decode (exp maps, through our
    FK) to the poses the inverse kinematics found."""
    raw, fixed = imported_raw["amp_humanoid_walk.npy"], imported["amp_humanoid_walk.npy"]
    levelled = raw.motion.frames.astype(np.float64)
    levelled[:, 2] -= raw.ground_shift
    cleaned = Motion(raw.motion.fps, "clamp", fixed.contact_fix.frames, char.dof_names)
    moved = np.linalg.norm(body_positions(char, cleaned) - body_positions(
        char, Motion(raw.motion.fps, "clamp", levelled, char.dof_names)), axis=-1).max(axis=0)
    by_name = dict(zip(char.body_names, moved))
    legs = [n for n in char.body_names if n.endswith(("thigh", "shin"))]
    upper = [n for n in char.body_names if n not in legs and not n.endswith("foot")]
    assert max(by_name[n] for n in ("right_foot", "left_foot")) > 0.015
    assert max(by_name[n] for n in upper) < 0.03 and max(by_name[n] for n in legs) < 0.05
    assert fixed.contact_fix.max_body_shift == pytest.approx(max(by_name[n] for n in upper + legs), abs=1e-4)


@needs_data
@pytest.mark.parametrize("name", ["humanoid3d_walk.txt", "humanoid3d_run.txt", "amp_humanoid_run.npy"])
def test_auto_contact_fix_leaves_the_clean_reference_clips_unchanged(imported, imported_raw, name):
    """Their stance feet stay within 1.5 cm of one height and slip under 2 cm per stance."""
    auto = imported[name]
    assert not auto.contacts_fixed and any(n.startswith("contacts not fixed (clean)") for n in auto.notes)
    np.testing.assert_array_equal(auto.motion.frames, imported_raw[name].motion.frames)


@needs_data
def test_contact_fix_off_returns_the_frames_untouched_and_adds_no_note(importer, imported_raw):
    raw = imported_raw["amp_humanoid_walk.npy"]
    assert raw.contact_fix is None and not raw.contacts_fixed
    assert not any("contact" in n for n in raw.notes)
    result = fix_contacts(importer.feet, raw.motion.frames, raw.motion.fps, "off")
    assert result.frames is raw.motion.frames and not result.applied


@needs_data
@needs_mink
def test_contact_fix_is_deterministic(importer, imported_raw):
    raw = imported_raw["humanoid3d_kick.txt"]
    first = fix_contacts(importer.feet, raw.motion.frames, raw.motion.fps, "on")
    second = fix_contacts(importer.feet, raw.motion.frames, raw.motion.fps, "on")
    assert first.applied
    np.testing.assert_array_equal(first.frames, second.frames)


@needs_data
def test_without_mink_fix_contacts_on_fails_in_one_line_and_auto_skips_with_a_note(importer, tmp_path, monkeypatch,
                                                                                 capsys):
    monkeypatch.setitem(sys.modules, "mink", None)  # import mink now raises ImportError
    kick = str(DM_MOTIONS / "humanoid3d_kick.txt")  # a clip that 'auto' fixes
    with pytest.raises(MimicKitError, match=r"humanoid3d_kick\.txt: --fix_contacts on needs mink: pip install mink"):
        importer.import_file(kick, contact_fix_mode="on")
    auto = importer.import_file(kick)
    assert not auto.contacts_fixed
    assert any("mink is not installed: pip install mink" in n for n in auto.notes)
    from tools.import_motion import main
    assert main(["--char", HUMANOID, "--out", str(tmp_path / "x.npz"), "--fix_contacts", "on", kick]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install mink" in err


def test_contact_fix_mode_must_be_auto_on_or_off(importer):
    with pytest.raises(MimicKitError, match=r"contact fixing must be one of auto\|on\|off, got 'yes'"):
        importer.import_file("unused.txt", fmt="deepmimic", contact_fix_mode="yes")


def test_flatten_tilt_keeps_the_heading_and_removes_small_tilts_fully_and_large_ones_in_part():
    """Against scipy: the correction turns about a horizontal axis (heading kept), the result's
    tilt is kept_tilt(tilt), a small tilt leaves the sole exactly level, and the kept tilt never
    changes faster than the tilt (finite differences)."""
    rng = np.random.default_rng(1)
    rest = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    for _ in range(50):
        tilt_deg = rng.uniform(0.0, 60.0)
        axis = np.append(rng.normal(size=2), 0.0)
        rot = Rotation.from_rotvec(axis / np.linalg.norm(axis) * np.radians(tilt_deg)) \
            * Rotation.from_euler("z", rng.uniform(-180, 180), degrees=True)
        rot = rot.as_matrix() @ rest
        out = flatten_tilt(rot, rest, 10.0, 10.0)
        change = Rotation.from_matrix(out @ rot.T).as_rotvec()
        assert abs(change[2]) < 1e-9
        out_tilt = np.degrees(np.arccos(np.clip((out @ rest.T)[2, 2], -1.0, 1.0)))
        assert out_tilt == pytest.approx(np.degrees(kept_tilt(np.radians(tilt_deg), np.radians(10.0),
                                                              np.radians(10.0))), abs=1e-6)
        if tilt_deg < 10.0:
            np.testing.assert_array_equal((out @ rest.T)[2], [0.0, 0.0, 1.0])
    tilts = np.radians(np.linspace(0.0, 60.0, 601))
    kept = np.array([kept_tilt(t, np.radians(10.0), np.radians(10.0)) for t in tilts])
    assert np.diff(kept).min() >= 0.0 and (np.diff(kept) / np.diff(tilts)).max() <= 1.0 + 1e-9
    assert kept[tilts >= np.radians(20.0)] == pytest.approx(tilts[tilts >= np.radians(20.0)] - np.radians(15.0))


# ---------------------------------------------------------------- command line
@needs_data
def test_cli_script_writes_one_clip_per_input_and_a_summary_line(tmp_path):
    ok = subprocess.run([sys.executable, str(REPO / "tools" / "import_motion.py"), "--char", HUMANOID,
                         "--out_dir", str(tmp_path), str(DM_MOTIONS / "humanoid3d_walk.txt"),
                         str(AMP_MOTIONS / "amp_humanoid_run.npy")], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "humanoid3d_walk.txt -> " in ok.stdout and "39 frames" in ok.stdout
    assert Motion.load(str(tmp_path / "amp_humanoid_run.npz")).num_frames == 82


def test_cli_reports_a_bad_file_in_one_line_with_exit_status_2(tmp_path, capsys):
    from tools.import_motion import main
    bad = tmp_path / "bad.txt"
    bad.write_text("{not json")
    assert main(["--char", HUMANOID, "--out", str(tmp_path / "x.npz"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.txt: not valid JSON" in err
    assert main(["--char", HUMANOID, "--out", str(tmp_path / "x.npz"), str(bad), str(bad)]) == 2
    assert "use --out_dir" in capsys.readouterr().err


@needs_data
def test_cli_passes_level_floor_on_and_reports_a_clip_it_cannot_level(tmp_path, capsys):
    from tools.import_motion import main
    run = str(DM_MOTIONS / "humanoid3d_run.txt")
    assert main(["--char", HUMANOID, "--out", str(tmp_path / "x.npz"), "--level_floor", "on", run]) == 2
    assert "humanoid3d_run.txt: cannot level the floor" in capsys.readouterr().err
    assert main(["--char", HUMANOID, "--out", str(tmp_path / "x.npz"), "--level_floor", "off", run]) == 0
    assert "levelled" not in capsys.readouterr().out


# ---------------------------------------------------------------- foot bodies named by a flag
G1 = str(REPO / "data" / "assets" / "g1" / "g1.xml")
G1_FEET = ["left_ankle_roll_link", "right_ankle_roll_link"]


def mujoco_lowest_box_corner(char_file, frames, dof_names, bodies):
    """Per frame, the lowest corner z (m) of the box geoms of ``bodies``: MuJoCo kinematics of
    the frames set as qpos (hinge dofs only), corners from the geoms' sizes and world poses."""
    model = mujoco.MjModel.from_xml_path(char_file)
    data = mujoco.MjData(model)
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    geoms = [g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name in bodies
             and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
    out = []
    for frame in frames:
        data.qpos[:3] = frame[:3]
        data.qpos[3:7] = Rotation.from_rotvec(frame[3:6]).as_quat(scalar_first=True)
        for name, angle in zip(dof_names, frame[6:]):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
        mujoco.mj_kinematics(model, data)
        corners_z = [data.geom_xpos[g, 2] + (data.geom_xmat[g].reshape(3, 3) @ (signs * model.geom_size[g]).T)[2]
                     for g in geoms]
        out.append(min(z.min() for z in corners_z))
    return np.array(out)


def test_foot_bodies_flag_names_the_feet_of_a_robot_without_foot_bodies(tmp_path, capsys):
    """The shipped G1 walk, raised 10 cm, as a MimicKit .pkl on the G1 (whose bodies have no
    'foot' in their names): without --foot_bodies the import is refused in one line; with the
    ankle-roll links as feet it comes back as the shipped clip, its soles (MuJoCo box corners)
    on the floor."""
    from tools.import_motion import main
    clip = Motion.load(str(REPO / "data" / "motions" / "g1" / "g1_walk_forward_medium.npz"))
    frames = clip.frames.astype(np.float64)
    raised = frames.copy()
    raised[:, 2] += 0.1
    pkl = tmp_path / "g1_walk.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 1, "fps": clip.fps, "frames": raised.tolist()}))
    out = tmp_path / "g1_walk.npz"
    base = ["--char", G1, "--source_char", G1, "--out", str(out), str(pkl)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no foot body found" in err and "--foot_bodies" in err
    assert main(base + ["--foot_bodies", "left_ankle_roll_link", "no_such_body"]) == 2
    assert "no body 'no_such_body'" in capsys.readouterr().err
    assert main(base + ["--foot_bodies"] + G1_FEET) == 0
    assert "ground shift -0.100 m" in capsys.readouterr().out
    motion = Motion.load(str(out))
    np.testing.assert_allclose(motion.frames[:, 6:], frames[:, 6:], atol=1e-5)
    np.testing.assert_allclose(motion.frames[:, :3], frames[:, :3], atol=1e-5)
    lowest = mujoco_lowest_box_corner(G1, motion.frames.astype(np.float64), motion.dof_names, G1_FEET)
    assert abs(lowest.min()) < 1e-5


def test_foot_bodies_are_the_bodies_the_importer_watches_and_the_ground_alignment_takes_every_body(tmp_path):
    """The same clip with the G1's hands (wrist-yaw links) named as feet: the lowest 'foot'
    point reported is a wrist's, over 0.4 m up, while the ground alignment, which takes the
    lowest point of any body, leaves the soles on the floor (no shift)."""
    clip = Motion.load(str(REPO / "data" / "motions" / "g1" / "g1_walk_forward_medium.npz"))
    pkl = tmp_path / "g1_walk.pkl"
    pkl.write_bytes(pickle.dumps({"loop_mode": 1, "fps": clip.fps, "frames": clip.frames.tolist()}))
    hands = Importer(G1, foot_bodies=["left_wrist_yaw_link", "right_wrist_yaw_link"]).import_file(
        str(pkl), source_char=G1, level_floor_mode="off", contact_fix_mode="off")
    assert hands.foot_heights.min() > 0.4 and abs(hands.ground_shift) < 1e-4
    with pytest.raises(MimicKitError, match="named more than once: left_wrist_yaw_link"):
        Importer(G1, foot_bodies=["left_wrist_yaw_link", "left_wrist_yaw_link"])


# ---------------------------------------------------------------- joint ranges
def scipy_hinge_angles(char, joint_dof):
    """Hinge angles [T, num_dofs] (rad) of clip joint dofs with scipy: a triplet's exp map
    (x, z, y hinges) as intrinsic XZY Euler angles, a hinge's angle as it is."""
    out = np.array(joint_dof, dtype=np.float64)
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        if n == 3:
            first = int(char.joint_dof_offsets[j])
            out[:, first:first + 3] = Rotation.from_rotvec(joint_dof[:, first:first + 3]).as_euler("XZY")
    return out


def mjcf_ranges(char_file, dof_names):
    model = mujoco.MjModel.from_xml_path(char_file)
    return np.array([model.joint(n).range for n in dof_names]).T


@needs_data
def test_a_clip_beyond_our_ranges_is_refused_naming_the_dof_first_frame_value_and_range(importer):
    """The DeepMimic punch: its neck (scipy: the source's local neck rotation turned Z-up, as
    x, z, y Euler angles) leaves our neck_x range of +-50 deg; the error names the first such
    frame and its value."""
    frames = np.array(json.loads((DM_MOTIONS / "humanoid3d_punch.txt").read_text())["Frames"])
    neck = Rotation.from_matrix(R_YZ @ Rotation.from_quat(frames[:, 12:16], scalar_first=True).as_matrix() @ R_YZ.T)
    neck_x = neck.as_euler("XZY")[:, 0]
    low, high = np.radians(-50.0), np.radians(50.0)
    first = int(np.flatnonzero((neck_x < low - 1e-3) | (neck_x > high + 1e-3))[0])
    with pytest.raises(MimicKitError) as e:
        importer.import_file(str(DM_MOTIONS / "humanoid3d_punch.txt"))
    message = str(e.value)
    assert message.startswith(str(DM_MOTIONS / "humanoid3d_punch.txt"))
    assert "dof neck_x is {:.3f} rad at frame {}, outside its range [-0.873, 0.873] rad".format(
        neck_x[first], first) in message
    assert "--clamp_joints" in message


@needs_data
@pytest.mark.parametrize("name", [p.name for p in ALL_CLIPS])
def test_every_imported_reference_clip_is_within_our_ranges(imported, char, name):
    """Decoded with scipy, every hinge angle of the written clip lies in the MJCF's range
    (+ 1e-3 rad); the punch, spinkick and jump (clamped before the contact cleanup) say what
    was clamped."""
    r = imported[name]
    angles = scipy_hinge_angles(char, r.motion.frames[:, 6:].astype(np.float64))
    low, high = mjcf_ranges(HUMANOID, char.dof_names)
    assert (angles >= low - 1e-3).all() and (angles <= high + 1e-3).all()
    clamped = [n for n in r.notes if n.startswith("clamped to the joint ranges")]
    expected = {"humanoid3d_punch.txt": "neck_x on 13 frames", "humanoid3d_spinkick.txt": "right_knee on 3 frames",
                "humanoid3d_jump.txt": "right_ankle_y on 11 frames"}
    if name in expected:
        assert len(clamped) == 1 and expected[name] in clamped[0]
    else:
        assert not clamped and not r.joint_ranges.clamped


@needs_data
def test_cli_refuses_an_out_of_range_clip_and_clamp_joints_clamps_it(tmp_path, capsys):
    from tools.import_motion import main
    punch = str(DM_MOTIONS / "humanoid3d_punch.txt")
    out = tmp_path / "punch.npz"
    assert main(["--char", HUMANOID, "--out", str(out), "--fix_contacts", "off", punch]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "humanoid3d_punch.txt: dof neck_x" in err and not out.exists()
    assert main(["--char", HUMANOID, "--out", str(out), "--fix_contacts", "off", "--clamp_joints", punch]) == 0
    assert "clamped to the joint ranges: neck_x on 13 frames (up to 8.7 deg)" in capsys.readouterr().out
    assert out.is_file()


# ---------------------------------------------------------------- contact cleanup: hands, lying clips
def mujoco_floor_distances(frames, dof_names):
    """Per frame, the signed distance (m) of every geom of our humanoid from a z = 0 floor plane,
    by MuJoCo's collision (mj_geomDistance) with the frames set as qpos: [T, num_geoms]."""
    spec = mujoco.MjSpec.from_file(HUMANOID)
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[50, 50, 0.1])
    model = spec.compile()
    data = mujoco.MjData(model)
    floor = model.geom("floor").id
    char = KinCharModel(HUMANOID)
    dof_pos = char.joint_dof_to_dof_pos(torch.as_tensor(np.asarray(frames)[:, 6:], dtype=torch.float64)).numpy()
    geoms = [g for g in range(model.ngeom) if g != floor]
    out = []
    for frame, angles in zip(frames, dof_pos):
        data.qpos[:3] = frame[:3]
        data.qpos[3:7] = Rotation.from_rotvec(frame[3:6]).as_quat(scalar_first=True)
        for name, angle in zip(dof_names, angles):
            data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
        mujoco.mj_kinematics(model, data)
        out.append([mujoco.mj_geomDistance(model, data, floor, g, 10.0, None) for g in geoms])
    return np.array(out)


def humanoid_pose(char, dof_deg, root_rot=None, root_pos=(0.0, 0.0, 0.89)):
    """One native frame of our humanoid: hinge angles by name (deg; others 0), root rotation (scipy)."""
    dof_pos = np.zeros(char.num_dofs)
    for name, deg in dof_deg.items():
        dof_pos[char.dof_names.index(name)] = np.radians(deg)
    rotvec = (root_rot or Rotation.identity()).as_rotvec()
    joint_dof = char.dof_pos_to_joint_dof(torch.as_tensor(dof_pos[None])).double().numpy()[0]
    return np.concatenate([root_pos, rotvec, joint_dof])


def on_the_floor(frame, depth=0.0):
    """``frame`` with its root z moved so its lowest geom is ``depth`` m below z = 0 (MuJoCo)."""
    frame = frame.copy()
    frame[2] -= mujoco_floor_distances(frame[None], KinCharModel(HUMANOID).dof_names).min() + depth
    return frame


def write_humanoid_pkl(path, frames, fps=30):
    path.write_bytes(pickle.dumps({"loop_mode": 0, "fps": fps, "frames": np.asarray(frames).tolist()}))
    return str(path)


@needs_mink
def test_a_hand_pushed_under_the_floor_comes_out_on_it_with_the_feet_still_planted(importer, char, tmp_path):
    """Standing (0.5 s), a handstand with the hands 10 cm under the floor (0.5 s), standing
    again: after the default import no geom is below the floor by more than 5 mm (MuJoCo's
    plane distance) and the standing frames' soles stay on it; without the cleanup the hands
    stay 10 cm deeper than the feet."""
    stand = humanoid_pose(char, {})
    arms_up = {"right_shoulder_y": -175.0, "left_shoulder_y": -175.0}
    hands = on_the_floor(humanoid_pose(char, arms_up, Rotation.from_euler("y", 180, degrees=True)), depth=0.10)
    frames = np.stack([stand] * 15 + [hands] * 15 + [stand] * 15)
    dists = mujoco_floor_distances(frames, char.dof_names)
    assert dists[15:30].min() < -0.099 and abs(dists[:15].min()) < 1e-6  # the input: hands 10 cm under
    path = write_humanoid_pkl(tmp_path / "handstand.pkl", frames)
    off = importer.import_file(path, source_char=HUMANOID, contact_fix_mode="off", level_floor_mode="off")
    off_dists = mujoco_floor_distances(off.motion.frames.astype(np.float64), char.dof_names)
    assert off_dists[:15].min() > 0.09  # aligned on the hands, the standing feet float
    result = importer.import_file(path, source_char=HUMANOID)
    assert result.contacts_fixed and "below the floor" in result.contact_fix.note
    out = mujoco_floor_distances(result.motion.frames.astype(np.float64), char.dof_names)
    assert out.min() > -0.005
    assert np.abs(out[:14].min(axis=1)).max() < 0.005 and np.abs(out[31:].min(axis=1)).max() < 0.005
    assert np.abs(out[16:29].min(axis=1)).max() < 0.005  # the hands on the floor, not above it


def lying_clip(char, seconds=1.5, fps=30):
    """A real pose (the zero pose) laid on its back on the floor, its right elbow bending
    slowly (0 -> 60 deg): nothing in it stands on its feet."""
    t = np.linspace(0.0, 1.0, int(seconds * fps))
    rot = Rotation.from_euler("y", -90, degrees=True)  # facing up
    frames = [humanoid_pose(char, {"right_elbow": -60.0 * s}, rot) for s in t]
    return np.stack([on_the_floor(f) for f in frames])


@needs_mink
def test_a_clip_lying_on_the_ground_is_not_rewritten(importer, char, tmp_path):
    """The default import (levelling, contact cleanup, ground alignment on) of a clip lying on
    its back changes no hinge by 1 deg and moves no body by 1 cm (MuJoCo kinematics of both),
    and leaves it on the floor."""
    frames = lying_clip(char)
    path = write_humanoid_pkl(tmp_path / "lying.pkl", frames)
    result = importer.import_file(path, source_char=HUMANOID, contact_fix_mode="on")
    assert not result.contacts_fixed and "no stances" in result.contact_fix.note
    out = result.motion.frames.astype(np.float64)
    before = scipy_hinge_angles(char, frames[:, 6:])
    after = scipy_hinge_angles(char, out[:, 6:])
    assert np.degrees(np.abs(after - before)).max() < 1.0
    moved = np.linalg.norm(body_positions(char, result.motion) - body_positions(
        char, Motion(30, "clamp", frames, char.dof_names)), axis=-1)
    assert moved.max() < 0.01
    assert abs(mujoco_floor_distances(out, char.dof_names).min()) < 1e-3

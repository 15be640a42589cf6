"""BVH import (tools/motion_import/bvh.py) against forward kinematics of the file computed here.

The reference parses the BVH text itself (a few lines: joint names, offsets, channel orders,
frames) and composes each joint's rotation channels with scipy in the file's order, so it
shares nothing with the reader (bvhio). The CMU clip test skips when ../shared/data is absent;
the LAFAN1-style test writes its own small file.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util.errors import MimicKitError
from tools.motion_import import Importer
from tools.motion_import.bvh import UNITS, read_bvh
from tests.tools.test_import_motion import angle_deg, body_positions
from tools.motion_import.retarget import hinge_in_bend_plane

REPO = Path(__file__).parents[2]
HUMANOID = str(REPO / "data" / "assets" / "humanoid" / "humanoid.xml")
CMU_CLIP = REPO / ".." / "shared" / "data" / "bvh_cmu" / "131_01.bvh"
needs_cmu = pytest.mark.skipif(not CMU_CLIP.is_file(),
                               reason="the CMU clip ../shared/data/bvh_cmu/131_01.bvh is absent")
pytest.importorskip("bvhio", reason="BVH import needs bvhio: pip install bvhio")

# Y-up world -> Z-up world: x -> x, y -> z, z -> -y.
R_YZ = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
CMU_LIMBS = {side: [("{}Hip", "{}Knee", "thigh", "shin"), ("{}Knee", "{}Ankle", "shin", "foot"),
                    ("{}Shoulder", "{}Elbow", "upper_arm", "lower_arm"),
                    ("{}Elbow", "{}Wrist", "lower_arm", "hand")] for side in ("Left", "Right")}


def bvh_fk(path):
    """Joint world positions [T, J, 3] (file units, Y-up) and joint names, from the file's text."""
    text = Path(path).read_text()
    head, motion = text.split("MOTION")
    names, parents, offsets, channels, stack = [], [], [], [], []
    last = -1
    for line in head.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] in ("ROOT", "JOINT", "End"):
            names.append(None if words[0] == "End" else words[1])
            parents.append(stack[-1] if stack else -1)
            channels.append([])
            last = len(names) - 1
        elif words[0] == "{":
            stack.append(last)
        elif words[0] == "}":
            stack.pop()
        elif words[0] == "OFFSET":
            offsets.append([float(w) for w in words[1:4]])
        elif words[0] == "CHANNELS":
            channels[last] = words[2:]
    rows = [r for r in motion.splitlines()[3:] if r.strip()]
    values = np.array([[float(v) for v in r.split()] for r in rows])
    num = len(values)
    pos, rot, col = [], [], 0
    for j, chans in enumerate(channels):
        local_pos = np.tile(offsets[j], (num, 1))
        local_rot = Rotation.identity(num)
        for c in chans:
            if c.endswith("position"):
                local_pos[:, "XYZ".index(c[0])] = values[:, col]
            else:  # intrinsic rotations in the channels' order
                local_rot = local_rot * Rotation.from_euler(c[0].upper(), values[:, col:col + 1], degrees=True)
            col += 1
        p = parents[j]
        pos.append(local_pos if p < 0 else pos[p] + rot[p].apply(local_pos))
        rot.append(local_rot if p < 0 else rot[p] * local_rot)
    keep = [j for j, n in enumerate(names) if n is not None]
    return np.stack([pos[j] for j in keep], axis=1), [names[j] for j in keep]


@pytest.fixture(scope="module")
def char():
    return KinCharModel(HUMANOID)


@pytest.fixture(scope="module")
def cmu_import():
    return Importer(HUMANOID).import_file(str(CMU_CLIP), contact_fix_mode="off", clamp_joints=True)


@needs_cmu
def test_cmu_reader_infers_the_cmu_unit_and_the_file_rate():
    source = read_bvh(str(CMU_CLIP))
    assert source.fps == pytest.approx(120.0, rel=1e-3)
    leg = np.linalg.norm(source.skeleton.local_pos[source.skeleton.body_names.index("LeftKnee")]) + \
        np.linalg.norm(source.skeleton.local_pos[source.skeleton.body_names.index("LeftAnkle")])
    assert leg == pytest.approx(14.2 * UNITS["CMU"], rel=0.02)  # the file's 7.29 + 6.92 units
    assert source.default_joint_map["LeftHip"] == "left_thigh"
    assert source.default_joint_map["Chest2"] == "torso"


@needs_cmu
def test_cmu_limb_directions_match_the_file_fk(cmu_import, char):
    """Thigh, shin, upper-arm and forearm directions (joint to child joint) of our clip against
    the file's own FK, Y-up turned Z-up, within 1 deg at every frame; frames with clamped joints
    are left out. Our knees and elbows are hinges; CMU's elbows turn up to 56 deg off our axis,
    and taking the twist about our axis left the forearms 23 deg off (median; 31 max) before
    the hinges were placed in the source's bend plane (measured: 4e-5 deg)."""
    src_pos, src_names = bvh_fk(CMU_CLIP)
    kept = ~cmu_import.joint_ranges.beyond.any(axis=1)
    assert kept.sum() > 0.9 * len(kept)
    src_pos = src_pos[kept] @ R_YZ.T
    ours = body_positions(char, cmu_import.motion)[kept]
    for side, limbs in CMU_LIMBS.items():
        for a, b, our_a, our_b in limbs:
            src_dir = src_pos[:, src_names.index(b.format(side))] - src_pos[:, src_names.index(a.format(side))]
            our_dir = ours[:, char.get_body_id(side.lower() + "_" + our_b)] - \
                ours[:, char.get_body_id(side.lower() + "_" + our_a)]
            err = angle_deg(src_dir, our_dir)
            assert err.max() < 1.0, (side, a, err.max())


@needs_cmu
def test_cmu_root_travel_is_the_file_travel_in_metres(cmu_import, char):
    """The pelvis's horizontal travel from the first frame equals the file's Hips travel (Z-up,
    CMU unit), scaled by the leg-length ratio the importer reports, within 2 cm."""
    src_pos, _ = bvh_fk(CMU_CLIP)
    src = (src_pos[:, 0] - src_pos[:1, 0]) @ R_YZ.T * UNITS["CMU"]
    ours = cmu_import.motion.frames[:, :3] - cmu_import.motion.frames[:1, :3]
    scale = cmu_import.scale
    assert np.abs(ours[:, :2] - scale * src[:, :2]).max() < 0.02
    assert np.linalg.norm(src[-1, :2]) > 1.0  # the clip walks


LAFAN_BVH = """HIERARCHY
ROOT Hips
{{
  OFFSET 0 {hip} 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
{legs}
  JOINT Spine
  {{
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    JOINT Spine2
    {{
      OFFSET 0 20 0
      CHANNELS 3 Zrotation Yrotation Xrotation
      JOINT Head
      {{
        OFFSET 0 25 0
        CHANNELS 3 Zrotation Yrotation Xrotation
        End Site
        {{
          OFFSET 0 10 0
        }}
      }}
    }}
  }}
}}
MOTION
Frames: {frames}
Frame Time: 0.033333
{rows}
"""
LAFAN_LEG = """  JOINT {Side}UpLeg
  {{
    OFFSET {x} 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    JOINT {Side}Leg
    {{
      OFFSET 0 -42 0
      CHANNELS 3 Zrotation Yrotation Xrotation
      JOINT {Side}Foot
      {{
        OFFSET 0 -40 0
        CHANNELS 3 Zrotation Yrotation Xrotation
        End Site
        {{
          OFFSET 0 -5 12
        }}
      }}
    }}
  }}"""


def write_lafan_style(path, frames):
    """A small Mixamo/LAFAN1-named skeleton in cm facing +z (the files' convention)."""
    legs = "\n".join(LAFAN_LEG.format(Side=s, x=x) for s, x in (("Left", 9), ("Right", -9)))
    path.write_text(LAFAN_BVH.format(hip=90, legs=legs, frames=len(frames),
                                     rows="\n".join(" ".join("{:.4f}".format(v) for v in r) for r in frames)))


def test_lafan_style_names_map_the_legs_and_the_cm_unit_is_inferred(tmp_path, char):
    """A file walking forward along its +z (LAFAN1's convention) in cm: mapped by the Mixamo
    names and read in metres. World positions stay as captured, so our clip walks along -y (the
    file's +z turned Z-up), facing that way (the pelvis's +x), with its left thigh bent forward
    by the file's 30 deg hip flexion (a rotation about the file's x axis)."""
    num = 10
    frames = np.zeros((num, 6 + 3 * 9))
    frames[:, 1] = 90.0
    frames[:, 2] = np.linspace(0.0, 30.0, num)  # 30 cm forward along the file's z
    frames[:, 6 + 2] = -30.0  # LeftUpLeg Xrotation: -30 deg about x swings the leg towards +z
    path = tmp_path / "walk.bvh"
    write_lafan_style(path, frames)
    source = read_bvh(str(path))
    assert source.default_joint_map == {"Hips": "pelvis", "LeftUpLeg": "left_thigh", "LeftLeg": "left_shin",
                                        "LeftFoot": "left_foot", "RightUpLeg": "right_thigh",
                                        "RightLeg": "right_shin", "RightFoot": "right_foot",
                                        "Spine2": "torso", "Head": "head"}
    assert any("unit cm" in n for n in source.notes)
    motion = Importer(HUMANOID).import_file(str(path), contact_fix_mode="off").motion
    travel = motion.frames[-1, :3] - motion.frames[0, :3]
    forward = np.array([0.0, -1.0, 0.0])
    assert travel @ forward == pytest.approx(0.30, abs=0.03) and abs(travel[0]) < 0.01
    facing = Rotation.from_rotvec(motion.frames[:, 3:6]).apply([1.0, 0.0, 0.0])
    assert angle_deg(facing, np.broadcast_to(forward, facing.shape)).max() < 1.0
    pos = body_positions(char, motion)
    thigh = pos[:, char.get_body_id("left_shin")] - pos[:, char.get_body_id("left_thigh")]
    down_forward = np.sin(np.radians(30.0)) * forward - np.array([0.0, 0.0, np.cos(np.radians(30.0))])
    assert angle_deg(thigh, np.broadcast_to(down_forward, thigh.shape)).max() < 3.0


def test_bad_bvh_input_names_the_file_and_what_was_expected(tmp_path):
    path = tmp_path / "bad.bvh"
    path.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    with pytest.raises(MimicKitError, match=re.escape(str(path))):
        read_bvh(str(path))
    frames = np.zeros((4, 6 + 3 * 9))
    frames[2, 9] = np.nan
    write_lafan_style(path, frames)
    with pytest.raises(MimicKitError, match="frame 2"):
        read_bvh(str(path))
    with pytest.raises(MimicKitError, match="bvh_scale must be > 0"):
        read_bvh(str(path), scale=0.0)
    with pytest.raises(MimicKitError, match="no --source_char"):
        read_bvh(str(path), source_char="x.txt")
    with pytest.raises(MimicKitError, match="--bvh_scale is for format bvh"):
        Importer(HUMANOID).import_file(str(REPO / "data" / "motions" / "humanoid" / "humanoid_walk.npz"),
                                       fmt="deepmimic", bvh_scale=0.01)


def test_a_hinge_bent_about_a_tilted_axis_is_placed_by_twisting_its_parent():
    """An upper arm hanging along -z with an elbow hinge about y; the source's forearm bends
    60 deg about an axis tilted 30 deg about the upper arm (scipy): the parent comes out
    twisted 30 deg about its bone, the hinge at 60 deg, the forearm along the target. Near a
    straight arm (bend 3 deg) the twist fades to a fifth and the hinge takes most of the bend."""
    bone, forearm, axis = np.array([0.0, 0.0, -0.3]), np.array([0.0, 0.0, -0.25]), np.array([0.0, 1.0, 0.0])
    tilt = Rotation.from_rotvec(np.radians(30.0) * np.array([0.0, 0.0, -1.0]))
    f64 = dict(dtype=torch.float64)
    for bend, twist_share in ((60.0, 1.0), (3.0, 3.0 / 15.0)):
        target = (tilt * Rotation.from_rotvec(np.radians(bend) * axis)).apply(forearm)
        parent, hinge = hinge_in_bend_plane(
            torch.tensor([[0.0, 0.0, 0.0, 1.0]], **f64), torch.tensor([0.0, 0.0, 0.0, 1.0], **f64),
            torch.tensor(axis, **f64), torch.tensor(bone, **f64), torch.tensor(forearm, **f64),
            torch.tensor(target[None], **f64))
        parent_rot, hinge_rot = Rotation.from_quat(parent.numpy()), Rotation.from_quat(hinge.numpy())
        assert np.abs(parent_rot.as_rotvec()[0] - twist_share * tilt.as_rotvec()).max() < 1e-6
        local = parent_rot.inv() * hinge_rot
        assert np.abs(local.as_rotvec()[0] / np.radians(bend) - axis).max() < (0.1 if bend < 10.0 else 1e-6)
    assert angle_deg(hinge_rot.apply(forearm), target).max() < 0.5 * 3.0  # within half the 3 deg bend

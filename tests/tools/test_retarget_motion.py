"""Whole-body retargeting by inverse kinematics (tools/retarget, tools/retarget_motion.py).

Measured on 30-40 frames of ``humanoid_walk_forward_medium.npz`` (one thread):

- our humanoid onto itself (every body, position and orientation, scale 1, no stance lock):
  joint rotations recovered within 4e-9 deg, hinge angles within 1e-10 rad, every body
  within 1e-4 cm; the test allows 0.01 deg and 0.01 cm.
- onto the G1 (tools/retarget/mappings/humanoid_to_g1.yaml, scale 0.791 from the legs):
  no dof outside the G1's ranges, feet within 0.03 cm and 0.0 deg of their targets, pelvis
  within 1 cm, knees 2 cm, elbows and wrists 3-4.5 cm (the G1's arms are shorter than the
  scaled human's); bounds: feet 0.5 cm / 1 deg, every position task 8 cm. Joint speeds stay
  under the mapping's 25 rad/s (they reach 6 rad/s; with a limit of 1.5 rad/s they keep to
  it). The G1's knees and ankle pitch follow the humanoid's (correlation 0.999, range within
  0.04 rad; bounds 0.99 and 0.1 rad).
- stance feet travel at most 0.01 cm over a stance (bound 1 cm), lowest sole point 0.01 cm
  above the floor at most during stances (bound 1 cm), nothing below the floor (bound 0.1 cm).
  Turning in place, a swing foot is slow at its 7 cm top; without the stance height test
  that counted as a stance and a "stance" foot floated 5.5 cm (bound 1.5 cm, measured 0.9).

The references are computed here with KinCharModel's kinematics and MuJoCo's geoms, apart
from the retargeter's own quality report (which is checked against them).
"""
import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.util import torch_util as tu
from tools.motion_import.ground import FootGeometry

mink = pytest.importorskip("mink", reason="retargeting needs mink: pip install mink")

from tools import retarget_motion  # noqa: E402
from tools.retarget import Retargeter, load_mapping  # noqa: E402

REPO = Path(__file__).parents[2]
HUMANOID = str(REPO / "data" / "assets" / "humanoid" / "humanoid.xml")
G1 = str(REPO / "data" / "assets" / "g1" / "g1.xml")
DUCKLING = str(REPO / "data" / "assets" / "duckling" / "duckling.xml")
WALK = str(REPO / "data" / "motions" / "humanoid" / "humanoid_walk_forward_medium.npz")
G1_MAP = str(REPO / "tools" / "retarget" / "mappings" / "humanoid_to_g1.yaml")
DUCK_MAP = str(REPO / "tools" / "retarget" / "mappings" / "humanoid_to_duckling.yaml")
G1_FEET = ["left_ankle_roll_link", "right_ankle_roll_link"]


def _clip(num_frames):
    m = Motion.load(WALK)
    return Motion(m.fps, m.loop_mode, m.frames[:num_frames], m.dof_names)


def _body_pos(kin, frames):
    f = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    pos, _ = kin.forward_kinematics(f[:, :3], tu.exp_map_to_quat(f[:, 3:6]), kin.joint_dof_to_joint_rot(f[:, 6:]))
    return pos.numpy()


@pytest.fixture(scope="module")
def g1_result(tmp_path_factory):
    """The walk's first 40 frames retargeted onto the G1: (retargeter, result, saved clip)."""
    out = tmp_path_factory.mktemp("g1") / "g1_walk.npz"
    rt = Retargeter(HUMANOID, G1, load_mapping(G1_MAP))
    result = rt.retarget(_clip(40), WALK)
    result.motion.save(str(out))
    return rt, result, out


def test_self_retarget_recovers_the_clip(tmp_path):
    """Humanoid onto itself, every body mapped, scale 1: the clip comes back."""
    kin = KinCharModel(HUMANOID)
    lines = ["scale: 1.0", "feet: [left_foot, right_foot]", "stance_lock: false", "posture_weight: 0.0",
             "velocity_limit: 1000.0", "max_iterations: 20", "tolerance: 1.0e-6", "bodies:"]
    lines += ["  - {{source: {0}, target: {0}, position_weight: 10.0, orientation_weight: 1.0}}".format(n)
              for n in kin.body_names]
    mapping = tmp_path / "self.yaml"
    mapping.write_text("\n".join(lines) + "\n")
    clip = _clip(30)
    result = Retargeter(HUMANOID, HUMANOID, load_mapping(str(mapping))).retarget(clip)
    a = torch.as_tensor(clip.frames, dtype=torch.float64)
    b = torch.as_tensor(result.motion.frames, dtype=torch.float64)
    ra, rb = kin.joint_dof_to_joint_rot(a[:, 6:]), kin.joint_dof_to_joint_rot(b[:, 6:])
    d = tu.quat_mul(tu.quat_conjugate(ra), rb)
    angle = np.degrees(2.0 * torch.atan2(d[..., :3].norm(dim=-1), d[..., 3].abs()).numpy())
    assert angle.max() < 0.01, angle.max()
    body_err = np.linalg.norm(_body_pos(kin, clip.frames) - _body_pos(kin, result.motion.frames), axis=-1)
    assert 100.0 * body_err.max() < 0.01
    assert result.motion.dof_names == kin.dof_names
    assert max(e["pos_max"] for e in result.quality.body_errors.values()) < 0.01
    assert result.quality.limit_hits == 0


def test_g1_limits_errors_and_clip(g1_result):
    """G1: within the joint ranges and velocity limits, task errors bounded, clip loads."""
    rt, result, out = g1_result
    kin = KinCharModel(G1)
    loaded = Motion.load(str(out))
    assert loaded.dof_names == kin.dof_names
    assert loaded.frames.shape == (40, 6 + kin.num_dofs)
    dof_pos = kin.joint_dof_to_dof_pos(torch.as_tensor(loaded.frames[:, 6:], dtype=torch.float64)).numpy()
    assert (dof_pos >= kin.dof_low.numpy() - 1e-5).all() and (dof_pos <= kin.dof_high.numpy() + 1e-5).all()
    speed = np.abs(np.diff(dof_pos[1:], axis=0)) * loaded.fps  # after the first solved frame
    assert speed.max() < 25.0 * 1.01, speed.max()
    q = result.quality
    assert 0.7 < result.scale < 0.85
    for foot in G1_FEET:
        assert q.body_errors[foot]["pos_max"] < 0.5 and q.body_errors[foot]["rot_max"] < 1.0
    assert q.body_errors["pelvis"]["pos_max"] < 2.0
    assert max(e["pos_max"] for e in q.body_errors.values() if "pos_max" in e) < 8.0
    # the solved feet (KinCharModel forward kinematics of the saved clip) are at the IK targets
    pos = _body_pos(kin, loaded.frames)
    maps = [b.target for b in rt.mapping.bodies]
    for foot in G1_FEET:
        err = np.linalg.norm(pos[:, kin.get_body_id(foot)] - result.target_pos[:, maps.index(foot)], axis=-1)
        assert 100.0 * err.max() < 0.5
    # the legs move as the human's: knee and ankle pitch follow the humanoid's knee and ankle y
    src = _clip(40)
    hum = KinCharModel(HUMANOID)
    src_pos = hum.joint_dof_to_dof_pos(torch.as_tensor(src.frames[:, 6:], dtype=torch.float64)).numpy()
    for h, g in (("left_knee", "left_knee_joint"), ("right_knee", "right_knee_joint"),
                 ("left_ankle_y", "left_ankle_pitch_joint")):
        x, y = src_pos[:, hum.dof_names.index(h)], dof_pos[:, kin.dof_names.index(g)]
        assert np.corrcoef(x, y)[0, 1] > 0.99 and abs(np.ptp(x) - np.ptp(y)) < 0.1, (h, g)
    report = q.as_dict()
    assert {"foot_slip_max", "penetration_max", "limit_hits", "body_errors", "frames_per_s"} <= set(report)


def test_velocity_limit(tmp_path):
    """A tight velocity limit (1.5 rad/s) holds between frames, the first solved frame aside."""
    text = Path(G1_MAP).read_text().replace("velocity_limit: 25.0", "velocity_limit: 1.5")
    assert "velocity_limit: 1.5" in text
    mapping = tmp_path / "slow.yaml"
    mapping.write_text(text)
    motion = Retargeter(HUMANOID, G1, load_mapping(str(mapping))).retarget(_clip(15)).motion
    kin = KinCharModel(G1)
    dof_pos = kin.joint_dof_to_dof_pos(torch.as_tensor(motion.frames[:, 6:], dtype=torch.float64)).numpy()
    speed = np.abs(np.diff(dof_pos, axis=0)) * motion.fps
    assert speed[1:].max() < 1.5 * 1.01 and speed[1:].max() > 1.4, speed[1:].max()


def test_g1_stance_feet_still_and_on_the_floor(g1_result):
    """G1: stance feet stay put on the floor, nothing under it."""
    _, result, out = g1_result
    kin = KinCharModel(G1)
    frames = Motion.load(str(out)).frames
    assert result.in_stance.any(axis=0).all()  # both feet have stances in a walk
    pos = _body_pos(kin, frames)
    lowest, _ = FootGeometry(kin, G1_FEET).foot_points_from_frames(frames)
    for f, foot in enumerate(G1_FEET):
        mask = result.in_stance[:, f]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        for a, e in zip(edges[0::2], edges[1::2]):
            xy = pos[a:e, kin.get_body_id(foot), :2]
            travel = np.linalg.norm(np.diff(xy, axis=0), axis=-1).sum()
            assert 100.0 * travel < 1.0, (foot, a, e, travel)
            assert 100.0 * lowest[a:e, f, 2].max() < 1.0
    assert 100.0 * lowest[..., 2].min() > -0.1
    assert result.quality.penetration_max < 0.1
    assert result.quality.foot_slip_max < 1.0


def test_turn_slow_swing_is_not_a_stance():
    """Turning in place, a swing foot is slow at its top (7 cm up): no stance there, so no stance foot floats."""
    m = Motion.load(str(REPO / "data" / "motions" / "humanoid" / "humanoid_turn_left_medium.npz"))
    clip = Motion(m.fps, m.loop_mode, m.frames[:40], m.dof_names)
    q = Retargeter(HUMANOID, G1, load_mapping(G1_MAP)).retarget(clip).quality
    assert q.num_stances >= 3
    assert q.stance_height_max < 1.5 and q.foot_slip_max < 1.0 and q.penetration_max < 0.1


def test_duckling_cli(tmp_path, capsys):
    """The command line onto the duckling (no arms) writes a clip and prints the report."""
    out = tmp_path / "duck.npz"
    rc = retarget_motion.main(["--target_char", DUCKLING, "--mapping", DUCK_MAP, "--max_frames", "20",
                               "--out", str(out), WALK])
    assert rc == 0
    text = capsys.readouterr().out
    assert "stance foot slip" in text and "frames/s" in text
    assert Motion.load(str(out)).dof_names == KinCharModel(DUCKLING).dof_names


@pytest.mark.skipif(not (REPO / ".." / "shared" / "data" / "deepmimic").is_dir(),
                    reason="reference data ../shared/data is absent")
def test_cli_imports_other_formats(tmp_path, capsys):
    """A DeepMimic .txt goes through the importer onto the humanoid, then onto the G1."""
    src = str(REPO / ".." / "shared" / "data" / "deepmimic" / "motions" / "humanoid3d_walk.txt")
    out = tmp_path / "g1.npz"
    rc = retarget_motion.main(["--target_char", G1, "--mapping", G1_MAP, "--max_frames", "20", "--out", str(out), src])
    assert rc == 0, capsys.readouterr().err
    assert Motion.load(str(out)).num_frames == 20


@pytest.mark.skipif(not (REPO / ".." / "shared" / "data" / "bvh_cmu" / "131_01.bvh").is_file(),
                    reason="the CMU clip ../shared/data/bvh_cmu/131_01.bvh is absent")
@pytest.mark.skipif(importlib.util.find_spec("bvhio") is None, reason="BVH import needs bvhio: pip install bvhio")
def test_cli_retargets_a_bvh_clip(tmp_path, capsys):
    """The CMU BVH goes through the importer (its ankles clamped) onto the humanoid, then onto the G1,
    whose pelvis follows the humanoid clip's travel scaled by the retargeting's leg ratio (within 5 cm)."""
    src = str(REPO / ".." / "shared" / "data" / "bvh_cmu" / "131_01.bvh")
    out = tmp_path / "g1.npz"
    args = ["--target_char", G1, "--mapping", G1_MAP, "--max_frames", "60", "--clamp_joints", "--out", str(out), src]
    assert retarget_motion.main(args) == 0, capsys.readouterr().err
    g1 = Motion.load(str(out))
    human = retarget_motion.read_clip(src, retarget_motion.DEFAULT_SOURCE, clamp_joints=True)
    scale = float(capsys.readouterr().out.split("scale ")[1].split()[0])
    assert g1.num_frames == 60 and g1.dof_names == KinCharModel(G1).dof_names
    travel = lambda m: m.frames[:60, :2] - m.frames[:1, :2]  # noqa: E731
    assert np.abs(travel(g1) - scale * travel(human)).max() < 0.05


@pytest.mark.parametrize("case", ["missing_input", "missing_mapping", "body", "dofs", "bad_key"])
def test_errors_exit_2(case, tmp_path, capsys, g1_result):
    """User mistakes: exit code 2 and one error line naming the problem."""
    out = str(tmp_path / "o.npz")
    args = ["--target_char", G1, "--mapping", G1_MAP, "--out", out, WALK]
    expect = ""
    if case == "missing_input":
        args[-1], expect = str(tmp_path / "nope.npz"), "nope.npz"
    elif case == "missing_mapping":
        args[3], expect = str(tmp_path / "nope.yaml"), "nope.yaml"
    elif case == "body":
        args[3], expect = DUCK_MAP, "no body 'trunk'"
    elif case == "dofs":
        args[-1], expect = str(g1_result[2]), "does not match character"
    elif case == "bad_key":
        bad = tmp_path / "bad.yaml"
        bad.write_text(textwrap.dedent("""\
            scale: 1.0
            bodies:
              - {source: pelvis, target: pelvis, position_weigth: 1.0}
            """))
        args[3], expect = str(bad), "position_weigth"
    rc = retarget_motion.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err

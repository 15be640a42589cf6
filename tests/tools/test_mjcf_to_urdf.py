"""The URDF written from an MJCF has the same kinematics and inertia, checked with MuJoCo's
own URDF importer (no placo needed)."""
import os
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from mimickit.util.errors import MimicKitError
from tools.gait_generation.mjcf_to_urdf import main, mjcf_to_urdf
from tools.gait_generation.robot import REPO_ROOT

CHARS = ["data/assets/humanoid/humanoid.xml", "data/assets/duckling/duckling.xml"]


def _load_urdf_in_mujoco(urdf_text, tmp_path):
    # Keep every link (no fusing of fixed joints) so bodies can be compared one to one.
    root = ET.fromstring(urdf_text)
    root.insert(0, ET.fromstring('<mujoco><compiler fusestatic="false" discardvisual="false"/></mujoco>'))
    path = tmp_path / "robot.urdf"
    path.write_text(ET.tostring(root, encoding="unicode"))
    return mujoco.MjModel.from_xml_path(str(path))


@pytest.mark.parametrize("char", CHARS)
def test_urdf_body_poses_match_the_mjcf_for_random_poses(char, tmp_path):
    mjcf = mujoco.MjModel.from_xml_path(os.path.join(REPO_ROOT, char))
    urdf = _load_urdf_in_mujoco(mjcf_to_urdf(os.path.join(REPO_ROOT, char)), tmp_path)
    d_mjcf, d_urdf = mujoco.MjData(mjcf), mujoco.MjData(urdf)
    rng = np.random.default_rng(0)
    hinges = [j for j in range(mjcf.njnt) if mjcf.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    assert urdf.njnt == len(hinges)  # the root link is fixed to the world in MuJoCo's import
    for _ in range(5):
        d_mjcf.qpos[:7] = [0, 0, 0, 1, 0, 0, 0]  # root at the origin, like the URDF's base link
        for j in hinges:
            low, high = mjcf.jnt_range[j]
            angle = rng.uniform(low, high)
            d_mjcf.qpos[mjcf.jnt_qposadr[j]] = angle
            d_urdf.qpos[urdf.joint(mjcf.joint(j).name).qposadr[0]] = angle
        mujoco.mj_kinematics(mjcf, d_mjcf)
        mujoco.mj_kinematics(urdf, d_urdf)
        for b in range(2, mjcf.nbody):
            ub = urdf.body(mjcf.body(b).name).id
            np.testing.assert_allclose(d_urdf.xpos[ub], d_mjcf.xpos[b], atol=1e-6)
            np.testing.assert_allclose(d_urdf.xmat[ub], d_mjcf.xmat[b], atol=1e-6)


@pytest.mark.parametrize("char", CHARS)
def test_urdf_masses_centres_of_mass_and_inertias_match_the_mjcf(char, tmp_path):
    mjcf = mujoco.MjModel.from_xml_path(os.path.join(REPO_ROOT, char))
    urdf = _load_urdf_in_mujoco(mjcf_to_urdf(os.path.join(REPO_ROOT, char)), tmp_path)
    d_mjcf, d_urdf = mujoco.MjData(mjcf), mujoco.MjData(urdf)
    d_mjcf.qpos[:7] = [0, 0, 0, 1, 0, 0, 0]
    mujoco.mj_kinematics(mjcf, d_mjcf)
    mujoco.mj_kinematics(urdf, d_urdf)

    def world_inertia(model, data, b):
        rot = data.ximat[b].reshape(3, 3)
        return rot @ np.diag(model.body_inertia[b]) @ rot.T

    for b in range(1, mjcf.nbody):
        ub = urdf.body(mjcf.body(b).name).id
        assert urdf.body_mass[ub] == pytest.approx(mjcf.body_mass[b], rel=1e-9)
        np.testing.assert_allclose(d_urdf.xipos[ub], d_mjcf.xipos[b], atol=1e-9)
        np.testing.assert_allclose(world_inertia(urdf, d_urdf, ub), world_inertia(mjcf, d_mjcf, b), atol=1e-9)
    # The links between the hinges of a triplet add a negligible mass.
    assert urdf.body_mass.sum() == pytest.approx(mjcf.body_mass.sum(), abs=1e-4)


def test_hinge_triplets_become_chains_of_placeholder_links():
    root = ET.fromstring(mjcf_to_urdf(os.path.join(REPO_ROOT, "data/assets/humanoid/humanoid.xml")))
    joints = {j.get("name"): j for j in root.findall("joint")}
    assert joints["right_hip_x"].find("child").get("link") == "right_thigh__right_hip_x"
    assert joints["right_hip_z"].find("parent").get("link") == "right_thigh__right_hip_x"
    assert joints["right_hip_y"].find("child").get("link") == "right_thigh"
    assert sum(j.get("type") == "revolute" for j in joints.values()) == 28
    limit = joints["right_knee"].find("limit")
    assert float(limit.get("lower")) == pytest.approx(np.deg2rad(-2)) and float(limit.get("effort")) == 150


def test_extra_frame_with_a_body_name_renames_the_body_link():
    text = mjcf_to_urdf(os.path.join(REPO_ROOT, "data/assets/humanoid/humanoid.xml"),
                        {"left_foot": ("left_foot", [0.045, 0.0, -0.06])})
    root = ET.fromstring(text)
    links = [link.get("name") for link in root.findall("link")]
    assert "left_foot_link" in links and "left_foot" in links
    frame_joint = [j for j in root.findall("joint") if j.find("child").get("link") == "left_foot"][0]
    assert frame_joint.get("type") == "fixed" and frame_joint.find("parent").get("link") == "left_foot_link"
    assert frame_joint.find("origin").get("xyz") == "0.045 0 -0.06"


def test_rejects_a_joint_that_is_not_a_hinge(tmp_path):
    path = tmp_path / "slider.xml"
    path.write_text('<mujoco><worldbody><body name="base"><freejoint/><geom size="0.1"/>'
                    '<body name="arm"><joint name="slide" type="slide"/><geom size="0.05"/></body>'
                    '</body></worldbody></mujoco>')
    with pytest.raises(MimicKitError, match="slide.*not a hinge"):
        mjcf_to_urdf(str(path))


def test_command_line_writes_the_urdf(tmp_path, capsys):
    out = tmp_path / "duckling.urdf"
    assert main([os.path.join(REPO_ROOT, "data/assets/duckling/duckling.xml"), str(out)]) == 0
    assert ET.parse(out).getroot().get("name") == "duckling"
    assert main([str(tmp_path / "missing.xml"), str(out)]) == 2
    assert "character file not found" in capsys.readouterr().err

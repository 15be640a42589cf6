"""KinCharModel against MuJoCo's own kinematics, scipy's Euler angles and finite differences."""
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util import torch_util as tu
from mimickit.util.errors import MimicKitError

REPO = Path(__file__).resolve().parents[2]
HUMANOID = str(REPO / "data/assets/humanoid/humanoid.xml")


@pytest.fixture(scope="module")
def char():
    return KinCharModel(HUMANOID)


def random_pose(char, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    dof_pos = torch.rand(n, char.num_dofs, generator=g) * (char.dof_high - char.dof_low) + char.dof_low
    root_pos = torch.randn(n, 3, generator=g)
    root_rot = tu.quat_normalize(torch.randn(n, 4, generator=g))
    return root_pos.double(), root_rot.double(), dof_pos.double()


def mujoco_body_poses(root_pos, root_rot, dof_pos):
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    data = mujoco.MjData(model)
    pos, quat = [], []
    for i in range(root_pos.shape[0]):
        data.qpos[:3] = root_pos[i].numpy()
        data.qpos[3:7] = tu.quat_xyzw_to_wxyz(root_rot[i]).numpy()
        data.qpos[7:] = dof_pos[i].numpy()
        mujoco.mj_kinematics(model, data)
        pos.append(data.xpos[1:].copy())
        quat.append(data.xquat[1:].copy())
    return np.array(pos), tu.quat_wxyz_to_xyzw(torch.tensor(np.array(quat)))


def test_fk_matches_mujoco_for_random_poses(char):
    root_pos, root_rot, dof_pos = random_pose(char, 100)
    body_pos, body_rot = char.forward_kinematics(root_pos, root_rot, char.dof_pos_to_joint_rot(dof_pos))
    ref_pos, ref_rot = mujoco_body_poses(root_pos, root_rot, dof_pos)
    np.testing.assert_allclose(body_pos.numpy(), ref_pos, atol=1e-5)
    assert tu.quat_diff_angle(body_rot, ref_rot).max() < 1e-5


def test_fk_honours_hinge_anchor_off_body_origin(tmp_path):
    xml = tmp_path / "arm.xml"
    xml.write_text("""<mujoco><worldbody><body name="base"><freejoint/><geom size="0.1"/>
      <body name="link" pos="0.3 0 0" quat="0.9 0.1 0.3 0"><joint name="j" axis="0 1 0" pos="0.1 0.05 0"/>
        <geom size="0.05"/></body></body></worldbody></mujoco>""")
    char = KinCharModel(str(xml))
    root_pos, root_rot = torch.randn(5, 3).double(), tu.quat_normalize(torch.randn(5, 4).double())
    dof_pos = torch.randn(5, 1).double()
    body_pos, _ = char.forward_kinematics(root_pos, root_rot, char.dof_pos_to_joint_rot(dof_pos))
    model = mujoco.MjModel.from_xml_path(str(xml))
    data = mujoco.MjData(model)
    for i in range(5):
        data.qpos[:] = np.concatenate([root_pos[i], tu.quat_xyzw_to_wxyz(root_rot[i]), dof_pos[i]])
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(body_pos[i].numpy(), data.xpos[1:], atol=1e-9)


def test_triplet_angles_are_intrinsic_euler_in_axis_order(char):
    """Each x, z, y triplet's angles equal scipy's intrinsic 'XZY' decomposition of its rotation."""
    _, _, dof_pos = random_pose(char, 50, seed=3)
    joint_rot = char.dof_pos_to_joint_rot(dof_pos)
    torso = char.get_body_id("torso") - 1
    offset = int(char.joint_dof_offsets[torso])
    assert char.dof_names[offset:offset + 3] == ["torso_x", "torso_z", "torso_y"]
    ref = Rotation.from_quat(joint_rot[:, torso].numpy()).as_euler("XZY")
    np.testing.assert_allclose(dof_pos[:, offset:offset + 3].numpy(), ref, atol=1e-9)


def test_dof_pos_round_trips_through_rotation(char):
    _, _, dof_pos = random_pose(char, 200, seed=1)
    back = char.joint_rot_to_dof_pos(char.dof_pos_to_joint_rot(dof_pos))
    np.testing.assert_allclose(back.numpy(), dof_pos.numpy(), atol=1e-9)


def test_joint_dof_is_exp_map_of_joint_rotation(char):
    _, _, dof_pos = random_pose(char, 50, seed=2)
    joint_rot = char.dof_pos_to_joint_rot(dof_pos)
    joint_dof = char.dof_pos_to_joint_dof(dof_pos)
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        off = int(char.joint_dof_offsets[j])
        if n == 3:
            ref = Rotation.from_quat(joint_rot[:, j].numpy()).as_rotvec()
            np.testing.assert_allclose(joint_dof[:, off:off + 3].numpy(), ref, atol=1e-9)
        elif n == 1:
            np.testing.assert_allclose(joint_dof[:, off].numpy(), dof_pos[:, off].numpy(), atol=1e-9)
    np.testing.assert_allclose(char.joint_dof_to_dof_pos(joint_dof).numpy(), dof_pos.numpy(), atol=1e-9)


def test_dof_vel_conversion_matches_finite_difference(char):
    _, _, dof_pos = random_pose(char, 50, seed=4)
    dof_vel = torch.randn_like(dof_pos)
    h = 1e-6
    rot0 = char.dof_pos_to_joint_rot(dof_pos - h * dof_vel)
    rot1 = char.dof_pos_to_joint_rot(dof_pos + h * dof_vel)
    omega_fd = tu.quat_to_exp_map(tu.quat_mul(rot1, tu.quat_conjugate(rot0))) / (2 * h)
    joint_dof_vel = char.dof_vel_to_joint_dof_vel(dof_pos, dof_vel)
    for j, n in enumerate(char.joint_num_dofs.tolist()):
        off = int(char.joint_dof_offsets[j])
        if n == 3:
            np.testing.assert_allclose(joint_dof_vel[:, off:off + 3].numpy(), omega_fd[:, j].numpy(), atol=1e-6)
    back = char.joint_dof_vel_to_dof_vel(dof_pos, joint_dof_vel)
    np.testing.assert_allclose(back.numpy(), dof_vel.numpy(), atol=1e-6)


def test_missing_character_file_is_an_error_naming_it():
    with pytest.raises(MimicKitError, match="nothere.xml"):
        KinCharModel("nothere.xml")


def test_character_without_free_root_is_rejected(tmp_path):
    xml = tmp_path / "fixed.xml"
    xml.write_text('<mujoco><worldbody><body name="b"><joint type="hinge"/><geom size="0.1"/></body></worldbody></mujoco>')
    with pytest.raises(MimicKitError, match="free joint"):
        KinCharModel(str(xml))


def test_non_orthogonal_triplet_is_rejected(tmp_path):
    xml = tmp_path / "skew.xml"
    xml.write_text("""<mujoco><worldbody><body name="r"><freejoint/><geom size="0.1"/>
      <body name="c" pos="0 0 0.2"><joint name="a" axis="1 0 0"/><joint name="b" axis="1 1 0"/>
      <joint name="c" axis="0 0 1"/><geom size="0.1"/></body></body></worldbody></mujoco>""")
    with pytest.raises(MimicKitError, match="'c'.*not orthogonal"):
        KinCharModel(str(xml))


def test_default_pose_is_the_keyframe_named_default_as_mujoco_resets_to_it():
    path = str(REPO / "data/assets/quadruped/quadruped.xml")
    kin = KinCharModel(path)
    model = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("default").id)
    adr = [model.jnt_qposadr[model.joint(n).id] for n in kin.dof_names]
    np.testing.assert_allclose(kin.default_dof_pos.numpy(), data.qpos[adr], atol=1e-6)
    np.testing.assert_allclose(kin.default_root_pos.numpy(), data.qpos[:3], atol=1e-6)
    w, x, y, z = data.qpos[3:7]
    np.testing.assert_allclose(kin.default_root_rot.numpy(), [x, y, z, w], atol=1e-6)


def test_default_pose_without_keyframe_is_the_rest_placement_with_dofs_at_zero_within_limits():
    kin = KinCharModel(HUMANOID)
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    assert model.nkey == 0
    np.testing.assert_allclose(kin.default_root_pos.numpy(), model.body_pos[1], atol=1e-6)
    expected = np.clip(0.0, kin.dof_low.numpy(), kin.dof_high.numpy())
    np.testing.assert_allclose(kin.default_dof_pos.numpy(), expected, atol=0)


def test_keyframe_outside_the_joint_range_raises_naming_the_dof(tmp_path):
    text = (REPO / "data/assets/quadruped/quadruped.xml").read_text()
    bad = text.replace('qpos="0 0 0.312 1 0 0 0  0 0.8 -1.5', 'qpos="0 0 0.312 1 0 0 0  0 0.8 -0.5')
    path = tmp_path / "bad.xml"
    path.write_text(bad)
    with pytest.raises(MimicKitError, match="FL_calf_joint"):
        KinCharModel(str(path))


# line 5 holds the unclosed <geom> tag
UNCLOSED_TAG_XML = """<mujoco>
  <worldbody>
    <body name="root">
      <freejoint/>
      <geom size="0.1"
    </body>
  </worldbody>
</mujoco>
"""


def test_mjcf_syntax_error_keeps_mujocos_message_and_line_number(tmp_path):
    xml = tmp_path / "broken.xml"
    xml.write_text(UNCLOSED_TAG_XML)
    with pytest.raises(ValueError) as mujoco_error:
        mujoco.MjModel.from_xml_path(str(xml))
    with pytest.raises(MimicKitError) as error:
        KinCharModel(str(xml))
    message = str(error.value)
    assert str(xml) in message and "\n" not in message
    assert " ".join(str(mujoco_error.value).split()) in message  # MuJoCo's text, line number included
    assert "Line number=5" in message


def test_mjcf_schema_error_keeps_the_element_and_line(tmp_path):
    xml = tmp_path / "typo.xml"
    xml.write_text(UNCLOSED_TAG_XML.replace('size="0.1"\n', 'size="0.1" colour="red"/>\n'))
    with pytest.raises(MimicKitError) as error:
        KinCharModel(str(xml))
    message = str(error.value)
    assert str(xml) in message and "'colour'" in message and "Element 'geom', line 5" in message

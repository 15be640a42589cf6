"""MujocoPose: clip frames to MuJoCo qpos and back, checked with MuJoCo's own kinematics."""
import mujoco
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.mujoco_pose import MujocoPose, frames_to_pose

HUMANOID = "data/assets/humanoid/humanoid.xml"


def random_frames(kin, n=20, seed=0):
    rng = np.random.default_rng(seed)
    dof_pos = rng.uniform(kin.dof_low.numpy(), kin.dof_high.numpy(), size=(n, kin.num_dofs))
    joint_dof = kin.dof_pos_to_joint_dof(torch.tensor(dof_pos)).numpy()
    root_rotvec = Rotation.random(n, random_state=seed).as_rotvec()
    return np.concatenate([rng.normal(size=(n, 3)), root_rotvec, joint_dof], axis=1)


def test_qpos_of_frames_puts_bodies_where_kin_char_model_fk_does():
    kin = KinCharModel(HUMANOID)
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    pose = MujocoPose(model, kin)
    frames = random_frames(kin)
    root_pos, root_rot, dof_pos = frames_to_pose(kin, frames)
    fk_pos, _ = kin.forward_kinematics(torch.tensor(root_pos), torch.tensor(root_rot),
                                       kin.dof_pos_to_joint_rot(torch.tensor(dof_pos)))
    data = mujoco.MjData(model)
    for t in pose.kinematics(data, pose.qpos_from_frames(frames)):
        np.testing.assert_allclose(data.xpos[1:], fk_pos[t].numpy(), atol=1e-6)


def test_frames_round_trip_through_qpos():
    kin = KinCharModel(HUMANOID)
    pose = MujocoPose(mujoco.MjModel.from_xml_path(HUMANOID), kin)
    frames = random_frames(kin, seed=1)
    back = pose.frames_from_qpos(pose.qpos_from_frames(frames))
    np.testing.assert_allclose(back[:, :3], frames[:, :3], atol=1e-9)
    same_root = Rotation.from_rotvec(back[:, 3:6]) * Rotation.from_rotvec(frames[:, 3:6]).inv()
    assert same_root.magnitude().max() < 1e-6
    np.testing.assert_allclose(kin.joint_dof_to_dof_pos(torch.tensor(back[:, 6:])).numpy(),
                               kin.joint_dof_to_dof_pos(torch.tensor(frames[:, 6:])).numpy(), atol=1e-6)

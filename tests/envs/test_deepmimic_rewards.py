"""Each DeepMimic reward term at a known tracking error against the kernel computed by hand."""
import math

import torch
from scipy.spatial.transform import Rotation

from mimickit.envs import deepmimic_rewards as rw


def rotvec_quat(rotvec):
    return torch.tensor(Rotation.from_rotvec(rotvec).as_quat(), dtype=torch.float64)


def test_pose_reward_is_the_kernel_of_weighted_squared_joint_angles():
    ref = torch.tensor(Rotation.random(3, random_state=0).as_quat(), dtype=torch.float64).unsqueeze(0)
    # Joint errors of 0.1, 0.2 and 0.3 rad about arbitrary axes, applied on the parent side.
    err = rotvec_quat([[0.1, 0, 0], [0, 0.2, 0], [0.3 / math.sqrt(2), 0, 0.3 / math.sqrt(2)]])
    sim = torch.tensor((Rotation.from_quat(err.numpy()) * Rotation.from_quat(ref[0].numpy())).as_quat()).unsqueeze(0)
    w = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    expected = math.exp(-2.0 * (1.0 * 0.01 + 0.5 * 0.04 + 2.0 * 0.09))
    assert abs(rw.pose_reward(sim, ref, w, 2.0).item() - expected) < 1e-9


def test_velocity_reward_is_the_kernel_of_weighted_squared_velocity_errors():
    ref = torch.tensor([[1.0, -2.0, 0.5, 0.0]])
    sim = ref + torch.tensor([[0.5, 0.0, -1.0, 2.0]])
    w = torch.tensor([1.0, 1.0, 0.5, 0.25])
    expected = math.exp(-0.1 * (0.25 + 0.0 + 0.5 * 1.0 + 0.25 * 4.0))
    assert abs(rw.velocity_reward(sim, ref, w, 0.1).item() - expected) < 1e-6


def test_root_pose_reward_weighs_rotation_error_by_a_tenth():
    ref_pos = torch.tensor([[1.0, 2.0, 0.9]], dtype=torch.float64)
    sim_pos = ref_pos + torch.tensor([[0.1, -0.2, 0.0]], dtype=torch.float64)
    ref_rot = rotvec_quat([[0.0, 0.0, 1.0]]).unsqueeze(0)[0]
    sim_rot = torch.tensor((Rotation.from_rotvec([0.4, 0, 0]) * Rotation.from_quat(ref_rot.numpy())).as_quat())
    expected = math.exp(-5.0 * (0.01 + 0.04 + 0.1 * 0.16))
    assert abs(rw.root_pose_reward(sim_pos, ref_pos, sim_rot, ref_rot, 5.0).item() - expected) < 1e-9


def test_root_vel_reward_weighs_angular_velocity_error_by_a_tenth():
    ref_v, ref_w = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.5]])
    sim_v, sim_w = torch.tensor([[0.7, 0.4, 0.0]]), torch.tensor([[1.0, 0.0, 0.5]])
    expected = math.exp(-1.0 * (0.09 + 0.16 + 0.1 * 1.0))
    assert abs(rw.root_vel_reward(sim_v, ref_v, sim_w, ref_w, 1.0).item() - expected) < 1e-6


def test_key_pos_reward_sums_squared_distances_over_key_bodies():
    ref = torch.zeros(1, 2, 3)
    sim = torch.tensor([[[0.1, 0.0, 0.0], [0.0, 0.0, -0.2]]])
    expected = math.exp(-10.0 * (0.01 + 0.04))
    assert abs(rw.key_pos_reward(sim, ref, 10.0).item() - expected) < 1e-6


def test_every_term_is_one_at_perfect_tracking():
    q = torch.tensor(Rotation.random(4, random_state=3).as_quat()).unsqueeze(0)
    v = torch.randn(1, 4)
    assert torch.allclose(rw.pose_reward(q, q, torch.ones(4, dtype=torch.float64), 2.0), torch.ones(1, dtype=torch.float64))
    assert torch.allclose(rw.velocity_reward(v, v, torch.ones(4), 0.1), torch.ones(1))
    assert torch.allclose(rw.key_pos_reward(v[:, :3].reshape(1, 1, 3), v[:, :3].reshape(1, 1, 3), 10.0), torch.ones(1))

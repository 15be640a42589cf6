"""The Isaac Gym engine without Isaac Gym: its registry entry, its install error, and its pure
conversions checked against scipy rotations and MuJoCo's kinematics.

The engine itself cannot run here (no Isaac Gym, no GPU); tests/test_type_check.py
type-checks it against isaacgym-stubs.
"""
import importlib.util
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.engine_builder import build_engine
from mimickit.engines.isaac_gym_engine import (INSTALL_HINT, PhysxDofMap, dof_axes, kinematic_body_state,
                                              physx_triplet_to_rotation, rotation_to_physx_triplet)
from mimickit.util.errors import MimicKitError

REPO = Path(__file__).resolve().parents[2]
HUMANOID = str(REPO / "data/assets/humanoid/humanoid.xml")
CONFIG = REPO / "data/engines/isaac_gym_engine.yaml"
HUMANOID_TRIPLET_ORDER = "XZY"  # humanoid.xml: hinge triplets x, z, y (scipy: upper case = intrinsic)


@pytest.fixture(scope="module")
def kin():
    return KinCharModel(HUMANOID)


def random_rotations(n, seed):
    return Rotation.random(n, random_state=seed)


def random_axes(n, rng):
    """``[n, 3, 3]`` orthonormal rows, half of them left-handed."""
    axes = Rotation.random(n, random_state=rng.integers(1 << 30)).as_matrix()
    axes[::2, 2] *= -1.0
    return axes


def triplet_angles(kin, n, rng):
    """Random hinge angles inside the file's ranges (the Euler decomposition is unique there)."""
    low, high = kin.dof_low.double().numpy(), kin.dof_high.double().numpy()
    margin = 0.02
    return torch.from_numpy(rng.uniform(low + margin, high - margin, size=(n, kin.num_dofs)))


# ------------------------------------------------------------------ registry and errors
@pytest.mark.skipif(importlib.util.find_spec("isaacgym") is not None, reason="Isaac Gym is installed here")
def test_building_isaac_gym_without_it_raises_the_one_line_install_error(tmp_path):
    path = tmp_path / "engine.yaml"
    path.write_text(CONFIG.read_text())
    with pytest.raises(MimicKitError) as info:
        build_engine(str(path), 2, "cpu", False)
    message = str(info.value)
    assert message == INSTALL_HINT and "\n" not in message
    assert "https://developer.nvidia.com/isaac-gym" in message and "pip install -e isaacgym/python" in message


def test_registry_lists_isaac_gym_and_still_builds_mujoco(tmp_path):
    path = tmp_path / "engine.yaml"
    path.write_text("engine_name: nope\n")
    with pytest.raises(MimicKitError, match=r"known: (.*, )?isaac_gym(, .*)?\)"):
        build_engine(str(path), 1, "cpu", False)
    path.write_text((REPO / "data/engines/mujoco_engine.yaml").read_text())
    build_engine(str(path), 1, "cpu", False).close()


def test_isaac_gym_config_rejects_a_bad_key_value_before_importing_isaac_gym(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    config["env_spacing"] = -1.0
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(MimicKitError, match="key 'env_spacing'"):
        build_engine(str(path), 1, "cpu", False)


# ------------------------------------------------------------------ triplet coordinates
def test_physx_triplet_coordinates_are_the_rotation_vector_on_the_joint_axes():
    rng = np.random.default_rng(0)
    rot = random_rotations(64, 1)
    axes = random_axes(64, rng)
    quat = torch.from_numpy(rot.as_quat())  # scipy is (x, y, z, w) too
    coords = rotation_to_physx_triplet(quat, torch.from_numpy(axes))
    expected = np.einsum("nij,nj->ni", axes, rot.as_rotvec())
    np.testing.assert_allclose(coords.numpy(), expected, atol=1e-12)
    back = Rotation.from_quat(physx_triplet_to_rotation(coords, torch.from_numpy(axes)).numpy())
    assert np.all((back * rot.inv()).magnitude() < 1e-9)


def test_dof_axes_are_the_files_hinge_axes(kin):
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    expected = np.array([model.joint(name).axis for name in kin.dof_names])
    np.testing.assert_allclose(dof_axes(kin).numpy(), expected, atol=1e-12)


def test_triplet_sim_positions_are_the_rotation_vector_of_the_files_euler_angles(kin):
    rng = np.random.default_rng(1)
    dof_pos = triplet_angles(kin, 32, rng)
    dof_map = PhysxDofMap(kin)
    sim_pos = dof_map.pos_to_sim(dof_pos)
    axes = dof_axes(kin).numpy()
    for dofs in dof_map.triplet_dofs.tolist():
        rot = Rotation.from_euler(HUMANOID_TRIPLET_ORDER, dof_pos[:, dofs].numpy())
        expected = rot.as_rotvec() @ axes[dofs].T
        np.testing.assert_allclose(sim_pos[:, dofs].numpy(), expected, atol=1e-10)
    hinges = [d for d in range(kin.num_dofs) if not dof_map.triplet_mask[d]]
    np.testing.assert_array_equal(sim_pos[:, hinges].numpy(), dof_pos[:, hinges].numpy())


def test_sim_positions_round_trip_to_the_same_angles_and_rotations(kin):
    rng = np.random.default_rng(2)
    dof_pos = triplet_angles(kin, 64, rng)
    dof_map = PhysxDofMap(kin)
    back = dof_map.pos_from_sim(dof_map.pos_to_sim(dof_pos))
    np.testing.assert_allclose(back.numpy(), dof_pos.numpy(), atol=1e-9)
    # any PhysX coordinates (within pi of zero): back to the same rotation through KinCharModel
    sim_pos = torch.from_numpy(Rotation.random(64 * len(dof_map.triplet_dofs), random_state=3).as_rotvec())
    sim = torch.zeros(64, kin.num_dofs, dtype=torch.float64)
    sim[:, dof_map.triplet_dofs.reshape(-1)] = sim_pos.reshape(64, -1)
    joint_rot = kin.dof_pos_to_joint_rot(dof_map.pos_from_sim(sim))[:, dof_map.triplet_joints]
    axes = dof_axes(kin).numpy()
    for t, dofs in enumerate(dof_map.triplet_dofs.tolist()):
        expected = Rotation.from_rotvec(sim[:, dofs].numpy() @ axes[dofs])
        got = Rotation.from_quat(joint_rot[:, t].numpy())
        assert np.all((got * expected.inv()).magnitude() < 1e-9)


def test_triplet_sim_velocities_are_the_child_frame_angular_velocity(kin):
    rng = np.random.default_rng(4)
    dof_pos = triplet_angles(kin, 16, rng)
    dof_vel = torch.from_numpy(rng.normal(size=dof_pos.shape))
    dof_map = PhysxDofMap(kin)
    sim_vel = dof_map.vel_to_sim(dof_pos, dof_vel)
    axes = dof_axes(kin).numpy()
    h = 1e-6
    for dofs in dof_map.triplet_dofs.tolist():
        q0 = Rotation.from_euler(HUMANOID_TRIPLET_ORDER, dof_pos[:, dofs].numpy())
        q1 = Rotation.from_euler(HUMANOID_TRIPLET_ORDER, (dof_pos + h * dof_vel)[:, dofs].numpy())
        omega_child = (q0.inv() * q1).as_rotvec() / h  # finite difference, child (moving) frame
        np.testing.assert_allclose(sim_vel[:, dofs].numpy(), omega_child @ axes[dofs].T, atol=1e-4)
    np.testing.assert_allclose(dof_map.vel_from_sim(dof_pos, sim_vel).numpy(), dof_vel.numpy(), atol=1e-9)


def test_generalised_forces_keep_the_power_of_the_velocities(kin):
    rng = np.random.default_rng(5)
    dof_pos = triplet_angles(kin, 16, rng)
    dof_vel = torch.from_numpy(rng.normal(size=dof_pos.shape))
    sim_force = torch.from_numpy(rng.normal(size=dof_pos.shape))
    dof_map = PhysxDofMap(kin)
    force = dof_map.force_from_sim(dof_pos, sim_force)
    power_ours = (force * dof_vel).sum(-1)
    power_sim = (sim_force * dof_map.vel_to_sim(dof_pos, dof_vel)).sum(-1)
    np.testing.assert_allclose(power_ours.numpy(), power_sim.numpy(), atol=1e-9)
    np.testing.assert_allclose(dof_map.force_to_sim(dof_pos, force).numpy(), sim_force.numpy(), atol=1e-8)


def test_reversed_simulator_axes_flip_their_coordinates(kin):
    rng = np.random.default_rng(6)
    dof_pos = triplet_angles(kin, 8, rng)
    plain = PhysxDofMap(kin)
    sign = torch.ones(kin.num_dofs, dtype=torch.float64)
    flipped_hinge = next(d for d in range(kin.num_dofs) if not plain.triplet_mask[d])
    flipped_triplet_dof = int(plain.triplet_dofs[0, 2])
    sign[[flipped_hinge, flipped_triplet_dof]] = -1.0
    flipped = PhysxDofMap(kin, dof_axes(kin) * sign.unsqueeze(-1))
    np.testing.assert_allclose(flipped.pos_to_sim(dof_pos).numpy(), (plain.pos_to_sim(dof_pos) * sign).numpy(),
                               atol=1e-12)
    np.testing.assert_allclose(flipped.pos_from_sim(flipped.pos_to_sim(dof_pos)).numpy(), dof_pos.numpy(), atol=1e-9)


# ------------------------------------------------------------------ kinematics after setters
def test_kinematic_body_state_matches_mujoco(kin):
    rng = np.random.default_rng(7)
    n = 4
    root_pos = torch.from_numpy(rng.normal(size=(n, 3)))
    root_rot = torch.from_numpy(Rotation.random(n, random_state=8).as_quat())
    root_vel = torch.from_numpy(rng.normal(size=(n, 3)))
    root_ang_vel = torch.from_numpy(rng.normal(size=(n, 3)))
    dof_pos = triplet_angles(kin, n, rng)
    dof_vel = torch.from_numpy(rng.normal(size=(n, kin.num_dofs)))
    body_pos, body_rot, body_vel, body_ang_vel = kinematic_body_state(
        kin, root_pos, root_rot, root_vel, root_ang_vel, dof_pos, dof_vel)

    model = mujoco.MjModel.from_xml_path(HUMANOID)
    data = mujoco.MjData(model)
    body_ids = [model.body(b).id for b in kin.body_names]
    dof_qpos = [model.joint(j).qposadr[0] for j in kin.dof_names]
    dof_qvel = [model.joint(j).dofadr[0] for j in kin.dof_names]
    for i in range(n):
        data.qpos[:3] = root_pos[i].numpy()
        data.qpos[3:7] = np.roll(root_rot[i].numpy(), 1)  # MuJoCo (w, x, y, z)
        data.qpos[dof_qpos] = dof_pos[i].numpy()
        data.qvel[:3] = root_vel[i].numpy()
        data.qvel[3:6] = Rotation.from_quat(root_rot[i].numpy()).inv().apply(root_ang_vel[i].numpy())
        data.qvel[dof_qvel] = dof_vel[i].numpy()
        mujoco.mj_forward(model, data)
        np.testing.assert_allclose(body_pos[i].numpy(), data.xpos[body_ids], atol=1e-10)
        mujoco_rot = Rotation.from_quat(np.roll(data.xquat[body_ids], -1, axis=1))
        rot_err = Rotation.from_quat(body_rot[i].numpy()) * mujoco_rot.inv()
        assert np.all(rot_err.magnitude() < 1e-9)
        for k, b in enumerate(body_ids):
            velocity = np.zeros(6)  # (angular, linear), world frame, at the body frame origin
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, b, velocity, 0)
            np.testing.assert_allclose(body_ang_vel[i, k].numpy(), velocity[:3], atol=1e-6)
            np.testing.assert_allclose(body_vel[i, k].numpy(), velocity[3:], atol=1e-6)

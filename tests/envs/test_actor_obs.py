"""Deployable actor observations (env YAML key actor_obs) and the privileged critic observation."""
import math

import mujoco
import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from mimickit.envs.char_obs import ROBOT_OBS_TERMS, obs_layout
from mimickit.envs.env_builder import build_env
from mimickit.util.errors import MimicKitError

ENGINE = "data/engines/mujoco_engine.yaml"
QUADRUPED_DEPLOY = "data/envs/amp_quadruped_command_deploy_env.yaml"
DUCKLING_DEPLOY = "data/envs/amp_duckling_command_deploy_env.yaml"
# Terms a robot cannot measure: root height and world position, body states (world/heading frame
# velocities need the simulator), the reference root relative to the simulated root.
PRIVILEGED = ("root_height", "body_pos", "body_rot", "body_vel", "body_ang_vel", "root_pos", "root_rot")


def _env(tmp_path, base, num_envs=3, **changes):
    """The env of YAML ``base`` with ``changes`` (a value None removes the key)."""
    cfg = yaml.safe_load(open(base))
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return build_env(str(path), ENGINE, num_envs, "cpu", False), str(path)


def _privileged(name):
    return any(name == p or name.endswith("_" + p) for p in PRIVILEGED)


@pytest.mark.parametrize("base, goal", [
    (QUADRUPED_DEPLOY, ["command_lin_vel", "command_ang_vel"]),
    (DUCKLING_DEPLOY, ["command_lin_vel", "command_ang_vel"]),
    ("data/envs/deepmimic_humanoid_env.yaml", ["phase", "target1_joint_rot", "target2_joint_rot", "target3_joint_rot"]),
])
def test_deployable_actor_observation_holds_no_privileged_term_and_the_critic_all(tmp_path, base, goal):
    env, _ = _env(tmp_path, base, actor_obs="deployable")
    obs = env.reset()
    layout = env.get_obs_layout()
    names = [part.name for part in layout]
    assert names == list(ROBOT_OBS_TERMS) + goal
    assert not [n for n in names if _privileged(n)]
    assert layout[-1].end == obs.shape[1] == env.get_obs_space().shape[0]
    assert {p.name: (p.units, p.frame) for p in layout[:4]} == {
        "projected_gravity": ("1", "root"), "root_ang_vel": ("rad/s", "root"),
        "dof_pos": ("rad", "default_pose"), "dof_vel": ("rad/s", "joint")}
    critic_layout = env.get_critic_obs_layout()
    critic_names = [p.name for p in critic_layout]
    assert critic_names == [t.name for t in env._obs_terms()] + list(ROBOT_OBS_TERMS)  # full, then the actor's others
    assert "body_vel" in critic_names and "root_height" in critic_names
    assert env.get_critic_obs().shape == (3, critic_layout[-1].end)
    env.close()


@pytest.mark.parametrize("base", [QUADRUPED_DEPLOY, "data/envs/deepmimic_humanoid_env.yaml"])
def test_root_position_and_world_velocity_change_the_critic_obs_not_the_actor_obs(tmp_path, base):
    env, _ = _env(tmp_path, base, actor_obs="deployable", domain_rand=None)
    env.reset()
    env.step(env.get_action_space().neutral.expand(3, -1))  # a state with velocities
    actor, critic = env._compute_obs(), env.get_critic_obs()
    ids = torch.arange(3)
    s = env.char_state
    env.engine.set_root_pos(env.char_id, ids, s.root_pos + torch.tensor([1.0, -2.0, 0.3]))
    env.engine.set_root_vel(env.char_id, ids, s.root_vel + torch.tensor([0.5, -0.3, 0.2]))
    env._read_state()
    torch.testing.assert_close(env._compute_obs(), actor, atol=1e-5, rtol=0)
    moved = (env.get_critic_obs() - critic).abs().max(dim=0).values
    for part in env.get_critic_obs_layout():
        if part.name in ("root_height", "body_vel"):
            assert moved[part.start:part.end].max() > 0.1, part.name
    env.close()


def _root_free_joint(model):
    joint = int(np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)[0])
    return int(model.jnt_bodyid[joint]), int(model.jnt_dofadr[joint])


def test_projected_gravity_and_root_ang_vel_match_mujocos_body_frame_quantities(tmp_path):
    env, _ = _env(tmp_path, QUADRUPED_DEPLOY, num_envs=4, domain_rand=None)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    ids = torch.arange(4)
    rot = torch.nn.functional.normalize(torch.randn(4, 4, generator=gen), dim=-1)
    ang_vel = 2.0 * torch.randn(4, 3, generator=gen)
    env.engine.set_root_rot(env.char_id, ids, rot)
    env.engine.set_root_ang_vel(env.char_id, ids, ang_vel)
    env._read_state()
    obs = env._compute_obs()
    part = {p.name: slice(p.start, p.end) for p in env.get_obs_layout()}
    body, dof = _root_free_joint(env.engine.batch.get_model(0))
    for i in range(4):
        data = env.engine.batch.get_data(i)
        xmat = data.xmat[body].reshape(3, 3)  # body to world
        np.testing.assert_allclose(obs[i, part["projected_gravity"]].numpy(), xmat.T @ [0.0, 0.0, -1.0], atol=1e-5)
        # MuJoCo's free joint angular velocity is in the body frame
        np.testing.assert_allclose(obs[i, part["root_ang_vel"]].numpy(), data.qvel[dof + 3:dof + 6], atol=1e-4)
        expected = Rotation.from_quat(rot[i].numpy()).inv().apply([0.0, 0.0, -1.0])  # scipy: (x, y, z, w)
        np.testing.assert_allclose(obs[i, part["projected_gravity"]].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(obs[i, part["projected_gravity"]].numpy()), 1.0, atol=1e-6)
    dof_pos = env.char_state.dof_pos - env.kin_char_model.default_dof_pos
    torch.testing.assert_close(obs[:, part["dof_pos"]], dof_pos)
    torch.testing.assert_close(obs[:, part["dof_vel"]], env.char_state.dof_vel)
    env.close()


def test_prev_action_is_the_last_step_action_and_neutral_after_a_reset(tmp_path):
    env, _ = _env(tmp_path, QUADRUPED_DEPLOY, domain_rand=None)
    env.reset()
    part = {p.name: slice(p.start, p.end) for p in env.get_obs_layout()}
    neutral = env.get_action_space().neutral
    torch.testing.assert_close(env._compute_obs()[:, part["prev_action"]], neutral.expand(3, -1))
    action = neutral + 0.1 * torch.randn(3, len(neutral))
    obs = env.step(action)[0]
    torch.testing.assert_close(obs[:, part["prev_action"]], action)
    obs = env.reset(torch.tensor([1]))
    torch.testing.assert_close(obs[1, part["prev_action"]], neutral)
    torch.testing.assert_close(obs[0, part["prev_action"]], action[0])
    env.close()


def test_observation_noise_reaches_the_actor_only(tmp_path):
    env, _ = _env(tmp_path, QUADRUPED_DEPLOY, num_envs=64)
    noisy = env.reset()
    clean, critic = env._compute_obs(), env.get_critic_obs()
    torch.testing.assert_close(env.get_critic_obs(), critic, rtol=0, atol=0)  # the critic's draws no noise
    part = {p.name: slice(p.start, p.end) for p in env.get_obs_layout()}
    critic_part = {p.name: slice(p.start, p.end) for p in env.get_critic_obs_layout()}
    for name, std in env.cfg.domain_rand.obs_noise.items():
        err = (noisy - clean)[:, part[name]]
        assert abs(float(err.std()) - std) < 5 * std / math.sqrt(2 * err.numel()), name
        torch.testing.assert_close(critic[:, critic_part[name]], clean[:, part[name]])
    for name in ("prev_action", "command_lin_vel", "command_ang_vel"):
        torch.testing.assert_close(noisy[:, part[name]], clean[:, part[name]], rtol=0, atol=0)
    env.close()


def test_without_actor_obs_the_observation_is_the_envs_own_and_there_is_no_critic_obs(tmp_path):
    env, _ = _env(tmp_path, "data/envs/amp_quadruped_command_env.yaml")
    obs = env.reset()
    assert env.get_critic_obs() is None and env.get_critic_obs_layout() is None
    terms = env._obs_terms()
    assert env.get_obs_layout() == obs_layout(terms)
    torch.testing.assert_close(obs, torch.cat([t.value for t in terms], dim=-1), rtol=0, atol=0)
    env.close()


def test_actor_obs_list_picks_terms_of_both_pools_in_order(tmp_path):
    env, _ = _env(tmp_path, QUADRUPED_DEPLOY, actor_obs=["command_lin_vel", "root_height", "dof_pos"],
                  domain_rand=None)
    obs = env.reset()
    assert [p.name for p in env.get_obs_layout()] == ["command_lin_vel", "root_height", "dof_pos"]
    assert obs.shape[1] == 2 + 1 + 12
    env.close()


@pytest.mark.parametrize("changes, words", [
    (dict(actor_obs=["dof_pos", "lidar"]), ["actor_obs", "lidar", "projected_gravity", "body_pos"]),
    (dict(actor_obs="robot"), ["actor_obs", "deployable", "robot"]),
    (dict(actor_obs=[]), ["actor_obs"]),
    (dict(actor_obs="deployable", task={"task_name": "location"}), ["actor_obs", "LocationTask"]),
])
def test_bad_actor_obs_is_refused_naming_the_file_and_key(tmp_path, changes, words):
    with pytest.raises(MimicKitError) as e:
        _env(tmp_path, QUADRUPED_DEPLOY, domain_rand=None, **changes)
    assert "env.yaml" in str(e.value)
    for word in words:
        assert word in str(e.value), word

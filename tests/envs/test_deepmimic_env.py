"""DeepMimic env on the shipped walk: RSI, rewards at the reference, early termination."""
import pytest
import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.envs.env_builder import build_env
from mimickit.util.errors import MimicKitError

ENGINE = "data/engines/mujoco_engine.yaml"
ENV = "data/envs/deepmimic_humanoid_env.yaml"


@pytest.fixture(scope="module")
def env():
    torch.manual_seed(0)
    env = build_env(ENV, ENGINE, num_envs=8, device="cpu", visualize=False)
    yield env
    env.close()


def test_spaces_match_the_character(env):
    kin = env.kin_char_model
    obs = env.reset()
    assert obs.shape == (8, env.get_obs_space().shape[0])
    assert env.get_action_space().shape == (kin.num_dofs,)
    # 1 + 15 per body, phase, 3 target frames of 9 + 6 per joint.
    assert obs.shape[1] == 1 + 15 * kin.num_bodies + 1 + 3 * (9 + 6 * kin.num_joints)
    assert torch.isfinite(obs).all()


def test_reference_state_initialisation_puts_the_character_on_the_reference(env):
    env.reset()
    errors = env.tracking_errors()
    for name in ("root_pos_err_m", "body_pos_err_m", "key_pos_err_m"):
        assert errors[name].max() < 1e-3, name  # reference bodies are interpolated between frames
    assert errors["body_rot_err_rad"].max() < 1e-3
    assert errors["dof_vel_err_radps"].max() < 1e-3
    # Every term is 1 at the reference, so the reward is the sum of the weights.
    w = env.cfg.reward
    total = w.pose_w + w.vel_w + w.root_pose_w + w.root_vel_w + w.key_pos_w
    assert torch.allclose(env._compute_reward(), torch.full((8,), total), atol=1e-3)
    # RSI spreads the start times over the clip.
    assert env.motion_start.std() > 0.05


def test_pd_targets_at_the_reference_track_it_for_a_few_steps(env):
    env.reset()
    rewards = []
    for _ in range(5):
        t = env.motion_start + env.time + env.engine.control_dt
        _, _, _, _, joint_rot, _ = env.motion_lib.calc_motion_frame(env.motion_ids, t)
        _, reward, done, info = env.step(env.kin_char_model.joint_rot_to_dof_pos(joint_rot))
        rewards.append(reward)
        assert (done == DoneFlags.NULL).all()
    assert torch.stack(rewards).mean() > 0.5
    assert info["tracking_errors"]["body_pos_err_m"].max() < 0.1


def test_a_body_outside_contact_bodies_touching_the_ground_fails_the_episode(env):
    env.reset()
    ids = torch.tensor([0])
    engine, c = env.engine, env.char_id
    lying = torch.tensor([[0.0, 0.0, 0.12]])
    flat = torch.tensor([[0.0, 0.7071068, 0.0, 0.7071068]])  # pitched 90 deg: lying on the back
    engine.set_root_pos(c, ids, lying)
    engine.set_root_rot(c, ids, flat)
    _, _, done, _ = env.step(env.engine.get_dof_pos(c))
    assert done[0] == DoneFlags.FAIL


def test_unknown_key_body_is_an_error_naming_the_key(tmp_path):
    bad = tmp_path / "env.yaml"
    bad.write_text(open(ENV).read().replace("key_bodies: [right_hand", "key_bodies: [right_paw"))
    with pytest.raises(MimicKitError, match="key_bodies.*right_paw"):
        build_env(str(bad), ENGINE, num_envs=1, device="cpu", visualize=False)

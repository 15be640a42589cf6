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


def build_env_with(tmp_path, num_envs, **lines):
    """The shipped env YAML with the lines of the keys given replaced by ``key: value``."""
    text = []
    for line in open(ENV).read().splitlines():
        key = line.split(":")[0]
        text.append("{}: {}".format(key, lines.pop(key)) if key in lines else line)
    assert not lines, "keys not in {}: {}".format(ENV, list(lines))
    path = tmp_path / "env.yaml"
    path.write_text("\n".join(text) + "\n")
    return build_env(str(path), ENGINE, num_envs=num_envs, device="cpu", visualize=False)


# Root offsets from the reference, in units of pose_termination_dist: four inside the
# bound, four past it. Shifting the whole character by d makes every body's error d, so
# the mean squared body position error is d^2.
OFFSETS = [0.0, 0.5, 0.9, 0.97, 1.03, 1.1, 1.5, 3.0]
DIST = 0.5


def step_shifted_sideways(tmp_path, body_names, early_termination):
    """One step of an env whose character starts ``DIST * OFFSETS`` m beside its reference.

    Every body may touch the ground (``contact_bodies``), so a FAIL can only come from the
    pose check. Returns the step's ``done`` and the mean squared body position error after
    it, computed from the engine's bodies and the motion library's reference bodies.
    """
    torch.manual_seed(1)
    n = len(OFFSETS)
    env = build_env_with(tmp_path, n, contact_bodies="[{}]".format(", ".join(body_names)),
                         pose_termination_dist=DIST, enable_early_termination=str(early_termination).lower())
    try:
        env.reset()
        engine, c = env.engine, env.char_id
        shifted = engine.get_root_pos(c).clone()
        shifted[:, 1] -= DIST * torch.tensor(OFFSETS)  # sideways, away from the (non-colliding) reference
        engine.set_root_pos(c, torch.arange(n), shifted)
        # PD targets at the next reference pose: the character follows the reference, shifted.
        t = env.motion_start + env.time + env.control_dt
        _, _, _, _, joint_rot, _ = env.motion_lib.calc_motion_frame(env.motion_ids, t)
        _, _, done, _ = env.step(env.kin_char_model.joint_rot_to_dof_pos(joint_rot))
        ref_body_pos, _ = env.motion_lib.calc_body_frame(env.motion_ids, env.motion_start + env.time)
        err = ((engine.get_body_pos(c) - ref_body_pos) ** 2).sum(dim=-1).mean(dim=-1)
    finally:
        env.close()
    # The step kept each character on its side of the bound.
    torch.testing.assert_close(err, (DIST * torch.tensor(OFFSETS)) ** 2, atol=2e-3, rtol=0)
    return done, err


def test_mean_squared_body_error_past_pose_termination_dist_squared_fails_the_episode(env, tmp_path):
    done, err = step_shifted_sideways(tmp_path, env.kin_char_model.body_names, early_termination=True)
    assert torch.equal(done == DoneFlags.FAIL, err > DIST ** 2)
    assert done.tolist() == [DoneFlags.NULL] * 4 + [DoneFlags.FAIL] * 4


def test_without_early_termination_a_diverged_pose_does_not_end_the_episode(env, tmp_path):
    done, _ = step_shifted_sideways(tmp_path, env.kin_char_model.body_names, early_termination=False)
    assert (done == DoneFlags.NULL).all()

"""AMP observations: the frame terms against scipy, and the simulated AMP observations
against the demonstrations' when the engine is set to the same motion frames."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mimickit.envs import amp_obs
from mimickit.envs.base_env import DoneFlags
from mimickit.envs.env_builder import build_env

ENGINE = "data/engines/mujoco_engine.yaml"
ENV = "data/envs/amp_humanoid_env.yaml"
NUM_ENVS = 8
TOL = 1e-5


def random_quat(n, gen):
    return torch.tensor(Rotation.random(n, random_state=gen).as_quat(), dtype=torch.float32)  # x, y, z, w


def yaw_of(rot: Rotation):
    x_axis = rot.apply([1.0, 0.0, 0.0])
    return np.arctan2(x_axis[:, 1], x_axis[:, 0])


def test_frame_terms_match_scipy_heading_frame_computation():
    gen = np.random.default_rng(0)
    n, num_joints, num_dofs, num_keys = 5, 4, 8, 2
    root_pos = torch.tensor(gen.normal(size=(n, 3)), dtype=torch.float32)
    root_rot = random_quat(n, 1)
    root_vel = torch.tensor(gen.normal(size=(n, 3)), dtype=torch.float32)
    root_ang_vel = torch.tensor(gen.normal(size=(n, 3)), dtype=torch.float32)
    joint_rot = random_quat(n * num_joints, 2).reshape(n, num_joints, 4)
    dof_pos = torch.tensor(gen.uniform(-1, 1, size=(n, num_dofs)), dtype=torch.float32)
    joint_dof_vel = torch.tensor(gen.normal(size=(n, num_dofs)), dtype=torch.float32)
    key_pos = torch.tensor(gen.normal(size=(n, num_keys, 3)), dtype=torch.float32)
    # Joints 0 and 2 are 3-dof (dofs 0-2 and 4-6), joints 1 and 3 hinges (dofs 3 and 7).
    layout = amp_obs.AMPDofLayout(torch.tensor([0, 2]), torch.tensor([3, 7]))

    terms = {t.name: t.value for t in amp_obs.amp_frame_obs_terms(
        root_pos, root_rot, root_vel, root_ang_vel, joint_rot, dof_pos, joint_dof_vel, key_pos, layout)}

    rot = Rotation.from_quat(root_rot.numpy())
    unturn = Rotation.from_euler("z", -yaw_of(rot)[:, None])
    local = (unturn * rot).as_matrix()
    joint_m = Rotation.from_quat(joint_rot[:, [0, 2]].reshape(-1, 4).numpy()).as_matrix().reshape(n, 2, 3, 3)
    key_local = np.stack([unturn.apply((key_pos[:, k] - root_pos).numpy()) for k in range(num_keys)], axis=1)
    expected = {
        "root_height": root_pos[:, 2:3].numpy(),
        "root_rot": np.concatenate([local[:, :, 0], local[:, :, 2]], axis=-1),
        "root_vel": unturn.apply(root_vel.numpy()),
        "root_ang_vel": unturn.apply(root_ang_vel.numpy()),
        "dof_rot": np.concatenate([joint_m[..., :, 0], joint_m[..., :, 2]], axis=-1).reshape(n, -1),
        "dof_angle": dof_pos[:, [3, 7]].numpy(),
        "dof_vel": joint_dof_vel.numpy(),
        "key_pos": key_local.reshape(n, -1),
    }
    assert list(terms) == list(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name].numpy(), value, atol=1e-5, err_msg=name)


def test_frame_does_not_change_when_the_scene_turns_and_moves_on_the_ground():
    gen = np.random.default_rng(1)
    n = 6
    root_pos = torch.tensor(gen.normal(size=(n, 3)), dtype=torch.float32)
    root_rot = random_quat(n, 3)
    root_vel, root_ang_vel = (torch.tensor(gen.normal(size=(n, 3)), dtype=torch.float32) for _ in range(2))
    key_pos = torch.tensor(gen.normal(size=(n, 3, 3)), dtype=torch.float32)
    joint_rot = random_quat(n * 2, 4).reshape(n, 2, 4)
    dof_pos, joint_dof_vel = torch.zeros(n, 4), torch.ones(n, 4)
    layout = amp_obs.AMPDofLayout(torch.tensor([0]), torch.tensor([3]))
    turn = torch.tensor(Rotation.from_euler("z", gen.uniform(-np.pi, np.pi, (n, 1))).as_quat(), dtype=torch.float32)
    shift = torch.tensor(gen.normal(size=(n, 3)) * [5.0, 5.0, 0.0], dtype=torch.float32)

    def rotate(q, v):
        return torch.tensor(Rotation.from_quat(q.numpy()).apply(v.numpy()), dtype=torch.float32)

    turned_keys = torch.stack([rotate(turn, key_pos[:, k]) for k in range(3)], dim=1) + shift.unsqueeze(1)
    turned_rot = torch.tensor((Rotation.from_quat(turn.numpy()) * Rotation.from_quat(root_rot.numpy())).as_quat(),
                              dtype=torch.float32)
    before = amp_obs.compute_amp_frame_obs(root_pos, root_rot, root_vel, root_ang_vel, joint_rot, dof_pos,
                                           joint_dof_vel, key_pos, layout)
    after = amp_obs.compute_amp_frame_obs(rotate(turn, root_pos) + shift, turned_rot, rotate(turn, root_vel),
                                          rotate(turn, root_ang_vel), joint_rot, dof_pos, joint_dof_vel,
                                          turned_keys, layout)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)


def test_history_times_are_oldest_first_and_push_frame_drops_the_oldest():
    times = torch.tensor([1.0, 0.05])
    expected = torch.tensor([[0.9, 0.95, 1.0], [-0.05, 0.0, 0.05]])
    torch.testing.assert_close(amp_obs.history_times(times, 3, 0.05), expected)
    history = torch.arange(12.0).reshape(2, 3, 2)
    pushed = amp_obs.push_frame(history, torch.tensor([[-1.0, -2.0], [-3.0, -4.0]]))
    torch.testing.assert_close(pushed[:, :2], history[:, 1:])
    torch.testing.assert_close(pushed[:, 2], torch.tensor([[-1.0, -2.0], [-3.0, -4.0]]))


# ---------------------------------------------------------------------- sim against demonstrations
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The shipped AMP env, every episode starting by reference state initialisation."""
    config = tmp_path_factory.mktemp("amp") / "env.yaml"
    config.write_text(open(ENV).read().replace("default_pose_prob: 0.1", "default_pose_prob: 0.0"))
    torch.manual_seed(0)
    env = build_env(str(config), ENGINE, num_envs=NUM_ENVS, device="cpu", visualize=False)
    yield env
    env.close()


def play_reference(env, times):
    """Make the env kinematic: each step sets the character to its clip's next frame and
    appends that frame's time (``[num_envs]`` s) to ``times``."""
    def advance():
        t = env.motion_start + env.time + env.engine.control_dt
        times.append(t)
        env.set_char_to_motion(env.motion_lib, torch.arange(env.num_envs), env.motion_ids, t)
    env._advance = advance


def test_reset_fills_the_history_with_the_demonstration_of_the_start_time(env):
    env.reset()
    assert env.motion_lib.num_motions > 1 and len(set(env.motion_ids.tolist())) > 1  # several clips
    assert env.motion_start.std() > 0.05  # spread over the clips
    demo = env.calc_demo_amp_obs(env.motion_ids, env.motion_start)
    sim = env._amp_history.reshape(NUM_ENVS, -1)
    # The newest frame is read back from the simulator, the older ones come from the clip.
    newest = slice(env.amp_obs_dim - env.amp_frame_dim, env.amp_obs_dim)
    assert (demo[:, newest] - sim[:, newest]).abs().max() < TOL
    assert (demo - sim).abs().max() < TOL


def test_simulated_amp_obs_equal_the_demonstrations_at_the_same_motion_frames(env):
    """Frames compared at the very times the engine was set to: velocities come from
    finite differences of the clips, so a time rounded differently (1e-7 s) moves them by 1e-5."""
    env.reset()
    k = env.num_amp_obs_steps
    times = list(amp_obs.history_times(env.motion_start, k, env.engine.control_dt).unbind(dim=1))
    play_reference(env, times)
    layout = env.get_amp_obs_layout()
    try:
        for _ in range(k + 2):  # until the whole stack holds simulated frames
            _, _, done, info = env.step(torch.zeros(NUM_ENVS, env.kin_char_model.num_dofs))
            demo = env.calc_demo_amp_obs(env.motion_ids, torch.stack(times[-k:], dim=1))
            worst = (info["amp_obs"] - demo).abs().max(dim=0).values
            assert worst.max() < TOL, {s.name: float(worst[s.start:s.end].max()) for s in layout
                                       if worst[s.start:s.end].max() >= TOL}
        assert (done == DoneFlags.NULL).all()  # the clips keep their feet on the ground
    finally:
        del env._advance


def test_fetched_demonstrations_are_finite_and_vary(env):
    demo = env.fetch_demo_amp_obs(64)
    assert demo.shape == (64, env.amp_obs_dim)
    assert torch.isfinite(demo).all()
    assert (demo.std(dim=0) > 0).sum() > env.amp_obs_dim // 2

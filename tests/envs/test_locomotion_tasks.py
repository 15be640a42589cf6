"""Locomotion tasks: rewards against hand computations, heading-frame observations invariant
to turning the scene about z, goal resampling times, config errors, and an AMP env smoke run."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mimickit.envs.char_state import CharState
from mimickit.envs.env_builder import build_env
from mimickit.envs.locomotion_tasks import LocationTask, SteeringTask, VelocityCommandTask
from mimickit.envs.tasks import build_task
from mimickit.util.errors import MimicKitError

DT = 1.0 / 30.0
ENGINE = "data/engines/mujoco_engine.yaml"


def root_state(root_pos, root_rot, root_vel, root_ang_vel):
    """A CharState whose root is given ([n, ...] tensors) and whose dofs and bodies are NaN
    (the locomotion tasks read the root only)."""
    n = len(root_pos)
    nan = torch.full((n, 1, 3), float("nan"))
    return CharState(root_pos=root_pos, root_rot=root_rot, root_vel=root_vel, root_ang_vel=root_ang_vel,
                     dof_pos=nan[:, 0, :1], dof_vel=nan[:, 0, :1], body_pos=nan, body_rot=torch.cat([nan, nan[..., :1]], -1),
                     body_vel=nan, body_ang_vel=nan, ground_contacts=torch.zeros(n, 1, dtype=torch.bool))


def make_state(root_pos, euler_zyx, root_vel, root_ang_vel):
    """The root's state from lists; rotations from scipy (x, y, z, w)."""
    rot = Rotation.from_euler("ZYX", euler_zyx)
    return root_state(torch.tensor(root_pos, dtype=torch.float32), torch.tensor(rot.as_quat(), dtype=torch.float32),
                      torch.tensor(root_vel, dtype=torch.float32), torch.tensor(root_ang_vel, dtype=torch.float32))


def heading_of(euler_zyx):
    """Heading (rad) by hand: the yaw of the rotated x axis, from scipy."""
    x = Rotation.from_euler("ZYX", euler_zyx).apply([1.0, 0.0, 0.0])
    return math.atan2(x[1], x[0])


def rotate_z(xy, angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * xy[0] - s * xy[1], s * xy[0] + c * xy[1]])


def task(name, num_envs=2, **cfg):
    return build_task(dict(task_name=name, **cfg), "env.yaml", num_envs, "cpu", DT)


EULERS = [[0.7, 0.2, -0.1], [-2.5, -0.3, 0.25]]  # yaw, pitch, roll (rad): tilted roots


def test_velocity_command_reward_tracks_the_command_in_the_heading_frame():
    t = task("velocity_command", lin_w=1.0, lin_sigma=0.25, ang_w=0.5, ang_sigma=0.3)
    state = make_state([[0, 0, 1], [3, -2, 0.9]], EULERS, [[1.0, 0.5, 0.2], [-0.4, 1.2, 0.0]],
                       [[0.1, -0.2, 0.8], [0.0, 0.3, -0.5]])
    t.command = torch.tensor([[1.0, 0.0, 0.5], [0.3, -0.2, -1.0]])
    expected = []
    for i in range(2):
        v_heading = rotate_z(state.root_vel[i, :2].numpy(), -heading_of(EULERS[i]))
        cmd = t.command[i].numpy()
        lin_err = np.sum((v_heading - cmd[:2]) ** 2)
        ang_err = (state.root_ang_vel[i, 2].item() - cmd[2]) ** 2
        expected.append(1.0 * math.exp(-lin_err / 0.25) + 0.5 * math.exp(-ang_err / 0.3))
    torch.testing.assert_close(t.reward(state), torch.tensor(expected, dtype=torch.float32))
    assert [o.name for o in t.obs_terms(state)] == ["command_lin_vel", "command_ang_vel"]


def test_tracking_errors_of_each_task_match_hand_computations():
    state = make_state([[0, 0, 1], [3, -2, 0.9]], EULERS, [[1.0, 0.5, 0.2], [-0.4, 1.2, 0.0]],
                       [[0.1, -0.2, 0.8], [0.0, 0.3, -0.5]])
    cmd = task("velocity_command")
    cmd.command = torch.tensor([[1.0, 0.0, 0.5], [0.3, -0.2, -1.0]])
    steer = task("steering")
    steer.tar_dir = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    steer.tar_speed = torch.tensor([1.5, 0.5])
    steer.tar_facing = torch.tensor([[0.0, 1.0], [math.cos(2.0), math.sin(2.0)]])
    loc = task("location")
    loc.tar_pos = torch.tensor([[3.0, 4.0], [3.0, -1.0]])
    errors = {**cmd.tracking_errors(state), **steer.tracking_errors(state), **loc.tracking_errors(state)}
    for i in range(2):
        heading = heading_of(EULERS[i])
        v_world = state.root_vel[i, :2].numpy()
        v_heading = rotate_z(v_world, -heading)
        c = cmd.command[i].numpy()
        facing = math.atan2(steer.tar_facing[i, 1].item(), steer.tar_facing[i, 0].item())
        expected = {
            "cmd_lin_vel_err": np.linalg.norm(v_heading - c[:2]),
            "cmd_ang_vel_err": abs(state.root_ang_vel[i, 2].item() - c[2]),
            "tar_vel_err": np.linalg.norm(v_world - steer.tar_speed[i].item() * steer.tar_dir[i].numpy()),
            "tar_speed_err": abs(np.linalg.norm(v_world) - steer.tar_speed[i].item()),
            "tar_dir_err": abs((math.atan2(v_world[1], v_world[0]) - math.atan2(steer.tar_dir[i, 1].item(),
                                                                                 steer.tar_dir[i, 0].item())
                                + math.pi) % (2 * math.pi) - math.pi),
            "facing_err": abs((heading - facing + math.pi) % (2 * math.pi) - math.pi),
            "tar_dist": np.linalg.norm(loc.tar_pos[i].numpy() - state.root_pos[i, :2].numpy()),
        }
        for name, value in expected.items():
            assert abs(errors[name][i].item() - value) < 1e-5, (name, i)


def test_steering_direction_error_of_a_root_standing_still_is_a_right_angle():
    steer = task("steering", num_envs=1)
    steer.tar_dir = torch.tensor([[0.6, 0.8]])
    steer.tar_speed = torch.tensor([2.0])
    errors = steer.tracking_errors(make_state([[0, 0, 1]], [[0.3, 0, 0]], [[0.0, 0.0, 0.5]], [[0, 0, 0]]))
    assert abs(errors["tar_dir_err"].item() - math.pi / 2) < 1e-6
    assert abs(errors["tar_speed_err"].item() - 2.0) < 1e-6 and abs(errors["tar_vel_err"].item() - 2.0) < 1e-6


def test_steering_reward_matches_hand_computation_and_does_not_penalise_going_faster():
    t = task("steering", vel_w=0.7, facing_w=0.3, vel_scale=0.25)
    state = make_state([[0, 0, 1], [0, 0, 1]], EULERS, [[1.0, 0.5, 0.2], [3.0, 4.0, 0.0]],
                       [[0, 0, 0], [0, 0, 0]])
    t.tar_dir = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    t.tar_speed = torch.tensor([2.0, 1.0])  # env 1 moves at 5 m/s along its target: faster than asked
    t.tar_facing = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    expected = []
    for i in range(2):
        v_along = float(np.dot(state.root_vel[i, :2].numpy(), t.tar_dir[i].numpy()))
        speed_err = max(0.0, t.tar_speed[i].item() - v_along)
        h = heading_of(EULERS[i])
        cos_face = float(np.dot([math.cos(h), math.sin(h)], t.tar_facing[i].numpy()))
        expected.append(0.7 * math.exp(-0.25 * speed_err ** 2) + 0.3 * max(0.0, cos_face))
    assert expected[1] == pytest.approx(0.7 + 0.3 * max(0.0, math.cos(math.pi - heading_of(EULERS[1]))))
    torch.testing.assert_close(t.reward(state), torch.tensor(expected, dtype=torch.float32))


def test_location_reward_matches_hand_computation():
    t = task("location", pos_w=0.7, vel_w=0.3, pos_scale=0.5, tar_speed=1.0)
    state = make_state([[1.0, 2.0, 1.0], [0.0, 0.0, 0.9]], EULERS, [[0.2, 0.1, 0.0], [-1.0, 0.5, 0.0]],
                       [[0, 0, 0], [0, 0, 0]])
    t.tar_pos = torch.tensor([[2.0, 4.0], [-3.0, 0.0]])
    expected = []
    for i in range(2):
        delta = t.tar_pos[i].numpy() - state.root_pos[i, :2].numpy()
        d = delta / np.linalg.norm(delta)
        speed_err = max(0.0, 1.0 - float(np.dot(state.root_vel[i, :2].numpy(), d)))
        expected.append(0.7 * math.exp(-0.5 * np.sum(delta ** 2)) + 0.3 * math.exp(-speed_err ** 2))
    torch.testing.assert_close(t.reward(state), torch.tensor(expected, dtype=torch.float32))
    local = t.obs_terms(state)[0].value
    for i in range(2):
        delta = t.tar_pos[i].numpy() - state.root_pos[i, :2].numpy()
        np.testing.assert_allclose(local[i].numpy(), rotate_z(delta, -heading_of(EULERS[i])), atol=1e-5)


@pytest.mark.parametrize("name", ["velocity_command", "steering", "location"])
def test_obs_and_reward_are_invariant_to_turning_the_scene_about_z(name):
    torch.manual_seed(0)
    n = 16
    t = task(name, num_envs=n)
    rot = Rotation.random(n, random_state=1)
    state = root_state(torch.randn(n, 3), torch.tensor(rot.as_quat(), dtype=torch.float32), torch.randn(n, 3),
                       torch.randn(n, 3))
    t.reset(torch.arange(n), state)
    obs = torch.cat([o.value for o in t.obs_terms(state)], dim=-1)
    reward = t.reward(state)

    turn = Rotation.from_euler("z", 1.1)
    turn_t = torch.tensor(turn.as_matrix(), dtype=torch.float32)
    turned = root_state(state.root_pos @ turn_t.T, torch.tensor((turn * rot).as_quat(), dtype=torch.float32),
                        state.root_vel @ turn_t.T, state.root_ang_vel @ turn_t.T)
    for attr in ("tar_dir", "tar_facing", "tar_pos"):
        if hasattr(t, attr):
            setattr(t, attr, getattr(t, attr) @ turn_t[:2, :2].T)
    torch.testing.assert_close(torch.cat([o.value for o in t.obs_terms(turned)], dim=-1), obs, atol=1e-5, rtol=0)
    torch.testing.assert_close(t.reward(turned), reward, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,goal", [("velocity_command", "command"), ("steering", "tar_speed")])
def test_timed_goals_are_redrawn_every_resample_time_and_on_reset(name, goal):
    torch.manual_seed(0)
    t = task(name, resample_time=3 * DT)
    state = make_state([[0, 0, 1]] * 2, EULERS, [[0, 0, 0]] * 2, [[0, 0, 0]] * 2)
    t.reset(torch.arange(2), state)
    first = getattr(t, goal).clone()
    t.update(state)
    t.reset(torch.tensor([1]), state)  # env 1's timer restarts
    t.update(state)
    assert torch.equal(getattr(t, goal)[0], first[0])  # 2 steps: unchanged
    second = getattr(t, goal).clone()
    assert not torch.equal(second[1], first[1])  # redrawn on reset
    t.update(state)  # env 0 at 3 steps
    third = getattr(t, goal).clone()
    assert not torch.equal(third[0], first[0]) and torch.equal(third[1], second[1])
    t.update(state)  # env 1 at 3 steps since its reset
    assert not torch.equal(getattr(t, goal)[1], second[1])


def test_location_targets_lie_within_max_dist_and_are_redrawn_once_reached():
    torch.manual_seed(0)
    n = 256
    t = task("location", num_envs=n, max_dist=4.0, reach_dist=0.5)
    state = make_state([[1.0, -2.0, 1.0]] * n, [[0.3, 0, 0]] * n, [[0, 0, 0]] * n, [[0, 0, 0]] * n)
    t.reset(torch.arange(n), state)
    dist = torch.linalg.norm(t.tar_pos - state.root_pos[:, :2], dim=-1)
    assert ((dist >= 0.5 - 1e-5) & (dist <= 4.0 + 1e-5)).all() and dist.max() > 3.0
    before = t.tar_pos.clone()
    t.update(state)
    assert torch.equal(t.tar_pos, before)  # nobody within reach_dist
    state.root_pos[0, :2] = before[0] + 0.2  # env 0 reaches its target
    t.update(state)
    assert not torch.equal(t.tar_pos[0], before[0]) and torch.equal(t.tar_pos[1:], before[1:])


@pytest.mark.parametrize("offset", [[0.0, 0.0], [0.5, 1.0]])
def test_steering_facing_is_the_travel_direction_turned_by_an_offset_in_facing_offset(offset):
    torch.manual_seed(0)
    n = 512
    t = task("steering", num_envs=n, facing_offset=offset)
    t.reset(torch.arange(n), make_state([[0, 0, 1]] * n, [[0, 0, 0]] * n, [[0, 0, 0]] * n, [[0, 0, 0]] * n))
    travel = np.arctan2(t.tar_dir[:, 1].numpy(), t.tar_dir[:, 0].numpy())
    facing = np.arctan2(t.tar_facing[:, 1].numpy(), t.tar_facing[:, 0].numpy())
    turn = np.angle(np.exp(1j * (facing - travel)))  # wrapped to (-pi, pi]
    assert turn.min() >= offset[0] - 1e-5 and turn.max() <= offset[1] + 1e-5
    assert turn.max() - turn.min() >= 0.95 * (offset[1] - offset[0])
    assert np.ptp(travel) > 6.0  # travel directions still cover the circle


@pytest.mark.parametrize("from_root_vel", [False, True])
def test_steering_first_goal_follows_a_moving_start_only_when_asked(from_root_vel):
    torch.manual_seed(0)
    n = 64
    t = task("steering", num_envs=n, tar_speed=[1.0, 3.0], facing_offset=[0.0, 0.0],
             first_goal_from_root_vel=from_root_vel)
    vel = torch.zeros(n, 3)
    vel[0, :2] = torch.tensor([-1.2, 1.6])  # 2 m/s
    vel[1, :2] = torch.tensor([3.0, 4.0])   # 5 m/s: speed clipped to 3
    vel[2:, 0] = 0.5                         # slower than tar_speed[0]: a random goal
    state = make_state([[0, 0, 1]] * n, [[0.3, 0, 0]] * n, vel.tolist(), [[0, 0, 0]] * n)
    t.reset(torch.arange(n), state)
    if from_root_vel:
        torch.testing.assert_close(t.tar_dir[:2], torch.tensor([[-0.6, 0.8], [0.6, 0.8]]))
        torch.testing.assert_close(t.tar_speed[:2], torch.tensor([2.0, 3.0]))
        torch.testing.assert_close(t.tar_facing[:2], t.tar_dir[:2])
    random_dirs = t.tar_dir[2:] if from_root_vel else t.tar_dir
    assert torch.sum(random_dirs * torch.tensor([1.0, 0.0]), dim=-1).min() < -0.5  # still drawn on the circle
    t.steps_left[:] = 1
    t.update(state)  # the next goals are drawn as usual
    assert not torch.allclose(t.tar_dir[:2], torch.tensor([[-0.6, 0.8], [0.6, 0.8]]))


def test_steering_facing_is_independent_of_travel_by_default():
    torch.manual_seed(0)
    n = 4096
    t = task("steering", num_envs=n)
    t.reset(torch.arange(n), make_state([[0, 0, 1]] * n, [[0, 0, 0]] * n, [[0, 0, 0]] * n, [[0, 0, 0]] * n))
    cos = torch.sum(t.tar_dir * t.tar_facing, dim=-1)
    assert abs(cos.mean().item()) < 0.05 and (cos < -0.9).any() and (cos > 0.9).any()


@pytest.mark.parametrize("name", ["velocity_command", "steering", "location"])
def test_unknown_key_names_the_file_and_key(name):
    with pytest.raises(MimicKitError, match="env.yaml.*'no_such_key'"):
        task(name, no_such_key=1.0)


def test_bad_ranges_raise_naming_the_key():
    with pytest.raises(MimicKitError, match="env.yaml.*'lin_vel_x'"):
        task("velocity_command", lin_vel_x=[1.0, 0.0])
    with pytest.raises(MimicKitError, match="env.yaml.*'reach_dist'"):
        task("location", max_dist=1.0, reach_dist=2.0)
    with pytest.raises(MimicKitError, match="env.yaml.*'facing_offset'"):
        task("steering", facing_offset=[1.0])


def test_tasks_are_registered_under_their_names():
    assert isinstance(task("velocity_command"), VelocityCommandTask)
    assert isinstance(task("steering"), SteeringTask)
    assert isinstance(task("location"), LocationTask)


TASK_WIDTHS = {"velocity_command": 3, "steering": 5, "location": 2}


@pytest.mark.parametrize("env_file,name", [("data/envs/amp_steering_humanoid_env.yaml", "steering"),
                                           ("data/envs/amp_heading_humanoid_env.yaml", "steering"),
                                           ("data/envs/amp_location_humanoid_env.yaml", "location"),
                                           (None, "velocity_command")])
def test_amp_env_runs_with_each_task_and_appends_its_obs(tmp_path, env_file, name):
    torch.manual_seed(0)
    if env_file is None:
        text = open("data/envs/amp_humanoid_env.yaml").read().replace(
            "task: null", "task: {task_name: velocity_command, resample_time: 0.1}")
        env_file = str(tmp_path / "env.yaml")
        open(env_file, "w").write(text)
    env = build_env(env_file, ENGINE, num_envs=2, device="cpu", visualize=False)
    try:
        obs = env.reset()
        kin = env.kin_char_model
        assert obs.shape == (2, 1 + 15 * kin.num_bodies + TASK_WIDTHS[name])
        layout = env.get_obs_layout()
        assert layout[-1].end == obs.shape[1]
        assert sum(s.end - s.start for s in layout if s.frame in ("heading", "none")
                   and s.name.startswith(("command", "tar_"))) == TASK_WIDTHS[name]
        for _ in range(3):
            obs, reward, done, info = env.step(torch.zeros(2, kin.num_dofs))
            assert obs.shape[1] == layout[-1].end
            assert torch.isfinite(reward).all() and (reward >= 0).all()
    finally:
        env.close()

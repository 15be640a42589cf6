"""AMP env: layouts, episode starts (default pose / reference state), terminal AMP
observations, early termination, the task hooks and config errors."""
import pytest
import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.envs.char_obs import ObsTerm
from mimickit.envs.env_builder import build_env
from mimickit.envs.tasks import TASKS, Task
from mimickit.util.errors import MimicKitError

ENGINE = "data/engines/mujoco_engine.yaml"
ENV = "data/envs/amp_humanoid_env.yaml"
NUM_ENVS = 8


def make_env(tmp_path, name="env.yaml", **replace):
    """The shipped AMP env YAML with ``key: value`` lines replaced (``key=new line``)."""
    text = open(ENV).read()
    lines = []
    for line in text.splitlines():
        key = line.split(":")[0]
        lines.append(replace.pop(key) if key in replace else line)
    lines += list(replace.values())
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return build_env(str(path), ENGINE, num_envs=NUM_ENVS, device="cpu", visualize=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    torch.manual_seed(0)
    env = make_env(tmp_path_factory.mktemp("amp_env"))
    yield env
    env.close()


def test_layouts_cover_the_observations_and_the_frame_has_the_documented_width(env):
    obs = env.reset()
    kin = env.kin_char_model
    layout = env.get_obs_layout()
    assert layout[0].start == 0 and layout[-1].end == obs.shape[1] == env.get_obs_space().shape[0]
    assert obs.shape[1] == 1 + 15 * kin.num_bodies
    num_triplets = int((kin.joint_num_dofs == 3).sum())
    num_hinges = int((kin.joint_num_dofs == 1).sum())
    assert env.amp_frame_dim == 13 + 6 * num_triplets + num_hinges + kin.num_dofs + 3 * 4
    amp_layout = env.get_amp_obs_layout()
    assert amp_layout[0].start == 0 and amp_layout[-1].end == env.amp_obs_dim == env.get_amp_obs_space().shape[0]
    assert all(a.end == b.start for a, b in zip(amp_layout, amp_layout[1:]))
    assert amp_layout[0].name == "step0_root_height"
    assert amp_layout[-1].name == "step{}_key_pos".format(env.num_amp_obs_steps - 1)


def test_default_pose_start_repeats_its_frame_and_stands_at_the_mjcf_placement(tmp_path):
    torch.manual_seed(1)
    env = make_env(tmp_path, default_pose_prob="default_pose_prob: 1.0")
    try:
        env.reset()
        assert (env.motion_ids == -1).all()
        history = env._amp_history
        assert torch.equal(history, history[:, -1:].expand_as(history))
        root_pos = env.engine.get_root_pos(env.char_id)
        torch.testing.assert_close(root_pos, env.kin_char_model.body_local_pos[0].float().expand(NUM_ENVS, 3))
        torch.testing.assert_close(env.engine.get_dof_pos(env.char_id), torch.zeros(NUM_ENVS, 28), atol=1e-6, rtol=0)
        # Starting at rest in the default pose, nothing but the feet touches the ground.
        _, _, done, info = env.step(torch.zeros(NUM_ENVS, 28))
        assert (done == DoneFlags.NULL).all()
        assert info["amp_obs"].shape == (NUM_ENVS, env.amp_obs_dim)
    finally:
        env.close()


def test_default_pose_prob_sets_the_share_of_default_pose_starts(tmp_path):
    torch.manual_seed(2)
    env = make_env(tmp_path, default_pose_prob="default_pose_prob: 0.5")
    try:
        starts = []
        for _ in range(25):
            env.reset()
            starts.append(env.motion_ids == -1)
        share = float(torch.cat(starts).float().mean())  # 200 draws: std 0.035
        assert 0.35 < share < 0.65
    finally:
        env.close()


def lay_down(env, env_id):
    """Put env ``env_id``'s character on its back on the ground, at rest."""
    ids = torch.tensor([env_id])
    e, c = env.engine, env.char_id
    e.set_root_pos(c, ids, torch.tensor([[0.0, 0.0, 0.12]]))
    e.set_root_rot(c, ids, torch.tensor([[0.0, 0.7071068, 0.0, 0.7071068]]))
    e.set_root_vel(c, ids, torch.zeros(1, 3))
    e.set_root_ang_vel(c, ids, torch.zeros(1, 3))
    e.set_dof_vel(c, ids, torch.zeros(1, e.get_num_dofs(c)))


def test_falling_fails_and_info_keeps_the_terminal_amp_obs_through_the_reset(env):
    env.reset()
    lay_down(env, 0)
    for _ in range(15):  # a straight body on its back may rest on its heels for a moment
        _, _, done, info = env.step(env.engine.get_dof_pos(env.char_id))
        if done[0] != DoneFlags.NULL:
            break
    assert done[0] == DoneFlags.FAIL
    terminal = info["amp_obs"].clone()
    newest = terminal[0, -env.amp_frame_dim:]
    assert abs(float(newest[0]) - float(env.engine.get_root_pos(env.char_id)[0, 2])) < 1e-6  # root height
    torch.testing.assert_close(newest, env._amp_history[0, -1])
    env.reset(torch.tensor([0]))
    assert torch.equal(info["amp_obs"], terminal)  # the reset did not write into it
    assert not torch.allclose(env._amp_history[0, -1], newest)


def test_each_step_shifts_the_stack_by_one_frame(env):
    env.reset()
    stacks = []
    for _ in range(2):
        _, _, _, info = env.step(env.engine.get_dof_pos(env.char_id))
        stacks.append(info["amp_obs"].reshape(NUM_ENVS, env.num_amp_obs_steps, -1))
    before, after = stacks
    torch.testing.assert_close(after[:, :-1], before[:, 1:])
    assert not torch.allclose(after[:, -1], before[:, -1])  # a new frame came in


# ---------------------------------------------------------------------- task hooks
CALLS = []


class GoalTask(Task):
    """Observation: a fixed goal height; reward: minus the root height's distance to it."""

    def __init__(self, config, config_file, num_envs, device, control_dt):
        super().__init__(config, config_file, num_envs, device, control_dt)
        self.height = config["height"]

    def reset(self, env_ids, state):
        CALLS.append(("reset", env_ids.tolist()))

    def update(self, state):
        CALLS.append(("update",))

    def obs_terms(self, state):
        return [ObsTerm("goal_height", torch.full((self.num_envs, 1), self.height), "m", "world")]

    def reward(self, state):
        return -(state.root_pos[:, 2] - self.height).abs()


def test_a_task_appends_its_obs_gives_the_reward_and_is_reset_and_updated(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS.classes, "test_amp_env_goal", GoalTask)  # registered for this test only
    torch.manual_seed(3)
    env = make_env(tmp_path, task="task: {task_name: test_amp_env_goal, height: 0.5}")
    try:
        CALLS.clear()
        obs = env.reset()
        assert CALLS == [("reset", list(range(NUM_ENVS)))]
        assert env.get_obs_layout()[-1].name == "goal_height"
        assert torch.equal(obs[:, -1], torch.full((NUM_ENVS,), 0.5))
        obs, reward, _, _ = env.step(env.engine.get_dof_pos(env.char_id))
        assert CALLS[1:] == [("update",)]
        expected = -(env.engine.get_root_pos(env.char_id)[:, 2] - 0.5).abs()
        torch.testing.assert_close(reward, expected)
        env.reset(torch.tensor([2]))
        assert CALLS[2:] == [("reset", [2])]
    finally:
        env.close()


def test_without_a_task_the_reward_is_zero(env):
    env.reset()
    _, reward, _, _ = env.step(env.engine.get_dof_pos(env.char_id))
    assert torch.equal(reward, torch.zeros(NUM_ENVS))


# ---------------------------------------------------------------------- config errors
@pytest.mark.parametrize("replace, message", [
    ({"num_amp_obs_steps": "num_amp_obs_steps: 1"}, "num_amp_obs_steps.*>= 2"),
    ({"default_pose_prob": "default_pose_prob: 1.5"}, "default_pose_prob.*in \\[0, 1\\]"),
    ({"key_bodies": "key_bodies: [right_hand, left_paw]"}, "key_bodies.*left_paw"),
    ({"task": "task: {task_name: no_such_task}"}, "task.*no_such_task"),
])
def test_bad_config_is_an_error_naming_the_key(tmp_path, replace, message):
    with pytest.raises(MimicKitError, match=message):
        make_env(tmp_path, **replace)

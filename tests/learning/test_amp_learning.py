"""AMP learns for real, in SHORT runs (16 envs, about 100 iterations, one torch thread):

- the humanoid style-only configs: the style reward rises;
- the quadruped velocity-command configs (args/amp_quadruped_args.txt): the
  command-tracking reward and the style reward rise together.

Both policies are judged by the same, final discriminator: the style reward logged during
training falls at first because the discriminator learns faster than the policy, so it
says little on its own.
"""
import copy

import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner

ENGINE = "data/engines/mujoco_engine.yaml"
ENV = "data/envs/amp_humanoid_env.yaml"
AGENT = "data/agents/amp_humanoid_agent.yaml"
NUM_ENVS = 16
TRAIN_ITERS = 120  # x 32 steps x 16 envs = 61440 samples
EVAL_STEPS = 100


def mean_style_reward(agent, env, model_state):
    """Mean style reward per step of the deterministic policy ``model_state``, judged by the
    agent's current discriminator, over ``EVAL_STEPS`` steps of every env."""
    agent.model.load_state_dict(model_state)
    rewards = []
    obs = env.reset()
    with torch.no_grad():
        for _ in range(EVAL_STEPS):
            obs, _, done, info = env.step(agent.deterministic_env_action(obs))
            rewards.append(agent.style_reward(info["amp_obs"]))
            ended = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
            if len(ended) > 0:
                obs = env.reset(ended)
    return float(torch.stack(rewards).mean())


def test_short_training_raises_the_style_reward_under_the_final_discriminator():
    """Margins: the trained policy's mean style reward is at least twice the untrained
    one's and at least 0.15 higher (seen: 0.15-0.17 -> 0.42-0.52 over three seeds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is faster, above all on a shared CPU
    torch.manual_seed(0)
    env = build_env(ENV, ENGINE, num_envs=NUM_ENVS, device="cpu", visualize=False)
    try:
        agent = build_agent(AGENT, env, "cpu")
        runner = Runner(agent, agent.env, "cpu")
        untrained = copy.deepcopy(agent.model.state_dict())
        for _ in range(TRAIN_ITERS):
            info = runner.train_iter()
        trained = copy.deepcopy(agent.model.state_dict())
        before = mean_style_reward(agent, env, untrained)
        after = mean_style_reward(agent, env, trained)
    finally:
        env.close()
        torch.set_num_threads(threads)
    print("style reward under the final discriminator: untrained {:.3f}, trained {:.3f}".format(before, after))
    assert info["disc_demo_acc"] > 0.5  # the discriminator tells the demonstrations apart
    assert after >= 2.0 * before
    assert after >= before + 0.15


QUADRUPED_ENV = "data/envs/amp_quadruped_command_env.yaml"
COMMAND_AGENT = "data/agents/amp_command_agent.yaml"
QUADRUPED_ITERS = 100  # x 32 steps x 16 envs = 51200 samples
WINDOW_STEPS = 90  # 3 s at 30 Hz


def window_rewards(agent, env, model_state):
    """Per-step command-tracking (task) and style rewards of the deterministic policy
    ``model_state`` over a ``WINDOW_STEPS`` window from one reset of every env, counting
    nothing after an env's first termination (a fall ends its tracking), and the fraction
    of envs still up at the end. The same seed draws the same starts and commands for both
    policies; the style reward is judged by the agent's current discriminator."""
    agent.model.load_state_dict(model_state)
    torch.manual_seed(123)
    obs = env.reset()
    up = torch.ones(env.num_envs, dtype=torch.bool)
    task = torch.zeros(env.num_envs)
    style = torch.zeros(env.num_envs)
    with torch.no_grad():
        for _ in range(WINDOW_STEPS):
            obs, reward, done, info = env.step(agent.deterministic_env_action(obs))
            task += torch.where(up, reward, torch.zeros_like(reward))
            style += torch.where(up, agent.style_reward(info["amp_obs"]), torch.zeros_like(reward))
            up &= done == DoneFlags.NULL
    return float(task.mean()) / WINDOW_STEPS, float(style.mean()) / WINDOW_STEPS, float(up.float().mean())


def test_short_training_raises_the_command_tracking_and_style_rewards_of_the_quadruped():
    """The env's reward is the velocity-command task reward alone (legged_gym kernels in
    [0, 1.5]); the agent mixes in the style reward. Margins: the trained policy's
    command-tracking reward per step over 3 s is at least 1.3x the untrained one's and 0.1
    higher, its style reward at least 1.5x and 0.2 higher (seen: task 0.31 -> 0.51-0.53, style
    0.14-0.31 -> 0.60-0.70, envs still up 19 % -> 94-100 %, after 100 and 120 iterations).
    Most of the early tracking gain is staying up while commands are given: a fallen robot
    tracks nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    env = build_env(QUADRUPED_ENV, ENGINE, num_envs=NUM_ENVS, device="cpu", visualize=False)
    try:
        agent = build_agent(COMMAND_AGENT, env, "cpu")
        runner = Runner(agent, agent.env, "cpu")
        untrained = copy.deepcopy(agent.model.state_dict())
        for _ in range(QUADRUPED_ITERS):
            runner.train_iter()
        trained = copy.deepcopy(agent.model.state_dict())
        task_before, style_before, up_before = window_rewards(agent, env, untrained)
        task_after, style_after, up_after = window_rewards(agent, env, trained)
    finally:
        env.close()
        torch.set_num_threads(threads)
    print("command tracking {:.3f} -> {:.3f}, style {:.3f} -> {:.3f}, up {:.2f} -> {:.2f}".format(
        task_before, task_after, style_before, style_after, up_before, up_after))
    assert task_after >= 1.3 * task_before and task_after >= task_before + 0.1
    assert style_after >= 1.5 * style_before and style_after >= style_before + 0.2

"""Training throughput: samples/s of the full PPO loop against env stepping alone.

Same env (DeepMimic humanoid, data/envs/deepmimic_humanoid_env.yaml), same engine and
env count in one run:

- env only: ``env.step`` with random actions in the action space and ``env.reset`` of
  the envs that ended, ``steps_per_iter`` steps per round, as the rollout does;
- training: ``Runner.train_iter()`` of PPO (data/agents/deepmimic_humanoid_ppo_agent.yaml):
  rollout (env + policy inference) and the PPO update, with the time split that the
  agent reports (``time_env_s``, ``time_policy_s``, ``time_update_s``).

Each figure is the best of ``--trials`` alternating trials after one untimed warm-up.

    python benchmarks/train_throughput.py [--num-envs 256] [--iters 4] [--trials 3]
"""
import argparse
import datetime
import os
import platform
import time

import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(REPO, "data/engines/mujoco_engine.yaml")
ENV = os.path.join(REPO, "data/envs/deepmimic_humanoid_env.yaml")
AGENT = os.path.join(REPO, "data/agents/deepmimic_humanoid_ppo_agent.yaml")


def synchronize(device):
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def env_only_rate(env, num_steps):
    """Samples/s of stepping ``env`` with random actions for ``num_steps`` control steps."""
    space = env.get_action_space()
    low, high = space.low, space.high
    env.reset()
    synchronize(low.device)
    start = time.perf_counter()
    for _ in range(num_steps):
        action = low + (high - low) * torch.rand(env.num_envs, len(low), device=low.device)
        _, _, done, _ = env.step(action)
        ended = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
        if len(ended) > 0:
            env.reset(ended)
    synchronize(low.device)
    return num_steps * env.num_envs / (time.perf_counter() - start)


def train_rate(runner, iters):
    """Samples/s of ``iters`` PPO iterations and the mean time split per iteration (s)."""
    split = {"time_env_s": 0.0, "time_policy_s": 0.0, "time_update_s": 0.0}
    start = time.perf_counter()
    for _ in range(iters):
        info = runner.train_iter()
        for key in split:
            split[key] += info[key] / iters
    synchronize(runner.device)
    elapsed = time.perf_counter() - start
    return iters * runner.samples_per_iter / elapsed, split


def best_rates(runner, iters, trials):
    """Best env-only and training samples/s over ``trials`` alternating trials after one
    untimed warm-up of each, and the time split of the best training trial (s per iteration).

    Each trial steps the env for ``iters`` PPO iterations' worth of control steps, then
    runs ``iters`` PPO iterations.
    """
    env, steps_per_iter = runner.env, runner.agent.config.steps_per_iter
    env_only_rate(env, steps_per_iter)
    runner.train_iter()
    best_env, best_train, best_split = 0.0, 0.0, None
    for _ in range(trials):
        best_env = max(best_env, env_only_rate(env, steps_per_iter * iters))
        runner.restart_episodes()  # the env was stepped outside the runner
        rate, split = train_rate(runner, iters)
        if rate > best_train:
            best_train, best_split = rate, split
    return best_env, best_train, best_split


def split_percent(split):
    """The time split as percentages of a training iteration: env, policy, update."""
    total = sum(split.values())
    return tuple(100 * split[k] / total for k in ("time_env_s", "time_policy_s", "time_update_s"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print("train throughput, {}, {} CPUs, torch {} ({} threads), {}".format(
        datetime.date.today(), os.cpu_count(), torch.__version__, torch.get_num_threads(), platform.machine()))
    print("{:>6} {:>12} {:>12} {:>8} {:>10} {:>10} {:>10}".format(
        "N", "env only/s", "training/s", "ratio", "env %", "policy %", "update %"))
    for num_envs in args.num_envs:
        env = build_env(ENV, ENGINE, num_envs, "cpu", False)
        runner = Runner(build_agent(AGENT, env, "cpu"), env, "cpu")
        best_env, best_train, best_split = best_rates(runner, args.iters, args.trials)
        print("{:>6} {:>12.0f} {:>12.0f} {:>8.3f} {:>10.1f} {:>10.1f} {:>10.1f}".format(
            num_envs, best_env, best_train, best_train / best_env, *split_percent(best_split)))
        env.close()


if __name__ == "__main__":
    main()

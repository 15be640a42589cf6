"""Training throughput: samples/s of the full training loop against env stepping alone and raw physics.

For each algorithm (``deepmimic``: PPO on data/envs/deepmimic_humanoid_env.yaml with
data/agents/deepmimic_humanoid_ppo_agent.yaml; ``amp``: AMP on data/envs/amp_humanoid_env.yaml
with data/agents/amp_humanoid_agent.yaml), same engine and env count in one run:

- raw: :class:`mujoco.batch.Batch` stepping the env's own compiled model (its characters,
  ground and substeps) on the engine's threads with random controls in the actuators'
  ranges, nothing read back (as ``benchmarks/engine_throughput.py``'s raw column): the
  physics limit;
- env only: ``env.step`` with random actions in the action space and ``env.reset`` of
  the envs that ended, ``steps_per_iter`` steps per round, as the rollout does;
- training: ``Runner.train_iter()``: rollout (env + policy inference) and the update,
  with the time split that the agent reports (``time_env_s``, ``time_policy_s``,
  ``time_update_s``). ``train/raw`` is training over raw.

``--matmul-dtype`` overrides the agent YAML's ``matmul_dtype`` (the networks' matrix
products; ``as-is`` keeps the file's).

Each figure is the best of ``--trials`` alternating trials after one untimed warm-up.

    python benchmarks/train_throughput.py [--algos deepmimic amp] [--num-envs 256] [--iters 4] [--trials 3]\
        [--matmul-dtype as-is float32 bfloat16]
"""
import argparse
import datetime
import os
import platform
import time

import torch
from engine_throughput import WARMUP_STEPS, time_raw

from mimickit.envs.base_env import DoneFlags
from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(REPO, "data/engines/mujoco_engine.yaml")
ALGOS = {  # name: (env config, agent config)
    "deepmimic": (os.path.join(REPO, "data/envs/deepmimic_humanoid_env.yaml"),
                  os.path.join(REPO, "data/agents/deepmimic_humanoid_ppo_agent.yaml")),
    "amp": (os.path.join(REPO, "data/envs/amp_humanoid_env.yaml"),
            os.path.join(REPO, "data/agents/amp_humanoid_agent.yaml")),
}


def synchronize(device):
    """Wait for the work queued on ``device`` (CUDA); nothing to wait for on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def raw_rate(engine, num_steps):
    """Env-steps/s of bare threaded ``mj_step`` on ``engine``'s model: ``num_steps`` control steps of every env."""
    model = engine.model
    low, high = torch.from_numpy(model.actuator_ctrlrange.T.copy()).float()
    u = torch.rand(num_steps + WARMUP_STEPS, engine.num_envs, model.nu, generator=torch.Generator().manual_seed(0))
    seconds = time_raw(model, engine.num_envs, engine.num_threads, engine.substeps, low + (high - low) * u, True)
    return num_steps * engine.num_envs / seconds


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
    """Best raw, env-only and training samples/s over ``trials`` alternating trials after one
    untimed warm-up of each, and the time split of the best training trial (s per iteration).

    Each trial steps raw physics and the env for ``iters`` iterations' worth of control
    steps, then runs ``iters`` training iterations.
    """
    env, steps_per_iter = runner.env, runner.agent.config.steps_per_iter
    env_only_rate(env, steps_per_iter)
    runner.train_iter()
    best_raw, best_env, best_train, best_split = 0.0, 0.0, 0.0, None
    for _ in range(trials):
        best_raw = max(best_raw, raw_rate(env.engine, steps_per_iter * iters))
        best_env = max(best_env, env_only_rate(env, steps_per_iter * iters))
        runner.restart_episodes()  # the env was stepped outside the runner
        rate, split = train_rate(runner, iters)
        if rate > best_train:
            best_train, best_split = rate, split
    return best_raw, best_env, best_train, best_split


def split_percent(split):
    """The time split as percentages of a training iteration: env, policy, update."""
    total = sum(split.values())
    return tuple(100 * split[k] / total for k in ("time_env_s", "time_policy_s", "time_update_s"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", choices=sorted(ALGOS), default=["deepmimic", "amp"])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[256])
    parser.add_argument("--matmul-dtype", nargs="+", choices=["as-is", "float32", "bfloat16", "auto"],
                        default=["as-is"])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print("train throughput, {}, {} CPUs, torch {} ({} threads), {}".format(
        datetime.date.today(), os.cpu_count(), torch.__version__, torch.get_num_threads(), platform.machine()))
    print("{:>10} {:>6} {:>9} {:>9} {:>12} {:>12} {:>10} {:>10} {:>8} {:>10} {:>8}".format(
        "algo", "N", "matmul", "raw/s", "env only/s", "training/s", "train/env", "train/raw", "env %", "policy %",
        "update %"))
    for algo in args.algos:
        env_file, agent_file = ALGOS[algo]
        for num_envs in args.num_envs:
            for matmul_dtype in args.matmul_dtype:
                env = build_env(env_file, ENGINE, num_envs, "cpu", False)
                overrides = {} if matmul_dtype == "as-is" else {"matmul_dtype": matmul_dtype}
                agent = build_agent(agent_file, env, "cpu", overrides)
                runner = Runner(agent, env, "cpu")
                best_raw, best_env, best_train, best_split = best_rates(runner, args.iters, args.trials)
                print("{:>10} {:>6} {:>9} {:>9.0f} {:>12.0f} {:>12.0f} {:>10.3f} {:>10.3f} {:>8.1f} {:>10.1f} "
                      "{:>8.1f}".format(algo, num_envs, str(agent.matmul_dtype).replace("torch.", ""), best_raw,
                                        best_env, best_train, best_train / best_env, best_train / best_raw,
                                        *split_percent(best_split)))
                env.close()


if __name__ == "__main__":
    main()

"""GPU throughput: DeepMimic humanoid env steps/s and PPO training samples/s with mujoco_warp.

For each number of envs N, in one run, on one device (``--device``, a CUDA GPU by default):

- env only: ``env.step`` with random actions and resets of the envs that ended, as the
  rollout does (``env_only_rate`` of benchmarks/train_throughput.py);
- training: whole PPO iterations, rollout and update, with the GPU-sized networks of
  data/agents/deepmimic_humanoid_ppo_gpu_agent.yaml (``train_rate``), and the time split the
  agent reports (env step and reset, the rest of the rollout, the PPO update; host wall time);
- raw: ``mujoco_warp.step`` alone, ``substeps`` per control step replayed as one recorded
  graph, on the engine's own compiled scene (``engine.model``: ground, humanoid, readback
  sensors) with the same nworld = N, buffer sizes and starting state; nothing is read back.
  env only / raw is the share of the simulator's pure stepping rate that the env keeps.

Env-only and training figures are the best of ``--trials`` alternating trials after one
untimed warm-up (``best_rates``); raw is the best of as many trials of the same number of
control steps. A sample (env step) is one control step of one env (30 Hz control, 4
physics steps at 120 Hz). Goal (mimickit issue #7): >= 150k training samples/s for the
humanoid on one H100.

    python benchmarks/gpu_throughput.py [--device cuda|cpu] [--num-envs 1024 4096 8192]
        [--iters 4] [--trials 3] [--engine-config ...] [--agent-config ...]
"""
import argparse
import datetime
import os
import platform
import time

import mujoco
import torch

from train_throughput import ENV, REPO, best_rates, split_percent, synchronize

from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner

ENGINE = os.path.join(REPO, "data/engines/mujoco_warp_engine.yaml")
AGENT = os.path.join(REPO, "data/agents/deepmimic_humanoid_ppo_gpu_agent.yaml")
GOAL = 150000  # training samples/s, humanoid, one H100 (issue #7)


def device_name(device):
    """The GPU's name, or the CPU's model name from /proc/cpuinfo (else the machine type)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return "{} ({} CPUs)".format(line.split(":", 1)[1].strip(), os.cpu_count())
    except OSError:
        pass
    return "{} CPU ({} CPUs)".format(platform.machine(), os.cpu_count())


def raw_warp_rate(engine, num_steps, trials):
    """Env-steps/s of ``mujoco_warp.step`` alone on ``engine``'s compiled scene and device.

    ``engine``: an initialized mujoco_warp engine. A second ``mujoco_warp`` model and data
    of the same nworld and buffer sizes start from the engine's current qpos, qvel and
    ctrl; one control step (``engine.substeps`` calls of ``mujoco_warp.step``) is recorded
    as a graph and replayed ``num_steps`` times per trial. Returns the best trial's
    ``num_steps * nworld / seconds``.
    """
    import mujoco_warp as mjw
    import warp as wp

    src = engine.warp_data
    device = src.qpos.device
    nconmax, njmax = engine.buffer_sizes
    with wp.ScopedDevice(device):
        model = mjw.put_model(engine.model)
        model.opt.warn_overflow = 0  # as the engine: no per-kernel overflow printing
        data = mjw.put_data(engine.model, mujoco.MjData(engine.model), nworld=engine.num_envs,
                            nconmax=nconmax, njmax=njmax)
        wp.synchronize_device(device)  # the engine's last step is done
        for name in ("qpos", "qvel", "ctrl"):
            wp.copy(getattr(data, name), getattr(src, name))
        mjw.forward(model, data)

        def control_step():
            for _ in range(engine.substeps):
                mjw.step(model, data)

        control_step()  # compiles the kernels
        with wp.ScopedCapture(device=device) as capture:
            control_step()
        best = 0.0
        for _ in range(trials):
            wp.synchronize_device(device)
            start = time.perf_counter()
            for _ in range(num_steps):
                wp.capture_launch(capture.graph)
            wp.synchronize_device(device)
            best = max(best, num_steps * engine.num_envs / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--iters", type=int, default=4, help="PPO iterations per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--engine-config", default=ENGINE)
    parser.add_argument("--agent-config", default=AGENT)
    args = parser.parse_args()
    device = "cuda:0" if args.device == "cuda" else "cpu"
    torch.manual_seed(0)
    print("gpu throughput, {}, device {}: {}, torch {}, {}".format(
        datetime.date.today(), device, device_name(device), torch.__version__, platform.machine()))
    print("engine {}, agent {}".format(os.path.relpath(args.engine_config, REPO), os.path.relpath(args.agent_config, REPO)))
    print("{:>6} {:>12} {:>12} {:>8} {:>12} {:>9} {:>7} {:>9} {:>9}".format(
        "N", "env only/s", "training/s", "ratio", "raw warp/s", "env/raw", "env %", "policy %", "update %"))
    best_training = 0.0
    for num_envs in args.num_envs:
        env = build_env(ENV, args.engine_config, num_envs, device, False)
        runner = Runner(build_agent(args.agent_config, env, device), env, device)
        best_env, best_train, best_split = best_rates(runner, args.iters, args.trials)
        raw = float("nan")  # the raw reference exists for mujoco_warp engines only
        if hasattr(env.engine, "warp_data"):
            raw = raw_warp_rate(env.engine, runner.agent.config.steps_per_iter * args.iters, args.trials)
        synchronize(device)
        print("{:>6} {:>12.0f} {:>12.0f} {:>8.3f} {:>12.0f} {:>9.3f} {:>7.1f} {:>9.1f} {:>9.1f}".format(
            num_envs, best_env, best_train, best_train / best_env, raw, best_env / raw, *split_percent(best_split)),
            flush=True)
        best_training = max(best_training, best_train)
        env.close()
        del runner, env
        if device != "cpu":
            torch.cuda.empty_cache()
    if device == "cpu":
        print("CPU device: smoke figures only; the goal (>= {} training samples/s) is for one H100".format(GOAL))
    else:
        print("goal: >= {} training samples/s on one H100; best here {:.0f} on {} ({})".format(
            GOAL, best_training, device_name(device), "met" if best_training >= GOAL else "not met"))


if __name__ == "__main__":
    main()

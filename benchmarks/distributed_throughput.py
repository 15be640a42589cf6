"""Distributed throughput: training samples/s of processes x threads on this machine, as ratios in one run.

Each layout trains the DeepMimic humanoid (``args/deepmimic_humanoid_ppo_args.txt``, PPO) with
``run.py`` for ``--iters`` iterations on the same total number of envs:

- ``PxT``: ``P`` processes (``--num_workers P``, torchrun with gloo when P > 1) of ``T`` threads
  each (the engine's ``num_threads`` and ``OMP_NUM_THREADS``), ``--num-envs / P`` envs per process.

The figure is the log's ``samples_per_s`` of the run (training iterations only; the
single output at the end runs no test episodes), the total over all processes. Trials
alternate between the layouts and each layout keeps its best (the least disturbed by
other processes). Ratios are against the first layout.

    python benchmarks/distributed_throughput.py [--num-envs 256] [--iters 10] [--trials 2] [--layouts 1x1 1x2 2x1]
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARG_FILE = "args/deepmimic_humanoid_ppo_args.txt"
ENGINE = os.path.join(REPO, "data/engines/mujoco_engine.yaml")
AGENT = os.path.join(REPO, "data/agents/deepmimic_humanoid_ppo_agent.yaml")


def parse_layout(text):
    """``"2x1"`` -> ``(2, 1)`` (processes, threads per process)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError("expected PROCESSESxTHREADS such as 2x1, got {}".format(text))
    return int(match.group(1)), int(match.group(2))


def write_configs(folder, threads, iters):
    """An engine YAML with ``num_threads: threads`` and an agent YAML whose only output is after ``iters``."""
    engine = re.sub(r"^num_threads: *\d+", "num_threads: {}".format(threads), open(ENGINE).read(), flags=re.M)
    agent = re.sub(r"^iters_per_output: *\d+", "iters_per_output: {}".format(iters), open(AGENT).read(), flags=re.M)
    agent = re.sub(r"^test_episodes: *\d+", "test_episodes: 0", agent, flags=re.M)
    paths = os.path.join(folder, "engine.yaml"), os.path.join(folder, "agent.yaml")
    for path, text in zip(paths, (engine, agent)):
        with open(path, "w") as f:
            f.write(text)
    return paths


def steps_per_iter():
    return int(re.search(r"^steps_per_iter: *(\d+)", open(AGENT).read(), flags=re.M).group(1))


def run_layout(processes, threads, num_envs, iters, folder):
    """samples/s (all processes together) of one training run of the layout."""
    engine, agent = write_configs(folder, threads, iters)
    out_dir = os.path.join(folder, "run")
    argv = [sys.executable, "mimickit/run.py", "--arg_file", ARG_FILE, "--engine_config", engine,
            "--agent_config", agent, "--num_envs", str(num_envs // processes), "--num_workers", str(processes),
            "--max_samples", str(iters * steps_per_iter() * num_envs), "--out_dir", out_dir, "--overwrite", "true",
            "--rand_seed", "0"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(argv, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out_dir, "log.txt")) as f:
        header, *rows = [line.split() for line in f if line.strip()]
    return float(rows[-1][header.index("samples_per_s")])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num-envs", type=int, default=256, help="total envs over all processes")
    p.add_argument("--iters", type=int, default=10, help="training iterations per run")
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--layouts", type=parse_layout, nargs="+", default=[(1, 1), (1, 2), (2, 1)])
    args = p.parse_args()
    best = {layout: 0.0 for layout in args.layouts}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.trials):
            for layout in args.layouts:
                best[layout] = max(best[layout], run_layout(*layout, args.num_envs, args.iters, folder))
    print("# {} | {} | {} CPUs | python {} | DeepMimic humanoid PPO, {} envs in total, {} iterations, best of {}"
          .format(datetime.date.today(), platform.machine(), os.cpu_count(), platform.python_version(),
                  args.num_envs, args.iters, args.trials))
    reference = best[args.layouts[0]]
    print("processes x threads | samples/s | ratio to {}x{}".format(*args.layouts[0]))
    for (processes, threads), rate in best.items():
        print("{} x {} | {:.0f} | {:.2f}".format(processes, threads, rate, rate / reference))


if __name__ == "__main__":
    main()

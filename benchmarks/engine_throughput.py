"""Engine throughput: env-steps/s of the MuJoCo engine against raw threaded mj_step.

For each number of envs N, every run starts all envs in the default pose and applies the
same random PD targets (uniform within the dof limits, a new draw every control step),
so all runs simulate the same trajectories:

- engine: ``set_cmd``, ``step()`` (4 substeps at the default 120/30 Hz) and every state
  getter read back as a tensor, plus ``pop_failed_envs()``, each control step;
- raw: :class:`mujoco.batch.Batch` on the engine's compiled model with the engine's thread
  count and, like the engine, one MjData per env; each control step writes ``ctrl`` and
  calls ``mj_step`` x4 per env; nothing is read back;
- raw, MjData per thread: the same with the batch's default of one MjData per thread,
  which keeps the working set in cache: the fastest way MuJoCo steps these envs.

An env-step is one control step of one env. Each trial starts fresh, runs WARMUP_STEPS
untimed control steps, then times the rest; trials alternate between the runs, and each
run keeps its best trial (the least disturbed by other processes on a shared machine).

    python benchmarks/engine_throughput.py [--num-envs 1 64 256] [--steps-per-env 5120] [--trials 10]
"""
import argparse
import datetime
import os
import platform
import time

import mujoco
import mujoco.batch
import torch

from mimickit.engines.engine_builder import build_engine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE_CONFIG = os.path.join(REPO, "data/engines/mujoco_engine.yaml")
HUMANOID = os.path.join(REPO, "data/assets/humanoid/humanoid.xml")
WARMUP_STEPS = 5


def make_engine(num_envs):
    engine = build_engine(ENGINE_CONFIG, num_envs, "cpu", False)
    char_id = engine.add_character(HUMANOID, "humanoid")
    engine.initialize()
    return engine, char_id


def random_targets(engine, char_id, num_steps, seed):
    low, high = engine.get_dof_limits(char_id)
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(num_steps, engine.num_envs, len(low), generator=generator)
    return low + (high - low) * u  # [num_steps, num_envs, num_dofs] rad


def read_all(engine, char_id):
    return (engine.get_root_pos(char_id), engine.get_root_rot(char_id), engine.get_root_vel(char_id),
            engine.get_root_ang_vel(char_id), engine.get_dof_pos(char_id), engine.get_dof_vel(char_id),
            engine.get_dof_forces(char_id), engine.get_body_pos(char_id), engine.get_body_rot(char_id),
            engine.get_body_vel(char_id), engine.get_body_ang_vel(char_id),
            engine.get_contact_forces(char_id), engine.get_ground_contacts(char_id),
            engine.pop_failed_envs())


def time_engine(num_envs, targets):
    """Seconds for len(targets) - WARMUP_STEPS control steps of a fresh engine."""
    engine, char_id = make_engine(num_envs)
    for i, cmd in enumerate(targets):
        if i == WARMUP_STEPS:
            start = time.perf_counter()
        engine.set_cmd(char_id, cmd)
        engine.step()
        read_all(engine, char_id)
    elapsed = time.perf_counter() - start
    engine.close()
    return elapsed


def time_raw(model, num_envs, num_threads, substeps, targets, persistent):
    """Seconds for the same control steps with bare mj_step calls on the batch's threads."""
    batch = mujoco.batch.Batch(model, num_envs, nthread=num_threads, persistent=persistent)
    batch.reset()
    ctrl = batch.bind("ctrl")
    ctrl_targets = targets.double().numpy()
    for i in range(len(ctrl_targets)):
        if i == WARMUP_STEPS:
            start = time.perf_counter()
        ctrl[:] = ctrl_targets[i]
        batch.step(nstep=substeps)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--steps-per-env", type=int, default=5120,
                        help="timed env-steps per trial: control steps = this / N, at least 20")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()

    print("engine throughput, {}, {} CPUs usable, mujoco {}, torch {}, {}".format(
        datetime.date.today().isoformat(), len(os.sched_getaffinity(0)), mujoco.__version__,
        torch.__version__, platform.processor() or platform.machine()))
    rows = []
    for num_envs in args.num_envs:
        engine, char_id = make_engine(num_envs)
        model, num_threads, substeps = engine.model, engine.num_threads, engine.substeps
        steps = max(20, args.steps_per_env // num_envs)
        targets = random_targets(engine, char_id, steps + WARMUP_STEPS, seed=num_envs)
        engine.close()
        best = {"engine": float("inf"), "raw": float("inf"), "raw_shared": float("inf")}
        for _ in range(args.trials):
            best["engine"] = min(best["engine"], time_engine(num_envs, targets))
            best["raw"] = min(best["raw"], time_raw(model, num_envs, num_threads, substeps, targets, True))
            best["raw_shared"] = min(best["raw_shared"],
                                     time_raw(model, num_envs, num_threads, substeps, targets, False))
        rates = {k: num_envs * steps / v for k, v in best.items()}
        rows.append((num_envs, num_threads, rates))

    print("env-steps/s (N envs x control steps per second of wall time):")
    print("{:>6} {:>8} {:>10} {:>10} {:>11} {:>16} {:>17}".format(
        "N", "threads", "engine", "raw", "engine/raw", "raw (MjData/thr)", "engine/raw (thr)"))
    for num_envs, num_threads, rates in rows:
        print("{:>6} {:>8} {:>10.0f} {:>10.0f} {:>11.3f} {:>16.0f} {:>17.3f}".format(
            num_envs, num_threads, rates["engine"], rates["raw"], rates["engine"] / rates["raw"],
            rates["raw_shared"], rates["engine"] / rates["raw_shared"]))

if __name__ == "__main__":
    main()

"""Stepping speed of robot files and collision shapes, as ratios to our humanoid in the same run.

Each run steps N envs of one character in the MuJoCo engine (one thread, the default 120/30 Hz)
from the default pose, under the same kind of PD targets: the default dof positions plus
uniform noise of +-0.3 rad, a new draw every control step, clamped to the dof limits, with
every state getter read back each step. The robots fall and lie on the floor during a
trial, so mesh-floor contacts are part of what is timed. Characters:

- our humanoid (``data/assets/humanoid/humanoid.xml``, primitives): the reference;
- our G1 (``data/assets/g1/g1.xml``, primitives fitted to the vendor's mesh hulls);
- the vendor's G1 MJCF (``../shared/data/unitree_g1/g1_29dof.xml``) with ``collision_meshes``
  ``keep`` (its mesh geoms), ``capsule`` and ``box`` (MuJoCo's fitted primitives), PD gains
  from ``data/engines/mujoco_g1_engine.yaml``.

Trials alternate between the runs; each keeps its best trial.

    python benchmarks/robot_collision_speed.py [--num-envs 16] [--steps 300] [--trials 5]
"""
import argparse
import datetime
import os
import tempfile
import time
import warnings

import mujoco
import torch
import yaml

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.engine_builder import build_engine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR_G1 = os.path.join(os.path.dirname(REPO), "shared", "data", "unitree_g1", "g1_29dof.xml")
G1_ENGINE = os.path.join(REPO, "data/engines/mujoco_g1_engine.yaml")
NOISE_RAD = 0.3
WARMUP_STEPS = 5
RUNS = (("our humanoid", "data/assets/humanoid/humanoid.xml", "keep"),
        ("our G1", "data/assets/g1/g1.xml", "keep"),
        ("vendor G1, meshes", VENDOR_G1, "keep"),
        ("vendor G1, capsules", VENDOR_G1, "capsule"),
        ("vendor G1, boxes", VENDOR_G1, "box"))


def engine_file(folder, collision_meshes):
    config = yaml.safe_load(open(G1_ENGINE))
    config.update(num_threads=1, collision_meshes=collision_meshes)
    path = os.path.join(folder, "engine_{}.yaml".format(collision_meshes))
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def time_run(engine_config, asset, num_envs, steps, seed):
    """Env-steps/s of ``steps`` control steps after the warm-up."""
    engine = build_engine(engine_config, num_envs, "cpu", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the vendor's motors turned into PD are announced
        char_id = engine.add_character(asset, "char")
        default = KinCharModel(asset).default_dof_pos
    engine.initialize()
    low, high = engine.get_dof_limits(char_id)
    g = torch.Generator().manual_seed(seed)
    targets = default + NOISE_RAD * (2 * torch.rand(steps + WARMUP_STEPS, num_envs, len(low), generator=g) - 1)
    targets = torch.minimum(torch.maximum(targets.to(low.dtype), low), high)
    for i, cmd in enumerate(targets):
        if i == WARMUP_STEPS:
            start = time.perf_counter()
        engine.set_cmd(char_id, cmd)
        engine.step()
        engine.get_body_pos(char_id), engine.get_dof_pos(char_id), engine.get_contact_forces(char_id)
        engine.pop_failed_envs()
    elapsed = time.perf_counter() - start
    engine.close()
    return num_envs * steps / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300, help="timed control steps per trial")
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    runs = [r for r in RUNS if os.path.isfile(os.path.join(REPO, r[1]))]
    if len(runs) < len(RUNS):
        print("../shared/data/unitree_g1 is absent: the vendor runs are left out")
    print("robot collision speed, {}, mujoco {}, {} envs, 1 thread, {} control steps, best of {}".format(
        datetime.date.today().isoformat(), mujoco.__version__, args.num_envs, args.steps, args.trials))
    with tempfile.TemporaryDirectory() as folder:
        configs = {shape: engine_file(folder, shape) for shape in {r[2] for r in runs}}
        best = {name: 0.0 for name, _, _ in runs}
        for trial in range(args.trials):
            for name, asset, shape in runs:
                rate = time_run(configs[shape], os.path.join(REPO, asset), args.num_envs, args.steps, seed=trial)
                best[name] = max(best[name], rate)
    reference = best[runs[0][0]]
    print("{:<22} {:>12} {:>16}".format("character", "env-steps/s", "/ our humanoid"))
    for name, _, _ in runs:
        print("{:<22} {:>12.0f} {:>16.3f}".format(name, best[name], best[name] / reference))


if __name__ == "__main__":
    main()

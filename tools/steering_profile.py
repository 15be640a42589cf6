"""Speed profile of a steering policy: how fast it travels along its goal, per goal speed.

    python tools/steering_profile.py --model_file output/real_amp_heading/model.pt \\
        --env_config output/envs/amp_heading_eval_env.yaml --motion_file output/motions/walk_run.yaml

Runs the deterministic policy of an AMP agent on an env with the ``steering`` task for
``--steps`` control steps on ``--num_envs`` envs (episodes that end are reset, as in
training) and sorts every step into bins of the goal's target speed. Per bin it prints the
number of steps, the mean root speed along the target direction and the mean horizontal root
speed (m/s, world), the mean facing error (rad) and the mean style reward (the discriminator's,
as in training); then the median facing error over all steps, and the mean style reward per
0.5 m/s bin of the root's own horizontal speed (how real each gait looks to the
discriminator). ``eval.json``'s ``tar_speed_err`` says how far the speed is from the goal's;
this says whether the speed follows the goal at all. Run it from the repository root.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mimickit.envs.base_env import BaseEnv  # noqa: E402
from mimickit.envs.locomotion_tasks import SteeringTask  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from tools.cli import add_model_flags, load_model, run_tool  # noqa: E402


def binned_means(key: np.ndarray, columns: Dict[str, np.ndarray], edges: np.ndarray) -> List[Dict[str, float]]:
    """Mean of every column over the steps whose ``key`` lies in each bin ``[edges[i], edges[i + 1])``
    (the last bin includes its upper edge; steps outside ``edges`` are left out).

    Args:
        key: ``[num_steps]`` the binned quantity (here a goal speed or the root's speed, m/s).
        columns: name -> ``[num_steps]`` per-step values.
        edges: ``[num_bins + 1]`` increasing bin edges, in ``key``'s unit.

    Returns:
        One dict per bin with keys ``low``, ``high``, ``steps`` and one mean per column (NaN for
        an empty bin).
    """
    index = np.clip(np.searchsorted(edges, key, side="right") - 1, 0, len(edges) - 2)
    inside = (key >= edges[0]) & (key <= edges[-1])
    rows = []
    for i in range(len(edges) - 1):
        mask = inside & (index == i)
        row = dict(low=float(edges[i]), high=float(edges[i + 1]), steps=int(mask.sum()))
        row.update({name: float(x[mask].mean()) if mask.any() else float("nan") for name, x in columns.items()})
        rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, "model.pt of an AMP agent trained on a steering env", "data/envs/amp_heading_humanoid_env.yaml",
                    "data/agents/amp_task_humanoid_agent.yaml", num_envs=32)
    p.add_argument("--steps", type=int, default=300, help="control steps")
    p.add_argument("--num_bins", type=int, default=6, help="bins over the env's tar_speed range")
    p.add_argument("--rand_seed", type=int, default=0)
    return p


def check_steering(env: BaseEnv) -> None:
    """Raise :class:`MimicKitError` unless ``env`` carries the steering task."""
    if not isinstance(getattr(env, "task", None), SteeringTask):
        raise MimicKitError("--env_config: expected an env with the steering task, got {}".format(
            type(getattr(env, "task", None)).__name__))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool; returns the exit status (0, or 2 after a user mistake)."""
    args = build_parser().parse_args(argv)
    return run_tool(lambda: profile(args))


def profile(args: argparse.Namespace) -> None:
    """Run the policy and print the tables (module docstring)."""
    torch.manual_seed(args.rand_seed)
    env, agent = load_model(args, check_env=check_steering)
    task: SteeringTask = env.task  # check_steering made sure
    try:
        obs = env.reset()
        columns = {name: [] for name in ("tar_speed", "along", "speed", "facing_err", "style")}
        with torch.no_grad():
            for _ in range(args.steps):
                obs, _, _, info = env.step(agent.deterministic_env_action(obs))
                vel = env.engine.get_root_vel(env.char_id)[:, :2]
                columns["tar_speed"].append(task.tar_speed.clone())
                columns["along"].append(torch.sum(vel * task.tar_dir, dim=-1))
                columns["speed"].append(torch.linalg.norm(vel, dim=-1))
                columns["facing_err"].append(info["tracking_errors"]["facing_err"])
                columns["style"].append(agent.style_reward(info["amp_obs"]))
    finally:
        env.close()
    steps = {name: torch.cat(values).numpy() for name, values in columns.items()}
    tar_speed = steps.pop("tar_speed")
    edges = np.linspace(task.cfg.tar_speed[0], task.cfg.tar_speed[1], args.num_bins + 1)
    print("{:>13} {:>7} {:>10} {:>10} {:>11} {:>7}".format("tar_speed m/s", "steps", "along m/s", "speed m/s",
                                                           "facing rad", "style"))
    for row in binned_means(tar_speed, steps, edges):
        print("{:>6.2f}-{:<6.2f} {:>7d} {:>10.2f} {:>10.2f} {:>11.2f} {:>7.2f}".format(
            row["low"], row["high"], row["steps"], row["along"], row["speed"], row["facing_err"], row["style"]))
    print("median facing error {:.2f} rad over {} steps".format(float(np.median(steps["facing_err"])),
                                                                 len(tar_speed)))
    # The discriminator's view of each gait: style reward per bin of the root's own speed.
    speed = steps["speed"]
    speed_edges = np.arange(0.0, max(float(speed.max()), task.cfg.tar_speed[1]) + 0.5, 0.5)
    print("{:>13} {:>7} {:>7}".format("speed m/s", "steps", "style"))
    for row in binned_means(speed, dict(style=steps["style"]), speed_edges):
        if row["steps"]:
            print("{:>6.2f}-{:<6.2f} {:>7d} {:>7.2f}".format(row["low"], row["high"], row["steps"], row["style"]))


if __name__ == "__main__":
    sys.exit(main())

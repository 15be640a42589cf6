"""tools/steering_profile.py: binned means against numpy, and a run on a saved (untrained) agent."""
import numpy as np

from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner
from tools.steering_profile import binned_means, main

ENV = "data/envs/amp_heading_humanoid_env.yaml"
AGENT = "data/agents/amp_task_humanoid_agent.yaml"
ENGINE = "data/engines/mujoco_engine.yaml"


def test_binned_means_match_numpy_per_bin():
    rng = np.random.default_rng(0)
    tar = rng.uniform(1.0, 4.0, 1000)
    tar[:3] = [1.0, 2.5, 4.0]  # lower edge, an inner edge, the closed upper edge
    along, speed, facing = rng.normal(size=(3, 1000))
    edges = np.array([1.0, 2.5, 4.0])
    rows = binned_means(tar, dict(along=along, speed=speed, facing_err=facing), edges)
    low, high = tar < 2.5, tar >= 2.5
    assert [r["steps"] for r in rows] == [low.sum(), high.sum()] and low.sum() + high.sum() == 1000
    for row, mask in zip(rows, (low, high)):
        np.testing.assert_allclose([row["along"], row["speed"], row["facing_err"]],
                                   [along[mask].mean(), speed[mask].mean(), facing[mask].mean()])
    empty = binned_means(tar, dict(along=along), np.array([5.0, 6.0]))[0]
    assert empty["steps"] == 0 and np.isnan(empty["along"])


def test_profile_runs_on_a_saved_agent(tmp_path, capsys):
    env = build_env(ENV, ENGINE, 2, "cpu", False)
    try:
        Runner(build_agent(AGENT, env, "cpu"), env, "cpu").save(str(tmp_path / "model.pt"))
    finally:
        env.close()
    assert main(["--model_file", str(tmp_path / "model.pt"), "--num_envs", "2", "--steps", "5",
                 "--num_bins", "3"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[4].startswith("median facing error") and lines[5].split() == ["speed", "m/s", "steps", "style"]
    assert sum(int(line.split()[1]) for line in lines[1:4]) == 10  # every step in a goal bin
    assert sum(int(line.split()[1]) for line in lines[6:]) == 10  # and in a speed bin

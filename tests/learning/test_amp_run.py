"""run.py end to end with env_name amp and agent_name AMP: train 2 iterations, then test
the saved model, which writes eval.json (a smoke test on the shipped configs, made small)."""
import json
import re

import pytest

from mimickit.learning.logger import read_txt_log
from mimickit.run import main

ENGINE = "data/engines/mujoco_engine.yaml"


@pytest.mark.parametrize("env_file, agent_file, task_errors", [
    ("data/envs/amp_humanoid_env.yaml", "data/agents/amp_humanoid_agent.yaml", []),
    ("data/envs/amp_quadruped_command_env.yaml", "data/agents/amp_command_agent.yaml",
     ["cmd_lin_vel_err", "cmd_ang_vel_err"]),
    ("data/envs/amp_g1_command_env.yaml", "data/agents/amp_command_agent.yaml",
     ["cmd_lin_vel_err", "cmd_ang_vel_err"]),
])
def test_amp_trains_through_run_py_and_its_model_tests(tmp_path, capsys, env_file, agent_file, task_errors):
    env = tmp_path / "env.yaml"
    env.write_text(re.sub(r"episode_length: [0-9.]+", "episode_length: 1.0", open(env_file).read()))
    agent = tmp_path / "agent.yaml"
    small = {"steps_per_iter: 32": "steps_per_iter: 8", "iters_per_output: 50": "iters_per_output: 1",
             "test_episodes: 16": "test_episodes: 2", "disc_batch_size: 1024": "disc_batch_size: 16",
             "fc_2layers_256units": "fc_1layers_32units"}
    text = open(agent_file).read()
    for old, new in small.items():
        assert old in text, old
        text = text.replace(old, new)
    agent.write_text(text)
    out = tmp_path / "out"
    argv = ["--engine_config", ENGINE, "--env_config", str(env), "--agent_config", str(agent),
            "--out_dir", str(out), "--num_envs", "4", "--rand_seed", "0"]
    assert main(argv + ["--max_samples", "64"]) == 0  # 2 iterations of 8 steps x 4 envs
    log = read_txt_log(str(out / "log.txt"))
    assert log["iteration"] == [1, 2] and log["samples"] == [32, 64]
    for key in ("disc_loss", "disc_demo_logit", "disc_agent_logit", "disc_demo_pred", "disc_agent_pred",
                "disc_grad_penalty", "style_reward"):
        assert key in log, key
    capsys.readouterr()
    assert main(argv + ["--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "4"]) == 0
    stats = json.loads((out / "eval.json").read_text())
    assert stats["num_eps"] == 4 and stats["mean_ep_len"] > 0
    if not task_errors:
        assert stats["mean_return"] == 0.0  # no task: the env's reward is the task reward
    for key in ["style_reward", "falls_per_min"] + task_errors:
        assert key in stats, key

"""tools/sim2sim.py: the ONNX policy under onnxruntime reproduces --mode test's metrics on the same seeds."""
import json
import re
import shutil

import pytest

from mimickit.run import main as run_main
from mimickit.util.arg_parser import parse_args
from tests.learning.tiny_policy import require_export_packages, tiny_export
from tools.sim2sim import main as sim2sim_main

# Relative tolerance on every metric. onnxruntime's actions differ from torch's by ~1e-7
# (rounding); measured effect on the metrics: ~1e-7 relative for these short (~40-step)
# episodes, at most 2e-3 over 300-step episodes without early termination.
REL_TOL = 1e-2


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return tiny_export(tmp_path_factory)


def _eval(path):
    with open(path) as f:
        return json.load(f)


def _differences(a, b):
    """Metric -> relative difference."""
    return {k: abs(a[k] - b[k]) / max(abs(a[k]), 1e-6) for k in a}


def test_sim2sim_reproduces_test_mode_metrics_on_the_same_seeds(exported, tmp_path):
    episodes = ["--num_envs", "4", "--test_episodes", "8"]
    assert run_main(exported["argv"] + episodes + ["--mode", "test", "--model_file", exported["model"],
                                                   "--rand_seed", "3", "--out_dir", str(tmp_path / "test")]) == 0
    test = _eval(tmp_path / "test" / "eval.json")
    policy = exported["export"] + "/policy.onnx"
    assert sim2sim_main([policy] + episodes + ["--rand_seed", "3", "--out_dir", str(tmp_path / "s1")]) == 0
    same = _eval(tmp_path / "s1" / "eval.json")
    assert list(same) == list(test)  # the same eval.json keys, in order
    assert same["num_eps"] == test["num_eps"] == 8
    assert abs(same["success_rate"] - test["success_rate"]) <= 1.0 / 8
    diff = _differences(test, same)
    assert max(diff.values()) <= REL_TOL, diff
    # Another seed starts other episodes: the comparison above can tell them apart.
    assert sim2sim_main([policy] + episodes + ["--rand_seed", "4", "--out_dir", str(tmp_path / "s2")]) == 0
    other = _differences(test, _eval(tmp_path / "s2" / "eval.json"))
    assert max(other.values()) > REL_TOL, other


def test_env_with_another_observation_layout_is_refused_naming_the_part(exported, tmp_path, capsys):
    env = tmp_path / "env.yaml"
    text = open(exported["export"] + "/env.yaml").read()
    env.write_text(text.replace("tar_obs_steps: [1, 2, 3]", "tar_obs_steps: [1, 2, 4]"))
    assert sim2sim_main([exported["export"] + "/policy.onnx", "--env_config", str(env)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "policy.json" in err and "target3_root_pos" in err and "target4_root_pos" in err


def test_config_copy_edited_after_export_is_refused(exported, tmp_path, capsys):
    folder = tmp_path / "export"
    shutil.copytree(exported["export"], folder)
    env = folder / "env.yaml"
    env.write_text(env.read_text().replace("episode_length: 10.0", "episode_length: 5.0"))
    assert sim2sim_main([str(folder / "policy.onnx")]) == 2
    err = capsys.readouterr().err
    assert "env.yaml" in err and "changed after the export" in err


def test_policy_without_sidecar_is_refused(exported, tmp_path, capsys):
    shutil.copy(exported["export"] + "/policy.onnx", tmp_path / "policy.onnx")
    assert sim2sim_main([str(tmp_path / "policy.onnx")]) == 2
    assert "policy.json" in capsys.readouterr().err


def test_export_policy_tool_runs_export_mode_and_refuses_another_mode(exported, tmp_path, capsys):
    from tools.export_policy import main as export_main
    assert export_main(exported["argv"] + ["--out_dir", str(tmp_path)]) == 2  # export needs a model file
    assert "--model_file" in capsys.readouterr().err
    assert export_main(exported["argv"] + ["--mode", "test"]) == 2
    assert "--mode" in capsys.readouterr().err


def test_deploy_arg_file_trains_tests_exports_the_actor_alone_and_sim2sim_reproduces_it(tmp_path):
    """args/amp_quadruped_deploy_args.txt made tiny: deployable actor observations, a privileged critic,
    domain randomisation (noise and delay included); the export takes the actor's terms only."""
    require_export_packages()
    args = parse_args(["--arg_file", "args/amp_quadruped_deploy_args.txt"])
    env = tmp_path / "env.yaml"
    env.write_text(re.sub(r"episode_length: [0-9.]+", "episode_length: 1.0", open(args.env_config).read()))
    agent = tmp_path / "agent.yaml"
    text = open(args.agent_config).read()
    for old, new in {"steps_per_iter: 32": "steps_per_iter: 8", "iters_per_output: 50": "iters_per_output: 2",
                     "test_episodes: 16": "test_episodes: 0", "disc_batch_size: 1024": "disc_batch_size: 16",
                     "fc_2layers_256units": "fc_1layers_32units"}.items():
        assert old in text, old
        text = text.replace(old, new)
    agent.write_text(text)
    argv = ["--engine_config", args.engine_config, "--env_config", str(env), "--agent_config", str(agent)]
    out = tmp_path / "train"
    assert run_main(argv + ["--num_envs", "4", "--max_samples", "64", "--rand_seed", "0", "--out_dir", str(out)]) == 0
    model = str(out / "model.pt")
    episodes = ["--num_envs", "4", "--test_episodes", "8", "--rand_seed", "3"]
    assert run_main(argv + episodes + ["--mode", "test", "--model_file", model, "--out_dir", str(tmp_path / "test")]) == 0
    test = _eval(tmp_path / "test" / "eval.json")
    assert "cmd_lin_vel_err" in test
    assert run_main(argv + ["--mode", "export", "--model_file", model, "--out_dir", str(tmp_path / "export")]) == 0
    side = _eval(tmp_path / "export" / "policy.json")
    layout = [(p["name"], p["units"], p["frame"]) for p in side["observation"]["layout"]]
    assert layout == [("projected_gravity", "1", "root"), ("root_ang_vel", "rad/s", "root"),
                      ("dof_pos", "rad", "default_pose"), ("dof_vel", "rad/s", "joint"), ("prev_action", "rad", "joint"),
                      ("command_lin_vel", "m/s", "heading"), ("command_ang_vel", "rad/s", "heading")]
    assert side["observation"]["size"] == 3 + 3 + 12 + 12 + 12 + 3
    policy = str(tmp_path / "export" / "policy.onnx")
    assert sim2sim_main([policy] + episodes + ["--out_dir", str(tmp_path / "s1")]) == 0
    same = _eval(tmp_path / "s1" / "eval.json")
    assert list(same) == [k for k in test if k != "style_reward"]  # the AMP agent's discriminator is not exported
    assert same["num_eps"] == test["num_eps"] == 8
    diff = _differences(same, test)
    assert max(diff.values()) <= REL_TOL, diff

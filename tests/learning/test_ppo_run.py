"""run.py with agent_name PPO: train, resume where it stopped, test the saved model."""
import json

import numpy as np
import pytest

from mimickit.envs import env_builder
from mimickit.learning.logger import read_txt_log
from mimickit.run import main
from tests.learning.conftest import TOY_AGENT_FILE
from tests.learning.toy_envs import PointMassEnv


class RunPointMassEnv(PointMassEnv):
    def __init__(self, config, config_file, engine_config_file, num_envs, device, visualize, video_file=None):
        super().__init__(num_envs, device)


@pytest.fixture
def argv(tmp_path, monkeypatch):
    monkeypatch.setattr(env_builder.ENVS, "modules", [])
    monkeypatch.setitem(env_builder.ENVS.classes, "test_ppo_run_point_mass", RunPointMassEnv)  # for this test only
    engine = tmp_path / "engine.yaml"
    engine.write_text("engine_name: none\n")
    env = tmp_path / "env.yaml"
    env.write_text("env_name: test_ppo_run_point_mass\n")
    return ["--engine_config", str(engine), "--env_config", str(env), "--agent_config", TOY_AGENT_FILE,
            "--out_dir", str(tmp_path / "out"), "--num_envs", "4", "--rand_seed", "1"]


def test_train_resume_and_test_through_run(argv, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(argv + ["--max_samples", "800"]) == 0  # 10 iterations, output every 5
    log = read_txt_log(str(out / "log.txt"))
    assert log["iteration"] == [5, 10] and log["samples"] == [400, 800]
    # The log parses with numpy too: a header of names, one row per output.
    table = np.genfromtxt(str(out / "log.txt"), names=True)
    assert list(table["samples"]) == [400, 800] and "actor_loss" in table.dtype.names
    assert "iter 10 | samples 800/800" in capsys.readouterr().out

    assert main(argv + ["--max_samples", "1200", "--resume", "true"]) == 0
    log = read_txt_log(str(out / "log.txt"))
    assert log["iteration"] == [5, 10, 15] and log["samples"] == [400, 800, 1200]

    capsys.readouterr()
    assert main(argv + ["--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "6"]) == 0
    printed = capsys.readouterr().out
    stats = json.loads((out / "eval.json").read_text())
    assert stats["num_eps"] == 6 and "mean_return" in printed and "success_rate" in stats


def test_foreign_model_file_exits_2_naming_it(argv, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert main(argv + ["--mode", "test", "--model_file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err

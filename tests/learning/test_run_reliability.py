"""Nothing lost, nothing silent: run folders, checkpoint integrity, NaN guards, exact resume, messages.

Each test reproduces a failure found by trying the toolkit as a new user (the point mass
stands in for a character, so a run takes a second) and checks the behaviour that
replaced it.
"""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from mimickit.envs import env_builder
from mimickit.learning.checkpoint import load_checkpoint
from mimickit.learning.logger import ProgressLine, read_txt_log
from mimickit.run import main
from mimickit.util.errors import MimicKitError
from tests.learning.conftest import REPO, TOY_AGENT_FILE
from tests.learning.toy_envs import PointMassEnv


class RunPointMassEnv(PointMassEnv):
    """The point mass as a registered env; ``fail_all: true`` reports every env as failed every step."""

    def __init__(self, config, config_file, engine_config_file, num_envs, device, visualize, video_file=None):
        super().__init__(num_envs, device)
        unknown = set(config) - {"fail_all"}
        if unknown:
            raise MimicKitError("{}: unknown key '{}'".format(config_file, sorted(unknown)[0]))
        self.fail_all = bool(config.get("fail_all", False))

    def step(self, action):
        obs, reward, done, info = super().step(action)
        if self.fail_all:
            info = {"failed_envs": torch.ones(self.num_envs, dtype=torch.bool)}
        return obs, reward, done, info


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``run(*flags, env="...") -> exit code`` of run.py on the point mass, out_dir ``tmp_path/out``."""
    monkeypatch.setattr(env_builder.ENVS, "modules", [])
    monkeypatch.setitem(env_builder.ENVS.classes, "test_reliability_point_mass", RunPointMassEnv)
    (tmp_path / "engine.yaml").write_text("engine_name: none\n")

    def call(*flags, env="", out=True):
        (tmp_path / "env.yaml").write_text("env_name: test_reliability_point_mass\n" + env)
        argv = ["--engine_config", str(tmp_path / "engine.yaml"), "--env_config", str(tmp_path / "env.yaml"),
                "--agent_config", TOY_AGENT_FILE, "--num_envs", "4", "--rand_seed", "1"]
        return main(argv + (["--out_dir", str(tmp_path / "out")] if out else []) + list(flags))
    return call


def test_training_into_a_folder_that_holds_a_run_is_refused_and_the_run_kept(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--max_samples", "800") == 0
    before = {name: (out / name).read_bytes() for name in ("model.pt", "log.txt", "args.txt")}
    capsys.readouterr()
    assert run("--max_samples", "400") == 2  # today: overwrote the 800-sample model silently
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume true" in err and "--overwrite true" in err
    assert {name: (out / name).read_bytes() for name in before} == before

    assert run("--max_samples", "400", "--overwrite", "true") == 0
    assert load_checkpoint(str(out / "model.pt"), "PPO")["sample_count"] == 400
    assert read_txt_log(str(out / "log.txt"))["samples"] == [400]


def test_a_failing_resume_leaves_the_run_config_copies_as_they_were(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("--max_samples", "400") == 0
    before = {name: (out / name).read_bytes() for name in ("env.yaml", "args.txt")}
    assert run("--max_samples", "800", "--resume", "true", env="unknown_key: 1\n") == 2  # the env refuses it
    assert "unknown_key" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before  # today: replaced first


def test_a_resume_with_nothing_left_to_train_says_so(run, capsys):
    assert run("--max_samples", "400") == 0
    capsys.readouterr()
    assert run("--max_samples", "400", "--resume", "true") == 2
    assert "nothing left to train" in capsys.readouterr().err


def test_flipped_bytes_in_a_checkpoint_are_an_error_naming_it(run, tmp_path, capsys):
    assert run("--max_samples", "400") == 0
    path = tmp_path / "out" / "model.pt"
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):  # inside the payload: network weights
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert run("--mode", "test", "--model_file", str(path)) == 2  # today: loaded, then NaN
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and ("damaged" in err or "cannot read" in err)


def test_a_model_with_nan_weights_is_not_tested(run, tmp_path, capsys):
    from mimickit.learning.checkpoint import load_checkpoint as load, save_checkpoint
    assert run("--max_samples", "400") == 0
    path = str(tmp_path / "out" / "model.pt")
    content = load(path, "PPO")
    content["model"]["actor_head.mean_layer.weight"][0, 0] = float("nan")
    with pytest.raises(Exception, match="non-finite"):
        save_checkpoint(path, "PPO", content)  # never saved either
    torch.save(dict(content, version=1), path)  # as an older, unchecksummed file would hold it
    capsys.readouterr()
    assert run("--mode", "test", "--model_file", path) == 2  # today: eval.json of 1-step episodes, exit 0
    assert "non-finite" in capsys.readouterr().err


def test_an_update_gone_nan_is_undone_and_three_in_a_row_stop_the_run(make_runner, tmp_path, monkeypatch):
    torch.manual_seed(0)
    runner = make_runner(num_envs=4)
    runner.train_iter()
    good = {k: v.clone() for k, v in runner.agent.model.state_dict().items()}

    def poisoned_update():
        with torch.no_grad():
            next(runner.agent.model.parameters()).fill_(float("nan"))
        return {"actor_loss": float("nan")}
    monkeypatch.setattr(runner.agent, "update", poisoned_update)
    with pytest.warns(UserWarning, match="iteration 2: non-finite actor_loss"):
        runner.train_iter()
    assert all(torch.equal(v, runner.agent.model.state_dict()[k]) for k, v in good.items())  # restored
    with pytest.warns(UserWarning):
        runner.train_iter()
    with pytest.raises(Exception, match=r"iteration 4: non-finite actor_loss.*3 updates in a row"):
        runner.train_iter()  # today: NaN losses forever, NaN weights saved, exit 0
    assert all(torch.equal(v, runner.agent.model.state_dict()[k]) for k, v in good.items())


def test_a_run_whose_simulation_keeps_failing_stops_naming_gains_and_sim_rate(run, capsys):
    assert run("--max_samples", "100000", env="fail_all: true\n") == 2  # today: trains on nothing, forever
    err = capsys.readouterr().err
    assert "iteration 10: 100% of the env steps failed" in err and "PD gains" in err and "sim_freq" in err


@pytest.mark.parametrize("key, value", [("episode_length", "-3"), ("pose_termination_dist", "-1")])
def test_nonsense_deepmimic_values_are_refused_naming_the_key(key, value, tmp_path):
    from mimickit.envs.env_builder import build_env
    text = open(os.path.join(REPO, "data/envs/deepmimic_humanoid_env.yaml")).read()
    lines = [line for line in text.splitlines() if not line.startswith(key + ":")]
    env_file = tmp_path / "env.yaml"
    env_file.write_text("\n".join(lines + ["{}: {}".format(key, value)]) + "\n")
    with pytest.raises(MimicKitError, match="key '{}' must be > 0".format(key)):
        build_env(str(env_file), os.path.join(REPO, "data/engines/mujoco_engine.yaml"), 1, "cpu", False)


def test_test_mode_needs_a_model_file_or_says_random_policy(run, capsys):
    assert run("--mode", "test", "--test_episodes", "2") == 2  # today: evaluates a random policy, exit 0
    assert "--random_policy true" in capsys.readouterr().err
    assert run("--mode", "test", "--test_episodes", "2", "--random_policy", "true") == 0


def test_test_mode_writes_beside_a_training_run_only_when_told(run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run("--max_samples", "400") == 0
    arg_file = tmp_path / "args.txt"
    arg_file.write_text("--out_dir {}\n".format(out))  # the training folder, from an arg file
    assert run("--arg_file", str(arg_file), "--mode", "test", "--model_file", str(out / "model.pt"),
               "--test_episodes", "2", out=False) == 0
    assert (out / "test" / "eval.json").is_file() and not (out / "eval.json").exists()  # today: out/eval.json
    assert run("--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "2") == 0
    assert (out / "eval.json").is_file()  # --out_dir on the command line names it


def test_resume_at_an_output_is_bit_identical_to_a_run_that_never_stopped(run, tmp_path):
    straight = tmp_path / "straight"
    assert run("--max_samples", "1600", "--out_dir", str(straight), out=False) == 0  # outputs every 400 samples
    assert run("--max_samples", "800") == 0
    assert run("--max_samples", "1600", "--resume", "true") == 0
    a = load_checkpoint(str(straight / "model.pt"), "PPO")
    b = load_checkpoint(str(tmp_path / "out" / "model.pt"), "PPO")
    assert a["sample_count"] == b["sample_count"] == 1600
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert read_txt_log(str(tmp_path / "out" / "log.txt"))["train_return"] == \
        read_txt_log(str(straight / "log.txt"))["train_return"]


KILL_DURING_SECOND_SAVE = textwrap.dedent("""
    import io, os, signal, sys
    import mimickit.learning.checkpoint as checkpoint
    from tests.learning.test_run_reliability import RunPointMassEnv
    from mimickit.envs import env_builder
    env_builder.ENVS.modules.clear()
    env_builder.ENVS.classes["test_reliability_point_mass"] = RunPointMassEnv
    saves = [0]
    save = checkpoint.torch.save
    def dying_save(obj, f, *args, **kwargs):
        saves[0] += not isinstance(f, io.BytesIO)  # files only, not the payload serialised in memory
        if saves[0] == 2:  # the second model.pt: half written, then the process is killed
            f.write(b"partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return save(obj, f, *args, **kwargs)
    checkpoint.torch.save = dying_save
    from mimickit.run import main
    sys.exit(main(sys.argv[1:]))
""")


def test_a_kill_during_a_checkpoint_write_loses_nothing_and_the_run_resumes(run, tmp_path):
    out = tmp_path / "out"
    assert run("--max_samples", "400") == 0  # writes the configs the killed run continues with
    flags = ["--engine_config", str(tmp_path / "engine.yaml"), "--env_config", str(tmp_path / "env.yaml"),
             "--agent_config", TOY_AGENT_FILE, "--num_envs", "4", "--rand_seed", "1", "--out_dir", str(out)]
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SECOND_SAVE, *flags, "--max_samples", "1600",
                           "--resume", "true"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [f for f in os.listdir(out) if f.endswith(".tmp")] != []  # the killed save's temporary file
    assert load_checkpoint(str(out / "model.pt"), "PPO")["sample_count"] == 800  # the first save of that run
    assert read_txt_log(str(out / "log.txt"))["samples"] == [400, 800, 1200]  # a row ahead of model.pt

    assert run("--max_samples", "1600", "--resume", "true") == 0
    assert [f for f in os.listdir(out) if f.endswith(".tmp")] == []
    assert read_txt_log(str(out / "log.txt"))["samples"] == [400, 800, 1200, 1600]  # no duplicated row


def test_help_piped_into_head_ends_without_a_traceback():
    proc = subprocess.run("{} mimickit/run.py --help | head -1".format(sys.executable), shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_progress_lines_show_whole_sample_counts_and_the_style_reward(capsys):
    progress = ProgressLine(4000, 0)
    progress.update(1024, 1.5, 20.0, {"style_reward": 0.81})  # not a terminal: a plain line at the first
    progress.summary(1, 1024, 512.0, 1.5, 20.0, None, {"style_reward": 0.81})
    progress.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("samples 1024/4000 |") and "style_reward 0.81" in lines[0]
    assert "samples 1024/4000" in lines[1] and "style_reward 0.81" in lines[1]  # today: 1024/4e+03, no style


def test_an_unknown_optimiser_type_names_the_key(tmp_path):
    from mimickit.learning.ppo_agent import PPOAgent
    from tests.learning.conftest import toy_agent_config
    config = dict(toy_agent_config(), critic_optimizer={"type": "Adamx", "learning_rate": 1e-3})
    with pytest.raises(MimicKitError, match="key 'critic_optimizer': unknown optimizer type 'Adamx'"):
        PPOAgent(config=config, config_file=TOY_AGENT_FILE, env=PointMassEnv(2), device="cpu")

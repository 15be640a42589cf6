"""run.py: user mistakes exit 2 with one line on stderr; a run builds env and agent from the registries and runs its mode."""
import json
import os
import re
import subprocess
import sys
import tomllib
import types

import pytest
import torch

from mimickit.envs.base_env import BaseEnv, BoxSpace, DoneFlags
from mimickit.envs import env_builder
from mimickit.envs.env_builder import ENVS
from mimickit.learning import agent_builder, runner
from mimickit.learning.agent_builder import AGENTS
from mimickit.run import main
from mimickit.util.arg_parser import flag_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(REPO, "mimickit", "run.py")

CALLS = []  # what the fake env and agent were asked to do, in order


class FakeEnv(BaseEnv):
    """Two-dimensional observations and actions; every step ends the episode with success."""

    def __init__(self, config, config_file, engine_config_file, num_envs, device, visualize, video_file=None):
        super().__init__(num_envs, device)
        CALLS.append(("env", dict(config=config, config_file=config_file, engine_config_file=engine_config_file,
                                  num_envs=num_envs, device=device, visualize=visualize, video_file=video_file)))

    def reset(self, env_ids=None):
        return torch.zeros(self.num_envs, 2)

    def step(self, action):
        done = torch.full((self.num_envs,), int(DoneFlags.SUCC), dtype=torch.long)
        return torch.zeros(self.num_envs, 2), torch.ones(self.num_envs), done, {}

    def get_obs_space(self):
        return BoxSpace.unbounded(2)

    def get_action_space(self):
        return BoxSpace(low=-torch.ones(2), high=torch.ones(2))

    def close(self):
        CALLS.append(("close",))


class FakeAgent:
    NAME, TRAINS = "FAKE", True
    config = types.SimpleNamespace(max_samples=500)  # the agent's own limit when --max_samples is not given

    def __init__(self, config, config_file, env, device):
        CALLS.append(("agent", dict(config=config, env=env, device=device, draw=torch.rand(3))))


class FakeRunner:
    """Records what run.py asks of the runner (the real one is tested in tests/learning)."""

    def __init__(self, agent, env, device):
        assert isinstance(agent, FakeAgent)
        self.sample_count = 0

    def load(self, path):
        CALLS.append(("load", path))

    def check_trainable(self):
        pass

    def sync_ranks(self):
        CALLS.append(("sync_ranks",))

    def train(self, max_samples, out_dir, logger):
        CALLS.append(("train", dict(max_samples=max_samples, out_dir=out_dir, logger=logger)))

    def test(self, num_episodes):
        CALLS.append(("test", num_episodes))
        return {"mean_return": 1.5, "episodes": num_episodes}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Config files for the fake env and agent, and the flags naming them.

    The real env and agent modules are not imported: these tests are about run.py's
    plumbing. The fakes above are registered for the test only (monkeypatch takes them
    out of the registries again).
    """
    monkeypatch.setattr(env_builder.ENVS, "modules", [])
    monkeypatch.setattr(agent_builder.AGENTS, "modules", [])
    monkeypatch.setitem(ENVS.classes, "test_run_fake_env", FakeEnv)
    monkeypatch.setitem(AGENTS.classes, "test_run_fake_agent", FakeAgent)
    monkeypatch.setattr(runner, "Runner", FakeRunner)
    CALLS.clear()
    engine = tmp_path / "engine.yaml"
    engine.write_text("engine_name: mujoco\n")
    env = tmp_path / "env.yaml"
    env.write_text("env_name: test_run_fake_env\nmotion_file: data/motions/walk.npz\nepisode_length: 10.0\n")
    agent = tmp_path / "agent.yaml"
    agent.write_text("agent_name: test_run_fake_agent\nlearning_rate: 0.001\n")
    out_dir = tmp_path / "out"
    argv = ["--engine_config", str(engine), "--env_config", str(env), "--agent_config", str(agent),
            "--out_dir", str(out_dir)]
    return dict(tmp=tmp_path, engine=engine, env=env, agent=agent, out_dir=out_dir, argv=argv)


def calls(kind):
    return [c for c in CALLS if c[0] == kind]


def run_script(args, cwd):
    return subprocess.run([sys.executable, RUN_PY] + args, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, names", [
    (["--bogus", "1"], ["--bogus"]),
    (["--num_envs", "abc"], ["--num_envs", "abc"]),
    (["--visualize", "maybe"], ["--visualize", "maybe"]),
    (["--mode"], ["--mode"]),
    (["--arg_file", "missing_args.txt"], ["--arg_file", "missing_args.txt"]),
    (["--engine_config", "missing.yaml"], ["--engine_config", "missing.yaml"]),
    ([], ["--engine_config"]),
])
def test_script_user_mistake_exits_2_with_one_stderr_line_naming_the_flag(tmp_path, args, names):
    # Run from another folder: the script must find the package by itself.
    result = run_script(args, cwd=str(tmp_path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for name in names:
        assert name in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_env_config_is_named_when_the_engine_config_exists(setup):
    result = run_script(["--engine_config", str(setup["engine"]), "--env_config", "nope/env.yaml"], cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--env_config" in result.stderr and "nope/env.yaml" in result.stderr


def test_help_lists_every_flag_and_exits_0_as_module():
    result = subprocess.run([sys.executable, "-m", "mimickit.run", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for name in flag_names():
        assert "--" + name in result.stdout


def test_train_copies_configs_writes_args_and_trains_with_the_flags(setup):
    argv = setup["argv"] + ["--num_envs", "3", "--max_samples", "1000", "--logger", "txt", "--video", "true"]
    assert main(argv) == 0
    out_dir = setup["out_dir"]
    for src, name in [("engine", "engine.yaml"), ("env", "env.yaml"), ("agent", "agent.yaml")]:
        assert (out_dir / name).read_text() == setup[src].read_text()
    (env_kwargs,) = [c[1] for c in calls("env")]
    assert env_kwargs["config"] == {"motion_file": "data/motions/walk.npz", "episode_length": 10.0}
    assert env_kwargs["num_envs"] == 3 and env_kwargs["device"] == "cpu" and env_kwargs["visualize"] is False
    assert env_kwargs["engine_config_file"] == str(setup["engine"])
    assert env_kwargs["video_file"] == os.path.join(str(out_dir), "video.mp4")
    (agent_kwargs,) = [c[1] for c in calls("agent")]
    assert agent_kwargs["config"] == {"learning_rate": 0.001}
    assert isinstance(agent_kwargs["env"], FakeEnv)
    assert calls("train") == [("train", dict(max_samples=1000, out_dir=str(out_dir), logger="txt"))]
    assert calls("load") == [] and CALLS[-1] == ("close",)

    # args.txt reruns the same flags.
    CALLS.clear()
    assert main(["--arg_file", str(out_dir / "args.txt")]) == 0
    assert calls("train") == [("train", dict(max_samples=1000, out_dir=str(out_dir), logger="txt"))]
    assert [c[1]["num_envs"] for c in calls("env")] == [3]


def test_test_mode_loads_the_model_and_prints_the_statistics(setup, capsys):
    model = setup["tmp"] / "model.pt"
    model.write_bytes(b"")
    assert main(setup["argv"] + ["--mode", "test", "--model_file", str(model), "--test_episodes", "4"]) == 0
    assert calls("load") == [("load", str(model))] and calls("test") == [("test", 4)] and calls("train") == []
    out = capsys.readouterr().out
    assert "mean_return" in out and "1.5000" in out
    assert json.loads((setup["out_dir"] / "eval.json").read_text()) == {"mean_return": 1.5, "episodes": 4}
    assert not (setup["out_dir"] / "env.yaml").exists()  # test mode leaves the training record alone


@pytest.mark.parametrize("key, file_name", [("motion_file", "run.npz"), ("char_file", "robot.xml")])
def test_file_flags_override_the_env_config(setup, key, file_name):
    setup["env"].write_text("env_name: test_run_fake_env\nmotion_file: walk.npz\nchar_file: ours.xml\n")
    path = setup["tmp"] / file_name
    path.write_bytes(b"")
    assert main(setup["argv"] + ["--" + key, str(path)]) == 0
    config = calls("env")[0][1]["config"]
    assert config[key] == str(path)
    assert config["motion_file" if key == "char_file" else "char_file"] in ("walk.npz", "ours.xml")


@pytest.mark.parametrize("key, file_name", [("motion_file", "run.npz"), ("char_file", "robot.xml")])
def test_file_flags_for_an_env_without_that_key_are_an_error(setup, capsys, key, file_name):
    setup["env"].write_text("env_name: test_run_fake_env\n")
    path = setup["tmp"] / file_name
    path.write_bytes(b"")
    assert main(setup["argv"] + ["--" + key, str(path)]) == 2
    err = capsys.readouterr().err
    assert "--" + key in err and str(setup["env"]) in err


def test_a_missing_char_file_is_an_error_naming_it(setup, capsys):
    assert main(setup["argv"] + ["--char_file", str(setup["tmp"] / "nowhere.xml")]) == 2
    err = capsys.readouterr().err
    assert "char_file" in err and "nowhere.xml" in err
    assert calls("env") == []


def test_resume_loads_the_model_in_out_dir_and_requires_it(setup, capsys):
    assert main(setup["argv"] + ["--resume", "true"]) == 2
    err = capsys.readouterr().err
    assert "--model_file" in err and os.path.join(str(setup["out_dir"]), "model.pt") in err
    assert calls("train") == []
    setup["out_dir"].mkdir()
    (setup["out_dir"] / "model.pt").write_bytes(b"")
    assert main(setup["argv"] + ["--resume", "true"]) == 0
    assert calls("load") == [("load", os.path.join(str(setup["out_dir"]), "model.pt"))]
    assert len(calls("train")) == 1


@pytest.mark.parametrize("which, key, name", [("env", "env_name", "no_such_env"),
                                             ("agent", "agent_name", "no_such_agent")])
def test_unknown_registry_name_is_an_error_listing_the_known_names(setup, capsys, which, key, name):
    setup[which].write_text("{}: {}\n".format(key, name))
    assert main(setup["argv"]) == 2
    err = capsys.readouterr().err
    known = ENVS if which == "env" else AGENTS
    assert err.count("\n") == 1 and str(setup[which]) in err and name in err
    assert all(k in err for k in known.classes)


def test_missing_registry_key_is_an_error_naming_the_key(setup, capsys):
    setup["agent"].write_text("learning_rate: 0.1\n")
    assert main(setup["argv"]) == 2
    err = capsys.readouterr().err
    assert "agent_name" in err and str(setup["agent"]) in err


def test_rand_seed_makes_runs_repeatable(setup):
    draws = []
    for seed in (3, 3, 4):
        CALLS.clear()
        assert main(setup["argv"] + ["--rand_seed", str(seed)]) == 0
        draws.append(calls("agent")[0][1]["draw"])
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_device_without_cuda_is_an_error(setup, capsys):
    assert main(setup["argv"] + ["--device", "cuda:0"]) == 2
    assert "--device" in capsys.readouterr().err and calls("env") == []


def test_console_script_points_at_main():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"mimickit": "mimickit.run:main"}


def readme_code_blocks():
    with open(os.path.join(REPO, "README.md")) as f:
        return re.findall(r"```bash\n(.*?)```", f.read(), flags=re.S)


def test_ci_runs_the_readme_install_and_test_blocks_verbatim():
    blocks = readme_code_blocks()
    install = [b for b in blocks if "pip install" in b][0]
    test = [b for b in blocks if "pytest" in b][0]
    with open(os.path.join(REPO, ".ci", "run")) as f:
        ci = f.read()
    assert install in ci and test in ci and ci.index(install) < ci.index(test)
    assert "pip install torch==2.13.0" in install


def test_readme_flag_table_lists_every_flag():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    for name in flag_names():
        assert "| `--{}` |".format(name) in readme


def test_sigterm_during_training_saves_the_model_and_exits_130(tmp_path):
    """A background job (SIGINT ignored by the shell) stopped with SIGTERM still saves."""
    import signal
    import time
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "mimickit/run.py", "--arg_file", "args/deepmimic_humanoid_ppo_args.txt",
         "--num_envs", "2", "--out_dir", str(out), "--max_samples", "100000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 120
    while not (out / "log.txt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # the log is opened when the training loop starts
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert (out / "model.pt").exists()

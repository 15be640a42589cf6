"""The mujoco_warp engine on the CPU, at tiny sizes.

The engine contract (shapes, setters, kinematics against MuJoCo, free fall, PD response,
contacts, NaN handling and reset, getter snapshots, torque mode, gains, reference character)
runs for it in test_engine_contract.py. Here: agreement with the ``mujoco`` engine (MuJoCo's
C engine, float64) from the same state and PD targets, the recorded graph against launching
every kernel, buffer sizes and overflows, the missing-package error and a DeepMimic training
and test run through run.py.

The first engine built in a process takes about 7 s with a warm warp kernel cache
(~/.cache/warp; about 2 minutes to fill it on 2 busy cores), later ones under 1 s.
"""
import json
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

pytest.importorskip("mujoco_warp", reason="mujoco-warp is not installed (Python >= 3.11, pip install -e '.[dev]')")

from mimickit.engines.engine_builder import build_engine  # noqa: E402
from mimickit.run import main  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from tests.engines.test_engine_contract import (GETTERS, HUMANOID, REPO, all_envs, apply_state,  # noqa: E402
                                                drop_on_ground, engine_config, random_state, read_all, run)


def make(tmp_path, name="mujoco_warp", num_envs=4, **overrides):
    config = engine_config(name)
    config.update(overrides)
    path = tmp_path / "{}.yaml".format(name)
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), num_envs, "cpu", False)
    char_id = engine.add_character(HUMANOID, "humanoid")
    engine.initialize()
    return engine, char_id


def test_config_keeps_the_mujoco_engine_frequencies():
    warp_config, mujoco_config = engine_config("mujoco_warp"), engine_config("mujoco")
    for key in ("control_mode", "sim_freq", "control_freq", "urdf_kp", "urdf_kd"):
        assert warp_config[key] == mujoco_config[key], key


def test_state_after_one_second_of_pd_control_agrees_with_the_mujoco_engine(tmp_path):
    """Envs 0, 1 stand on the ground, envs 2, 3 tumble in the air, all tracking the same
    random PD targets for 30 control steps (120 physics steps) in both engines.

    Largest differences measured (2026-11-21, mujoco 4.0.0, mujoco-warp 4.0.0 on the CPU):
    positions 2e-6 m, rotations 3e-6, linear velocities 1e-5 m/s, angular and dof
    velocities 4e-5 rad/s, contact forces 0.02 N (of 623 N of weight), actuator torques
    2e-3 N·m. The sources are float32 against float64 arithmetic and the constraint solver
    stopping at tolerance 1e-6 (mujoco_warp raises MuJoCo's 1e-8 for float32); both grow
    once contacts make the motion chaotic, hence 30 steps. The tolerances below are 3-25
    times the measured differences."""
    n = 4
    engines = [make(tmp_path, "mujoco", n), make(tmp_path, "mujoco_warp", n)]
    reference, _ = engines[0]
    d = reference.get_num_dofs(0)
    generator = torch.Generator().manual_seed(0)
    yaw = Rotation.from_euler("z", [[0.0], [0.5], [1.0], [-1.0]])
    state = {
        "root_pos": torch.tensor([[0.0, 0.0, 0.9], [0.0, 0.0, 0.9], [0.0, 0.0, 7.0], [1.0, 0.0, 7.0]]),
        "root_rot": torch.tensor(yaw.as_quat(), dtype=torch.float32),
        "root_vel": torch.tensor([[0.0, 0.0, 0.0]] * 2 + [[1.0, 0.0, 0.0], [0.0, -1.0, 0.5]]),
        "root_ang_vel": torch.tensor([[0.0, 0.0, 0.0]] * 2 + [[0.0, 0.5, 1.0], [1.0, 0.0, -0.5]]),
        "dof_pos": torch.cat([torch.zeros(2, d), 0.1 * (torch.rand(2, d, generator=generator) - 0.5)]),
        "dof_vel": torch.zeros(n, d),
    }
    targets = [0.2 * (torch.rand(n, d, generator=generator) - 0.5) for _ in range(30)]
    results = []
    for engine, c in engines:
        apply_state(engine, c, all_envs(engine), state)
        for target in targets:
            engine.set_cmd(c, target)
            engine.step()
        results.append(read_all(engine, c))
        assert not engine.pop_failed_envs().any()
        engine.close()
    expected, actual = results
    assert expected["ground_contacts"][:2].any(dim=1).all() and not expected["ground_contacts"][2:].any()
    assert torch.equal(actual["ground_contacts"], expected["ground_contacts"])
    tolerances = {"root_pos": 5e-5, "root_rot": 5e-5, "root_vel": 1e-4, "root_ang_vel": 1e-4,
                  "dof_pos": 5e-5, "dof_vel": 2e-4, "dof_forces": 0.02, "body_pos": 5e-5, "body_rot": 5e-5,
                  "body_vel": 2e-4, "body_ang_vel": 2e-4, "contact_forces": 0.5}
    for name, atol in tolerances.items():
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=0, msg=name)


def test_recorded_graph_steps_exactly_like_launching_every_kernel(tmp_path):
    results = []
    for graph_capture in (True, False):
        engine, c = make(tmp_path, num_envs=2, graph_capture=graph_capture)
        drop_on_ground(engine, c, height=0.05)
        low, high = engine.get_dof_limits(c)
        cmd = low + (high - low) * torch.rand(2, len(low), generator=torch.Generator().manual_seed(1))
        run(engine, c, 0.3, cmd=cmd)
        results.append(read_all(engine, c))
        engine.close()
    assert results[0]["ground_contacts"].any(), "the test needs contacts"
    for name in GETTERS:
        torch.testing.assert_close(results[0][name], results[1][name], atol=1e-6, rtol=0, msg=name)


def test_default_buffers_hold_humanoids_tumbling_onto_the_ground(tmp_path):
    engine, c = make(tmp_path, num_envs=8)
    state = random_state(engine, c, 8, np.random.default_rng(3))
    state["root_pos"][:, 2] = torch.linspace(0.3, 1.0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_state(engine, c, all_envs(engine), state)
        run(engine, c, 1.0, cmd=torch.zeros(8, engine.get_num_dofs(c)))
    assert engine.get_ground_contacts(c).any(dim=1).all()
    assert not engine.pop_failed_envs().any()
    engine.close()


@pytest.mark.parametrize("key", ["nconmax_per_env", "njmax_per_env"])
def test_buffer_overflow_warns_naming_the_config_key_and_flags_the_envs(tmp_path, key):
    engine, c = make(tmp_path, num_envs=2, **{key: 2})
    assert engine.buffer_sizes[0 if key == "nconmax_per_env" else 1] == 2
    drop_on_ground(engine, c, height=0.0)
    with pytest.warns(RuntimeWarning, match=key):
        run(engine, c, 0.1)
    assert engine.pop_failed_envs().all()
    engine.close()


def test_missing_package_raises_one_line_error_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)  # import fails as if not installed
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(engine_config("mujoco_warp")))
    with pytest.raises(MimicKitError) as error:
        build_engine(str(path), 1, "cpu", False)
    assert 'pip install -e ".[gpu]"' in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_device_without_cuda_raises_mimickit_error():
    with pytest.raises(MimicKitError, match="CUDA"):
        build_engine(str(REPO / "data/engines/mujoco_warp_engine.yaml"), 1, "cuda:0", False)


def test_deepmimic_humanoid_trains_and_tests_through_run_py(tmp_path):
    """The issue's done-criterion at tiny size: 4 envs, 512 samples, then --mode test."""
    agent = yaml.safe_load((REPO / "data/agents/deepmimic_humanoid_ppo_agent.yaml").read_text())
    agent["test_episodes"] = 2  # the test at the end of training
    agent["actor_epochs"] = agent["critic_epochs"] = 1  # keeps the run short; PPO still updates
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text(yaml.safe_dump(agent))
    out = tmp_path / "out"
    argv = ["--arg_file", str(REPO / "args/deepmimic_humanoid_ppo_args.txt"),
            "--engine_config", str(REPO / "data/engines/mujoco_warp_engine.yaml"),
            "--agent_config", str(agent_file), "--num_envs", "4", "--max_samples", "512",
            "--out_dir", str(out), "--rand_seed", "0"]
    assert main(argv) == 0
    assert (out / "model.pt").is_file()
    assert yaml.safe_load((out / "engine.yaml").read_text())["engine_name"] == "mujoco_warp"
    assert main(argv + ["--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "2"]) == 0
    stats = json.loads((out / "eval.json").read_text())
    assert stats["num_eps"] >= 2 and np.isfinite(stats["mean_return"]) and stats["mean_return"] > 0

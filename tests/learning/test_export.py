"""--mode export: ONNX and TorchScript files equal the torch policy; the sidecar describes the env."""
import hashlib
import json
import os
import warnings

import mujoco
import numpy as np
import pytest
import torch

from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.export import collect_obs
from mimickit.learning.runner import Runner
from mimickit.run import main
from tests.learning.tiny_policy import ENGINE, ENV, REPO, tiny_export
from tests.learning.toy_envs import PointMassEnv


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return tiny_export(tmp_path_factory)


@pytest.fixture(scope="module")
def agent_env(exported):
    """The tiny model loaded into a PPO agent on 4 humanoid envs, as --mode test builds it."""
    env = build_env(ENV, ENGINE, num_envs=4, device="cpu", visualize=False)
    agent = build_agent(exported["agent"], env, "cpu")
    Runner(agent, env, "cpu").load(exported["model"])
    yield agent, env
    env.close()


def _sidecar(exported):
    with open(os.path.join(exported["export"], "policy.json")) as f:
        return json.load(f)


def _jit_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path)


def test_onnx_and_torchscript_equal_the_torch_policy_on_1000_rollout_observations(exported, agent_env):
    agent, env = agent_env
    torch.manual_seed(5)
    obs = collect_obs(env, agent.deterministic_env_action, 1000)
    assert obs.shape == (1000, agent.obs_dim) and obs.std(dim=0).max() > 0.1  # real, varied states
    # Far-out observations too, so that the normaliser's clipping inside the graph matters.
    far = obs[:50] + 1e3 * agent.obs_norm.std.float()
    obs = torch.cat([obs, far])
    with torch.no_grad():
        expected = agent.deterministic_env_action(obs)  # what --mode test applies
        unclipped = (far - agent.obs_norm.mean.float()) / agent.obs_norm.std.float()
        unclipped_action = agent.action_scaling.to_env(agent.model.actor(unclipped).mode)
        assert (unclipped_action - expected[-50:]).abs().max() > 1e-2  # the clipping matters there
        torchscript = _jit_load(os.path.join(exported["export"], "policy.pt"))(obs)
    import onnxruntime  # installed: the exported fixture skips without it
    session = onnxruntime.InferenceSession(os.path.join(exported["export"], "policy.onnx"),
                                           providers=["CPUExecutionProvider"])
    onnx = torch.from_numpy(session.run(["action"], {"obs": obs.numpy()})[0])
    assert onnx.shape == expected.shape and torchscript.shape == expected.shape
    assert (onnx - expected).abs().max() <= 1e-5
    assert (torchscript - expected).abs().max() <= 1e-5
    # The batch axis is dynamic: one observation at a time gives the same actions.
    single = np.concatenate([session.run(["action"], {"obs": obs[i:i + 1].numpy()})[0] for i in range(5)])
    assert np.abs(single - expected[:5].numpy()).max() <= 1e-5


def test_export_writes_three_files_and_checks_them_on_a_rollout(exported):
    for name in ("policy.onnx", "policy.pt", "policy.json", "engine.yaml", "env.yaml", "agent.yaml"):
        assert os.path.isfile(os.path.join(exported["export"], name)), name
    check = _sidecar(exported)["verification"]
    assert check["num_obs"] == 1000
    assert check["max_abs_err_onnx"] <= 1e-5 and check["max_abs_err_torchscript"] <= 1e-5


def test_sidecar_describes_dofs_gains_and_timing_as_mujoco_reads_the_character(exported):
    sidecar = _sidecar(exported)
    model = mujoco.MjModel.from_xml_path(os.path.join(REPO, sidecar["char_file"]))
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    assert sidecar["dof_names"] == [model.joint(j).name for j in hinges]
    # Position actuators: force = kp * (ctrl - q) - kd * qdot, i.e. biasprm = [0, -kp, -kd].
    act_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
    kp = [float(model.actuator_gainprm[act_of_joint[j], 0]) for j in hinges]
    kd = [float(-model.actuator_biasprm[act_of_joint[j], 2]) for j in hinges]
    assert np.allclose(sidecar["pd_gains"]["kp"], kp) and np.allclose(sidecar["pd_gains"]["kd"], kd)
    low, high = model.jnt_range[hinges, 0], model.jnt_range[hinges, 1]
    assert np.allclose(sidecar["default_dof_pos"], np.clip(0.0, low, high))
    action = sidecar["action"]
    assert action["meaning"]["type"] == "pd_target" and action["meaning"]["absolute"] is True
    assert action["meaning"]["units"] == "rad" and action["size"] == len(hinges)
    # Offset + scale * [-1, 1] spans the dof limits, centred on the default pose.
    offset, scale = np.array(action["offset"]), np.array(action["scale"])
    assert np.allclose(offset, sidecar["default_dof_pos"])
    assert np.allclose(np.maximum(high - offset, offset - low), scale, atol=1e-6)
    assert sidecar["control_freq_hz"] == 30 and sidecar["control_mode"] == "pos"
    for key, path in (("engine", ENGINE), ("env", ENV), ("agent", exported["agent"])):
        with open(path, "rb") as f:
            assert sidecar["configs"][key]["sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_sidecar_layout_slices_hold_the_quantities_they_name(exported, agent_env):
    agent, env = agent_env
    layout = _sidecar(exported)["observation"]["layout"]
    assert layout[0]["start"] == 0 and layout[-1]["end"] == agent.obs_dim
    assert all(a["end"] == b["start"] for a, b in zip(layout, layout[1:]))
    part = {s["name"]: s for s in layout}
    obs = env.reset()

    def values(name):
        return obs[:, part[name]["start"]:part[name]["end"]]

    assert torch.allclose(values("root_height")[:, 0], env.engine.get_root_pos(env.char_id)[:, 2])
    assert torch.allclose(values("body_pos")[:, :3], torch.zeros(4, 3))  # the root, relative to itself
    # Heading frame: body speeds are those of the world-frame velocities.
    speed = env.engine.get_body_vel(env.char_id).norm(dim=-1)
    assert torch.allclose(values("body_vel").reshape(4, -1, 3).norm(dim=-1), speed, atol=1e-4)
    assert ((values("phase") >= 0) & (values("phase") < 1)).all()
    for k in env.cfg.tar_obs_steps:
        assert part["target{}_joint_rot".format(k)]["units"] == "tan_norm"
    assert part["body_vel"]["units"] == "m/s" and part["body_pos"]["frame"] == "heading"


def test_deploy_policy_of_a_toy_env_holds_the_normaliser_clip_and_action_scaling(make_agent):
    agent = make_agent(num_envs=4, env=PointMassEnv(4))
    agent.obs_norm.record(torch.randn(256, 4) * 3.0 + 1.0)
    agent.obs_norm.update()
    policy = agent.build_deploy_policy()
    obs = torch.randn(64, 4) * 20.0  # beyond the clip of some dims
    with torch.no_grad():
        assert torch.allclose(policy(obs), agent.deterministic_env_action(obs), atol=1e-6)
    # The toy env has no layout of its own: one part covers the observation.
    assert [tuple(s) for s in agent.env.get_obs_layout()] == [("obs", 0, 4, "unspecified", "unspecified")]


def test_export_without_model_file_exits_2_naming_the_flag(exported, tmp_path, capsys):
    assert main(exported["argv"] + ["--mode", "export", "--out_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model_file" in err
    assert not os.path.exists(tmp_path / "policy.onnx")

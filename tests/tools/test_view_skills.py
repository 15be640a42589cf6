"""tools/view_skills.py: its measures against numpy and scipy, and runs on a saved (untrained) AWD agent.

The speed, heading-frame velocity, heading-rate, pose and spread functions against direct computations; on
the duckling: one skills.json entry per latent, distinct latents move differently, a latent repeats alone,
videos and frame strips, and one-line errors for a non-ASE agent, a missing model and bad counts.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.runner import Runner
from tools import view_skills as vs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = os.path.join(REPO, "data", "envs", "amp_duckling_env.yaml")
AGENT = os.path.join(REPO, "data", "agents", "awd_duckling_agent.yaml")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small networks and two CPUs: one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An untrained AWD agent (small networks) saved by Runner.save, with its agent and one-thread engine YAMLs."""
    folder = tmp_path_factory.mktemp("skills")
    engine = folder / "engine.yaml"
    text = open(os.path.join(REPO, "data", "engines", "mujoco_engine.yaml")).read()
    assert "num_threads: 0" in text
    engine.write_text(text.replace("num_threads: 0", "num_threads: 1"))
    agent = folder / "agent.yaml"
    text = open(AGENT).read()
    assert "fc_2layers_256units" in text
    agent.write_text(text.replace("fc_2layers_256units", "fc_2layers_64units"))
    torch.manual_seed(0)
    env = build_env(ENV, str(engine), 2, "cpu", False)
    try:
        Runner(build_agent(str(agent), env, "cpu"), env, "cpu").save(str(folder / "model.pt"))
    finally:
        env.close()
    argv = ["--env_config", ENV, "--agent_config", str(agent), "--engine_config", str(engine),
            "--model_file", str(folder / "model.pt"), "--num_envs", "2", "--windows", "2", "--rand_seed", "0"]
    return dict(folder=folder, argv=argv)


def yaw_roll_quats(yaw, roll):
    """Scipy's (x, y, z, w) quaternions of a roll about x, then a yaw about world z; their heading is ``yaw``."""
    return Rotation.from_euler("ZX", np.stack([yaw, roll], axis=-1)).as_quat()


# ---------------------------------------------------------------------- the measures
def test_horizontal_speed_and_heading_velocity_match_numpy():
    """The speed is |(vx, vy)|; the heading-frame velocity is the world one turned by -heading."""
    rng = np.random.default_rng(0)
    rot = Rotation.random(200, random_state=1)
    vel = rng.normal(size=(200, 3))
    np.testing.assert_allclose(vs.horizontal_speed(torch.tensor(vel)).numpy(), np.hypot(vel[:, 0], vel[:, 1]))
    m = rot.as_matrix()
    heading = np.arctan2(m[:, 1, 0], m[:, 0, 0])  # yaw of the rotated x axis
    c, s = np.cos(heading), np.sin(heading)
    expected = np.stack([c * vel[:, 0] + s * vel[:, 1], -s * vel[:, 0] + c * vel[:, 1]], axis=-1)
    got = vs.heading_velocity(torch.tensor(rot.as_quat()), torch.tensor(vel)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_heading_rate_of_a_constant_yaw_rate_is_that_rate_through_the_wrap():
    """A constant yaw rate under a tilt comes back at every step, across -pi; random turns take the short way."""
    dt, rate = 1.0 / 30.0, -2.5  # rad/s, turning right; the heading passes -pi within the 100 steps
    t = np.arange(101) * dt
    yaw = 3.0 + rate * t
    roll = np.full_like(t, 0.3)  # a tilted root: the heading is still the yaw
    q = torch.tensor(yaw_roll_quats(yaw, roll))
    got = vs.heading_rate(q[:-1], q[1:], dt).numpy()
    np.testing.assert_allclose(got, np.full(100, rate), atol=1e-9)
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-np.pi, np.pi, (2, 50))
    step = (b - a + np.pi) % (2 * np.pi) - np.pi  # the shortest turn from a to b
    q_a, q_b = (torch.tensor(yaw_roll_quats(x, rng.uniform(-0.5, 0.5, 50))) for x in (a, b))
    np.testing.assert_allclose(vs.heading_rate(q_a, q_b, 0.1).numpy(), step / 0.1, atol=1e-9)


def test_local_body_pos_rotates_root_relative_positions_into_the_heading_frame():
    """Body minus root position, turned by -heading, flattened body by body."""
    rng = np.random.default_rng(3)
    yaw = rng.uniform(-np.pi, np.pi, 6)
    rot = Rotation.from_euler("ZYX", np.stack([yaw, rng.uniform(-0.4, 0.4, 6), rng.uniform(-0.4, 0.4, 6)], -1))
    root = rng.normal(size=(6, 3))
    bodies = rng.normal(size=(6, 5, 3))
    rel = bodies - root[:, None]
    expected = np.einsum("nij,nbj->nbi", Rotation.from_euler("Z", -yaw[:, None]).as_matrix(), rel).reshape(6, 15)
    got = vs.local_body_pos(torch.tensor(root), torch.tensor(rot.as_quat()), torch.tensor(bodies)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_skill_spread_between_and_within_latents_match_numpy():
    """Between: the std of the latent means (RMS over dims); within: each latent's std, averaged."""
    rng = np.random.default_rng(4)
    groups = rng.normal(size=(5, 8, 3)) + rng.normal(scale=3.0, size=(5, 1, 3))  # 5 latents, 8 groups
    means = groups.mean(axis=1)
    between_np = np.sqrt(np.mean(np.std(means, axis=0) ** 2))
    within_np = np.mean([np.sqrt(np.mean(np.std(g, axis=0) ** 2)) for g in groups])
    between, within = vs.skill_spread(torch.tensor(groups))
    assert float(between) == pytest.approx(between_np, rel=1e-12)
    assert float(within) == pytest.approx(within_np, rel=1e-12)
    assert float(between) / float(within) > 1.0  # latent offsets 3x the noise: distinct
    dist = vs.rms_dist(torch.tensor(means), torch.tensor(means.mean(axis=0))).numpy()
    np.testing.assert_allclose(dist, np.sqrt(np.mean((means - means.mean(axis=0)) ** 2, axis=1)))
    assert np.sqrt(np.mean(dist ** 2)) == pytest.approx(between_np, rel=1e-12)
    same = torch.tensor(rng.normal(size=(1, 8, 3))).expand(4, 8, 3)  # every latent alike
    assert float(vs.skill_spread(same)[0]) == pytest.approx(0.0, abs=1e-12)


def test_windows_split_the_steps_into_near_equal_consecutive_runs():
    """Windows are consecutive and differ in length by at most one step."""
    index = vs.window_index(10, 3)
    assert index.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert vs.window_index(5, 5).tolist() == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------- runs of the tool
def test_each_latent_gets_an_entry_and_distinct_latents_move_differently(saved, tmp_path, capsys):
    """Three latents: three finite rows, a table and a diversity summary; their poses differ."""
    out = tmp_path / "out"
    assert vs.main(saved["argv"] + ["--num_latents", "3", "--steps", "20", "--out_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    print(printed)  # the table, for -s
    skills = json.loads((out / "skills.json").read_text())
    rows = skills["latents"]
    assert [r["latent"] for r in rows] == [0, 1, 2]
    for row in rows:
        for key in ("root_speed", "forward_vel", "left_vel", "heading_rate_abs", "heading_rate", "falls_per_min",
                    "pose_dist"):
            assert np.isfinite(row[key]), key
        assert len(row["z"]) == 16 and len(row["pose"]) == 3 * len(skills["body_names"])
        assert np.all(np.isfinite(row["pose"]))
    for name in ("velocity", "pose"):
        d = skills["diversity"][name]
        assert d["between"] > 0 and d["within"] > 0 and np.isfinite(d["ratio"])
    # The same start states (a latent repeats bit for bit, the next test), and an untrained policy's actions
    # depend on z, so the mean poses differ: measured 9e-5 m at least here, far above float rounding (~1e-7 m).
    # Only slightly: the mean layer starts within +-0.01, so the untrained latents' between/within is ~0.01.
    pose = np.array([r["pose"] for r in rows])
    assert min(np.abs(pose[i] - pose[j]).max() for i in range(3) for j in range(i)) > 1e-5
    assert all(r["pose_dist"] > 0 for r in rows)
    table = printed.split("\n")
    assert table[0].split()[0] == "latent" and [line.split()[0] for line in table[1:4]] == ["0", "1", "2"]
    assert "between/within" in printed and "wrote " + str(out / "skills.json") in printed


def test_a_latent_run_alone_repeats_it_within_a_longer_run(saved, tmp_path):
    """The generators are seeded before each latent: latent 0 alone does what it did first of two."""
    argv = saved["argv"] + ["--steps", "10"]
    assert vs.main(argv + ["--num_latents", "2", "--out_dir", str(tmp_path / "two")]) == 0
    assert vs.main(argv + ["--num_latents", "1", "--out_dir", str(tmp_path / "one")]) == 0
    two = json.loads((tmp_path / "two" / "skills.json").read_text())["latents"]
    one = json.loads((tmp_path / "one" / "skills.json").read_text())["latents"]
    assert one[0]["pose"] == two[0]["pose"] and one[0]["root_speed"] == two[0]["root_speed"]


def test_an_agent_without_latents_is_one_line_naming_it(tmp_path, capsys):
    """An AMP agent config: exit 2, one line naming --agent_config and the agent, nothing written."""
    model = tmp_path / "model.pt"
    model.write_bytes(b"not read: the agent is refused first")
    engine = tmp_path / "engine.yaml"
    engine.write_text(open(os.path.join(REPO, "data", "engines", "mujoco_engine.yaml")).read()
                      .replace("num_threads: 0", "num_threads: 1"))
    agent = os.path.join(REPO, "data", "agents", "amp_humanoid_agent.yaml")
    argv = ["--env_config", os.path.join(REPO, "data", "envs", "amp_humanoid_env.yaml"), "--agent_config", agent,
            "--engine_config", str(engine), "--model_file", str(model), "--num_envs", "1", "--steps", "5",
            "--out_dir", str(tmp_path / "out")]
    assert vs.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --agent_config " + agent)
    assert "agent 'AMP'" in err and "only ASE models have latents" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, message", [
    (["--num_latents", "0"], "--num_latents must be >= 1"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--num_envs", "1", "--windows", "1"], "at least 2 (env, window) groups"),
    (["--steps", "2", "--windows", "3"], "--windows 3 exceeds --steps 2"),
    (["--frames", "-1"], "--frames must be in 0 .. --steps"),
    (["--model_file", "no/such/model.pt"], "--model_file: file not found: no/such/model.pt"),
])
def test_bad_counts_and_a_missing_model_are_one_line_each(saved, tmp_path, capsys, flags, message):
    """Each bad count or missing file: exit 2 and one line naming the flag."""
    assert vs.main(saved["argv"] + ["--out_dir", str(tmp_path)] + flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_video_and_frames_write_one_file_per_latent(saved, tmp_path):
    """--video and --frames: an MP4 of every control step and a strip of K frames per latent."""
    pytest.importorskip("imageio_ffmpeg")
    imageio = pytest.importorskip("imageio.v2")
    out = tmp_path / "out"
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(REPO, "tools", "view_skills.py")] + saved["argv"] + [
        "--num_latents", "2", "--steps", "6", "--video", "--frames", "3", "--out_dir", str(out)]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode == 2 and "OpenGL" in result.stderr:
        pytest.skip("no offscreen OpenGL context here: " + result.stderr.strip())
    assert result.returncode == 0, result.stderr
    for k in range(2):
        reader = imageio.get_reader(str(out / "skill_{}.mp4".format(k)))
        assert sum(1 for _ in reader) == 6  # env 0, one frame per control step
        reader.close()
        strip = imageio.imread(str(out / "skill_{}.png".format(k)))
        assert strip.shape == (240, 3 * 320, 3) and strip.std() > 0
    assert len(json.loads((out / "skills.json").read_text())["latents"]) == 2

"""Domain randomisation (mimickit/envs/domain_rand.py) on the AMP quadruped command env.

Every drawn quantity lies in its configured range and is the value MuJoCo simulates with
(read back from the batch's per-env model fields); an absent or empty block leaves the env
bit-identical; observation noise has the configured statistics; pushes change the root
velocity by the drawn impulse at the drawn times; the delay returns the command of d steps
ago and the filter equals the direct recursion; config mistakes name the file and the key.
"""
import json
import math

import numpy as np
import pytest
import torch
import yaml

from mimickit.envs.domain_rand import (
    ActionChannel,
    ActionFilterConfig,
    DomainRandConfig,
    PushConfig,
    PushSchedule,
    load_perturbations,
)
from mimickit.envs.env_builder import build_env
from mimickit.run import main
from mimickit.util.errors import MimicKitError

ENGINE = "data/engines/mujoco_engine.yaml"
BASE = "data/envs/amp_quadruped_command_env.yaml"
NUM_ENVS = 8
PHYSICS = {"friction_scale": [0.5, 1.25], "added_base_mass": [-1.0, 3.0],
           "com_offset": [[-0.03, 0.03], [-0.02, 0.02], [-0.01, 0.01]], "link_mass_scale": [0.8, 1.2],
           "kp_scale": [0.9, 1.1], "kd_scale": [0.8, 1.2], "motor_strength_scale": [0.85, 1.15]}


def make_env(tmp_path, domain_rand="absent", engine=ENGINE, num_envs=NUM_ENVS, **keys):
    """The quadruped command env with a ``domain_rand`` block (``"absent"``: none) and ``keys`` replaced."""
    config = yaml.safe_load(open(BASE).read())
    config.update(keys)
    if domain_rand != "absent":
        config["domain_rand"] = domain_rand
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(config))
    return build_env(str(path), engine, num_envs=num_envs, device="cpu", visualize=False)


def rollout(env, steps, seed):
    """Observations, rewards and dones of ``steps`` random actions from a reset, seeded."""
    torch.manual_seed(seed)
    out = [env.reset()]
    space = env.get_action_space()
    actions = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        noise = torch.rand(env.num_envs, space.shape[0], generator=actions) - 0.5
        obs, reward, done, _ = env.step(space.neutral + 0.3 * noise)
        out += [obs, reward, done]
    return out


def test_absent_or_empty_block_leaves_the_env_bit_identical(tmp_path):
    runs = []
    for block in ("absent", {}):
        env = make_env(tmp_path, block)
        try:
            assert (env.domain_rand is None) == (block == "absent")
            runs.append(rollout(env, 20, seed=3))
        finally:
            env.close()
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_physics_draws_lie_in_their_ranges_and_are_what_mujoco_simulates(tmp_path):
    torch.manual_seed(0)
    env = make_env(tmp_path, PHYSICS)
    try:
        engine, char = env.engine, env.char_id
        model, batch = engine.model, engine.batch
        bodies = np.array([model.body("char/" + b).id for b in engine.get_body_names(char)])
        actuators = engine._char(char).actuator_ids
        kp, kd = (g.double().numpy() for g in engine.get_pd_gains(char))
        for _ in range(2):  # a second reset redraws from the nominal values, not from the last draw
            env.reset()
            v = {k: t.double().numpy() for k, t in env.domain_rand.values().items()}
            for key, value in PHYSICS.items():
                if key != "com_offset":
                    low, high = value
                    assert (v[key] >= low).all() and (v[key] <= high).all(), key
            ranges = np.array(PHYSICS["com_offset"])
            assert (v["com_offset"] >= ranges[:, 0]).all() and (v["com_offset"] <= ranges[:, 1]).all()
            assert v["link_mass_scale"].shape == (NUM_ENVS, len(bodies) - 1) and v["kp_scale"].shape == (NUM_ENVS, 12)

            mass = batch.expanded("body_mass")[:, bodies]
            nominal = model.body_mass[bodies]
            np.testing.assert_allclose(mass[:, 0], nominal[0] + v["added_base_mass"], rtol=1e-6)
            np.testing.assert_allclose(mass[:, 1:], nominal[1:] * v["link_mass_scale"], rtol=1e-6)
            np.testing.assert_allclose(batch.expanded("body_inertia")[:, bodies],
                                       model.body_inertia[bodies] * (mass / nominal)[..., None], rtol=1e-6)
            np.testing.assert_allclose(batch.expanded("body_subtreemass")[:, bodies[0]], mass.sum(1), rtol=1e-6)
            np.testing.assert_allclose(batch.expanded("body_ipos")[:, bodies[0]],
                                       model.body_ipos[bodies[0]] + v["com_offset"], atol=1e-7)
            np.testing.assert_allclose(batch.expanded("body_ipos")[:, bodies[1:]],
                                       np.broadcast_to(model.body_ipos[bodies[1:]], (NUM_ENVS, len(bodies) - 1, 3)))
            np.testing.assert_allclose(batch.expanded("geom_friction")[:, :, 0],
                                       v["friction_scale"][:, None] * model.geom_friction[:, 0], rtol=1e-6)
            strength = v["motor_strength_scale"]
            np.testing.assert_allclose(batch.expanded("actuator_gainprm")[:, actuators, 0],
                                       strength * v["kp_scale"] * kp, rtol=1e-6)
            np.testing.assert_allclose(batch.expanded("actuator_biasprm")[:, actuators, 1],
                                       -strength * v["kp_scale"] * kp, rtol=1e-6)
            speed_damping = engine._char(char).speed_damping  # the config's torque-speed line (test_joint_dynamics)
            np.testing.assert_allclose(batch.expanded("actuator_biasprm")[:, actuators, 2],
                                       speed_damping - strength * v["kd_scale"] * kd, rtol=1e-6)
            torch.testing.assert_close(engine.get_body_mass(char), torch.from_numpy(mass).float())
    finally:
        env.close()


def test_the_ground_carries_the_drawn_mass_of_a_standing_quadruped(tmp_path):
    torch.manual_seed(1)
    env = make_env(tmp_path, {"added_base_mass": [-1.0, 3.0], "link_mass_scale": [0.8, 1.2]},
                   default_pose_prob=1.0, enable_early_termination=False)
    try:
        env.reset()
        neutral = env.get_action_space().neutral.expand(NUM_ENVS, -1)
        forces = []
        for i in range(90):  # 3 s standing in the default pose; the last second, settled
            env.step(neutral)
            if i >= 60:
                forces.append(env.engine.get_contact_forces(env.char_id)[..., 2].sum(-1))
        weight = env.engine.get_body_mass(env.char_id).sum(-1) * 9.81
        nominal = float(env.engine.model.body_mass[1:].sum()) * 9.81  # the character's bodies (world is 0)
        assert (weight - nominal).abs().max() > 0.05 * nominal  # the draws differ from the nominal weight
        torch.testing.assert_close(torch.stack(forces).mean(0), weight, rtol=0.01, atol=0.0)
    finally:
        env.close()


def test_observation_noise_has_the_configured_std_on_its_terms_and_leaves_the_others(tmp_path):
    stds = {"root_height": 0.05, "body_vel": 0.2}
    torch.manual_seed(2)
    env = make_env(tmp_path, {"obs_noise": stds})
    try:
        layout = {part.name: part for part in env.get_obs_layout()}
        diffs = [env.reset() - env._compute_obs()]
        neutral = env.get_action_space().neutral.expand(NUM_ENVS, -1)
        for _ in range(40):
            obs, _, done, _ = env.step(neutral)
            diffs.append(obs - env._compute_obs())
            env.reset(torch.nonzero(done).reshape(-1))
        diff = torch.cat(diffs).double()
        noisy = torch.zeros(diff.shape[1], dtype=torch.bool)
        for term, std in stds.items():
            part = layout[term]
            noisy[part.start:part.end] = True
            samples = diff[:, part.start:part.end].flatten()
            n = len(samples)
            # the sample std's standard error is std / sqrt(2 n), the mean's std / sqrt(n): 5 of each
            assert abs(samples.std().item() - std) < 5 * std / math.sqrt(2 * n), term
            assert abs(samples.mean().item()) < 5 * std / math.sqrt(n), term
        assert torch.equal(diff[:, ~noisy], torch.zeros_like(diff[:, ~noisy]))
    finally:
        env.close()


def test_pushes_change_the_root_velocity_by_the_drawn_impulse_at_the_drawn_times(tmp_path):
    torch.manual_seed(3)
    push = {"interval_s": [0.2, 0.4], "max_lin_vel": [1.0, 0.8, 0.2], "max_ang_vel": [0.5, 0.5, 1.0]}
    env = make_env(tmp_path, {"push": push}, enable_early_termination=False)
    try:
        engine, char = env.engine, env.char_id
        schedule = env.domain_rand._push
        env.reset()
        assert ((schedule.next_time >= 0.2) & (schedule.next_time <= 0.4)).all()
        neutral = env.get_action_space().neutral.expand(NUM_ENVS, -1)
        pushes = torch.zeros(NUM_ENVS, dtype=torch.long)
        for _ in range(45):  # 1.5 s
            due = env.time >= schedule.next_time - 1e-6
            next_before = schedule.next_time.clone()
            vel, ang_vel = engine.get_root_vel(char).clone(), engine.get_root_ang_vel(char).clone()
            env.domain_rand._push.apply(engine, char, env.time)  # what step() does first, here apart
            torch.testing.assert_close(engine.get_root_vel(char) - vel, torch.where(
                due[:, None], schedule.lin_vel, torch.zeros(NUM_ENVS, 3)), atol=1e-5, rtol=0)
            torch.testing.assert_close(engine.get_root_ang_vel(char) - ang_vel, torch.where(
                due[:, None], schedule.ang_vel, torch.zeros(NUM_ENVS, 3)), atol=1e-5, rtol=0)
            gap = schedule.next_time - next_before
            assert ((gap[due] >= 0.2) & (gap[due] <= 0.4)).all() and (gap[~due] == 0).all()
            assert (schedule.lin_vel.abs() <= torch.tensor(push["max_lin_vel"])).all()
            assert (schedule.ang_vel.abs() <= torch.tensor(push["max_ang_vel"])).all()
            pushes += due.long()
            env.engine.set_cmd(char, neutral)
            env.engine.step()
            env.time += env.control_dt
        assert (pushes >= 3).all() and (pushes <= 7).all()  # 1.5 s at 0.2-0.4 s intervals
    finally:
        env.close()


class RootVelocityRecorder:
    """The root velocity getters and setters of an engine, kept in tensors ``[num_envs, 3]``."""

    def __init__(self, num_envs):
        self.vel = torch.zeros(num_envs, 3)
        self.ang_vel = torch.zeros(num_envs, 3)

    def get_root_vel(self, char_id):
        return self.vel

    def get_root_ang_vel(self, char_id):
        return self.ang_vel

    def set_root_vel(self, char_id, ids, values):
        self.vel[ids] = values

    def set_root_ang_vel(self, char_id, ids, values):
        self.ang_vel[ids] = values


def test_push_schedule_pushes_only_the_envs_whose_time_came():
    torch.manual_seed(4)

    schedule = PushSchedule(PushConfig(interval_s=[1.0, 2.0]), 4, torch.device("cpu"))
    schedule.reset(torch.arange(4))
    time = torch.where(torch.arange(4) % 2 == 0, schedule.next_time, schedule.next_time - 0.5)
    engine = RootVelocityRecorder(4)
    schedule.apply(engine, 0, time)
    assert (engine.vel[1::2] == 0).all() and (engine.vel[0::2, :2] != 0).all() and (engine.vel[:, 2] == 0).all()
    torch.testing.assert_close(engine.vel, schedule.lin_vel)


def test_action_delay_returns_the_command_of_d_steps_ago_by_a_hand_kept_queue():
    torch.manual_seed(5)
    n, dim = 6, 3
    channel = ActionChannel([0, 3], None, n, dim, torch.device("cpu"))
    queues = [[] for _ in range(n)]
    channel.reset(torch.arange(n))
    assert set(channel.delay.tolist()) <= {0, 1, 2, 3}
    for step in range(30):
        if step == 12:  # a reset of envs 1 and 4 forgets their commands and redraws their delays
            channel.reset(torch.tensor([1, 4]))
            queues[1], queues[4] = [], []
        action = torch.randn(n, dim)
        cmd = channel(action)
        for i in range(n):
            queues[i].append(action[i])
            d = int(channel.delay[i])
            expected = queues[i][max(0, len(queues[i]) - 1 - d)]
            assert torch.equal(cmd[i], expected)
    assert len(set(channel.delay.tolist())) > 1


def test_action_filter_equals_the_direct_recursion_and_its_cutoff_formula():
    dt = 1.0 / 30.0
    alpha = ActionFilterConfig(cutoff_hz=4.0).coefficient(dt)
    w = 2 * math.pi * 4.0 * dt
    assert alpha == pytest.approx(w / (1 + w))
    channel = ActionChannel(None, alpha, 2, 4, torch.device("cpu"))
    channel.reset(torch.arange(2))
    actions = torch.randn(20, 2, 4)
    y = actions[0].clone()
    for t in range(20):
        if t > 0:
            y = y + alpha * (actions[t] - y)
        torch.testing.assert_close(channel(actions[t]), y)


def test_the_env_sends_the_delayed_filtered_command_to_the_engine(tmp_path):
    torch.manual_seed(6)
    env = make_env(tmp_path, {"action_delay_steps": [1, 2], "action_filter": {"alpha": 0.5}},
                   enable_early_termination=False)
    try:
        sent = []
        set_cmd = env.engine.set_cmd
        env.engine.set_cmd = lambda char_id, cmd: (sent.append(cmd.clone()), set_cmd(char_id, cmd))
        env.reset()
        reference = ActionChannel([1, 2], 0.5, NUM_ENVS, 12, torch.device("cpu"))
        reference.delay = env.domain_rand.values()["action_delay_steps"].clone()
        neutral = env.get_action_space().neutral
        for _ in range(6):
            action = neutral + 0.2 * torch.randn(NUM_ENVS, 12)
            _, _, _, info = env.step(action)
            torch.testing.assert_close(sent[-1], reference(action))
        assert set(info["domain_rand"]["action_delay_steps"].tolist()) <= {1, 2}
    finally:
        env.close()


@pytest.mark.parametrize("block, expected", [
    ({"frictoin_scale": [0.5, 1.0]}, "unknown key 'domain_rand.frictoin_scale'"),
    ({"friction_scale": [1.2, 0.5]}, "key 'friction_scale' must be [low, high]"),
    ({"link_mass_scale": [0.0, 1.0]}, "key 'link_mass_scale' must be [low, high] with low <= high and low > 0"),
    ({"added_base_mass": [-100.0, 1.0]}, "key 'added_base_mass' must be above"),
    ({"push": {"interval_s": [0.0, 1.0]}}, "key 'interval_s'"),
    ({"push": {"max_vel": 1.0, "interval_s": [1.0, 2.0]}}, "unknown key 'domain_rand.push.max_vel'"),
    ({"action_filter": {"alpha": 0.5, "cutoff_hz": 3.0}}, "exactly one of keys 'alpha' and 'cutoff_hz'"),
    ({"action_delay_steps": [-1, 2]}, "key 'action_delay_steps'"),
    ({"obs_noise": {"body_vel": -0.1}}, "key 'obs_noise.body_vel'"),
    ({"obs_noise": {"body_speed": 0.1}}, "key 'domain_rand.obs_noise.body_speed': no observation term"),
])
def test_config_mistakes_name_the_file_and_the_key(tmp_path, block, expected):
    with pytest.raises(MimicKitError) as error:
        env = make_env(tmp_path, block)
        try:
            env.reset()
        finally:
            env.close()
    assert str(tmp_path / "env.yaml") in str(error.value) and expected in str(error.value)


def test_gain_scales_in_torque_mode_are_refused_naming_the_key(tmp_path):
    engine = yaml.safe_load(open(ENGINE).read())
    engine["control_mode"] = "torque"
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(engine))
    with pytest.raises(MimicKitError, match="key 'kp_scale' needs the engine's control_mode pos"):
        make_env(tmp_path, {"kp_scale": [0.9, 1.1]}, engine=str(path))


def test_a_push_of_given_horizontal_speed_has_that_magnitude_in_every_direction():
    torch.manual_seed(5)
    schedule = PushSchedule(PushConfig(interval_s=[1.0, 1.0], horizontal_speed=0.7), 512, torch.device("cpu"))
    schedule.reset(torch.arange(512))

    schedule.apply(RootVelocityRecorder(512), 0, torch.ones(512))
    torch.testing.assert_close(schedule.lin_vel[:, :2].norm(dim=-1), torch.full((512,), 0.7))
    assert (schedule.lin_vel[:, 2] == 0).all() and (schedule.ang_vel == 0).all()
    heading = torch.atan2(schedule.lin_vel[:, 1], schedule.lin_vel[:, 0])
    counts = torch.histc(heading, bins=4, min=-math.pi, max=math.pi)
    assert (counts > 512 / 4 * 0.75).all(), counts  # every quadrant, about evenly


def test_a_perturbation_replaces_the_randomisation_from_the_nominal_physics(tmp_path):
    torch.manual_seed(6)
    env = make_env(tmp_path, {"friction_scale": [0.5, 1.25], "added_base_mass": [1.0, 2.0]})
    try:
        engine, char = env.engine, env.char_id
        nominal_friction, nominal_mass = engine.model.geom_friction[:, 0].copy(), engine.get_body_mass(char)[0].clone()
        env.reset()
        assert not np.allclose(engine.batch.expanded("geom_friction")[:, :, 0], nominal_friction)
        env.set_domain_rand(DomainRandConfig(friction_scale=[0.3, 0.3]), "set.yaml: key 'low'")
        # the draws of the old randomisation are undone at once, the new ones come with the next reset
        torch.testing.assert_close(engine.get_body_mass(char), nominal_mass.expand(NUM_ENVS, -1))
        np.testing.assert_allclose(engine.batch.expanded("geom_friction")[:, :, 0],
                                   np.broadcast_to(nominal_friction, (NUM_ENVS, len(nominal_friction))))
        env.reset()
        np.testing.assert_allclose(engine.batch.expanded("geom_friction")[:, :, 0],
                                   np.broadcast_to(0.3 * nominal_friction, (NUM_ENVS, len(nominal_friction))),
                                   rtol=1e-6)
        summary = env.domain_rand.summary()
        assert summary == pytest.approx({"dr_friction_scale_mean": 0.3, "dr_friction_scale_min": 0.3,
                                         "dr_friction_scale_max": 0.3})
        env.set_domain_rand(None, "set.yaml: key 'nominal'")
        np.testing.assert_allclose(engine.batch.expanded("geom_friction")[:, :, 0],
                                   np.broadcast_to(nominal_friction, (NUM_ENVS, len(nominal_friction))))
    finally:
        env.close()


@pytest.mark.parametrize("text, expected", [
    ("", "expected a mapping of perturbation names"),
    ("low: 0.3\n", "key 'low': expected a domain_rand block"),
    ("low: {friction: [0.3, 0.3]}\n", "key 'low': unknown key 'friction'"),
    ("low: {friction_scale: [0.5, 0.3]}\n", "key 'low': key 'friction_scale' must be [low, high]"),
])
def test_perturbation_file_mistakes_name_the_file_and_the_entry(tmp_path, text, expected):
    path = tmp_path / "set.yaml"
    path.write_text(text)
    with pytest.raises(MimicKitError) as error:
        load_perturbations(str(path))
    assert str(path) in str(error.value) and expected in str(error.value)


def test_a_missing_perturbation_file_is_named_with_the_flag(tmp_path):
    with pytest.raises(MimicKitError, match=r"perturbation set \(--perturbations\) not found: .*nowhere.yaml"):
        load_perturbations(str(tmp_path / "nowhere.yaml"))


def test_test_mode_reports_each_perturbation_and_training_logs_the_draws(tmp_path):
    """The CLI end to end on the quadruped: one training iteration with randomisation, then a perturbation set."""
    config = yaml.safe_load(open("data/envs/amp_quadruped_command_deploy_env.yaml").read())
    config["episode_length"] = 2.0
    env_path = tmp_path / "env.yaml"
    env_path.write_text(yaml.safe_dump(config))
    sets = tmp_path / "set.yaml"
    sets.write_text("nominal: {}\nshove: {push: {interval_s: [0.5, 0.5], horizontal_speed: 3.0}}\n")
    out = tmp_path / "run"
    argv = ["--arg_file", "args/amp_quadruped_deploy_args.txt", "--env_config", str(env_path), "--num_envs", "2",
            "--rand_seed", "0"]
    assert main(argv + ["--max_samples", "64", "--out_dir", str(out)]) == 0
    header = (out / "log.txt").read_text().splitlines()[0].split()
    assert {"dr_friction_scale_mean", "dr_added_base_mass_max", "dr_action_delay_steps_min"} <= set(header)
    assert main(argv + ["--mode", "test", "--model_file", str(out / "model.pt"), "--test_episodes", "4",
                        "--perturbations", str(sets), "--out_dir", str(tmp_path / "test")]) == 0
    stats = json.loads((tmp_path / "test" / "eval.json").read_text())
    assert list(stats) == ["nominal", "shove"] and all(s["num_eps"] == 4 for s in stats.values())
    # a 3 m/s shove every 0.5 s fells the barely trained quadruped sooner than standing still does
    assert stats["shove"]["mean_ep_len"] < stats["nominal"]["mean_ep_len"]
    assert main(argv + ["--perturbations", str(sets), "--out_dir", str(out)]) == 2  # train mode: refused


def test_readme_sim_to_real_section_lists_every_randomisation_and_actuator_key():
    import dataclasses

    from mimickit.envs.actuators import ActuatorConfig

    readme = open("README.md").read()
    section = readme[readme.index("## Sim-to-real"):]
    section = section[:section.index("\n## ", 1)]
    for cls in (DomainRandConfig, PushConfig, ActionFilterConfig, ActuatorConfig):
        for field in dataclasses.fields(cls):
            name = field.name
            assert "`{}".format(name) in section or "{}:".format(name) in section, (cls.__name__, name)


@pytest.mark.parametrize("name", ["quadruped", "duckling"])
def test_the_shipped_perturbation_sets_load_and_start_with_the_nominal_physics(name):
    sets = load_perturbations("data/perturbations/{}.yaml".format(name))
    assert list(sets)[0] == "nominal" and sets["nominal"] == DomainRandConfig() and len(sets) >= 6
    pushes = [cfg.push.horizontal_speed for cfg in sets.values() if cfg.push is not None]
    assert pushes == sorted(pushes) and len(pushes) == 3  # three push sizes, growing

"""Engine contract tests, run for every engine in ENGINE_NAMES.

References are independent of the engine: MuJoCo's own kinematics on the character file
compiled alone, closed-form free fall, the character's weight, the file's joint ranges.
"""
import importlib.util
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml
from scipy.spatial.transform import Rotation

from mimickit.engines.engine_builder import build_engine
from mimickit.util.errors import MimicKitError

HAS_MUJOCO_WARP = importlib.util.find_spec("mujoco_warp") is not None
ENGINE_NAMES = ["mujoco", pytest.param("mujoco_warp", marks=pytest.mark.skipif(
    not HAS_MUJOCO_WARP, reason="mujoco-warp is not installed (Python >= 3.11, pip install -e '.[dev]')"))]
REPO = Path(__file__).resolve().parents[2]
HUMANOID = str(REPO / "data/assets/humanoid/humanoid.xml")
GRAVITY = 9.81
STAND_HEIGHT = 0.89  # root height of the default pose with the feet on the ground (humanoid.xml)


def engine_config(name):
    return yaml.safe_load((REPO / "data/engines/{}_engine.yaml".format(name)).read_text())


def make_engine(name, tmp_path, num_envs=4, reference=False, **overrides):
    config = engine_config(name)
    config.update(overrides)
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), num_envs, "cpu", False)
    char_id = engine.add_character(HUMANOID, "humanoid")
    ref_id = engine.add_character(HUMANOID, "reference", is_reference=True) if reference else None
    engine.initialize()
    return engine, char_id, ref_id


def standalone_humanoid():
    """The character file compiled on its own, as MuJoCo's reference."""
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    return model, mujoco.MjData(model)


def all_envs(engine):
    return torch.arange(engine.num_envs)


def drop_on_ground(engine, char_id, height=0.01):
    """Put every env in the default pose with the feet ``height`` m above the ground."""
    ids = all_envs(engine)
    n = engine.num_envs
    engine.set_root_pos(char_id, ids, torch.tensor([[0.0, 0.0, STAND_HEIGHT + height]]).repeat(n, 1))
    engine.set_root_rot(char_id, ids, torch.tensor([[0.0, 0.0, 0.0, 1.0]]).repeat(n, 1))
    engine.set_root_vel(char_id, ids, torch.zeros(n, 3))
    engine.set_root_ang_vel(char_id, ids, torch.zeros(n, 3))
    engine.set_dof_pos(char_id, ids, torch.zeros(n, engine.get_num_dofs(char_id)))
    engine.set_dof_vel(char_id, ids, torch.zeros(n, engine.get_num_dofs(char_id)))


def run(engine, char_id, seconds, cmd=None, each_step=None):
    cmd = torch.zeros(engine.num_envs, engine.get_num_dofs(char_id)) if cmd is None else cmd
    for _ in range(round(seconds / engine.control_dt)):
        engine.set_cmd(char_id, cmd)
        engine.step()
        if each_step is not None:
            each_step()


def random_state(engine, char_id, k, generator):
    """Random root pose and velocities and dof positions/velocities within the limits, for k envs."""
    low, high = engine.get_dof_limits(char_id)
    d = engine.get_num_dofs(char_id)
    root_rot = torch.from_numpy(Rotation.random(k, random_state=generator.integers(1 << 31)).as_quat()).float()
    return {
        "root_pos": torch.from_numpy(generator.uniform(-1, 1, (k, 3))).float() + torch.tensor([0.0, 0.0, 2.0]),
        "root_rot": root_rot,
        "root_vel": torch.from_numpy(generator.uniform(-2, 2, (k, 3))).float(),
        "root_ang_vel": torch.from_numpy(generator.uniform(-3, 3, (k, 3))).float(),
        "dof_pos": low + (high - low) * torch.from_numpy(generator.uniform(0.05, 0.95, (k, d))).float(),
        "dof_vel": torch.from_numpy(generator.uniform(-2, 2, (k, d))).float(),
    }


def apply_state(engine, char_id, env_ids, state):
    # angular velocity before rotation on purpose: the world-frame value must not depend on order
    engine.set_root_ang_vel(char_id, env_ids, state["root_ang_vel"])
    engine.set_root_pos(char_id, env_ids, state["root_pos"])
    engine.set_root_rot(char_id, env_ids, state["root_rot"])
    engine.set_root_vel(char_id, env_ids, state["root_vel"])
    engine.set_dof_pos(char_id, env_ids, state["dof_pos"])
    engine.set_dof_vel(char_id, env_ids, state["dof_vel"])


def read_state(engine, char_id):
    return {
        "root_pos": engine.get_root_pos(char_id), "root_rot": engine.get_root_rot(char_id),
        "root_vel": engine.get_root_vel(char_id), "root_ang_vel": engine.get_root_ang_vel(char_id),
        "dof_pos": engine.get_dof_pos(char_id), "dof_vel": engine.get_dof_vel(char_id),
    }


def same_rotation(q_a, q_b, atol):
    """Quaternions equal up to sign."""
    dots = (q_a * q_b).sum(-1).abs()
    return bool((dots > 1 - atol).all())


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_getters_return_float32_tensors_of_documented_shapes_on_engine_device(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=3)
    n, d, b = 3, engine.get_num_dofs(c), engine.get_num_bodies(c)
    model, _ = standalone_humanoid()
    assert d == model.njnt - 1 and b == model.nbody - 1
    assert engine.get_body_names(c)[0] == "pelvis"
    assert engine.get_dof_names(c) == [model.joint(j).name for j in range(1, model.njnt)]
    expected = {
        "get_root_pos": (n, 3), "get_root_rot": (n, 4), "get_root_vel": (n, 3), "get_root_ang_vel": (n, 3),
        "get_dof_pos": (n, d), "get_dof_vel": (n, d), "get_dof_forces": (n, d),
        "get_body_pos": (n, b, 3), "get_body_rot": (n, b, 4), "get_body_vel": (n, b, 3),
        "get_body_ang_vel": (n, b, 3), "get_contact_forces": (n, b, 3),
    }
    engine.set_cmd(c, torch.zeros(n, d))
    engine.step()
    for getter, shape in expected.items():
        value = getattr(engine, getter)(c)
        assert tuple(value.shape) == shape, getter
        assert value.dtype == torch.float32, getter
        assert value.device == engine.device, getter
        assert torch.isfinite(value).all(), getter
    contacts = engine.get_ground_contacts(c)
    assert tuple(contacts.shape) == (n, b) and contacts.dtype == torch.bool
    assert engine.substeps == 4 and math.isclose(engine.control_dt, 4 * engine.sim_dt)
    assert tuple(engine.pop_failed_envs().shape) == (n,)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_setters_round_trip_for_chosen_envs_and_leave_other_envs_untouched(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=5)
    generator = np.random.default_rng(0)
    before = {k: v.clone() for k, v in read_state(engine, c).items()}
    env_ids = torch.tensor([1, 3])
    target = random_state(engine, c, 2, generator)
    apply_state(engine, c, env_ids, target)
    after = read_state(engine, c)
    for key in ("root_pos", "root_vel", "root_ang_vel", "dof_pos", "dof_vel"):
        torch.testing.assert_close(after[key][env_ids], target[key], atol=1e-5, rtol=1e-5, msg=key)
    assert same_rotation(after["root_rot"][env_ids], target["root_rot"], 1e-6)
    others = torch.tensor([0, 2, 4])
    for key, value in after.items():
        torch.testing.assert_close(value[others], before[key][others], msg=key)
    # derived quantities follow the new state: the root body is body 0
    torch.testing.assert_close(engine.get_body_pos(c)[env_ids, 0], target["root_pos"], atol=1e-5, rtol=0)
    torch.testing.assert_close(engine.get_body_vel(c)[env_ids, 0], target["root_vel"], atol=1e-5, rtol=0)
    torch.testing.assert_close(engine.get_body_ang_vel(c)[env_ids, 0], target["root_ang_vel"], atol=1e-5, rtol=0)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_body_pos_rot_and_velocities_match_mujoco_on_the_character_file_alone(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=4)
    generator = np.random.default_rng(1)
    state = random_state(engine, c, 4, generator)
    apply_state(engine, c, all_envs(engine), state)
    body_pos, body_rot = engine.get_body_pos(c), engine.get_body_rot(c)
    body_vel, body_ang_vel = engine.get_body_vel(c), engine.get_body_ang_vel(c)

    model, data = standalone_humanoid()
    body_ids = [model.body(b).id for b in engine.get_body_names(c)]
    dof_qpos = [model.joint(j).qposadr[0] for j in engine.get_dof_names(c)]
    dof_qvel = [model.joint(j).dofadr[0] for j in engine.get_dof_names(c)]
    for i in range(4):
        root_rot = state["root_rot"][i].double().numpy()
        root_ang_vel = state["root_ang_vel"][i].double().numpy()
        data.qpos[:3] = state["root_pos"][i].double().numpy()
        data.qpos[3:7] = np.roll(root_rot, 1)  # MuJoCo (w, x, y, z)
        data.qpos[dof_qpos] = state["dof_pos"][i].double().numpy()
        data.qvel[:3] = state["root_vel"][i].double().numpy()
        data.qvel[3:6] = Rotation.from_quat(root_rot).inv().apply(root_ang_vel)  # free joint: local
        data.qvel[dof_qvel] = state["dof_vel"][i].double().numpy()
        mujoco.mj_forward(model, data)
        np.testing.assert_allclose(body_pos[i].numpy(), data.xpos[body_ids], atol=1e-5)
        expected_rot = torch.from_numpy(np.roll(data.xquat[body_ids], -1, axis=1)).float()
        assert same_rotation(body_rot[i], expected_rot, 1e-6)
        for k, b in enumerate(body_ids):
            velocity = np.zeros(6)  # (angular, linear), world frame, at the body frame origin
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, b, velocity, 0)
            np.testing.assert_allclose(body_ang_vel[i, k].numpy(), velocity[:3], atol=1e-4)
            np.testing.assert_allclose(body_vel[i, k].numpy(), velocity[3:], atol=1e-4)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_body_state_after_a_step_describes_the_root_and_dof_state_after_that_step(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2)
    generator = np.random.default_rng(2)
    state = random_state(engine, c, 2, generator)
    state["root_pos"][:, 2] = 1.0  # low enough to hit the ground while tumbling
    apply_state(engine, c, all_envs(engine), state)
    low, high = engine.get_dof_limits(c)
    model, data = standalone_humanoid()
    body_ids = [model.body(b).id for b in engine.get_body_names(c)]
    dof_qpos = [model.joint(j).qposadr[0] for j in engine.get_dof_names(c)]
    dof_qvel = [model.joint(j).dofadr[0] for j in engine.get_dof_names(c)]
    for _ in range(6):
        engine.set_cmd(c, low + (high - low) * torch.rand(2, len(low), generator=torch.Generator().manual_seed(3)))
        engine.step()
    after = read_state(engine, c)
    for i in range(2):
        data.qpos[:3] = after["root_pos"][i].double().numpy()
        data.qpos[3:7] = np.roll(after["root_rot"][i].double().numpy(), 1)
        data.qpos[dof_qpos] = after["dof_pos"][i].double().numpy()
        data.qvel[:3] = after["root_vel"][i].double().numpy()
        data.qvel[3:6] = Rotation.from_quat(after["root_rot"][i].double().numpy()).inv().apply(
            after["root_ang_vel"][i].double().numpy())
        data.qvel[dof_qvel] = after["dof_vel"][i].double().numpy()
        mujoco.mj_forward(model, data)
        # float32 readback of the state: a few 1e-5 m through the chain
        np.testing.assert_allclose(engine.get_body_pos(c)[i].numpy(), data.xpos[body_ids], atol=1e-4)
        for k, b in enumerate(body_ids):
            velocity = np.zeros(6)
            mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, b, velocity, 0)
            np.testing.assert_allclose(engine.get_body_vel(c)[i, k].numpy(), velocity[3:], atol=1e-3)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_root_free_fall_follows_constant_gravity(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2)
    z0 = 20.0
    drop_on_ground(engine, c, height=z0 - STAND_HEIGHT)
    seconds = 0.5
    run(engine, c, seconds)
    steps = round(seconds / engine.sim_dt)
    dt = engine.sim_dt
    z = engine.get_root_pos(c)[:, 2].double()
    vz = engine.get_root_vel(c)[:, 2].double()
    # semi-implicit Euler (v first, then x with the new v) is exact up to its O(dt) offset
    z_discrete = z0 - GRAVITY * dt * dt * steps * (steps + 1) / 2
    torch.testing.assert_close(z, torch.full_like(z, z_discrete), atol=1e-3, rtol=0)
    z_exact = z0 - GRAVITY * seconds ** 2 / 2
    assert (z - z_exact).abs().max() < GRAVITY * dt * seconds / 2 + 1e-3
    torch.testing.assert_close(vz, torch.full_like(vz, -GRAVITY * seconds), atol=1e-3, rtol=0)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_humanoid_holding_default_pose_with_pd_stays_upright_for_two_seconds(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2)
    drop_on_ground(engine, c, height=0.01)
    head = engine.get_body_names(c).index("head")
    start_z = engine.get_root_pos(c)[:, 2].clone()
    lowest_head = []
    run(engine, c, 2.0, each_step=lambda: lowest_head.append(engine.get_body_pos(c)[:, head, 2].min()))
    assert min(lowest_head) > 1.2
    assert (engine.get_root_pos(c)[:, 2] - start_z).abs().max() < 0.04
    assert not engine.pop_failed_envs().any()
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_standing_humanoid_touches_ground_with_feet_only_and_contact_force_carries_its_weight(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2)
    drop_on_ground(engine, c, height=0.01)
    run(engine, c, 1.5)
    names = engine.get_body_names(c)
    contacts = engine.get_ground_contacts(c)
    feet = [names.index("left_foot"), names.index("right_foot")]
    assert contacts[:, feet].all()
    assert not contacts[:, names.index("head")].any()
    assert contacts.sum(dim=1).eq(2).all(), "only the feet touch the ground"
    model, _ = standalone_humanoid()
    weight = model.body_subtreemass[1] * GRAVITY
    total = engine.get_contact_forces(c).sum(dim=1)  # self-contacts cancel in the sum
    assert ((total[:, 2] - weight).abs() < 0.05 * weight).all(), (total, weight)
    assert (total[:, :2].norm(dim=-1) < 0.05 * weight).all()
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_nan_state_in_one_env_is_flagged_and_other_envs_keep_stepping_finite(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=4)
    drop_on_ground(engine, c)
    run(engine, c, 0.1)
    assert not engine.pop_failed_envs().any()
    bad = torch.tensor([2])
    dof_pos = engine.get_dof_pos(c)[bad].clone()
    dof_pos[0, 3] = float("nan")
    engine.set_dof_pos(c, bad, dof_pos)
    good = torch.tensor([0, 1, 3])
    run(engine, c, 0.2)
    failed = engine.pop_failed_envs()
    assert failed.tolist() == [False, False, True, False]
    for getter in ("get_root_pos", "get_dof_pos", "get_dof_vel", "get_body_pos", "get_contact_forces"):
        assert torch.isfinite(getattr(engine, getter)(c)[good]).all(), getter
    # the failure is reported once; the simulator reset the bad world, which keeps stepping
    run(engine, c, 0.1)
    assert not engine.pop_failed_envs().any()
    assert torch.isfinite(engine.get_body_pos(c)).all()
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_nan_state_is_flagged_when_read_before_stepping(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=3)
    root_pos = engine.get_root_pos(c)[:1].clone()
    root_pos[0, 0] = float("inf")
    engine.set_root_pos(c, torch.tensor([1]), root_pos)
    assert engine.pop_failed_envs().tolist() == [False, True, False]
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_torque_mode_with_zero_torque_lets_the_humanoid_collapse(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2, control_mode="torque")
    drop_on_ground(engine, c, height=0.01)
    head = engine.get_body_names(c).index("head")
    run(engine, c, 2.0)
    assert (engine.get_body_pos(c)[:, head, 2] < 0.9).all()
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_torque_mode_applies_commanded_torques_clipped_to_limits(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2, control_mode="torque")
    limits = engine.get_torque_limits(c)
    sign = torch.where(torch.arange(len(limits)) % 2 == 0, 1.0, -1.0)
    cmd = torch.stack([0.3 * limits * sign, 2.0 * limits * sign])
    engine.set_cmd(c, cmd)
    engine.step()
    forces = engine.get_dof_forces(c)
    torch.testing.assert_close(forces[0], cmd[0], atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(forces[1], limits * sign, atol=1e-3, rtol=1e-5)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_limits_and_gains_are_those_of_the_character_file(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=1)
    root = ET.parse(HUMANOID).getroot()
    ranges = {j.get("name"): [float(v) for v in j.get("range").split()] for j in root.iter("joint")
              if j.get("range")}
    low, high = engine.get_dof_limits(c)
    for i, dof in enumerate(engine.get_dof_names(c)):
        assert math.isclose(low[i], math.radians(ranges[dof][0]), abs_tol=1e-6), dof
        assert math.isclose(high[i], math.radians(ranges[dof][1]), abs_tol=1e-6), dof
    classes = {d.get("class"): d.find("position") for d in root.iter("default") if d.get("class")}
    actuator_class = {a.get("joint"): a.get("class") for a in root.iter("position")}
    kp, kd = engine.get_pd_gains(c)
    torque_limits = engine.get_torque_limits(c)
    for i, dof in enumerate(engine.get_dof_names(c)):
        position = classes[actuator_class[dof]]
        assert math.isclose(kp[i], float(position.get("kp"))), dof
        assert math.isclose(kd[i], float(position.get("kv"))), dof
        assert math.isclose(torque_limits[i], float(position.get("forcerange").split()[1])), dof
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_zero_pd_gains_let_the_humanoid_collapse(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=1)
    d = engine.get_num_dofs(c)
    engine.set_pd_gains(c, torch.zeros(d), torch.zeros(d))
    kp, kd = engine.get_pd_gains(c)
    assert kp.abs().max() == 0 and kd.abs().max() == 0
    drop_on_ground(engine, c, height=0.01)
    run(engine, c, 2.0)
    head = engine.get_body_names(c).index("head")
    assert engine.get_body_pos(c)[0, head, 2] < 0.9
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_reference_character_neither_falls_nor_collides(name, tmp_path):
    engine, c, r = make_engine(name, tmp_path, num_envs=2, reference=True)
    drop_on_ground(engine, c, height=0.01)
    ids = all_envs(engine)
    # half sunk into the ground and overlapping the simulated character
    sunk = torch.tensor([[0.1, 0.0, 0.5]]).repeat(2, 1)
    engine.set_root_pos(r, ids, sunk)
    run(engine, c, 0.5)
    torch.testing.assert_close(engine.get_root_pos(r), sunk, atol=1e-3, rtol=0)
    assert not engine.get_ground_contacts(r).any()
    assert engine.get_contact_forces(r).abs().max() == 0
    assert engine.get_body_pos(c)[:, engine.get_body_names(c).index("head"), 2].min() > 1.2
    with pytest.raises(ValueError):
        engine.set_cmd(r, torch.zeros(2, engine.get_num_dofs(r)))
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
@pytest.mark.parametrize("key, value, expected", [
    ("engine_name", "no_such_engine", "mujoco"),
    ("no_such_key", 1, "no_such_key"),
    ("control_freq", 50, "control_freq"),
    ("control_mode", "velocity", "control_mode"),
    ("sim_freq", "fast", "sim_freq"),
])
def test_bad_config_raises_mimickit_error_naming_the_key(name, tmp_path, key, value, expected):
    config = engine_config(name)
    config[key] = value
    path = tmp_path / "bad_engine.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(MimicKitError) as error:
        build_engine(str(path), 2, "cpu", False)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_bad_character_file_raises_mimickit_error_naming_the_file(name, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body name='a'><geom size='0.1'/></body></worldbody></mujoco>")
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(engine_config(name)))
    engine = build_engine(str(path), 1, "cpu", False)
    with pytest.raises(MimicKitError, match="free joint"):
        engine.add_character(str(bad), "bad")
    with pytest.raises(MimicKitError, match="not found"):
        engine.add_character(str(tmp_path / "missing.xml"), "missing")


@pytest.mark.filterwarnings("ignore:.*DISPLAY", "ignore:.*GLFW")
@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_render_frame_returns_an_image_or_says_how_to_get_an_opengl_context(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=1)
    try:
        frame = engine.render_frame(64, 48)
    except MimicKitError as error:
        assert "MUJOCO_GL" in str(error)
    else:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert frame.std() > 0, "an image of the scene, not a blank frame"
    engine.close()

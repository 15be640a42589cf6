"""The engine contract: one suite that every engine in ENGINE_NAMES must pass.

What every engine promises (mimickit/engines/engine.py): getters return float32 (bool for
contacts) tensors of the documented shapes on the engine's device; setters round-trip by
env_ids and leave the other envs alone, derived quantities included; gravity, contact
forces and PD actuation behave physically; a non-finite env is flagged once, reset, and
disturbs no other env; getter results stay valid after later steps.

Engines: ``mujoco`` always; ``mujoco_warp`` on the CPU where mujoco-warp is installed (a
warm kernel cache in ~/.cache/warp; 2-4 envs and short runs keep it fast); ``isaac_gym``
only where ``isaacgym`` imports (never here: no wheels for this Python, and it refuses to
load after torch, which pytest has imported; test_isaac_gym_engine.py covers what runs
without it).

References are independent of the engine: MuJoCo's own kinematics on the character file
compiled alone, the closed forms of free fall and of a damped oscillator, the character's
weight, the file's joint ranges and gains, a clean run of the same engine.
"""
import importlib
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


def isaac_gym_import_error():
    """Why ``isaacgym`` does not import here, or None when it does."""
    if importlib.util.find_spec("isaacgym") is None:
        return "isaacgym is not installed (Isaac Gym Preview 4, Python 3.6-3.8)"
    try:
        importlib.import_module("isaacgym")
    except Exception as error:  # Isaac Gym raises ImportError once torch is imported
        return "isaacgym does not import here: {}".format(str(error).splitlines()[0])
    return None


HAS_MUJOCO_WARP = importlib.util.find_spec("mujoco_warp") is not None
ISAAC_GYM_ERROR = isaac_gym_import_error()
ENGINE_NAMES = [
    "mujoco",
    pytest.param("mujoco_warp", marks=pytest.mark.skipif(
        not HAS_MUJOCO_WARP, reason="mujoco-warp is not installed (Python >= 3.11, pip install -e '.[dev]')")),
    pytest.param("isaac_gym", marks=pytest.mark.skipif(ISAAC_GYM_ERROR is not None, reason=str(ISAAC_GYM_ERROR))),
]
REPO = Path(__file__).resolve().parents[2]
HUMANOID = str(REPO / "data/assets/humanoid/humanoid.xml")
GRAVITY = 9.81
STAND_HEIGHT = 0.89  # root height of the default pose with the feet on the ground (humanoid.xml)
GETTERS = ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel", "dof_forces",
           "body_pos", "body_rot", "body_vel", "body_ang_vel", "contact_forces", "ground_contacts")

# A free-floating base and a rotor on one hinge, both axisymmetric about the hinge axis z
# with their centres of mass on it: rotating about z moves no centre of mass, so the hinge
# is a one-dof linear system (see test_pd_step_response_of_one_joint_...).
ROTOR_BASE_IZZ = 0.1  # kg m^2, the base about z
ROTOR_IZZ = 0.04  # kg m^2, the rotor about z
ROTOR_ARMATURE = 0.01  # kg m^2, the hinge's armature
ROTOR_KP = 15.0  # N m/rad
ROTOR_KV = 0.45  # N m s/rad
ROTOR_XML = """<mujoco model="rotor">
  <worldbody>
    <body name="base">
      <freejoint name="root"/>
      <inertial pos="0 0 0" mass="5" diaginertia="0.2 0.2 {base_izz}"/>
      <geom type="cylinder" size="0.1 0.05" mass="0"/>
      <body name="rotor" pos="0 0 0.2">
        <joint name="spin" type="hinge" axis="0 0 1" armature="{armature}"/>
        <inertial pos="0 0 0" mass="1" diaginertia="0.02 0.02 {rotor_izz}"/>
        <geom type="cylinder" size="0.2 0.02" mass="0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position name="spin" joint="spin" kp="{kp}" kv="{kv}"/>
  </actuator>
</mujoco>
""".format(base_izz=ROTOR_BASE_IZZ, rotor_izz=ROTOR_IZZ, armature=ROTOR_ARMATURE, kp=ROTOR_KP, kv=ROTOR_KV)


def engine_config(name):
    return yaml.safe_load((REPO / "data/engines/{}_engine.yaml".format(name)).read_text())


def make_engine(name, tmp_path, num_envs=4, reference=False, asset=HUMANOID, prepare=None, **overrides):
    """Engine ``name`` on the CPU with its config file's keys, ``overrides`` replacing some,
    holding ``asset`` (and a reference humanoid with ``reference``); ``prepare(engine, char_id)``
    runs before ``initialize()``; initialized."""
    config = engine_config(name)
    config.update(overrides)
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = build_engine(str(path), num_envs, "cpu", False)
    char_id = engine.add_character(asset, "humanoid")
    ref_id = engine.add_character(HUMANOID, "reference", is_reference=True) if reference else None
    if prepare is not None:
        prepare(engine, char_id)
    engine.initialize()
    return engine, char_id, ref_id


def standalone_humanoid():
    """The character file compiled on its own, as MuJoCo's reference."""
    model = mujoco.MjModel.from_xml_path(HUMANOID)
    return model, mujoco.MjData(model)


def all_envs(engine):
    return torch.arange(engine.num_envs)


def drop_on_ground(engine, char_id, height=0.01, env_ids=None):
    """Put envs ``env_ids`` (all by default) in the default pose with the feet ``height`` m above the ground."""
    ids = all_envs(engine) if env_ids is None else env_ids
    n = len(ids)
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


def read_all(engine, char_id):
    """Copies of every getter's result."""
    return {name: getattr(engine, "get_" + name)(char_id).clone() for name in GETTERS}


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
    assert tuple(contacts.shape) == (n, b) and contacts.dtype == torch.bool and contacts.device == engine.device
    # per-dof descriptions [num_dofs]: low, high limits, kp, kd, torque limits
    for i, value in enumerate([*engine.get_dof_limits(c), *engine.get_pd_gains(c), engine.get_torque_limits(c)]):
        assert tuple(value.shape) == (d,) and value.dtype == torch.float32 and value.device == engine.device, i
    failed = engine.pop_failed_envs()
    assert tuple(failed.shape) == (n,) and failed.dtype == torch.bool and failed.device == engine.device
    assert engine.substeps == 4 and math.isclose(engine.control_dt, 4 * engine.sim_dt)
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
def test_setter_recomputes_the_touched_env_and_keeps_the_others_contact_and_actuator_readings(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=3)
    drop_on_ground(engine, c, height=0.01)
    run(engine, c, 0.5)
    before = read_all(engine, c)
    assert before["contact_forces"].abs().sum() > 0
    touched = torch.tensor([1])
    state = random_state(engine, c, 1, np.random.default_rng(0))
    state["root_pos"][0, 2] = 3.0
    state["dof_pos"].zero_()  # no self-contacts
    apply_state(engine, c, touched, state)
    after = read_all(engine, c)
    others = torch.tensor([0, 2])
    for key in GETTERS:
        assert torch.equal(after[key][others], before[key][others]), key
    # the touched env is in the air now: no contact force, its state read back
    assert after["contact_forces"][1].abs().max() == 0 and not after["ground_contacts"][1].any()
    torch.testing.assert_close(after["dof_pos"][1], state["dof_pos"][0], atol=1e-6, rtol=0)
    engine.close()


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_getter_results_keep_their_values_after_later_steps_and_setters(name, tmp_path):
    engine, c, _ = make_engine(name, tmp_path, num_envs=2)
    drop_on_ground(engine, c, height=0.2)
    run(engine, c, 0.1)
    held = {key: getattr(engine, "get_" + key)(c) for key in GETTERS}
    copies = {key: value.clone() for key, value in held.items()}
    run(engine, c, 0.1)
    drop_on_ground(engine, c, height=0.5)
    engine.get_body_pos(c)
    for key in GETTERS:
        assert torch.equal(held[key], copies[key]), key
    assert not torch.equal(engine.get_root_pos(c), copies["root_pos"])
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
def test_dropped_humanoid_falls_g_t_squared_over_two_within_a_millimetre_at_2400_hz(name, tmp_path):
    """The continuous closed form z0 - g t^2 / 2 to 1e-3 m.

    MuJoCo's integrator updates the velocity first and the position with the new velocity,
    so z_n = z0 - g dt^2 n (n + 1) / 2: g t dt / 2 below the closed form, 2 cm after 0.5 s
    at the default 120 Hz (the test above checks that discrete form). At 2400 Hz the
    offset after 0.3 s is 0.6 mm, within the contract's 1e-3 m (240 Hz control: 10 physics
    steps per control step, which keeps mujoco_warp's recorded graph small). Holding the default pose in free fall,
    the joints carry no load, so the root falls as the centre of mass does.
    """
    engine, c, _ = make_engine(name, tmp_path, num_envs=2, sim_freq=2400, control_freq=240)
    z0 = 10.0
    drop_on_ground(engine, c, height=z0 - STAND_HEIGHT)
    seconds = 0.3
    run(engine, c, seconds)
    root_pos = engine.get_root_pos(c).double()
    z_exact = z0 - GRAVITY * seconds ** 2 / 2
    assert (root_pos[:, 2] - z_exact).abs().max() < 1e-3, (root_pos[:, 2], z_exact)
    assert root_pos[:, :2].abs().max() < 1e-5
    vz = engine.get_root_vel(c)[:, 2].double()
    torch.testing.assert_close(vz, torch.full_like(vz, -GRAVITY * seconds), atol=1e-3, rtol=0)
    engine.close()


def rotor_step_response(t, target):
    """Closed-form hinge angle (rad) of ROTOR_XML ``[len(t)]`` at times ``t`` (s) after its
    PD target steps from 0 to ``target`` (rad), with ``(zeta, omega_n)``.

    In free fall gravity does not act on the hinge. Coordinates (base spin w about z, hinge
    rate q'): mass matrix [[Ib + Ir, Ir], [Ir, Ir + a]] (a: armature). No torque acts on the
    base, so eliminating w leaves I q'' = kp (target - q) - kv q' with
    I = Ir + a - Ir^2 / (Ib + Ir): an underdamped oscillator, omega_n = sqrt(kp / I),
    zeta = kv / (2 sqrt(kp I)).
    """
    inertia = ROTOR_IZZ + ROTOR_ARMATURE - ROTOR_IZZ ** 2 / (ROTOR_BASE_IZZ + ROTOR_IZZ)
    omega_n = math.sqrt(ROTOR_KP / inertia)
    zeta = ROTOR_KV / (2 * math.sqrt(ROTOR_KP * inertia))
    root = math.sqrt(1 - zeta ** 2)
    decay = np.exp(-zeta * omega_n * t)
    angle = target * (1 - decay * (np.cos(omega_n * root * t) + zeta / root * np.sin(omega_n * root * t)))
    return angle, zeta, omega_n


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_pd_step_response_of_one_joint_is_the_damped_oscillator_of_its_gains_and_inertia(name, tmp_path):
    """Step the PD target of the one hinge of ROTOR_XML from 0 to 0.3 rad, 10 m up in free fall.

    No engine has a fixed base or a gravity switch, hence the free-falling model whose
    bodies are symmetric about the hinge axis (see :func:`rotor_step_response`): zeta 0.30,
    omega_n 19.7 rad/s, predicted overshoot 37.8 %, peak at 0.167 s, within 2 % of the
    target from 0.68 s on. Physics at 1200 Hz: MuJoCo's implicit damping makes the discrete
    response differ from the continuous one by O(dt), 0.011 rad at 120 Hz and 0.0012 rad
    at 1200 Hz (a numpy recurrence of the implicit step, solved for this 2x2 mass matrix);
    control (= sampling) at 200 Hz puts a sample within 2.5 ms of the peak (1e-4 rad).
    Tolerances: trajectory 3e-3 rad (1 % of the step), overshoot 1 percentage point,
    settled within 2 % of the target from 0.75 s on.
    """
    asset = tmp_path / "rotor.xml"
    asset.write_text(ROTOR_XML)
    engine, c, _ = make_engine(name, tmp_path, num_envs=2, asset=str(asset), sim_freq=1200, control_freq=200)
    engine.set_root_pos(c, all_envs(engine), torch.tensor([[0.0, 0.0, 10.0]]).repeat(2, 1))
    target = 0.3
    angles = []
    run(engine, c, 0.8, cmd=torch.full((2, 1), target),
        each_step=lambda: angles.append(engine.get_dof_pos(c)[:, 0].double().clone()))
    q = torch.stack(angles).numpy()  # [steps, envs] rad
    t = engine.control_dt * np.arange(1, len(q) + 1)
    expected, zeta, _ = rotor_step_response(t, target)
    assert np.abs(q - expected[:, None]).max() < 3e-3
    predicted_overshoot = math.exp(-math.pi * zeta / math.sqrt(1 - zeta ** 2))
    assert np.abs(q.max(axis=0) / target - 1 - predicted_overshoot).max() < 0.01
    assert np.abs(q[t >= 0.75] - target).max() < 0.02 * target
    assert not engine.pop_failed_envs().any()
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
def test_nan_state_in_one_env_is_flagged_once_and_neither_it_after_reset_nor_the_others_differ_from_a_clean_run(
        name, tmp_path):
    """Env 1 of 3 standing humanoids gets a NaN joint angle; the same run without it is the
    reference. The other envs must not notice (envs may share buffers: mujoco_warp's
    contact buffer), the bad env is flagged once and keeps stepping finite, and once the
    caller resets it, it evolves as a freshly dropped env did."""
    def stand(poison):
        engine, c, _ = make_engine(name, tmp_path, num_envs=3)
        drop_on_ground(engine, c)
        run(engine, c, 0.2)
        fresh = read_all(engine, c)  # 0.2 s after a drop
        assert not engine.pop_failed_envs().any()
        if poison:
            dof_pos = engine.get_dof_pos(c)[1:2].clone()
            dof_pos[0, 3] = float("nan")
            engine.set_dof_pos(c, torch.tensor([1]), dof_pos)
        run(engine, c, 0.3)
        return engine, c, fresh, read_all(engine, c), engine.pop_failed_envs()

    engine, _, _, clean, clean_failed = stand(False)
    engine.close()
    engine, c, fresh, dirty, dirty_failed = stand(True)
    assert clean_failed.tolist() == [False, False, False]
    assert dirty_failed.tolist() == [False, True, False]
    for key in GETTERS:
        assert torch.isfinite(dirty[key].float()).all(), key
        torch.testing.assert_close(dirty[key][[0, 2]], clean[key][[0, 2]], atol=1e-6, rtol=0, msg=key)
    # reported once; the bad env keeps stepping finite
    run(engine, c, 0.1)
    assert not engine.pop_failed_envs().any()
    assert torch.isfinite(engine.get_body_pos(c)).all()
    # the caller's reset: dropped again, env 1 follows what env 0 did after its drop
    drop_on_ground(engine, c, env_ids=torch.tensor([1]))
    run(engine, c, 0.2)
    after = read_all(engine, c)
    for key in ("root_pos", "dof_pos", "body_pos", "contact_forces"):
        torch.testing.assert_close(after[key][1], fresh[key][0], atol=1e-3 if key != "contact_forces" else 1.0,
                                   rtol=0, msg=key)
    assert not engine.pop_failed_envs().any()
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
        assert "\n" not in str(error)
        if name != "isaac_gym":  # the MuJoCo engines name the variable that picks a context
            assert "MUJOCO_GL" in str(error)
    else:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert frame.std() > 0, "an image of the scene, not a blank frame"
    engine.close()

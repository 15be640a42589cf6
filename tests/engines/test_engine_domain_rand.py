"""The per-env physics setters of domain randomisation, on every engine that has them.

Each setter changes the chosen envs only, the getters read the new values back, and the
physics follows: the ground carries the new weight, a torque-mode motor of strength s
applies s times the command. Engines that cannot set a quantity raise MimicKitError.
"""
import numpy as np
import pytest
import torch

from mimickit.engines.isaac_gym_engine import IsaacGymEngine, IsaacGymEngineConfig
from mimickit.util.errors import MimicKitError
from tests.engines.test_engine_contract import ENGINE_NAMES, drop_on_ground, make_engine, run

PER_ENV_ENGINES = [n for n in ENGINE_NAMES if getattr(n, "values", (n,))[0] != "isaac_gym"]


def model_field(engine, name):
    """``[num_envs, ...]`` per-env values of a model field as the simulator holds them."""
    if engine.config.engine_name == "mujoco":
        rows = engine.batch.expanded(name)  # None while the envs share the model's
        return np.broadcast_to(getattr(engine.model, name), (engine.num_envs,) + getattr(engine.model, name).shape) \
            if rows is None else rows
    return getattr(engine.warp_model, name).numpy()


@pytest.mark.parametrize("name", PER_ENV_ENGINES)
def test_mass_and_com_setters_change_only_the_chosen_envs_and_the_ground_carries_the_new_weight(name, tmp_path):
    engine, char, _ = make_engine(name, tmp_path, num_envs=3)
    try:
        nominal_mass, nominal_com = engine.get_body_mass(char).clone(), engine.get_body_com(char).clone()
        assert nominal_mass.shape == (3, engine.get_num_bodies(char)) and (nominal_mass > 0).all()
        ids = torch.tensor([1, 2])
        mass = nominal_mass[ids].clone()
        mass[:, 0] += torch.tensor([5.0, -2.0])
        mass[1, 1:] *= 1.2
        com = nominal_com[ids].clone()
        com[:, 0] += torch.tensor([[0.02, -0.01, 0.0], [0.0, 0.03, 0.01]])
        engine.set_body_mass(char, ids, mass)
        engine.set_body_com(char, ids, com)
        torch.testing.assert_close(engine.get_body_mass(char)[ids], mass)
        torch.testing.assert_close(engine.get_body_mass(char)[0], nominal_mass[0])
        torch.testing.assert_close(engine.get_body_com(char)[ids], com)
        torch.testing.assert_close(engine.get_body_com(char)[0], nominal_com[0])
        inertia = model_field(engine, "body_inertia")
        root = int(np.flatnonzero(np.isclose(model_field(engine, "body_mass")[2], mass[1, 0].item()))[0])
        np.testing.assert_allclose(inertia[2, root], inertia[0, root] * mass[1, 0].item() / nominal_mass[0, 0].item(),
                                   rtol=1e-5)
        drop_on_ground(engine, char)
        run(engine, char, 1.0)
        weight = engine.get_contact_forces(char)[..., 2].sum(-1)
        torch.testing.assert_close(weight, engine.get_body_mass(char).sum(-1) * 9.81, rtol=0.01, atol=0.0)
        with pytest.raises(ValueError, match="> 0"):
            engine.set_body_mass(char, ids[:1], torch.zeros_like(mass[:1]))
    finally:
        engine.close()


@pytest.mark.parametrize("name", PER_ENV_ENGINES)
def test_friction_and_actuator_scales_reach_the_model_fields_of_the_chosen_envs(name, tmp_path):
    engine, char, _ = make_engine(name, tmp_path, num_envs=3)
    try:
        friction = model_field(engine, "geom_friction")[0, :, 0].copy()
        engine.set_friction_scale(torch.tensor([0, 2]), torch.tensor([0.5, 1.5]))
        after = model_field(engine, "geom_friction")[:, :, 0]
        np.testing.assert_allclose(after, np.stack([0.5 * friction, friction, 1.5 * friction]), rtol=1e-6)

        kp, kd = (g.numpy() for g in engine.get_pd_gains(char))
        d = engine.get_num_dofs(char)
        engine.set_actuator_scales(char, torch.tensor([1]), torch.full((1, d), 1.1), torch.full((1, d), 0.9),
                                   torch.full((1, d), 0.8))
        engine.set_pd_gains(char, *engine.get_pd_gains(char))  # new gains keep the scales
        gain, bias = model_field(engine, "actuator_gainprm"), model_field(engine, "actuator_biasprm")
        acts = engine._char(char).actuator_ids
        np.testing.assert_allclose(gain[:, acts, 0], np.stack([kp, 0.88 * kp, kp]), rtol=1e-5)
        np.testing.assert_allclose(bias[:, acts, 1], -np.stack([kp, 0.88 * kp, kp]), rtol=1e-5)
        np.testing.assert_allclose(bias[:, acts, 2], -np.stack([kd, 0.72 * kd, kd]), rtol=1e-5)
    finally:
        engine.close()


@pytest.mark.parametrize("name", PER_ENV_ENGINES)
def test_torque_mode_motor_strength_scales_the_applied_torque(name, tmp_path):
    engine, char, _ = make_engine(name, tmp_path, num_envs=2, control_mode="torque")
    try:
        d = engine.get_num_dofs(char)
        ones = torch.ones(1, d)
        engine.set_actuator_scales(char, torch.tensor([1]), ones, ones, torch.full((1, d), 0.6))
        drop_on_ground(engine, char, height=0.5)
        cmd = 0.3 * engine.get_torque_limits(char).expand(2, d)
        engine.set_cmd(char, cmd)
        engine.step()
        forces = engine.get_dof_forces(char)
        torch.testing.assert_close(forces, torch.stack([cmd[0], 0.6 * cmd[1]]), rtol=1e-4, atol=1e-4)
    finally:
        engine.close()


def test_isaac_gym_refuses_per_env_physics_naming_the_engines_that_have_it():
    # built without its constructor, which imports isaacgym (not installed here)
    engine = IsaacGymEngine.__new__(IsaacGymEngine)
    engine._config = IsaacGymEngineConfig(engine_name="isaac_gym")
    calls = {"body masses": lambda: engine.set_body_mass(0, torch.tensor([0]), torch.ones(1, 1)),
             "centres of mass": lambda: engine.get_body_com(0),
             "friction": lambda: engine.set_friction_scale(torch.tensor([0]), torch.ones(1)),
             "actuator scales": lambda: engine.set_actuator_scales(0, torch.tensor([0]), *[torch.ones(1, 1)] * 3)}
    for what, call in calls.items():
        with pytest.raises(MimicKitError, match="engine 'isaac_gym' cannot set {} per env.*mujoco_warp".format(what)):
            call()

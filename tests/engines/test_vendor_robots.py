"""Vendor robot files loaded as they are (the Unitree G1's MJCF with torque motors and its URDF), in the engine and
in the env's kinematic model. Skipped without ../shared/data/unitree_g1."""
import warnings
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.engines.engine_builder import build_engine

REPO = Path(__file__).resolve().parents[2]
G1 = REPO.parent / "shared" / "data" / "unitree_g1"
pytestmark = pytest.mark.skipif(not (G1 / "g1_29dof.xml").is_file(), reason="../shared/data/unitree_g1 is absent")
GAINS = {"hip": [100.0, 2.0], "knee": [150.0, 4.0], "ankle": [40.0, 2.0], "waist": [200.0, 5.0]}


def engine_with(tmp_path, asset, control_mode="pos"):
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    config.update(num_threads=1, control_mode=control_mode, pd_gains=GAINS)
    (tmp_path / "engine.yaml").write_text(yaml.safe_dump(config))
    engine = build_engine(str(tmp_path / "engine.yaml"), 2, "cpu", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # motors turned into PD / dropped meshes are announced
        char = engine.add_character(str(asset), "g1")
    engine.initialize()
    return engine, char


def test_the_vendor_mjcf_motors_drive_as_pd_with_the_gain_table_and_the_joints_torque_limits(tmp_path):
    vendor = mujoco.MjModel.from_xml_path(str(G1 / "g1_29dof.xml"))
    engine, c = engine_with(tmp_path, G1 / "g1_29dof.xml")
    names = engine.get_dof_names(c)
    assert len(names) == 29
    kp, kd = (g.numpy() for g in engine.get_pd_gains(c))
    for name, p, d in zip(names, kp, kd):
        want = next((g for key, g in GAINS.items() if key in name), [20.0, 0.5])  # else the engine's urdf_kp/kd
        assert (p, d) == pytest.approx(tuple(want)), name
    limits = engine.get_torque_limits(c).numpy()
    want = [np.abs(vendor.jnt_actfrcrange[vendor.joint(n).id]).max() for n in names]
    np.testing.assert_allclose(limits, want)
    with pytest.warns(UserWarning, match="29 motor actuator"):
        build_engine(str(tmp_path / "engine.yaml"), 1, "cpu", False).add_character(str(G1 / "g1_29dof.xml"), "g1")
    torque, t = engine_with(tmp_path, G1 / "g1_29dof.xml", control_mode="torque")  # as the file is
    np.testing.assert_allclose(torque.get_torque_limits(t).numpy(), want)


def test_the_vendor_urdf_and_mjcf_give_the_same_kinematics_in_the_env_model(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        urdf, mjcf = KinCharModel(str(G1 / "g1_29dof.urdf")), KinCharModel(str(G1 / "g1_29dof.xml"))
    assert urdf.dof_names == mjcf.dof_names
    common = [b for b in mjcf.body_names if b in urdf.body_names]
    assert len(common) >= 30
    g = torch.Generator().manual_seed(0)
    low, high = mjcf.dof_low, mjcf.dof_high
    dof_pos = low + (high - low) * torch.rand(64, len(low), generator=g, dtype=low.dtype)
    root_pos, root_rot = torch.zeros(64, 3), torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(64, 4)
    pos = {}
    for name, kin in (("urdf", urdf), ("mjcf", mjcf)):
        body_pos, _ = kin.forward_kinematics(root_pos, root_rot, kin.dof_pos_to_joint_rot(dof_pos))
        pos[name] = body_pos[:, [kin.body_names.index(b) for b in common]]
    assert float((pos["urdf"] - pos["mjcf"]).norm(dim=-1).max()) < 1e-3  # m
    engine, c = engine_with(tmp_path, G1 / "g1_29dof.urdf")  # and the engine reads the URDF the same way
    assert engine.get_dof_names(c) == urdf.dof_names

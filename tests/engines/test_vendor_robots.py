"""Vendor robot files loaded as they are (the Unitree G1's MJCF with torque motors and its URDF), in the engine and
in the env's kinematic model. Skipped without ../shared/data/unitree_g1."""
import json
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


def engine_with(tmp_path, asset, control_mode="pos", collision_meshes="keep"):
    config = yaml.safe_load((REPO / "data/engines/mujoco_engine.yaml").read_text())
    config.update(num_threads=1, control_mode=control_mode, pd_gains=GAINS, collision_meshes=collision_meshes)
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


def colliding_geoms(model):
    return [g for g in range(model.ngeom) if (model.geom_contype[g] or model.geom_conaffinity[g])
            and model.geom_bodyid[g] > 0]  # the robot's, not a floor


@pytest.mark.parametrize("shape, geom_type", [("capsule", mujoco.mjtGeom.mjGEOM_CAPSULE),
                                               ("box", mujoco.mjtGeom.mjGEOM_BOX)])
def test_collision_meshes_become_primitives_fitted_to_each_mesh(tmp_path, shape, geom_type):
    vendor = mujoco.MjModel.from_xml_path(str(G1 / "g1_29dof.xml"))
    engine, _ = engine_with(tmp_path, G1 / "g1_29dof.xml", collision_meshes=shape)
    model = engine.model
    pairs = list(zip(colliding_geoms(vendor), colliding_geoms(model)))  # attaching keeps the geoms' order
    assert len(pairs) == len(colliding_geoms(vendor)) == len(colliding_geoms(model))
    replaced = 0
    for g, prim in pairs:
        body = vendor.body(vendor.geom_bodyid[g]).name
        assert model.body(model.geom_bodyid[prim]).name == "g1/" + body
        if vendor.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            assert model.geom_type[prim] == vendor.geom_type[g]  # the file's own primitives stay
            continue
        replaced += 1
        assert model.geom_type[prim] == geom_type, body
        mesh = vendor.geom_dataid[g]
        verts = vendor.mesh_vert[vendor.mesh_vertadr[mesh]:vendor.mesh_vertadr[mesh] + vendor.mesh_vertnum[mesh]]
        reach = np.linalg.norm(verts, axis=1).max()  # m, from the mesh's centre (MuJoCo centres meshes)
        size = model.geom_size[prim]
        extent = np.linalg.norm(size) if shape == "box" else size[0] + size[1]  # half diagonal / half length
        assert 0.3 * reach < extent < 1.5 * reach, body  # sized from the mesh (an inertia-box fit may pass it)
        np.testing.assert_allclose(model.geom_pos[prim], vendor.geom_pos[g], atol=1e-9)
    assert replaced > 10
    visual = [g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH]
    assert len(visual) == sum(1 for g in range(vendor.ngeom) if vendor.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH
                              ) - replaced  # visual meshes stay meshes


def test_the_vendor_files_floor_is_left_out_of_the_scene(tmp_path):
    engine, _ = engine_with(tmp_path, G1 / "g1_29dof.xml")
    planes = [engine.model.geom(g).name for g in range(engine.model.ngeom)
              if engine.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]
    assert planes == ["ground"]  # the scene's, whose contacts are the ground contacts
    with pytest.warns(UserWarning, match="left out 1 geom.*floor"):
        engine_with(tmp_path, G1 / "g1_29dof.xml")


def test_collision_meshes_refuses_an_unknown_shape(tmp_path):
    from mimickit.util.errors import MimicKitError
    with pytest.raises(MimicKitError, match="collision_meshes.*capsule.*'sphere'"):
        engine_with(tmp_path, G1 / "g1_29dof.xml", collision_meshes="sphere")


def test_a_g1_model_exports_in_the_vendors_dof_order(tmp_path, monkeypatch):
    """The shipped G1 model's sidecar lists the dofs as the vendor's MJCF orders its joints (deployment reads it)."""
    from mimickit.run import main
    monkeypatch.chdir(REPO)
    assert main(["--arg_file", "args/deepmimic_g1_ppo_args.txt", "--mode", "export", "--model_file",
                 "data/models/deepmimic_g1_walk.pt", "--out_dir", str(tmp_path)]) == 0
    sidecar = json.loads((tmp_path / "policy.json").read_text())
    vendor = mujoco.MjModel.from_xml_path(str(G1 / "g1_29dof.xml"))
    vendor_order = [vendor.joint(j).name for j in range(vendor.njnt)
                    if vendor.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    assert sidecar["dof_names"] == vendor_order
    assert [vendor.actuator(a).name for a in range(vendor.nu)] == vendor_order  # the vendor's ctrl order too

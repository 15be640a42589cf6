"""The placo gait generator (skipped without placo, the optional ``gait`` extra)."""
import os

import mujoco
import numpy as np
import pytest

placo = pytest.importorskip("placo")

from mimickit.anim.motion import Motion  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from tools.gait_generation.generate import main, same_clip  # noqa: E402
from tools.gait_generation.placo_walk import PlacoWalker  # noqa: E402
from tools.gait_generation.robot import REPO_ROOT, foot_sole, load_robot_config  # noqa: E402


@pytest.fixture(scope="module")
def duckling_walker():
    return PlacoWalker(load_robot_config("duckling"))


def test_regenerating_a_shipped_clip_gives_the_same_clip(tmp_path):
    assert main(["--robot", "duckling", "--preset", "walk_forward_medium", "--out_dir", str(tmp_path)]) == 0
    new = Motion.load(str(tmp_path / "duckling_walk_forward_medium.npz"))
    shipped = Motion.load(os.path.join(REPO_ROOT, "data/motions/duckling/duckling_walk_forward_medium.npz"))
    assert same_clip(new, shipped)
    assert (tmp_path / "duckling_walk_forward_medium.yaml").exists()


def test_placo_joint_angles_put_mujoco_soles_where_placo_put_the_feet(duckling_walker):
    """placo's hinge angles are the MJCF's dof_pos: MuJoCo's forward kinematics of the pose
    read from placo places each sole at placo's foot frame."""
    walker = duckling_walker
    robot, solver, tasks, _ = walker._make_robot(walker.parameters(walker.config.walk))
    robot.set_joint("left_knee", 1.1)
    robot.set_joint("right_hip_roll", 0.2)
    robot.update_kinematics()
    pose = walker._read_pose(robot)
    model = mujoco.MjModel.from_xml_path(walker.char_file)
    data = mujoco.MjData(model)
    data.qpos[:3] = pose[:3]
    data.qpos[3:7] = pose[[6, 3, 4, 5]]
    for name, angle in zip(walker.kin.dof_names, pose[7:]):
        data.qpos[model.joint(name).qposadr[0]] = angle
    mujoco.mj_kinematics(model, data)
    for side, T in (("left", robot.get_T_world_left()), ("right", robot.get_T_world_right())):
        body = model.body(side + "_foot").id
        sole = data.xpos[body] + data.xmat[body].reshape(3, 3) @ foot_sole(model, side + "_foot").center
        np.testing.assert_allclose(sole, T[:3, 3], atol=1e-9)
        np.testing.assert_allclose(data.xmat[body].reshape(3, 3), T[:3, :3], atol=1e-9)


def test_walk_records_one_cycle_whose_displacement_is_two_steps(duckling_walker):
    cfg = duckling_walker.config
    traj = duckling_walker.walk(0.03, 0.0, 0.0)
    step = cfg.walk.step_duration()
    assert len(traj.root_pos) == round(2 * step * cfg.fps) + 1
    np.testing.assert_allclose(traj.root_pos[-1] - traj.root_pos[0], [0.06, 0.0, 0.0], atol=5e-4)


def test_footstep_velocity_of_a_forward_walk_is_step_length_over_step_time(duckling_walker):
    cfg = duckling_walker.config
    v = duckling_walker.footstep_velocity(0.04, 0.0, 0.0)
    np.testing.assert_allclose(v, [0.04 / cfg.walk.step_duration(), 0.0, 0.0], atol=1e-9)
    turn = duckling_walker.footstep_velocity(0.0, 0.0, 0.2)
    assert turn[2] == pytest.approx(0.2 / cfg.walk.step_duration())


def test_random_preset_is_deterministic_for_a_seed(tmp_path):
    for out in ("a", "b"):
        assert main(["--robot", "duckling", "--preset", "random", "--num_random", "2", "--seed", "5",
                     "--out_dir", str(tmp_path / out)]) == 0
    for name in ("duckling_random_000.npz", "duckling_random_001.npz"):
        assert same_clip(Motion.load(str(tmp_path / "a" / name)), Motion.load(str(tmp_path / "b" / name)), atol=0)


def test_unknown_clip_name_is_a_usage_error(capsys):
    assert main(["--robot", "duckling", "--preset", "walk_sideways_fast", "--out_dir", "/nonexistent"]) == 2
    assert "unknown clip 'walk_sideways_fast'" in capsys.readouterr().err
    with pytest.raises(MimicKitError, match="unknown robot"):
        load_robot_config("robodog")

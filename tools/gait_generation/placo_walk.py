"""Walks and standing poses from placo (``pip install -e ".[gait]"``), as root and hinge angles.

placo plans the walk as AWD's gait generator does: a repetitive footstep planner (``dx``,
``dy``, ``dtheta`` per step), a walk pattern generator (LIPM/ZMP centre-of-mass plan,
swing-foot splines), replanned every ``replan_timesteps`` while walking, and a kinematics
solver (``WalkTasks``: feet, CoM, trunk orientation) that turns the plan into joint
angles. The robot is the URDF that :mod:`tools.gait_generation.mjcf_to_urdf` writes from
the MJCF into a temporary folder, with frames ``left_foot``/``right_foot`` at the soles and
``trunk`` at the trunk body, so placo's hinge angles are the MJCF's ``dof_pos``.

The walk starts from the standing pose and runs ``warmup_steps`` steps before the recorded
cycles, so the recorded part is the steady state of an endless walk; its first and last
frames are one gait cycle apart.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
from typing import Dict, Optional

import mujoco
import numpy as np

try:
    import placo
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError("tools.gait_generation.placo_walk needs placo: pip install -e \".[gait]\"") from e

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.util.errors import MimicKitError
from tools.gait_generation.mjcf_to_urdf import mjcf_to_urdf
from tools.gait_generation.robot import RobotConfig, WalkParams, foot_sole


@dataclasses.dataclass
class Trajectory:
    """Sampled poses: ``root_pos`` ``[T, 3]`` m (world), ``root_rot`` ``[T, 4]`` (x, y, z, w,
    world), ``dof_pos`` ``[T, num_dofs]`` rad (the MJCF's hinge order), at ``fps`` Hz."""

    root_pos: np.ndarray
    root_rot: np.ndarray
    dof_pos: np.ndarray
    fps: float


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silence what C++ code writes to stderr (placo warns about frames our robots lack:
    head and leg-spacing frames used by features the walk does not use)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _yaw(mat: np.ndarray) -> float:
    return math.atan2(mat[1, 0], mat[0, 0])


class PlacoWalker:
    """placo's walk engine for one robot of :class:`RobotConfig`.

    Args:
        config: the robot's settings; its MJCF is converted to URDF here.

    Raises:
        MimicKitError: if the MJCF, its foot bodies or its held joints are bad.
    """

    def __init__(self, config: RobotConfig):
        self.config = config
        self.char_file = config.path(config.char_file)
        self.kin = KinCharModel(self.char_file)
        model = mujoco.MjModel.from_xml_path(self.char_file)
        self.left_sole = foot_sole(model, config.left_foot_body)
        self.right_sole = foot_sole(model, config.right_foot_body)
        for name in list(config.hold_joints) + list(config.posture) + list(config.initial_joints) + self._swing_joints():
            if name not in self.kin.dof_names:
                raise MimicKitError("{}: joint '{}' is not a hinge of {}".format(
                    config.char_file, name, self.char_file))
        frames = {"left_foot": (config.left_foot_body, self.left_sole.center),
                  "right_foot": (config.right_foot_body, self.right_sole.center),
                  "trunk": (config.trunk_body, np.zeros(3))}
        self.urdf = mjcf_to_urdf(self.char_file, frames)
        # Rest-pose sole positions: the default feet spacing.
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        left = data.xpos[model.body(config.left_foot_body).id] + self.left_sole.center
        right = data.xpos[model.body(config.right_foot_body).id] + self.right_sole.center
        self.rest_feet_spacing = float(abs(left[1] - right[1]))

    def _swing_joints(self):
        s = self.config.arm_swing
        return [] if s is None else [s.left_shoulder, s.right_shoulder, s.left_elbow, s.right_elbow]

    # ----------------------------------------------------------------- set-up
    def parameters(self, walk: WalkParams) -> "placo.HumanoidParameters":
        """placo parameters from ``walk``; step limits are left wide (the command is ours)."""
        p = placo.HumanoidParameters()
        for key in ("single_support_duration", "single_support_timesteps", "double_support_ratio",
                    "startend_double_support_ratio", "planned_timesteps", "walk_com_height",
                    "walk_foot_height", "walk_trunk_pitch", "walk_foot_rise_ratio", "zmp_margin",
                    "foot_zmp_target_x", "foot_zmp_target_y"):
            setattr(p, key, getattr(walk, key))
        p.feet_spacing = walk.feet_spacing if walk.feet_spacing is not None else self.rest_feet_spacing
        p.foot_length = walk.foot_length if walk.foot_length is not None else self.left_sole.length
        p.foot_width = walk.foot_width if walk.foot_width is not None else self.left_sole.width
        p.walk_max_dx_forward = 10.0
        p.walk_max_dx_backward = 10.0
        p.walk_max_dy = 10.0
        p.walk_max_dtheta = math.pi
        return p

    def _make_robot(self, params: "placo.HumanoidParameters"):
        """A placo robot in the standing pose, its solver, walk tasks and held-joints task."""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "robot.urdf")
            with open(path, "w") as f:
                f.write(self.urdf)
            with _native_stderr_silenced():
                robot = placo.HumanoidRobot(path)
        solver = placo.KinematicsSolver(robot)
        solver.enable_joint_limits(True)
        tasks = placo.WalkTasks()
        tasks.initialize_tasks(solver, robot)
        if self.config.foot_orientation_axes != "xyz":
            for task in (tasks.left_foot_task, tasks.right_foot_task):
                task.orientation().mask.set_axises(self.config.foot_orientation_axes, "local")
        joints_task = solver.add_joints_task()
        joints_task.set_joints(self._held_targets(0.0))
        joints_task.configure("held joints", "hard", 1.0)
        if self.config.posture:
            posture_task = solver.add_joints_task()
            posture_task.set_joints(dict(self.config.posture))
            posture_task.configure("posture", "soft", self.config.posture_weight)
        solver.add_regularization_task(1e-6)
        # reach_initial_pose adds random noise at first: seed placo's generator so every clip
        # starts from the same pose, and start with bent knees so no leg locks straight.
        placo.seed(0)
        for name, angle in self.config.initial_joints.items():
            robot.set_joint(name, angle)
        robot.update_kinematics()
        tasks.reach_initial_pose(np.eye(4), params.feet_spacing, params.walk_com_height, params.walk_trunk_pitch)
        errors = tasks.get_tasks_error()
        worst = max(errors, key=lambda k: abs(errors[k]))
        if abs(errors[worst]) > 1e-4:
            raise MimicKitError("{}: placo could not reach the standing pose (task {} off by {:.4f}); check "
                                "walk.walk_com_height and initial_joints".format(
                                    self.config.char_file, worst, errors[worst]))
        solver.enable_velocity_limits(True)  # from the initial pose on; the clips set solver.dt
        return robot, solver, tasks, joints_task

    def _held_targets(self, swing: float) -> Dict[str, float]:
        """Targets of the held joints (rad); ``swing`` (m) is how far the left foot is ahead
        of the right one in the heading frame."""
        targets = dict(self.config.hold_joints)
        s = self.config.arm_swing
        if s is not None:
            right = -s.gain * swing  # left foot ahead: right arm forward (negative flexion)
            left = s.gain * swing
            targets[s.right_shoulder] = targets.get(s.right_shoulder, 0.0) + right
            targets[s.left_shoulder] = targets.get(s.left_shoulder, 0.0) + left
            targets[s.right_elbow] = targets.get(s.right_elbow, 0.0) + s.elbow_bend + s.elbow_follow * min(right, 0.0)
            targets[s.left_elbow] = targets.get(s.left_elbow, 0.0) + s.elbow_bend + s.elbow_follow * min(left, 0.0)
        return targets

    def _read_pose(self, robot) -> np.ndarray:
        """``[7 + num_dofs]``: root pos (m), root quaternion (x, y, z, w), hinge angles (rad)."""
        q = np.asarray(robot.state.q, dtype=np.float64)
        dofs = [robot.get_joint(n) for n in self.kin.dof_names]
        return np.concatenate([q[0:3], q[3:7], dofs])

    @staticmethod
    def _to_trajectory(poses: np.ndarray, fps: float) -> Trajectory:
        return Trajectory(root_pos=poses[:, 0:3], root_rot=poses[:, 3:7], dof_pos=poses[:, 7:], fps=fps)

    # ----------------------------------------------------------------- clips
    def walk(self, dx: float, dy: float, dtheta: float, walk: Optional[WalkParams] = None) -> Trajectory:
        """``cycles`` steady-state gait cycles of an endless walk with per-step command
        ``dx`` (m), ``dy`` (m), ``dtheta`` (rad) in the robot's heading frame.

        Returns ``round(cycles * cycle * fps) + 1`` frames, the last one a whole number of
        cycles after the first (its pose repeats the first, moved by the cycles'
        displacement); the frame rate is adjusted from ``config.fps`` to make that exact.
        """
        cfg = self.config
        walk = walk or cfg.walk
        params = self.parameters(walk)
        robot, solver, tasks, joints_task = self._make_robot(params)

        step = walk.step_duration()
        duration = 2.0 * step * cfg.cycles
        num_frames = max(2, int(round(duration * cfg.fps)))
        h = duration / num_frames
        fps = num_frames / duration
        solver.dt = h / cfg.ik_substeps

        planner = placo.FootstepsPlannerRepetitive(params)
        planner.configure(dx, dy, dtheta, 6)  # steps planned ahead at each (re)plan
        footsteps = planner.plan(placo.HumanoidRobot_Side.left,
                                 placo.flatten_on_floor(robot.get_T_world_left()),
                                 placo.flatten_on_floor(robot.get_T_world_right()))
        supports = placo.FootstepsPlanner.make_supports(footsteps, 0.0, True, params.has_double_support(), True)
        generator = placo.WalkPatternGenerator(robot, params)
        trajectory = generator.plan(supports, robot.com_world(), 0.0)

        # Record from t0 (after the warm-up, at the start of a step) to t0 + duration.
        t0 = params.startend_double_support_duration() + cfg.warmup_steps * step
        first = int(math.ceil(t0 / h - 1e-9))
        times = t0 + (np.arange(first + num_frames + 1) - first) * h
        times = times[times >= -1e-12]
        replan_every = walk.replan_timesteps * params.dt()
        last_replan = 0.0
        poses = []
        t_prev = 0.0
        for t in times:
            for k in range(cfg.ik_substeps):
                tk = t_prev + (t - t_prev) * (k + 1) / cfg.ik_substeps
                T_left = trajectory.get_T_world_left(tk)
                T_right = trajectory.get_T_world_right(tk)
                if cfg.arm_swing is not None:
                    heading = _yaw(trajectory.get_R_world_trunk(tk))
                    ahead = np.array([math.cos(heading), math.sin(heading)])
                    joints_task.set_joints(self._held_targets(float(ahead @ (T_left[:2, 3] - T_right[:2, 3]))))
                tasks.update_tasks_from_trajectory(trajectory, tk)
                robot.update_kinematics()
                solver.solve(True)
            poses.append(self._read_pose(robot))
            t_prev = t
            if t - last_replan > replan_every and generator.can_replan_supports(trajectory, t):
                supports = generator.replan_supports(planner, trajectory, t, last_replan)
                trajectory = generator.replan(supports, trajectory, t)
                last_replan = t
        poses = np.array(poses)[-(num_frames + 1):]
        return self._to_trajectory(poses, fps)

    def footstep_velocity(self, dx: float, dy: float, dtheta: float, walk: Optional[WalkParams] = None) -> np.ndarray:
        """The root velocity the footstep plan commands, ``[vx m/s, vy m/s, wz rad/s]`` in the
        heading frame: the planned stance centre (the midpoint of a left footstep and the
        right one after it, facing their mean yaw) over one steady-state cycle, taken as a
        constant twist over the cycle's duration.

        Not simply ``dy / step`` for a side step: placo's planner keeps the feet apart, so
        a side step moves the robot less than ``dy`` per step.
        """
        walk = walk or self.config.walk
        params = self.parameters(walk)
        planner = placo.FootstepsPlannerRepetitive(params)
        planner.configure(dx, dy, dtheta, 12)
        T_left, T_right = np.eye(4), np.eye(4)
        T_left[1, 3], T_right[1, 3] = params.feet_spacing / 2, -params.feet_spacing / 2
        steps = list(planner.plan(placo.HumanoidRobot_Side.left, T_left, T_right))

        def centre(i: int):
            a, b = np.array(steps[i].frame), np.array(steps[i + 1].frame)
            yaw_a, yaw_b = _yaw(a), _yaw(b)
            yaw = yaw_a + 0.5 * math.atan2(math.sin(yaw_b - yaw_a), math.cos(yaw_b - yaw_a))
            return 0.5 * (a[:2, 3] + b[:2, 3]), yaw

        # Steady state: after the first steps, well before the final one; the pairs that
        # start with a left and with a right footstep, averaged (either alone leans sideways
        # while turning).
        first = next(i for i in range(2, len(steps)) if str(steps[i].side) == "left")
        twists = []
        for i in (first, first + 1):
            (p0, yaw0), (p1, yaw1) = centre(i), centre(i + 2)
            turn = math.atan2(math.sin(yaw1 - yaw0), math.cos(yaw1 - yaw0))
            c0, s0 = math.cos(yaw0), math.sin(yaw0)
            chord = np.array([[c0, s0], [-s0, c0]]) @ (p1 - p0)
            if abs(turn) > 1e-9:  # a constant twist moves along an arc: undo the chord's turn and shortening
                c, s = math.cos(-turn / 2), math.sin(-turn / 2)
                chord = np.array([[c, -s], [s, c]]) @ chord * (turn / 2) / math.sin(turn / 2)
            twists.append([chord[0], chord[1], turn])
        vx, vy, wz = np.mean(twists, axis=0) / (2.0 * walk.step_duration())
        # The root sits off the stance centre (r in the heading frame): it moves by w x r too.
        r = self.root_offset(walk)
        return np.array([vx - wz * r[1], vy + wz * r[0], wz])

    def root_offset(self, walk: Optional[WalkParams] = None) -> np.ndarray:
        """Root position ``[x, y]`` (m) relative to the feet's midpoint in the standing pose."""
        robot, _, _, _ = self._make_robot(self.parameters(walk or self.config.walk))
        mid = 0.5 * (robot.get_T_world_left()[:2, 3] + robot.get_T_world_right()[:2, 3])
        return np.asarray(robot.state.q[:2]) - mid

    def idle(self, walk: Optional[WalkParams] = None) -> Trajectory:
        """Standing on both feet for ``config.idle.duration`` s, the CoM swaying sideways by
        ``idle.sway`` m and bobbing by ``idle.bob`` m; the last frame repeats the first."""
        cfg = self.config
        walk = walk or cfg.walk
        params = self.parameters(walk)
        robot, solver, tasks, _ = self._make_robot(params)
        T_left = placo.flatten_on_floor(robot.get_T_world_left())
        T_right = placo.flatten_on_floor(robot.get_T_world_right())
        com0 = np.asarray(robot.com_world(), dtype=np.float64).copy()
        R_trunk = robot.get_T_world_trunk()[:3, :3].copy()
        duration = cfg.idle.duration
        num_frames = max(2, int(round(duration * cfg.fps)))
        h = duration / num_frames
        solver.dt = h / cfg.ik_substeps
        # One settling cycle first, so the recorded cycle starts where it ends.
        poses = []
        for i in range(2 * num_frames + 1):
            for k in range(cfg.ik_substeps):
                phase = 2.0 * math.pi * ((i - 1) + (k + 1) / cfg.ik_substeps) * h / duration
                com = com0 + np.array([0.0, cfg.idle.sway * math.sin(phase),
                                       -cfg.idle.bob * 0.5 * (1.0 - math.cos(2.0 * phase))])
                tasks.update_tasks(T_left, T_right, com, R_trunk)
                robot.update_kinematics()
                solver.solve(True)
            poses.append(self._read_pose(robot))
        return self._to_trajectory(np.array(poses)[-(num_frames + 1):], num_frames / duration)

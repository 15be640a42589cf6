"""Observation terms of a character, as pure functions (tensors in, tensors out).

Frames: with ``global_obs`` false, vectors are expressed in the root's **heading frame**
(world rotated by the root's yaw only, origin at the root), so observations do not change
when the whole scene turns about the vertical axis; with ``global_obs`` true they stay
in the world frame (positions still relative to the root).

Each observation is built from named :class:`ObsTerm` parts; :func:`cat_obs_terms` joins
them into the observation vector and :func:`obs_layout` says where each part lies in it
(name, slice, units, frame), from the same terms, so the layout cannot drift from the
observation (exported policies ship it in their sidecar).

Deployable observations (an env YAML's ``actor_obs``): :func:`robot_obs_terms` are what a
robot measures itself (a base IMU, joint encoders) and its own last command;
:func:`select_obs_terms` picks the actor's terms by name and :func:`critic_obs_terms` gives
the critic the env's full, privileged observation plus the actor's terms it lacks
(asymmetric actor-critic).
"""
from __future__ import annotations

from typing import List, NamedTuple, Sequence, Union

import torch
from torch import Tensor

from mimickit.envs.base_env import ObsSlice
from mimickit.util import torch_util
from mimickit.util.errors import MimicKitError

DEPLOYABLE = "deployable"  # actor_obs: the robot's terms and the goal's
ROBOT_OBS_TERMS = ("projected_gravity", "root_ang_vel", "dof_pos", "dof_vel", "prev_action")


class ObsTerm(NamedTuple):
    """One named part of an observation.

    Attributes:
        name: what it holds, e.g. ``body_pos``.
        value: ``[n, width]``.
        units: ``m``, ``m/s``, ``rad``, ``rad/s``, ``N·m``, ``tan_norm`` (rotation as its
            rotated x and z axes, unitless), ``1`` (unitless).
        frame: ``world``, ``heading`` (root heading frame), ``root`` (the root body's own
            frame, as an IMU on it measures), ``parent`` (relative to the parent body),
            ``joint`` (each dof's own coordinate), ``default_pose`` (dof coordinates
            relative to the default pose) or ``none``.
    """

    name: str
    value: Tensor
    units: str
    frame: str


def cat_obs_terms(terms: List[ObsTerm]) -> Tensor:
    """``[n, sum of widths]``: the terms' values side by side, in order."""
    return torch.cat([t.value for t in terms], dim=-1)


def obs_layout(terms: List[ObsTerm]) -> List[ObsSlice]:
    """Where each term lies in :func:`cat_obs_terms` of the same terms (name, units and frame kept)."""
    layout: List[ObsSlice] = []
    start = 0
    for t in terms:
        end = start + t.value.shape[-1]
        layout.append(ObsSlice(t.name, start, end, t.units, t.frame))
        start = end
    return layout


def obs_frame_rot(root_rot: Tensor, global_obs: bool) -> Tensor:
    """``[n, 4]`` rotation that maps world vectors into the observation frame."""
    if global_obs:
        return torch_util.quat_identity(root_rot.shape[:-1], dtype=root_rot.dtype, device=root_rot.device)
    return torch_util.calc_heading_quat_inv(root_rot)


def _frame_name(global_obs: bool) -> str:
    return "world" if global_obs else "heading"


def body_obs_terms(root_pos: Tensor, root_rot: Tensor, body_pos: Tensor, body_rot: Tensor,
                   body_vel: Tensor, body_ang_vel: Tensor, global_obs: bool) -> List[ObsTerm]:
    """The terms of :func:`compute_body_obs`, in its order (same arguments)."""
    frame = obs_frame_rot(root_rot, global_obs).unsqueeze(-2).expand_as(body_rot)
    local_pos = torch_util.quat_rotate(frame, body_pos - root_pos.unsqueeze(-2))
    local_rot = torch_util.quat_to_tan_norm(torch_util.quat_mul(frame, body_rot))
    local_vel = torch_util.quat_rotate(frame, body_vel)
    local_ang_vel = torch_util.quat_rotate(frame, body_ang_vel)
    n, name = root_pos.shape[0], _frame_name(global_obs)
    return [ObsTerm("root_height", root_pos[:, 2:3], "m", "world"),
            ObsTerm("body_pos", local_pos.reshape(n, -1), "m", name),
            ObsTerm("body_rot", local_rot.reshape(n, -1), "tan_norm", name),
            ObsTerm("body_vel", local_vel.reshape(n, -1), "m/s", name),
            ObsTerm("body_ang_vel", local_ang_vel.reshape(n, -1), "rad/s", name)]


def compute_body_obs(root_pos: Tensor, root_rot: Tensor, body_pos: Tensor, body_rot: Tensor,
                     body_vel: Tensor, body_ang_vel: Tensor, global_obs: bool) -> Tensor:
    """Proprioception from body states, ``[n, 1 + 15 * num_bodies]``.

    Root height (1, m), then for every body (root included): position relative to the root
    (3, m; 0 for the root), rotation as tangent-normal (6), linear velocity (3, m/s) and
    angular velocity (3, rad/s), all in the observation frame. Each of the five groups
    lists the bodies in order (all positions, then all rotations, ...).

    root_pos ``[n, 3]``, root_rot ``[n, 4]``, body_pos ``[n, b, 3]``, body_rot ``[n, b, 4]``,
    body_vel ``[n, b, 3]``, body_ang_vel ``[n, b, 3]``, world frame.
    """
    return cat_obs_terms(body_obs_terms(root_pos, root_rot, body_pos, body_rot, body_vel, body_ang_vel,
                                        global_obs))


def target_obs_terms(root_pos: Tensor, root_rot: Tensor, ref_root_pos: Tensor, ref_root_rot: Tensor,
                     ref_joint_rot: Tensor, global_obs: bool) -> List[ObsTerm]:
    """The terms of :func:`compute_target_obs`, in its order (same arguments).

    ``root_pos``, ``root_rot``, ``joint_rot`` (callers prefix them with the target step).
    """
    frame = obs_frame_rot(root_rot, global_obs)
    rel_pos = torch_util.quat_rotate(frame, ref_root_pos - root_pos)
    rel_rot = torch_util.quat_to_tan_norm(torch_util.quat_mul(frame, ref_root_rot))
    joint = torch_util.quat_to_tan_norm(ref_joint_rot).reshape(root_pos.shape[0], -1)
    name = _frame_name(global_obs)
    return [ObsTerm("root_pos", rel_pos, "m", name),
            ObsTerm("root_rot", rel_rot, "tan_norm", name),
            ObsTerm("joint_rot", joint, "tan_norm", "parent")]


def compute_target_obs(root_pos: Tensor, root_rot: Tensor, ref_root_pos: Tensor, ref_root_rot: Tensor,
                       ref_joint_rot: Tensor, global_obs: bool) -> Tensor:
    """One future reference frame relative to the simulated root, ``[n, 3 + 6 + 6 * num_joints]``.

    The reference root position relative to the simulated root (m) and the reference root
    rotation (tangent-normal), both in the simulated root's observation frame, and the
    reference joint rotations (local, tangent-normal).

    root_pos/ref_root_pos ``[n, 3]``, root_rot/ref_root_rot ``[n, 4]`` world frame;
    ref_joint_rot ``[n, num_joints, 4]``.
    """
    return cat_obs_terms(target_obs_terms(root_pos, root_rot, ref_root_pos, ref_root_rot, ref_joint_rot,
                                          global_obs))


def robot_obs_terms(root_rot: Tensor, root_ang_vel: Tensor, dof_pos: Tensor, dof_vel: Tensor,
                    default_dof_pos: Tensor, prev_action: Tensor, action_units: str) -> List[ObsTerm]:
    """What a robot measures of itself, named as :data:`ROBOT_OBS_TERMS`.

    - ``projected_gravity`` ``[n, 3]`` (unitless, ``root``): the unit gravity direction
      (world -z) in the root body's frame, the tilt an IMU's attitude filter gives;
    - ``root_ang_vel`` ``[n, 3]`` (rad/s, ``root``): the root body's angular velocity in its
      own frame, what a gyroscope on it reads;
    - ``dof_pos`` ``[n, num_dofs]`` (rad, ``default_pose``): joint encoder angles minus the
      default pose's;
    - ``dof_vel`` ``[n, num_dofs]`` (rad/s, ``joint``): their rates;
    - ``prev_action`` ``[n, num_dofs]`` (``action_units``, ``joint``): the command the policy
      sent last (PD targets in rad or torques in N·m, the env's action units).

    Args:
        root_rot: ``[n, 4]`` root rotation, world frame (x, y, z, w).
        root_ang_vel: ``[n, 3]`` rad/s, world frame.
        dof_pos: ``[n, num_dofs]`` rad.
        dof_vel: ``[n, num_dofs]`` rad/s.
        default_dof_pos: ``[num_dofs]`` rad.
        prev_action: ``[n, num_dofs]`` in the env's action units.
        action_units: their units (``rad`` or ``N·m``).
    """
    down = torch.zeros_like(root_ang_vel)
    down[:, 2] = -1.0
    return [ObsTerm("projected_gravity", torch_util.quat_rotate_inverse(root_rot, down), "1", "root"),
            ObsTerm("root_ang_vel", torch_util.quat_rotate_inverse(root_rot, root_ang_vel), "rad/s", "root"),
            ObsTerm("dof_pos", dof_pos - default_dof_pos, "rad", "default_pose"),
            ObsTerm("dof_vel", dof_vel, "rad/s", "joint"),
            ObsTerm("prev_action", prev_action, action_units, "joint")]


def actor_obs_names(spec: Union[str, Sequence[str]], goal_names: Sequence[str], source: str) -> List[str]:
    """The actor's term names for an ``actor_obs`` value.

    ``"deployable"``: :data:`ROBOT_OBS_TERMS` then ``goal_names`` (the command or reference a
    robot is given); a list: those names, in order.

    Raises:
        MimicKitError: naming ``source`` for another string, an empty list or a repeated name.
    """
    if isinstance(spec, str):
        if spec != DEPLOYABLE:
            raise MimicKitError("{}: key 'actor_obs' must be '{}' or a list of observation terms, got '{}'".format(
                source, DEPLOYABLE, spec))
        return list(ROBOT_OBS_TERMS) + list(goal_names)
    if not spec or len(set(spec)) != len(spec):
        raise MimicKitError("{}: key 'actor_obs' must list distinct observation terms, got {}".format(source, spec))
    return list(spec)


def select_obs_terms(names: Sequence[str], pool: List[ObsTerm], source: str) -> List[ObsTerm]:
    """The terms of ``pool`` named ``names``, in that order.

    Raises:
        MimicKitError: naming ``source`` and the known terms for a name ``pool`` lacks.
    """
    by_name = {t.name: t for t in pool}
    for name in names:
        if name not in by_name:
            raise MimicKitError("{}: key 'actor_obs': no observation term '{}' (terms: {})".format(
                source, name, ", ".join(by_name)))
    return [by_name[name] for name in names]


def critic_obs_terms(full: List[ObsTerm], actor: List[ObsTerm]) -> List[ObsTerm]:
    """The critic's terms: the env's ``full`` (privileged) observation, then the ``actor``'s terms it lacks."""
    names = {t.name for t in full}
    return full + [t for t in actor if t.name not in names]

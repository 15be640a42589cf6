"""The simulated character's state, read from the engine once per control step.

:class:`mimickit.envs.char_env.CharEnv` reads one :class:`CharState` after every physics
step and every reset (:meth:`CharState.read`); observations, rewards, terminations, tasks
and AMP frames all compute from it, so no term reads the engine on its own.
"""
from __future__ import annotations

import dataclasses

from torch import Tensor

from mimickit.engines.engine import Engine


@dataclasses.dataclass(frozen=True)
class CharState:
    """One character in every env, world frame, batched over ``num_envs``.

    Quaternions are (x, y, z, w) (:mod:`mimickit.util.torch_util`). The root is the
    character's first body (the one with the free joint).

    Attributes:
        root_pos: ``[num_envs, 3]`` m, root body origin.
        root_rot: ``[num_envs, 4]`` root body rotation.
        root_vel: ``[num_envs, 3]`` m/s, linear velocity of the root origin.
        root_ang_vel: ``[num_envs, 3]`` rad/s, root angular velocity.
        dof_pos: ``[num_envs, num_dofs]`` rad, the simulator's dof coordinates (hinge angles;
            a 3-dof joint's three Euler angles in its triplet's axis order).
        dof_vel: ``[num_envs, num_dofs]`` rad/s, their rates.
        body_pos: ``[num_envs, num_bodies, 3]`` m, body frame origins.
        body_rot: ``[num_envs, num_bodies, 4]`` body frame rotations.
        body_vel: ``[num_envs, num_bodies, 3]`` m/s, body origin linear velocities.
        body_ang_vel: ``[num_envs, num_bodies, 3]`` rad/s, body angular velocities.
        ground_contacts: ``[num_envs, num_bodies]`` bool, the body touches the ground.
    """

    root_pos: Tensor
    root_rot: Tensor
    root_vel: Tensor
    root_ang_vel: Tensor
    dof_pos: Tensor
    dof_vel: Tensor
    body_pos: Tensor
    body_rot: Tensor
    body_vel: Tensor
    body_ang_vel: Tensor
    ground_contacts: Tensor

    @staticmethod
    def read(engine: Engine, char_id: int) -> CharState:
        """The current state of character ``char_id`` of ``engine`` (after its last step or set)."""
        return CharState(root_pos=engine.get_root_pos(char_id), root_rot=engine.get_root_rot(char_id),
                         root_vel=engine.get_root_vel(char_id), root_ang_vel=engine.get_root_ang_vel(char_id),
                         dof_pos=engine.get_dof_pos(char_id), dof_vel=engine.get_dof_vel(char_id),
                         body_pos=engine.get_body_pos(char_id), body_rot=engine.get_body_rot(char_id),
                         body_vel=engine.get_body_vel(char_id), body_ang_vel=engine.get_body_ang_vel(char_id),
                         ground_contacts=engine.get_ground_contacts(char_id))

    def root_rel_body_pos(self) -> Tensor:
        """``[num_envs, num_bodies, 3]`` body positions minus the root position (m, world axes)."""
        return self.body_pos - self.root_pos.unsqueeze(-2)

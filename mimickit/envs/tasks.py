"""Tasks a character environment can carry: a goal appended to the observation and a reward.

A task (e.g. follow a velocity command, steer, reach a location) is an object the
environment calls at fixed points of its episode loop; it never touches the engine. The
environment passes it the character's state, a
:class:`mimickit.envs.char_state.CharState` (world frame, ``[num_envs, ...]``).

The env YAML names the task under a ``task`` mapping with ``task_name`` and the task's
own keys::

    task:
      task_name: steering      # a registered name
      ...                      # the task's keys

Adding a task: write a module with a :class:`Task` subclass decorated with
``@register_task("name")`` and add ``name: module`` to :data:`TASKS`' table.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, List

from torch import Tensor

from mimickit.envs.char_obs import ObsTerm
from mimickit.envs.char_state import CharState
from mimickit.util.registry import Registry

TASKS = Registry("task", "task_name", {name: "mimickit.envs.locomotion_tasks"
                                       for name in ("velocity_command", "steering", "location")})
register_task = TASKS.register


class Task(abc.ABC):
    """A goal for ``num_envs`` characters.

    The environment calls, in order:

    - :meth:`reset` for the envs that start an episode (after their character is placed);
    - each control step, after the physics: :meth:`update` (e.g. draw a new goal on a
      timer), then :meth:`obs_terms` and :meth:`reward` of the new state.

    Args:
        config: the YAML mapping under ``task`` without ``task_name``.
        config_file: the env YAML, for messages.
        num_envs, device: as the environment's.
        control_dt: s per control step.

    Raises:
        MimicKitError: on a bad key or value (naming ``config_file`` and the key).

    Attributes:
        DEPLOYABLE: whether a real robot can be given the goal as :meth:`obs_terms` shows it
            (a joystick command in the robot's frame: yes; a target relative to the root's
            position: no, that needs the simulator's state), so that ``actor_obs: deployable``
            may show it to the actor.
    """

    DEPLOYABLE = False

    def __init__(self, config: Dict[str, Any], config_file: str, num_envs: int, device: str, control_dt: float):
        self.num_envs = num_envs
        self.device = device
        self.control_dt = control_dt

    def reset(self, env_ids: Tensor, state: CharState) -> None:  # noqa: B027 (optional hook)
        """Start new goals in ``env_ids`` (long ``[k]``); ``state`` is every env's. The default does nothing."""

    def update(self, state: CharState) -> None:  # noqa: B027 (optional hook)
        """Advance the goals by one control step, before :meth:`obs_terms` and :meth:`reward`.

        The default does nothing (a goal that never changes within an episode).
        """

    @abc.abstractmethod
    def obs_terms(self, state: CharState) -> List[ObsTerm]:
        """The goal as named observation parts, each ``[num_envs, width]``, appended to the env's."""

    @abc.abstractmethod
    def reward(self, state: CharState) -> Tensor:
        """``[num_envs]`` task reward of the current state."""

    def tracking_errors(self, state: CharState) -> Dict[str, Tensor]:
        """Named ``[num_envs]`` errors of the current state against the goal, in physical units.

        They are averaged per episode in test statistics (``eval.json``); none by default.
        """
        return {}


def build_task(config: Dict[str, Any], config_file: str, num_envs: int, device: str, control_dt: float) -> Task:
    """The task that ``config["task_name"]`` names (see the module docstring).

    Raises:
        MimicKitError: ``task_name`` missing or unknown (listing the known names), or a
            bad key of the task.
    """
    config = dict(config)
    task_class = TASKS.lookup(config, "{}: key 'task'".format(config_file))
    config.pop(TASKS.key)
    return task_class(config=config, config_file=config_file, num_envs=num_envs, device=device,
                      control_dt=control_dt)


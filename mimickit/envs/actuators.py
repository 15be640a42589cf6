"""The ``actuators`` block of a character env YAML: joint armature, friction and torque-speed limits.

A table from joint-name patterns to :class:`ActuatorConfig`; each dof takes the first entry, in
the file's order, whose key its name contains (as the engine's ``pd_gains``; ``""`` matches every
joint). Keys left out, and dofs no entry matches, keep the character file's values::

    actuators:
      "": {armature: 0.01, friction: 0.2, max_speed: 21.0}   # every joint

The engine applies them to every env (:meth:`mimickit.engines.engine.Engine.set_joint_dynamics`,
where the torque-speed line is defined); they are not randomised.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional

import numpy as np

from mimickit.engines.engine import JointDynamics
from mimickit.util.config import check_key
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class ActuatorConfig:
    """One entry of ``actuators``.

    Attributes:
        armature: kg·m², the motor's reflected rotor inertia (gear ratio squared times the rotor's).
        friction: N·m, the joint's dry friction (MuJoCo ``frictionloss``).
        max_speed: rad/s, the motor's no-load speed: the torque falls linearly from the
            torque limit (stall torque) at rest to 0 at this speed.
    """

    armature: Optional[float] = None
    friction: Optional[float] = None
    max_speed: Optional[float] = None

    def validate(self, source: str) -> None:
        """Raise :class:`MimicKitError` naming ``source`` and the key for a negative or zero value."""
        for key in ("armature", "friction"):
            value = getattr(self, key)
            check_key(value is None or value >= 0, source, key, value, ">= 0")
        check_key(self.max_speed is None or self.max_speed > 0, source, "max_speed", self.max_speed, "> 0 (rad/s)")


def joint_dynamics(table: Dict[str, ActuatorConfig], dof_names: List[str], source: str) -> JointDynamics:
    """The engine's :class:`JointDynamics` ``[num_dofs]`` for ``dof_names`` from the ``actuators`` table.

    Unset values are NaN for armature and friction (keep the file's) and inf for ``max_speed``
    (no torque-speed limit).

    Raises:
        MimicKitError: an entry no joint name contains (naming ``source`` and the key).
    """
    values = {key: np.full(len(dof_names), math.nan) for key in ("armature", "friction")}
    values["max_speed"] = np.full(len(dof_names), math.inf)
    used = set()
    for i, name in enumerate(dof_names):
        pattern = next((key for key in table if key in name), None)
        if pattern is None:
            continue
        used.add(pattern)
        for key, array in values.items():
            value = getattr(table[pattern], key)
            if value is not None:
                array[i] = value
    unused = [key for key in table if key not in used]
    if unused:
        raise MimicKitError("{}: key 'actuators.{}': no joint of the character matches it (first match wins; joints: "
                            "{})".format(source, unused[0], ", ".join(dof_names)))
    return JointDynamics(**values)

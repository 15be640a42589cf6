"""Whole-body retargeting of a clip from one character to another by inverse kinematics (mink).

:mod:`tools.retarget.mapping` reads the mapping YAML (source body -> target body, task
weights, rotation offsets, scale, velocity limits), :mod:`tools.retarget.ik` solves the
target's pose frame by frame, :mod:`tools.retarget.quality` measures the result. The command
line is ``tools/retarget_motion.py``.
"""
from tools.retarget.ik import Retargeter, RetargetOutput, import_mink
from tools.retarget.mapping import BodyMap, RetargetMapping, load_mapping
from tools.retarget.quality import QualityReport

__all__ = ["BodyMap", "QualityReport", "RetargetMapping", "RetargetOutput", "Retargeter", "import_mink",
           "load_mapping"]

"""Motion importers: DeepMimic ``.txt``, IsaacGymEnvs AMP ``.npy``, MimicKit ``.pkl``,
AMP_for_hardware ``.txt`` (joint angles, mapped by dof name: :mod:`tools.motion_import.joint_space`)
-> native clips.

Each reader turns its file into a Z-up :class:`SourceMotion`; :func:`retarget` maps it
onto our character by joint name; the importer scales the root translation by the
leg-length ratio, levels a tilted capture floor (:mod:`tools.motion_import.ground`), plants
stance feet on the floor without sliding by inverse kinematics (:func:`fix_contacts`, with
mink) and shifts the clip so its lowest foot point touches the floor (:func:`foot_heights`).
Pickled inputs are read with a restricted unpickler (:mod:`tools.motion_import.safe_pickle`).
The command line is ``tools/import_motion.py``.
"""
from tools.motion_import.contacts import CONTACT_FIX_MODES, ContactFixResult, ContactFixSettings, ContactStats, \
    fix_contacts
from tools.motion_import.ground import FootGeometry, foot_heights, sole_heights
from tools.motion_import.importer import FORMATS, Importer, ImportResult, detect_format, import_motion
from tools.motion_import.retarget import resolve_joint_map, retarget
from tools.motion_import.safe_pickle import RestrictedUnpickler, load_npy_object, load_pickle
from tools.motion_import.source import SourceMotion, SourceSkeleton

__all__ = ["CONTACT_FIX_MODES", "ContactFixResult", "ContactFixSettings", "ContactStats", "FORMATS", "FootGeometry",
           "ImportResult", "Importer", "RestrictedUnpickler", "SourceMotion", "SourceSkeleton", "detect_format",
           "fix_contacts", "foot_heights", "import_motion", "load_npy_object", "load_pickle", "resolve_joint_map",
           "retarget", "sole_heights"]

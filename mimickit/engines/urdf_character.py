"""URDF robots as MuJoCo engine characters, loaded as they are.

:func:`load_urdf_spec` turns a third-party URDF into an :class:`mujoco.MjSpec` shaped like
our own MJCF characters (``data/assets/*``): a single root body carrying a free joint,
hinge (``revolute``, ``continuous``) and slide (``prismatic``) joints below it, and one
position actuator per joint. MuJoCo's own URDF parser does the conversion; this module
edits the URDF's XML before it and the spec after it:

- **Meshes.** MuJoCo loads ``.stl``, ``.obj`` and ``.msh`` meshes only. Every ``<visual>``
  or ``<collision>`` whose mesh has another type (``.dae`` is common) or cannot be found is
  dropped, with one warning naming the file and the dropped meshes; primitive shapes
  (box, cylinder, sphere) are kept. Kept mesh paths (relative, ``package://<pkg>/...`` or
  ``file://...``) are resolved against the URDF's folder and its parents.
- **Links.** MuJoCo's URDF compiler options are set through a ``<mujoco><compiler/>``
  element: ``fusestatic="false"`` keeps the links welded by fixed joints (feet, sensor
  links) as bodies of their own, ``discardvisual="false"`` keeps the visual shapes (drawn,
  never colliding: MuJoCo gives them contype = conaffinity = 0, group 1),
  ``strippath="false"`` keeps the resolved mesh paths.
- **Root.** A massless root link (no ``<inertial>`` or zero mass, e.g. the A1's ``base``)
  joined to a single child by a ``fixed`` or ``floating`` joint is removed, repeatedly,
  so that the root (and its free joint) is the first link with mass (the A1's ``trunk``);
  the removed link's own shapes go with it. The free joint is then added to that root
  (named ``root`` unless the URDF has a joint of that name).
- **Actuators.** One position actuator per hinge or slide joint, named as the joint:
  ``kp`` (N·m/rad, N/m for a slide), ``kv = kd`` (N·m·s/rad), force range
  ``±<limit effort>`` (N·m or N; unlimited without ``effort``), control range the joint
  range (``<limit lower upper>``, rad or m) for limited joints. ``continuous`` joints are
  hinges without limits. Joint damping and friction come from ``<dynamics>``.

Errors (:class:`MimicKitError`, naming the file): missing file, XML that does not parse or
is not a ``<robot>``, more than one root link, a ``floating`` or ``planar`` joint below the
root, an unknown joint type, no movable joint, MuJoCo refusing the result.
"""
from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

import mujoco

from mimickit.util.errors import MimicKitError, require_file

MESH_EXTENSIONS = (".stl", ".obj", ".msh")  # mesh files MuJoCo loads
MOVABLE_JOINT_TYPES = ("revolute", "continuous", "prismatic")
ROOT_JOINT_TYPES = ("fixed", "floating")  # joints a removed massless root link may have to its child
JOINT_TYPES = MOVABLE_JOINT_TYPES + ("fixed", "floating", "planar")
# MuJoCo URDF compiler options (see the module docstring)
COMPILER_OPTIONS = {"fusestatic": "false", "discardvisual": "false", "strippath": "false"}
FREE_JOINT_NAME = "root"
_MASSLESS = 1e-9  # kg


def is_urdf(path: str) -> bool:
    """Whether ``path`` names a URDF file (by its ``.urdf`` extension, any case)."""
    return path.lower().endswith(".urdf")


def _parse(path: str) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise MimicKitError("{}: not valid XML ({})".format(path, e)) from e
    if root.tag != "robot":
        raise MimicKitError("{}: expected a URDF with a <robot> root element, found <{}>".format(path, root.tag))
    return root


def _resolve_mesh(filename: str, folder: str) -> Optional[str]:
    """An existing file for a URDF mesh ``filename``, searched from the URDF's ``folder``; None if none.

    ``package://<pkg>/<rest>`` is looked for as ``<rest>`` and ``<pkg>/<rest>`` in ``folder``
    and its ancestors (a package usually holds ``urdf/`` next to ``meshes/``); a relative
    path is relative to ``folder``.
    """
    if filename.startswith("file://"):
        filename = filename[len("file://"):]
    candidates = []
    if filename.startswith("package://"):
        package, _, rest = filename[len("package://"):].partition("/")
        base = os.path.abspath(folder)
        for _ in range(4):
            candidates += [os.path.join(base, rest), os.path.join(base, package, rest)]
            if os.path.basename(base) == package:
                candidates.append(os.path.join(base, rest))
            base = os.path.dirname(base)
    elif os.path.isabs(filename):
        candidates.append(filename)
    else:
        candidates.append(os.path.join(folder, filename))
    for c in candidates:
        if os.path.isfile(c):
            return os.path.abspath(c)
    return None


def _drop_unloadable_meshes(robot: ET.Element, folder: str) -> List[str]:
    """Remove shapes whose mesh MuJoCo cannot load; point the kept ones at absolute paths.

    Returns ``"<link> <visual|collision> <file> (<why>)"`` per dropped shape.
    """
    dropped = []
    for link in robot.findall("link"):
        for tag in ("visual", "collision"):
            for shape in list(link.findall(tag)):
                mesh = shape.find("geometry/mesh")
                if mesh is None:
                    continue
                filename = mesh.get("filename", "")
                why = None
                if os.path.splitext(filename)[1].lower() not in MESH_EXTENSIONS:
                    why = "type not loadable"
                else:
                    resolved = _resolve_mesh(filename, folder)
                    if resolved is None:
                        why = "not found"
                    else:
                        mesh.set("filename", resolved)
                if why is not None:
                    link.remove(shape)
                    dropped.append("{} {} {} ({})".format(link.get("name"), tag, filename, why))
    return dropped


def _mass(link: ET.Element) -> float:
    mass = link.find("inertial/mass")
    try:
        return float(mass.get("value", "0")) if mass is not None else 0.0
    except ValueError:
        return 0.0


def _joints_by_link(robot: ET.Element, end: str) -> List[Tuple[ET.Element, Optional[str]]]:
    """Each joint that has an ``end`` (``parent`` or ``child``) element, with the link it names."""
    found = []
    for joint in robot.findall("joint"):
        element = joint.find(end)
        if element is not None:
            found.append((joint, element.get("link")))
    return found


def _root_links(robot: ET.Element) -> List[ET.Element]:
    children = {link for _, link in _joints_by_link(robot, "child")}
    return [link for link in robot.findall("link") if link.get("name") not in children]


def _strip_massless_root(robot: ET.Element, path: str) -> None:
    """Remove massless root links welded (fixed/floating) to a single child.

    Raises:
        MimicKitError: the robot has no root link or several.
    """
    while True:
        roots = _root_links(robot)
        if len(roots) != 1:
            raise MimicKitError("{}: expected one root link (a link that is no joint's child), found {}".format(
                path, ", ".join(r.get("name", "<unnamed>") for r in roots) or "none"))
        root = roots[0]
        name = root.get("name")
        joints = [joint for joint, parent in _joints_by_link(robot, "parent") if parent == name]
        if _mass(root) > _MASSLESS or len(joints) != 1 or joints[0].get("type") not in ROOT_JOINT_TYPES:
            return
        robot.remove(root)
        robot.remove(joints[0])


def _check_joints(robot: ET.Element, path: str) -> Dict[str, Dict[str, float]]:
    """Check the joint types; return the numbers of each movable joint's ``<limit>``.

    Returns ``{joint name: {"effort": N·m or N, "lower": rad or m, "upper": ...}}`` with the
    attributes present (``lower``/``upper`` are left out for ``continuous`` joints).
    """
    limits: Dict[str, Dict[str, float]] = {}
    for joint in robot.findall("joint"):
        name, jtype = joint.get("name", ""), joint.get("type")  # URDF requires a name
        if jtype not in JOINT_TYPES:
            raise MimicKitError("{}: joint '{}' has type '{}'; expected one of {}".format(
                path, name, jtype, ", ".join(JOINT_TYPES)))
        if jtype in ("floating", "planar"):
            raise MimicKitError("{}: joint '{}' is {}; only revolute, continuous, prismatic and fixed joints are "
                                "supported below the root".format(path, name, jtype))
        if jtype not in MOVABLE_JOINT_TYPES:
            continue
        limits[name] = {}
        limit = joint.find("limit")
        keys = ("effort",) if jtype == "continuous" else ("effort", "lower", "upper")
        for key in keys:
            value = limit.get(key) if limit is not None else None
            if value is not None:
                try:
                    limits[name][key] = float(value)
                except ValueError as e:
                    raise MimicKitError("{}: joint '{}': <limit {}=...> is not a number: {!r}".format(
                        path, name, key, value)) from e
    if not limits:
        raise MimicKitError("{}: no movable joint (revolute, continuous or prismatic); a character needs at "
                            "least one".format(path))
    return limits


def _set_compiler_options(robot: ET.Element) -> None:
    mujoco_el = robot.find("mujoco")
    if mujoco_el is None:
        mujoco_el = ET.SubElement(robot, "mujoco")
    compiler = mujoco_el.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(mujoco_el, "compiler")
    for key, value in COMPILER_OPTIONS.items():
        compiler.set(key, value)


def load_urdf_spec(path: str, kp: float, kd: float) -> mujoco.MjSpec:
    """Read a URDF robot as a MuJoCo character spec (see the module docstring).

    Args:
        path: the ``.urdf`` file.
        kp: position gain of every actuator (N·m/rad; N/m for a prismatic joint), > 0.
        kd: damping gain of every actuator (N·m·s/rad; N·s/m), >= 0.

    Returns:
        An uncompiled spec: one root body with a free joint, the URDF's movable joints as
        hinges / slides, one position actuator per joint named as the joint.

    Warns:
        UserWarning: once, naming the file and every dropped mesh shape, when any is dropped.

    Raises:
        MimicKitError: see the module docstring.
    """
    require_file(path, "character file")
    robot = _parse(path)
    dropped = _drop_unloadable_meshes(robot, os.path.dirname(os.path.abspath(path)))
    if dropped:
        warnings.warn("{}: MuJoCo cannot load {} mesh shape(s) (it loads {} files); dropped: {}".format(
            path, len(dropped), ", ".join(MESH_EXTENSIONS), "; ".join(dropped)), stacklevel=2)
    _strip_massless_root(robot, path)
    limits = _check_joints(robot, path)
    _set_compiler_options(robot)
    try:
        spec = mujoco.MjSpec.from_string(ET.tostring(robot, encoding="unicode"))
    except Exception as e:  # mujoco raises ValueError with the parser's message
        raise MimicKitError("{}: MuJoCo could not read the URDF: {}".format(
            path, str(e).replace("\n", " "))) from e

    root = spec.worldbody.first_body()
    names = {j.name for j in spec.joints}
    root.add_freejoint(name=FREE_JOINT_NAME if FREE_JOINT_NAME not in names else "")
    for joint in spec.joints:
        if joint.type not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
            continue
        actuator = spec.add_actuator(name=joint.name, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=float(kp), kv=float(kd))
        limit = limits[joint.name]
        if "lower" in limit and "upper" in limit:
            actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            actuator.ctrlrange = [limit["lower"], limit["upper"]]
        if limit.get("effort", 0.0) > 0:
            actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            actuator.forcerange = [-limit["effort"], limit["effort"]]
    return spec

"""Write data/assets/g1/g1.xml, our G1-class humanoid, from the figures of Unitree's G1 MJCF.

    python tools/make_g1_asset.py                       # reads ../shared/data/unitree_g1/g1_29dof.xml
    python tools/make_g1_asset.py --vendor PATH --out data/assets/g1/g1.xml

The vendor file (Unitree Robotics, BSD-3; see data/assets/g1/README.md) is compiled by MuJoCo
and only its numbers are read: each body's name, parent, offset (pos, quat) and inertial
(mass, centre of mass, principal inertia and axes), each hinge's name, axis, range and
torque limit (``actuatorfrcrange``). Everything else is ours and written here:

- geoms: primitives fitted to the vendor's meshes (never the meshes themselves). Each mesh's
  convex hull, in its body's frame, gets a capsule along its principal axis (radius the mean
  of the two smaller half extents), a box (its bounding box) or nothing, per :data:`SHAPES`;
  a capsule shorter than its radius becomes a sphere. The feet are boxes whose soles lie
  where the vendor's four contact spheres touch the ground (:data:`SOLE`).
- self-collision: every geom collides, except pairs of bodies at most two joints apart and
  pairs found touching in the zero or the default pose (written as ``<exclude>``).
- actuators: position servos with per-joint gains (:data:`GAINS`), torque limits from the
  vendor's ``actuatorfrcrange``, control ranges the joint ranges, and joint armature (the
  reflected rotor inertia of the joint's motor class, :data:`ARMATURE`; the vendor file has
  none).
- the keyframe ``default``: :data:`DEFAULT_POSE`, the root placed so the soles touch z = 0.

Needs numpy, scipy (convex hulls) and MuJoCo; the vendor's meshes must sit beside its file.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import mujoco
import numpy as np
from scipy.spatial import ConvexHull

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR_FILE = os.path.join(os.path.dirname(REPO_ROOT), "shared/data/unitree_g1/g1_29dof.xml")
OUT_FILE = os.path.join(REPO_ROOT, "data/assets/g1/g1.xml")

# Position gains by joint-name pattern, first match wins: (pattern, class, kp N·m/rad, kd N·m·s/rad).
# Legs: unitree_rl_gym's G1 config (legged_gym: hip 100/2, knee 150/4, ankle 40/2). Waist and
# arms: our pick from the gains public G1 29-dof motion-tracking deployments use (waist 400/5,
# shoulder pitch/roll/yaw 90/60/20, elbow 60, wrist 20). These are a real robot's gains: a policy
# balances on them; PD alone does not hold the robot upright (the ankles, 2 x 40 N·m/rad, are
# softer than the m g L ~ 235 N·m/rad of the body above them).
GAINS: List[Tuple[str, str, float, float]] = [
    ("*_hip_*", "hip", 100.0, 2.0),
    ("*_knee_*", "knee", 150.0, 4.0),
    ("*_ankle_*", "ankle", 40.0, 2.0),
    ("waist_*", "waist", 400.0, 5.0),
    ("*_shoulder_pitch_*", "shoulder_pitch", 90.0, 2.0),
    ("*_shoulder_roll_*", "shoulder_roll", 60.0, 1.0),
    ("*_shoulder_yaw_*", "shoulder_yaw", 20.0, 0.4),
    ("*_elbow_*", "elbow", 60.0, 1.0),
    ("*_wrist_*", "wrist", 20.0, 1.0),
]

# Joint armature (kg·m²) by the vendor's torque limit (N·m), i.e. by the joint's motor class:
# reflected rotor inertia as used for the G1 by HybridRobotics' whole_body_tracking (7520-14,
# 7520-22, 5020, 4010 motors; ankles and waist roll/pitch are driven by two 5020 through a
# linkage, so twice the 5020's).
ARMATURE: Dict[float, Tuple[str, float]] = {
    88.0: ("7520-14", 0.010177520),
    139.0: ("7520-22", 0.025101925),
    50.0: ("2 x 5020", 2 * 0.003609725),
    25.0: ("5020", 0.003609725),
    5.0: ("4010", 0.00425),
}

# How each vendor mesh becomes primitives: "capsule", "box" or None (dropped: decals, parts
# inside other geoms). "visual" marks geoms that do not collide (small links inside others).
SHAPES: Dict[str, Optional[str]] = {
    "pelvis": None,  # inside pelvis_contour_link
    "pelvis_contour_link": "box",
    "torso_link": "box",
    "logo_link": None,
    "waist_support_link": None,
    "*_ankle_roll_link": "sole",
    "*": "capsule",
}
VISUAL_ONLY = ["*_ankle_pitch_link", "waist_yaw_link", "waist_roll_link"]
DARK = ["pelvis", "*_hip_pitch_link", "*_ankle_roll_link", "head_link", "*_rubber_hand"]  # the vendor's dark parts

# The feet: the vendor's four contact spheres (radius 0.005) at x -0.05/0.12, y +-0.025/0.03,
# z -0.03 in the ankle roll frame; our sole box spans them, its bottom at z = -0.035.
SOLE = {"x": (-0.055, 0.125), "y": (-0.035, 0.035), "z": (-0.035, -0.005)}

# The default pose (rad): unitree_rl_gym's G1 standing pose for the legs (slightly bent
# knees, flat feet); the waist and arms at zero (forearms forward, as in the vendor's zero pose).
DEFAULT_POSE = {
    "*_hip_pitch_joint": -0.1,
    "*_knee_joint": 0.3,
    "*_ankle_pitch_joint": -0.2,
}

COLOURS = {"light": "0.7 0.7 0.7 1", "dark": "0.2 0.2 0.2 1"}


def match(name: str, table: Sequence[str]) -> Optional[str]:
    """The first pattern of ``table`` that ``name`` matches, else None."""
    return next((p for p in table if fnmatch.fnmatch(name, p)), None)


def num(x: float) -> str:
    """A number with 7 significant digits, without trailing zeros ("-0" as "0")."""
    s = "{:.7g}".format(float(x))
    return "0" if s in ("-0", "0") else s


def nums(xs) -> str:
    """Numbers separated by spaces (see :func:`num`)."""
    return " ".join(num(x) for x in xs)


def mm(xs) -> str:
    """Geom lengths (m) rounded to 0.1 mm, separated by spaces: our fitted shapes are rough."""
    return " ".join(num(round(float(x), 4)) for x in np.atleast_1d(xs))


def quat_mat(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a (w, x, y, z) quaternion."""
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, dtype=np.float64))
    return m.reshape(3, 3)


def mat_quat(m: np.ndarray) -> np.ndarray:
    """(w, x, y, z) quaternion of a 3x3 rotation matrix, w >= 0."""
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(m, dtype=np.float64).reshape(-1))
    return q if q[0] >= 0 else -q


# ===================================================================== reading the vendor file
def mesh_hulls(vendor: mujoco.MjModel) -> Dict[int, List[Tuple[str, np.ndarray]]]:
    """Per body id: (mesh name, convex hull vertices [n, 3] in the body frame) of each mesh."""
    hulls: Dict[int, List[Tuple[str, np.ndarray]]] = {}
    seen = set()
    for g in range(vendor.ngeom):
        if vendor.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        mesh = int(vendor.geom_dataid[g])
        name = vendor.mesh(mesh).name
        if name in seen:  # the vendor lists most meshes twice (visual and collision)
            continue
        seen.add(name)
        start, count = vendor.mesh_vertadr[mesh], vendor.mesh_vertnum[mesh]
        verts = vendor.geom_pos[g] + vendor.mesh_vert[start:start + count] @ quat_mat(vendor.geom_quat[g]).T
        hulls.setdefault(int(vendor.geom_bodyid[g]), []).append((name, verts[ConvexHull(verts).vertices]))
    return hulls


def fit_capsule(points: np.ndarray) -> Dict[str, str]:
    """A capsule along the principal axis of ``points`` (a sphere if it would be shorter than wide)."""
    centre = points.mean(axis=0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    local = (points - centre) @ axes.T
    low, high = local.min(axis=0), local.max(axis=0)
    half = (high - low) / 2.0
    centre = centre + ((high + low) / 2.0) @ axes
    radius = (half[1] + half[2]) / 2.0
    length = half[0] - radius
    if length < 0.5 * radius:
        return {"type": "sphere", "size": mm(radius), "pos": mm(centre)}
    end = axes[0] * length
    return {"type": "capsule", "size": mm(radius), "fromto": mm(np.concatenate([centre - end, centre + end]))}


def fit_box(points: np.ndarray) -> Dict[str, str]:
    """The bounding box of ``points`` in the body frame."""
    low, high = points.min(axis=0), points.max(axis=0)
    return {"type": "box", "size": mm((high - low) / 2.0), "pos": mm((high + low) / 2.0)}


def sole_box() -> Dict[str, str]:
    """The foot: :data:`SOLE`, a box in the ankle roll frame."""
    low = np.array([SOLE[k][0] for k in "xyz"])
    high = np.array([SOLE[k][1] for k in "xyz"])
    return {"type": "box", "size": mm((high - low) / 2.0), "pos": mm((high + low) / 2.0)}


def body_geoms(name: str, hulls: List[Tuple[str, np.ndarray]]) -> List[Dict[str, str]]:
    """Our geoms of body ``name`` from its vendor meshes' hulls (see :data:`SHAPES`)."""
    geoms = []
    for mesh, points in hulls:
        shape = SHAPES[match(mesh, list(SHAPES)) or "*"]
        if shape is None:
            continue
        geom = {"capsule": fit_capsule, "box": fit_box}[shape](points) if shape != "sole" else sole_box()
        # the body's first geom takes its name, others their mesh's ("head", "left_rubber_hand")
        geom["name"] = (mesh if geoms else name).replace("_link", "")
        if match(name, VISUAL_ONLY):
            geom["class"] = "visual"
        geom["rgba"] = COLOURS["dark" if match(mesh, DARK) else "light"]
        geoms.append(geom)
    return geoms


# ===================================================================== writing our file
def attrs(d: Dict[str, str]) -> str:
    """``key="value"`` pairs in a stable, readable order."""
    order = ["name", "class", "type", "pos", "quat", "fromto", "size", "axis", "range", "armature", "mass",
             "diaginertia", "rgba"]
    keys = sorted(d, key=lambda k: order.index(k) if k in order else len(order))
    return " ".join('{}="{}"'.format(k, d[k]) for k in keys)


class Writer:
    """Builds our MJCF text from the compiled vendor model."""

    def __init__(self, vendor: mujoco.MjModel):
        self.v = vendor
        self.hulls = mesh_hulls(vendor)
        self.lines: List[str] = []
        self.dofs: List[int] = []  # vendor joint ids in file order

    def joint_class(self, joint: str) -> Tuple[str, float, float]:
        """(class, kp, kd) of a joint by :data:`GAINS`."""
        pattern = match(joint, [g[0] for g in GAINS])
        if pattern is None:
            raise SystemExit("make_g1_asset: no gain for joint {}".format(joint))
        _, cls, kp, kd = next(g for g in GAINS if g[0] == pattern)
        return cls, kp, kd

    def torque_limit(self, j: int) -> float:
        """The vendor's torque limit (N·m) of joint id ``j``."""
        return float(np.abs(self.v.jnt_actfrcrange[j]).max())

    def body(self, b: int, depth: int, root_pos: Sequence[float]) -> None:
        """Append body ``b`` (and its subtree) at indentation ``depth``; the root at ``root_pos``."""
        v, pad = self.v, "  " * depth
        name = v.body(b).name
        pos = root_pos if b == 1 else v.body_pos[b]
        quat = v.body_quat[b]
        head = {"name": name, "pos": nums(pos)}
        if not np.allclose(quat, [1, 0, 0, 0]):
            head["quat"] = nums(quat)
        self.lines.append("{}<body {}>".format(pad, attrs(head)))
        inner = pad + "  "
        for j in range(v.body_jntadr[b], v.body_jntadr[b] + v.body_jntnum[b]):
            if v.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
                self.lines.append('{}<freejoint name="root"/>'.format(inner))
                continue
            jname = v.joint(j).name
            cls, _, _ = self.joint_class(jname)
            motor, armature = ARMATURE[self.torque_limit(j)]
            self.lines.append("{}<joint {}/>".format(inner, attrs({
                "name": jname, "class": cls, "axis": nums(v.jnt_axis[j]), "range": nums(v.jnt_range[j]),
                "armature": num(armature)})))
            self.dofs.append(j)
        self.lines.append("{}<inertial {}/>".format(inner, attrs({
            "pos": nums(v.body_ipos[b]), "quat": nums(v.body_iquat[b]), "mass": num(v.body_mass[b]),
            "diaginertia": nums(v.body_inertia[b])})))
        for geom in body_geoms(name, self.hulls.get(b, [])):
            self.lines.append("{}<geom {}/>".format(inner, attrs(geom)))
        children = [c for c in range(b + 1, v.nbody) if v.body_parentid[c] == b]
        for c in children:
            comment = self.limb_comment(v.body(c).name)
            if comment:
                self.lines.append("{}<!-- {} -->".format(inner, comment))
            self.body(c, depth + 1, root_pos)
        self.lines.append("{}</body>".format(pad))

    @staticmethod
    def limb_comment(child: str) -> Optional[str]:
        """The comment above a limb's first body, if ``child`` starts one."""
        for prefix, text in [("left_hip_pitch", "left leg"), ("right_hip_pitch", "right leg"),
                             ("waist_yaw", "waist: yaw, roll, pitch; the torso carries the head and arms"),
                             ("left_shoulder_pitch", "left arm"), ("right_shoulder_pitch", "right arm")]:
            if child.startswith(prefix):
                return text
        return None


def compile_text(text: str) -> mujoco.MjModel:
    """Our MJCF text compiled alone."""
    return mujoco.MjModel.from_xml_string(text)


def touching_pairs(model: mujoco.MjModel, qpos_list: Sequence[np.ndarray]) -> List[Tuple[str, str]]:
    """Body name pairs whose geoms touch (no ground here) in any of the poses ``qpos_list``."""
    data = mujoco.MjData(model)
    pairs = set()
    for qpos in qpos_list:
        data.qpos[:] = qpos
        mujoco.mj_forward(model, data)
        for c in data.contact[:data.ncon]:
            b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
            pairs.add(tuple(sorted((model.body(b1).name, model.body(b2).name))))
    return sorted(pairs)


def near_pairs(model: mujoco.MjModel) -> List[Tuple[str, str]]:
    """Body name pairs two joints apart (grandparent and grandchild, or siblings)."""
    parent = model.body_parentid
    pairs = set()
    for b in range(2, model.nbody):
        for c in range(2, model.nbody):
            if b < c and (parent[parent[c]] == b or parent[b] == parent[c]) and parent[c] != 0:
                pairs.add(tuple(sorted((model.body(b).name, model.body(c).name))))
    return sorted(pairs)


def default_qpos(model: mujoco.MjModel) -> np.ndarray:
    """The default pose with the root at (0, 0, h), h putting the lowest sole corner at z = 0."""
    qpos = model.qpos0.copy()
    qpos[:7] = [0, 0, 0, 1, 0, 0, 0]
    for j in range(1, model.njnt):
        pattern = match(model.joint(j).name, list(DEFAULT_POSE))
        if pattern is not None:
            qpos[model.jnt_qposadr[j]] = DEFAULT_POSE[pattern]
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    lowest = np.inf
    for side in ("left", "right"):
        g = model.geom(side + "_ankle_roll").id
        corners = np.array([[sx, sy, -1.0] for sx in (-1, 1) for sy in (-1, 1)]) * model.geom_size[g]
        world = data.geom_xpos[g] + corners @ data.geom_xmat[g].reshape(3, 3).T
        lowest = min(lowest, world[:, 2].min())
    qpos[2] = -lowest
    return qpos


HEADER = """<!--
  mimickit G1: a 29-dof humanoid robot in the Unitree G1's class, written for mimickit
  (primitive geoms, no meshes). Made by tools/make_g1_asset.py, which reads the figures below
  from Unitree's g1_29dof.xml (BSD-3, credited in README.md beside this file); regenerate with
      python tools/make_g1_asset.py
  rather than editing by hand.

  Kinematics and inertia as the vendor's: the same body and joint names, body offsets, joint
  axes and ranges, masses, centres of mass and inertias ({mass:.1f} kg), so that G1 joint angles
  (e.g. retargeted clips, policies' targets) transfer unchanged, by joint name.
  World and body frames: Z up, facing +x, left +y. Units: m, kg, rad, N·m.
  All dofs zero: straight legs, arms down with the forearms pointing forward, the pelvis
  {zero_height:.3f} m high. The default pose (keyframe "default" at the end, read by mimickit as
  the pose episodes start in and actions are centred on): hip pitch -0.1, knee 0.3, ankle pitch
  -0.2, the rest 0; the pelvis {default_height:.4f} m high with the soles on the ground.
  Dof order (29 hinges, the vendor's): left leg (hip pitch y, roll x, yaw z, knee y, ankle
  pitch y, roll x), right leg, waist (yaw z, roll x, pitch y), left arm (shoulder pitch y,
  roll x, yaw z, elbow y, wrist roll x, pitch y, yaw z), right arm.
  Geoms: capsules, spheres and boxes fitted to the vendor's meshes; the feet are boxes
  {foot_x:.3f} x {foot_y:.3f} m whose soles lie 0.035 m below the ankle roll joint, where the
  vendor's contact spheres touch. Self-collision on, except the pairs in <contact>.
  Actuators: position servos (kp N·m/rad, kv N·m·s/rad per class below; legs: unitree_rl_gym's
  G1 gains; waist and arms: ours), forcerange the vendor's torque limits, ctrlrange the joint
  range; joint armature is the reflected rotor inertia of each joint's motor class. These are
  a real robot's gains, for a policy that balances: PD alone does not hold the default pose
  (the robot tips over its toes; see README.md). Smooth targets are stable at the engine's
  120 Hz; random full-range targets jumping every control step need sim_freq 480.
  The character file holds the character only; the engine adds the ground and lights.
-->"""


def build(vendor_file: str) -> str:
    """Our MJCF text from the vendor file."""
    vendor = mujoco.MjModel.from_xml_path(vendor_file)
    writer = Writer(vendor)
    writer.body(1, 2, vendor.body_pos[1])
    body_lines = writer.lines

    defaults = ['  <default>',
                '    <joint type="hinge" limited="true"/>',
                '    <geom condim="3" friction="1.0 0.05 0.05" rgba="{}"/>'.format(COLOURS["light"]),
                '    <position ctrllimited="true" forcelimited="true"/>',
                '    <default class="visual">',
                '      <geom contype="0" conaffinity="0"/>',
                '    </default>']
    for _, cls, kp, kd in GAINS:
        defaults += ['    <default class="{}">'.format(cls),
                     '      <position kp="{}" kv="{}"/>'.format(num(kp), num(kd)),
                     '    </default>']
    defaults.append('  </default>')

    actuators = ['  <actuator>']
    for j in writer.dofs:
        name = vendor.joint(j).name
        cls, _, _ = writer.joint_class(name)
        limit = writer.torque_limit(j)
        actuators.append('    <position {}/>'.format(" ".join([
            'name="{}"'.format(name), 'class="{}"'.format(cls), 'joint="{}"'.format(name),
            'ctrlrange="{}"'.format(nums(vendor.jnt_range[j])), 'forcerange="{}"'.format(nums([-limit, limit]))])))
    actuators.append('  </actuator>')

    def assemble(excludes: List[Tuple[str, str]], key: Optional[np.ndarray], header: str) -> str:
        lines = [header, '<mujoco model="g1">', '  <compiler angle="radian"/>', ""] + defaults + [""]
        lines += ["  <worldbody>"] + body_lines + ["  </worldbody>", ""]
        if excludes:
            lines.append("  <!-- bodies at most two joints apart, or touching in the zero or default pose -->")
            lines.append("  <contact>")
            lines += ['    <exclude body1="{}" body2="{}"/>'.format(a, b) for a, b in excludes]
            lines += ["  </contact>", ""]
        lines += actuators
        if key is not None:
            lines += ["  <!-- The default pose: standing (episodes without a motion start here; policy actions are "
                      "centred on it). -->",
                      "  <keyframe>", '    <key name="default" qpos="{}"/>'.format(nums(key)), "  </keyframe>"]
        lines.append("</mujoco>")
        return "\n".join(lines) + "\n"

    draft = compile_text(assemble([], None, "<!-- draft -->"))
    key = default_qpos(draft)
    zero = draft.qpos0.copy()
    colliding = {draft.body(draft.geom_bodyid[g]).name for g in range(draft.ngeom) if draft.geom_contype[g]}
    excludes = sorted(pair for pair in set(near_pairs(draft)) | set(touching_pairs(draft, [zero, key]))
                      if set(pair) <= colliding)
    sole = sole_box()["size"].split()
    header = HEADER.format(mass=vendor.body_mass.sum(), zero_height=vendor.body_pos[1][2], default_height=key[2],
                           foot_x=2 * float(sole[0]), foot_y=2 * float(sole[1]))
    text = assemble(excludes, key, header)
    model = compile_text(text)
    left = touching_pairs(model, [model.key_qpos[0], model.qpos0])
    if left:
        raise SystemExit("make_g1_asset: bodies still touch in the default pose: {}".format(left))
    return text


def main(argv: Optional[List[str]] = None) -> int:
    """Write our G1 MJCF; print the path and the robot's mass."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vendor", default=VENDOR_FILE, help="Unitree's g1_29dof.xml, its meshes beside it")
    p.add_argument("--out", default=OUT_FILE, help="our MJCF to write")
    args = p.parse_args(argv)
    if not os.path.isfile(args.vendor):
        print("make_g1_asset: no vendor file {}".format(args.vendor), file=sys.stderr)
        return 2
    text = build(args.vendor)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    model = compile_text(text)
    print("wrote {}: {} bodies, {} dofs, {:.3f} kg".format(args.out, model.nbody - 1, model.nu, model.body_mass.sum()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Import one motion file for our character: read, retarget, level the floor, fix the foot
contacts, align to the ground, summarise. Joint-space sources (``amp_hardware``) are mapped
by dof name instead (:mod:`tools.motion_import.joint_space`), without levelling or contact
fixing.

The readers are registered in :data:`FORMATS`; :func:`detect_format` picks one from the
file extension, else from the first bytes.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import LOOP_MODES, Motion
from mimickit.util.errors import MimicKitError, require_file

from tools.motion_import.amp_hardware import fitting_leg_order, is_amp_hardware, read_amp_hardware, relabel_legs
from tools.motion_import.amp_npy import read_amp_npy
from tools.motion_import.bvh import read_bvh
from tools.motion_import.contacts import CONTACT_FIX_MODES, ContactFixResult, ContactFixSettings, fix_contacts
from tools.motion_import.deepmimic import read_deepmimic
from tools.motion_import.ground import LEVEL_FLOOR_MODES, FloorFit, FloorLevelSettings, FootGeometry, body_geoms, \
    level_floor, sole_heights
from tools.motion_import.joint_ranges import RangeCheck, enforce_joint_ranges
from tools.motion_import.joint_space import POINT_TOL, joint_space_frames, load_dof_map, resolve_dof_map, \
    root_frame_point_error
from tools.motion_import.mimickit_pkl import read_mimickit_pkl
from tools.motion_import.retarget import resolve_joint_map, retarget
from tools.motion_import.source import SourceMotion, load_joint_map

# format name -> reader(path, source_char) -> SourceMotion (bvh also takes scale=, m per unit)
FORMATS: Dict[str, Callable[..., SourceMotion]] = {
    "deepmimic": read_deepmimic,
    "amp_npy": read_amp_npy,
    "mimickit_pkl": read_mimickit_pkl,
    "amp_hardware": read_amp_hardware,
    "bvh": read_bvh,
}
_EXTENSIONS = {".txt": "deepmimic", ".json": "deepmimic", ".npy": "amp_npy", ".pkl": "mimickit_pkl", ".bvh": "bvh"}


def detect_format(path: str) -> str:
    """The reader for ``path``: by extension (.txt/.json, .npy, .pkl, .bvh), else by content.

    JSON with a ``FrameDuration`` key (``.txt``, ``.json`` or no known extension) is
    ``amp_hardware``; other JSON is ``deepmimic``.

    Raises:
        MimicKitError: if the file is missing or neither says which format it is.
    """
    require_file(path, "motion file")
    ext = os.path.splitext(path)[1].lower()
    if _EXTENSIONS.get(ext) == "deepmimic" and is_amp_hardware(path):
        return "amp_hardware"
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"\x93NUMPY"):
        return "amp_npy"
    if head.startswith(b"\x80"):
        return "mimickit_pkl"
    if head.lstrip().startswith(b"{"):
        return "amp_hardware" if is_amp_hardware(path) else "deepmimic"
    raise MimicKitError("{}: cannot tell the format from the extension or content; pass --format {}".format(
        path, "|".join(FORMATS)))


@dataclasses.dataclass
class ImportResult:
    """An imported clip and what the import did.

    Attributes:
        motion: the native clip for our character.
        source: the source clip (Z-up).
        scale: factor applied to the root translation (leg-length ratio ours / source).
        ground_shift: m added to the root z (0 without ground alignment).
        foot_heights: ``[T]`` lowest foot point per frame (m, world z) after alignment.
        notes: remarks (resampling, assumptions, dropped rotations, floor levelling).
        floor_fit: the floor plane fitted to the retargeted clip's stances (before levelling
            and ground alignment); None when levelling was off or too few stances were found.
        floor_levelled: whether the fitted tilt was removed from the root z.
        contact_fix: what the contact cleanup did (before ground alignment); None when off.
        point_error: largest distance (m) between positions the source states in its root
            frame (AMP_for_hardware's toes) and ours from forward kinematics; None if none.
        joint_ranges: the joint range check: with ``clamp_joints`` the clamp of the
            retargeted clip (before the contact cleanup), else the check of the clip written.
    """
    motion: Motion
    source: SourceMotion
    scale: float
    ground_shift: float
    foot_heights: np.ndarray
    notes: List[str]
    floor_fit: Optional[FloorFit] = None
    floor_levelled: bool = False
    contact_fix: Optional[ContactFixResult] = None
    point_error: Optional[float] = None
    joint_ranges: Optional[RangeCheck] = None

    @property
    def contacts_fixed(self) -> bool:
        """Whether the stance feet were moved onto the floor by inverse kinematics."""
        return self.contact_fix is not None and self.contact_fix.applied

    def summary(self, out_path: str = "") -> str:
        """One line: frames, fps, length, lowest-foot min/max, root height range, scale
        (and the root-frame point error of a joint-space source)."""
        m = self.motion
        root_z = m.frames[:, 2]
        line = "{}{}: {} frames, {:.2f} fps, {:.2f} s, {}, lowest foot {:+.3f}..{:+.3f} m, root z {:.3f}..{:.3f} m, " \
               "scale {:.4f}, ground shift {:+.3f} m".format(
                   os.path.basename(self.source.file), " -> " + out_path if out_path else "", m.num_frames, m.fps,
                   m.length, m.loop_mode, float(self.foot_heights.min()), float(self.foot_heights.max()),
                   float(root_z.min()), float(root_z.max()), self.scale, self.ground_shift)
        if self.point_error is not None:
            line += ", toe error vs source {:.3f} mm".format(1000.0 * self.point_error)
        if self.notes:
            line += " [" + "; ".join(self.notes) + "]"
        return line


class Importer:
    """Imports motion files for one character, loading it once.

    Args:
        char_file: our character's MJCF.
        foot_bodies: bodies whose geoms touch the ground (``--foot_bodies``): the ground
            alignment, floor levelling and contact cleanup watch them, the first gives the
            leg length; default: bodies named ``*foot*``.
        floor_settings: thresholds of the floor levelling.
        contact_settings: thresholds and weights of the contact cleanup.

    Raises:
        MimicKitError: as :class:`KinCharModel`, when no foot body is found or a named one
            is not a body of the character.
    """

    def __init__(self, char_file: str, foot_bodies: Optional[Sequence[str]] = None,
                 floor_settings: FloorLevelSettings = FloorLevelSettings(),
                 contact_settings: ContactFixSettings = ContactFixSettings()):
        self.char_file = char_file
        self.floor_settings = floor_settings
        self.contact_settings = contact_settings
        self.char = KinCharModel(char_file)
        self.feet = FootGeometry(self.char, foot_bodies)
        self.bodies = FootGeometry(self.char, [n for b, n in enumerate(self.char.body_names)
                                               if body_geoms(self.feet.model, b + 1)])
        self.soles = sole_heights(char_file)

    def import_file(self, path: str, fmt: Optional[str] = None, source_char: Optional[str] = None,
                    joint_map_file: Optional[str] = None, loop_mode: Optional[str] = None,
                    ground_align: bool = True, level_floor_mode: str = "auto",
                    contact_fix_mode: str = "auto", clamp_joints: bool = False,
                    leg_order: Optional[Sequence[str]] = None, point_tol: float = POINT_TOL,
                    bvh_scale: Optional[float] = None) -> ImportResult:
        """Read ``path``, retarget it to our character, level its floor, fix its foot
        contacts, check its joint ranges and put it on the ground.

        Levelling (:func:`tools.motion_import.ground.level_floor`) removes a tilted capture
        floor from the root z in the world Z-up frame after retargeting; the contact
        cleanup (:func:`tools.motion_import.contacts.fix_contacts`) then plants the stance
        feet on one floor height without sliding, by inverse kinematics; the ground
        alignment finally adds one constant to the root z. The clip written is refused when a
        hinge angle leaves our range (:mod:`tools.motion_import.joint_ranges`); with
        ``clamp_joints`` the retarget is clamped before the contact cleanup instead.

        Args:
            path: the source motion file.
            fmt: a key of :data:`FORMATS`; default: :func:`detect_format`.
            source_char: the source character file (see each reader).
            joint_map_file: YAML ``source joint: our body`` overriding the format's table
                (``source joint: our dof`` for ``amp_hardware``).
            loop_mode: ``wrap`` or ``clamp`` to override the file's.
            ground_align: shift the root z so the lowest point of any body over the clip is
                at z = 0 (after the contact cleanup, a stance foot's).
            level_floor_mode: ``auto`` (level when the fitted tilt is trustworthy and
                helps), ``on`` (level whenever a plane fits) or ``off``. Joint-space
                sources are never levelled nor contact-fixed (``on`` is an error).
            contact_fix_mode: ``auto`` (fix when the stance feet stray from one floor
                height or slip, beyond the thresholds of ``contact_settings``; skipped
                with a note when mink is missing), ``on`` (fix every clip with stances) or
                ``off`` (the frames are left as they are).
            clamp_joints: clamp hinge angles beyond our ranges (a note says which) instead
                of refusing the clip (:mod:`tools.motion_import.joint_ranges`).
            leg_order: ``amp_hardware`` only: the legs in the order the file stores them
                (default FR, FL, RR, RL; :func:`tools.motion_import.amp_hardware.relabel_legs`).
            point_tol: m, the largest root-frame point (toe) error accepted from a
                joint-space source (:func:`tools.motion_import.joint_space.root_frame_point_error`).
            bvh_scale: ``bvh`` only: m per file unit (default: inferred,
                :func:`tools.motion_import.bvh.infer_scale`).

        Raises:
            MimicKitError: an unknown format, loop mode, levelling or contact-fix mode, any
                reader / joint-map error, ``on`` levelling of a clip with too few stances,
                ``on`` contact fixing without mink installed, (without ``clamp_joints``)
                a hinge angle beyond its range, a ``leg_order`` or ``bvh_scale`` for another format, or a
                toe error above ``point_tol`` (naming the leg order that fits, if one does).
        """
        fmt = fmt or detect_format(path)
        if fmt not in FORMATS:
            raise MimicKitError("unknown format '{}'; expected one of {}".format(fmt, ", ".join(FORMATS)))
        if loop_mode is not None and loop_mode not in LOOP_MODES:
            raise MimicKitError("loop mode must be one of {}, got '{}'".format("|".join(LOOP_MODES), loop_mode))
        if level_floor_mode not in LEVEL_FLOOR_MODES:
            raise MimicKitError("floor levelling must be one of {}, got '{}'".format(
                "|".join(LEVEL_FLOOR_MODES), level_floor_mode))
        if contact_fix_mode not in CONTACT_FIX_MODES:
            raise MimicKitError("contact fixing must be one of {}, got '{}'".format(
                "|".join(CONTACT_FIX_MODES), contact_fix_mode))
        if leg_order is not None and fmt != "amp_hardware":
            raise MimicKitError("{}: --leg_order is for format amp_hardware, not {}".format(path, fmt))
        if bvh_scale is not None and fmt != "bvh":
            raise MimicKitError("{}: --bvh_scale is for format bvh, not {}".format(path, fmt))
        source = FORMATS[fmt](path, source_char, **({"scale": bvh_scale} if bvh_scale is not None else {}))
        if source.joint_pos is not None:
            return self._import_joint_space(source, joint_map_file, loop_mode, ground_align, level_floor_mode,
                                            contact_fix_mode, clamp_joints, leg_order, point_tol)
        overrides = load_joint_map(joint_map_file, source.skeleton, self.char.body_names) if joint_map_file else None
        ours_to_src = resolve_joint_map(source, self.char.body_names, overrides, joint_map_file or "joint map")
        result = retarget(source, self.char, ours_to_src, self.soles, self.feet.foot_bodies)
        notes = source.notes + result.notes
        frames = result.frames
        clamped = None
        if clamp_joints:  # before the contact cleanup: its IK keeps to the ranges, planting the clamped pose
            clamped = enforce_joint_ranges(self.char, self.feet.model, frames, True, path)
            frames = clamped.frames
            notes += [clamped.note] if clamped.clamped else []
        floor = level_floor(self.feet, frames, source.fps, level_floor_mode, self.floor_settings, path)
        if level_floor_mode != "off":
            notes.append(floor.note)
        contacts = fix_contacts(self.feet, floor.frames, source.fps, contact_fix_mode, self.contact_settings, path)
        if contact_fix_mode != "off":
            notes.append(contacts.note)
        ranges = enforce_joint_ranges(self.char, self.feet.model, contacts.frames, clamp_joints, path)  # as written
        notes += [ranges.note] if ranges.clamped else []
        frames = np.array(ranges.frames, dtype=np.float64)  # the results above keep their frames
        frames, heights, shift = self._align_to_ground(frames, ground_align)
        motion = Motion(source.fps, loop_mode or source.loop_mode, frames, self.char.dof_names, source=path)
        return ImportResult(motion=motion, source=source, scale=result.scale, ground_shift=shift,
                            foot_heights=heights, notes=notes, floor_fit=floor.fit, floor_levelled=floor.applied,
                            contact_fix=contacts if contact_fix_mode != "off" else None,
                            joint_ranges=clamped if clamped is not None else ranges)

    def _align_to_ground(self, frames: np.ndarray, ground_align: bool):
        """``(frames, lowest foot point per frame [T] m, shift m)``, the root z shifted (in
        place) so the lowest point of any body over the clip is at z = 0 when ``ground_align``."""
        heights = self.feet.lowest_points_from_frames(frames)
        shift = 0.0
        if ground_align:
            shift = -float(self.bodies.lowest_points_from_frames(frames).min())
            frames[:, 2] += shift
            heights = heights + shift
        return frames, heights, shift

    def _import_joint_space(self, source: SourceMotion, joint_map_file: Optional[str], loop_mode: Optional[str],
                            ground_align: bool, level_floor_mode: str, contact_fix_mode: str,
                            clamp_joints: bool, leg_order: Optional[Sequence[str]], point_tol: float) -> ImportResult:
        """:meth:`import_file` for a joint-space source: angles by dof name, no levelling or contact fixing."""
        read = source
        if leg_order is not None:
            source = relabel_legs(read, leg_order)
        for mode, what in ((level_floor_mode, "floor levelling (--level_floor)"),
                           (contact_fix_mode, "contact fixing (--fix_contacts)")):
            if mode == "on":
                raise MimicKitError("{}: {} is not available for format {}".format(source.file, what, source.format))
        overrides = load_dof_map(joint_map_file, source.joint_names, self.char.dof_names) if joint_map_file else None
        frames, scale, notes, error = self._map_joint_space(source, overrides)
        if error is not None and error > point_tol:
            raise MimicKitError(self._point_error_message(read, overrides, error, point_tol))
        ranges = enforce_joint_ranges(self.char, self.feet.model, frames, clamp_joints, source.file)
        notes = source.notes + notes + ([ranges.note] if ranges.clamped else []) \
            + ["no floor levelling or contact fixing for joint-space sources"]
        frames, heights, shift = self._align_to_ground(np.array(ranges.frames), ground_align)
        motion = Motion(source.fps, loop_mode or source.loop_mode, frames, self.char.dof_names, extras=source.extras,
                        source=source.file)
        return ImportResult(motion=motion, source=source, scale=scale, ground_shift=shift, foot_heights=heights,
                            notes=notes, point_error=error, joint_ranges=ranges)

    def _map_joint_space(self, source: SourceMotion, overrides: Optional[Dict[str, Optional[str]]]):
        """``(frames, scale, notes, root-frame point error m or None)`` of a joint-space source."""
        columns = resolve_dof_map(source, self.char, overrides)
        frames, scale, notes = joint_space_frames(source, self.char, columns, self.feet.foot_bodies)
        error = root_frame_point_error(source, self.char, frames, columns, self.feet.foot_bodies, scale)
        return frames, scale, notes, error

    def _point_error_message(self, source: SourceMotion, overrides: Optional[Dict[str, Optional[str]]],
                             error: float, point_tol: float) -> str:
        """Why a joint-space clip ``source`` (as read, before a leg order) is refused: its toe
        error, and for AMP_for_hardware the leg order that fits."""
        message = "{}: toes {:.0f} mm from where the file puts them (more than {:.0f} mm): the joints are mapped " \
                  "wrongly onto {}".format(source.file, 1000.0 * error, 1000.0 * point_tol, self.char.file)
        if source.format != "amp_hardware":
            return message
        order, best = fitting_leg_order(source, lambda s: self._map_joint_space(s, overrides)[3])
        if best <= point_tol:
            return message + "; the legs look stored {} (toe error {:.2f} mm): pass --leg_order {}".format(
                ", ".join(order), 1000.0 * best, ",".join(order))
        return message + "; no leg order fits (best {}: {:.0f} mm): check --joint_map and --char, or raise " \
                         "--toe_tol".format(",".join(order), 1000.0 * best)


def import_motion(path: str, char_file: str, fmt: Optional[str] = None, source_char: Optional[str] = None,
                  joint_map_file: Optional[str] = None, loop_mode: Optional[str] = None,
                  ground_align: bool = True, level_floor_mode: str = "auto",
                  contact_fix_mode: str = "auto", foot_bodies: Optional[Sequence[str]] = None,
                  clamp_joints: bool = False) -> ImportResult:
    """Import one motion file for the character ``char_file`` with feet ``foot_bodies``; see
    :class:`Importer` and :meth:`Importer.import_file`."""
    return Importer(char_file, foot_bodies).import_file(path, fmt, source_char, joint_map_file, loop_mode, ground_align,
                                           level_floor_mode, contact_fix_mode, clamp_joints)

"""Foot geometry from MuJoCo (the lowest point of the feet, per frame; rest sole heights)
and floor levelling (:func:`level_floor`: fit the capture floor's tilt to the stances and
remove it from the root height).

Heights are world z (m, Z-up). The lowest point of a geom is exact for boxes, spheres,
capsules, cylinders and ellipsoids; other types (meshes) use their bounding box.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import mujoco
import numpy as np
import scipy.optimize

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from mimickit.engines.mujoco_pose import MujocoPose, frames_to_pose
from mimickit.util.errors import MimicKitError, require_file


def geom_lowest_points(model: mujoco.MjModel, data: mujoco.MjData, geom_ids: Sequence[int]) -> np.ndarray:
    """World position (m) of the lowest point of each geom ``[len(geom_ids), 3]`` after ``mj_kinematics``.

    The point is the geom's support point in the world -z direction; where a face or edge
    is exactly level, its centre is taken.
    """
    out = np.empty((len(geom_ids), 3))
    down = np.array([0.0, 0.0, -1.0])
    for i, g in enumerate(geom_ids):
        size = model.geom_size[g]
        center = data.geom_xpos[g]
        rot = data.geom_xmat[g].reshape(3, 3)  # columns: the geom's axes in the world
        rz = rot[2]  # z component of each geom axis
        gtype = model.geom_type[g]
        if gtype == mujoco.mjtGeom.mjGEOM_BOX:
            out[i] = center - rot @ (np.sign(rz) * size)
        elif gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
            out[i] = center + size[0] * down
        elif gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
            out[i] = center - np.sign(rz[2]) * size[1] * rot[:, 2] + size[0] * down
        elif gtype == mujoco.mjtGeom.mjGEOM_CYLINDER:
            radial = down + rz[2] * rot[:, 2]  # -z with its part along the axis removed
            norm = np.linalg.norm(radial)
            rim = size[0] * radial / norm if norm > 1e-12 else np.zeros(3)
            out[i] = center - np.sign(rz[2]) * size[1] * rot[:, 2] + rim
        elif gtype == mujoco.mjtGeom.mjGEOM_ELLIPSOID:
            scaled = rz * size[:3]
            out[i] = center - rot @ (size[:3] * scaled) / max(np.linalg.norm(scaled), 1e-12)
        else:  # mesh, sdf, ...: the geom's axis-aligned box in its own frame
            box_center, half = model.geom_aabb[g, :3], model.geom_aabb[g, 3:]
            out[i] = center + rot @ (box_center - np.sign(rz) * half)
    return out


def geom_lowest_z(model: mujoco.MjModel, data: mujoco.MjData, geom_ids: Sequence[int]) -> np.ndarray:
    """World z (m) of the lowest point of each geom ``[len(geom_ids)]`` after ``mj_kinematics``."""
    return geom_lowest_points(model, data, geom_ids)[:, 2]


def body_geoms(model: mujoco.MjModel, body_id: int) -> List[int]:
    """Geom ids of MuJoCo body ``body_id`` (the world body is 0)."""
    start = model.body_geomadr[body_id]
    return list(range(start, start + model.body_geomnum[body_id])) if start >= 0 else []


def compile_mjcf(path: str) -> mujoco.MjModel:
    """Compile an MJCF file; if it names materials it does not define (IsaacGymEnvs'
    ``amp_humanoid.xml``), compile it again with the geom materials cleared.

    Raises:
        MimicKitError: if the file is missing or does not compile.
    """
    require_file(path, "character file")
    try:
        return mujoco.MjModel.from_xml_path(path)
    except ValueError as e:
        first_error = str(e).splitlines()[0]
    try:
        spec = mujoco.MjSpec.from_file(path)
        for geom in spec.geoms:
            geom.material = ""
        return spec.compile()
    except ValueError:
        raise MimicKitError("{}: MuJoCo could not compile it ({})".format(path, first_error))


def sole_heights(mjcf_path: str) -> Dict[str, float]:
    """Rest-pose distance (m) from each body's origin down to the lowest point of its geoms.

    The model is posed at its rest configuration (``qpos0``, root unrotated); bodies
    without geoms are left out. For a foot this is the ankle height.

    Raises:
        MimicKitError: if the file is missing or does not compile.
    """
    model = compile_mjcf(mjcf_path)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    out = {}
    for b in range(1, model.nbody):
        geoms = body_geoms(model, b)
        if geoms:
            out[model.body(b).name] = float(data.xpos[b, 2] - geom_lowest_z(model, data, geoms).min())
    return out


def default_foot_bodies(body_names: Sequence[str]) -> List[str]:
    """Bodies whose name contains ``foot`` (our humanoid: right_foot, left_foot)."""
    return [n for n in body_names if "foot" in n.lower()]


class FootGeometry:
    """Lowest point of a character's feet for batches of poses, through MuJoCo kinematics.

    Args:
        char: the character's kinematic model (its ``file`` is compiled by MuJoCo).
        foot_bodies: names of the foot bodies; default: the bodies named ``*foot*``.

    Raises:
        MimicKitError: if no foot body is found, a named one does not exist or is named twice.
    """

    def __init__(self, char: KinCharModel, foot_bodies: Optional[Sequence[str]] = None):
        self.char = char
        self.model = mujoco.MjModel.from_xml_path(char.file)
        self.data = mujoco.MjData(self.model)
        names = list(foot_bodies) if foot_bodies is not None else default_foot_bodies(char.body_names)
        if not names:
            raise MimicKitError("{}: no foot body found (no body name contains 'foot'); name the foot "
                                "bodies with --foot_bodies".format(char.file))
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise MimicKitError("{}: foot bodies named more than once: {}".format(char.file, ", ".join(repeated)))
        self.foot_bodies = names
        self.foot_geoms = []  # per foot body, its geom ids
        for n in names:
            body = char.get_body_id(n) + 1  # + 1: MuJoCo's world body
            self.foot_geoms.append(body_geoms(self.model, body))
        self.geom_ids = [g for geoms in self.foot_geoms for g in geoms]
        if not self.geom_ids:
            raise MimicKitError("{}: the foot bodies {} have no geoms".format(char.file, ", ".join(names)))
        self.foot_body_ids = np.array([char.get_body_id(n) + 1 for n in names], dtype=np.int64)
        self.pose = MujocoPose(self.model, char)

    def foot_points(self, root_pos: np.ndarray, root_rot: np.ndarray,
                    dof_pos: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Per pose and foot: the lowest point of the foot's geoms and the foot body's origin.

        root_pos: ``[T, 3]`` m, root_rot: ``[T, 4]`` (x, y, z, w), dof_pos: ``[T, num_dofs]``
        hinge angles (rad). Returns ``(lowest, origin)``, each ``[T, num_feet, 3]`` m in the
        world; a foot without geoms has ``+inf`` as its lowest z.
        """
        num_frames, num_feet = len(root_pos), len(self.foot_bodies)
        lowest = np.full((num_frames, num_feet, 3), np.inf)
        origin = np.empty((num_frames, num_feet, 3))
        for t in self.pose.kinematics(self.data, self.pose.qpos(root_pos, root_rot, dof_pos)):
            origin[t] = self.data.xpos[self.foot_body_ids]
            for f, geoms in enumerate(self.foot_geoms):
                if geoms:
                    points = geom_lowest_points(self.model, self.data, geoms)
                    lowest[t, f] = points[np.argmin(points[:, 2])]
        return lowest, origin

    def lowest_points(self, root_pos: np.ndarray, root_rot: np.ndarray, dof_pos: np.ndarray) -> np.ndarray:
        """Lowest foot point per pose ``[T]`` (m, world z).

        root_pos: ``[T, 3]`` m, root_rot: ``[T, 4]`` (x, y, z, w), dof_pos: ``[T, num_dofs]``
        hinge angles (rad).
        """
        return self.foot_points(root_pos, root_rot, dof_pos)[0][..., 2].min(axis=1)

    def foot_points_from_frames(self, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`foot_points` of native clip frames ``[T, 6 + num_dofs]``."""
        return self.foot_points(*frames_to_pose(self.char, frames))

    def lowest_points_from_frames(self, frames: np.ndarray) -> np.ndarray:
        """Lowest foot point per frame ``[T]`` (m) of native clip frames ``[T, 6 + num_dofs]``."""
        return self.lowest_points(*frames_to_pose(self.char, frames))


def foot_heights(char_file: str, motion: Motion, foot_bodies: Optional[Sequence[str]] = None) -> np.ndarray:
    """Lowest foot point per frame ``[num_frames]`` (m, world z) of ``motion`` played on ``char_file``.

    Each frame is set as MuJoCo ``qpos`` (root position, root quaternion, hinge angles from
    the clip's joint dofs) and ``mj_kinematics`` places the geoms; the result is the
    lowest point over the geoms of the foot bodies (default: bodies named ``*foot*``).

    Raises:
        MimicKitError: if the clip's dofs do not match the character, or no foot is found.
    """
    char = KinCharModel(char_file)
    motion.check_dof_names(char.dof_names, char_file)
    return FootGeometry(char, foot_bodies).lowest_points_from_frames(motion.frames)


# ---------------------------------------------------------------- floor levelling
LEVEL_FLOOR_MODES = ("auto", "on", "off")


@dataclasses.dataclass(frozen=True)
class FloorLevelSettings:
    """Thresholds of :func:`level_floor`; lengths in m, speeds in m/s, times in s, angles in degrees.

    Attributes:
        contact_speed: a foot whose origin moves slower than this is in a stance ...
        min_stance_time: ... when it stays that slow this long (and at least 2 frames).
        inlier_tol: a stance contact further than this from the fitted floor is an outlier.
        cross_extent: fit the slope across the travel direction only when the contacts
            spread this far across it (and there are 4); otherwise that slope is taken as 0.
        min_contacts: 'auto' needs at least this many inlier stance contacts ...
        min_inlier_fraction: ... making up at least this share of the contacts,
        min_travel: ... spread this far along the travel direction;
        max_residual_rms: 'auto' needs the inlier contacts within this RMS of the plane;
        min_slope_deg: 'auto' levels only slopes steeper than this ...
        min_slope_se: ... lying this many standard errors from 0 ...
        max_slope_deg: ... and not steeper than this (not a capture floor tilt);
        min_band_gain: 'auto' levels only when this shrinks the height band of the lowest
            foot over the stance frames by at least this fraction.
    """
    contact_speed: float = 0.5
    min_stance_time: float = 0.03
    inlier_tol: float = 0.02
    cross_extent: float = 1.0
    min_contacts: int = 4
    min_inlier_fraction: float = 0.6
    min_travel: float = 1.0
    max_residual_rms: float = 0.01
    min_slope_deg: float = 0.3
    min_slope_se: float = 3.0
    max_slope_deg: float = 10.0
    min_band_gain: float = 0.2


@dataclasses.dataclass
class StanceContacts:
    """A clip's stances and one contact sample per stance: the frame where the foot is lowest.

    Attributes:
        in_stance: ``[T, num_feet]`` bool, frames where each foot is in a stance.
        frames: ``[N]`` frame index of each contact, in time order.
        feet: ``[N]`` foot of each contact (index into :attr:`FootGeometry.foot_bodies`).
        heights: ``[N]`` m, world z of the foot's lowest point.
        root_xy: ``[N, 2]`` m, the root's horizontal position at that frame.
    """
    in_stance: np.ndarray
    frames: np.ndarray
    feet: np.ndarray
    heights: np.ndarray
    root_xy: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclasses.dataclass
class FloorFit:
    """The floor plane ``z = height + gradient . (xy - origin)`` fitted to stance contacts.

    Attributes:
        gradient: ``[2]`` (dz/dx, dz/dy) in the world frame, m/m.
        height: m, floor height at ``origin``.
        origin: ``[2]`` m, horizontal point of reference (the root at the first frame).
        slope_deg: the plane's steepest slope, degrees.
        slope_se_deg: standard error of ``slope_deg`` (degrees) from the inlier residuals.
        travel_dir: ``[2]`` unit vector, the contacts' main horizontal direction.
        travel: m, spread of the contacts along ``travel_dir``.
        cross_fitted: whether the slope across ``travel_dir`` was fitted (else it is 0).
        residual_rms: m, RMS distance of the inlier contacts from the plane.
        inliers: ``[N]`` bool, contacts kept by the robust fit.
        contacts: the stance contacts the plane was fitted to.
    """
    gradient: np.ndarray
    height: float
    origin: np.ndarray
    slope_deg: float
    slope_se_deg: float
    travel_dir: np.ndarray
    travel: float
    cross_fitted: bool
    residual_rms: float
    inliers: np.ndarray
    contacts: StanceContacts

    def describe(self) -> str:
        """One line: slope +- standard error, gradient, inlier stances, residual, travel."""
        return "slope {:.2f} deg +- {:.2f} (dz/dx {:+.4f}, dz/dy {:+.4f}), {}/{} stances, residual {:.2f} cm, " \
               "travel {:.1f} m".format(self.slope_deg, self.slope_se_deg, self.gradient[0], self.gradient[1],
                                        int(self.inliers.sum()), len(self.contacts), 100.0 * self.residual_rms,
                                        self.travel)

    def tilt(self, xy: np.ndarray) -> np.ndarray:
        """Height (m) of the plane's tilt above ``origin`` at horizontal points ``xy`` ``[..., 2]``: ``[...]``."""
        return (np.asarray(xy, dtype=np.float64) - self.origin) @ self.gradient


@dataclasses.dataclass
class FloorLevelResult:
    """What :func:`level_floor` did.

    Attributes:
        frames: ``[T, 6 + num_dofs]`` the clip with its root z levelled (a copy), or the input frames.
        applied: whether the root z was changed.
        fit: the fitted floor; None when levelling is off or too few stances were found.
        band: (before, after) m, height range of the lowest foot over the stance frames;
            None when not measured (off, or no fit).
        note: one line for the user.
    """
    frames: np.ndarray
    applied: bool
    fit: Optional[FloorFit]
    band: Optional[Tuple[float, float]]
    note: str


def stance_contacts(lowest: np.ndarray, origin: np.ndarray, root_xy: np.ndarray, fps: float,
                    contact_speed: float = 0.5, min_stance_time: float = 0.03) -> StanceContacts:
    """Stances of a clip and their contact samples.

    A stance of a foot is a run of frames where the foot body's origin moves slower than
    ``contact_speed`` (m/s, central differences) lasting at least ``min_stance_time`` (s)
    and 2 frames; its contact sample is its frame where the foot's lowest point is lowest.

    Args:
        lowest, origin: ``[T, num_feet, 3]`` m, world frame, from :meth:`FootGeometry.foot_points`.
        root_xy: ``[T, 2]`` m, the root's horizontal position.
        fps: frames per second.
    """
    num_frames, num_feet = lowest.shape[:2]
    min_frames = max(2, int(np.ceil(min_stance_time * fps - 1e-9)))
    if num_frames < 2:
        speed = np.full((num_frames, num_feet), np.inf)
    else:
        speed = np.linalg.norm(np.gradient(origin, 1.0 / fps, axis=0), axis=-1)
    in_stance = np.zeros((num_frames, num_feet), dtype=bool)
    frames, feet = [], []
    for f in range(num_feet):
        slow = (speed[:, f] < contact_speed) & np.isfinite(lowest[:, f, 2])
        edges = np.flatnonzero(np.diff(np.concatenate([[0], slow.astype(np.int8), [0]])))
        for start, end in zip(edges[0::2], edges[1::2]):
            if end - start >= min_frames:
                in_stance[start:end, f] = True
                frames.append(start + int(np.argmin(lowest[start:end, f, 2])))
                feet.append(f)
    order = np.argsort(frames, kind="stable")
    frames = np.asarray(frames, dtype=np.int64)[order]
    feet = np.asarray(feet, dtype=np.int64)[order]
    return StanceContacts(in_stance=in_stance, frames=frames, feet=feet, heights=lowest[frames, feet, 2],
                          root_xy=np.asarray(root_xy, dtype=np.float64)[frames])


def _lstsq(design: np.ndarray, heights: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and residuals (heights - design @ coef)."""
    coef = np.linalg.lstsq(design, heights, rcond=None)[0]
    return coef, heights - design @ coef


def fit_floor(contacts: StanceContacts, origin: np.ndarray,
              settings: FloorLevelSettings = FloorLevelSettings()) -> Optional[FloorFit]:
    """Fit the floor plane to stance contacts, robustly; None with fewer than 3 contacts or
    contacts spread less than 1 cm horizontally.

    The contact heights are regressed on the root's horizontal position at each contact,
    the position :func:`level_floor` corrects with, so the residual is what levelling
    leaves. The slope along the contacts' main direction is always fitted; the slope
    across it only when they spread ``settings.cross_extent`` across (else a walk's few cm
    of sway would decide it). A soft-L1 fit (scipy ``least_squares``, scale
    ``inlier_tol / 2``) picks the inliers (residual <= ``inlier_tol``); ordinary least
    squares on them gives the plane, its residual RMS and the slope's standard error.

    Args:
        contacts: from :func:`stance_contacts`.
        origin: ``[2]`` m, the horizontal point where the fitted ``height`` is reported.
        settings: ``inlier_tol`` and ``cross_extent`` are used.
    """
    if len(contacts) < 3:
        return None
    origin = np.asarray(origin, dtype=np.float64)
    xy = contacts.root_xy - origin
    centered = xy - xy.mean(axis=0)
    axes = np.linalg.svd(centered, full_matrices=False)[2]  # rows: main and cross direction
    along, across = centered @ axes[0], centered @ axes[1]
    travel = float(np.ptp(along))
    if travel < 0.01:
        return None
    cross_fitted = float(np.ptp(across)) >= settings.cross_extent and len(contacts) >= 4
    num_slopes = 2 if cross_fitted else 1
    design = np.concatenate([np.ones((len(contacts), 1)), (xy @ axes.T)[:, :num_slopes]], axis=1)
    heights = contacts.heights
    coef = _lstsq(design, heights)[0]
    robust = scipy.optimize.least_squares(lambda c: design @ c - heights, coef, loss="soft_l1",
                                          f_scale=0.5 * settings.inlier_tol)
    inliers = np.abs(design @ robust.x - heights) <= settings.inlier_tol
    if inliers.sum() < design.shape[1] + 1:
        inliers = np.ones(len(contacts), dtype=bool)
    coef, resid = _lstsq(design[inliers], heights[inliers])
    dof = max(int(inliers.sum()) - design.shape[1], 1)
    cov = float(resid @ resid) / dof * np.linalg.pinv(design[inliers].T @ design[inliers])
    slopes = coef[1:]
    magnitude = float(np.linalg.norm(slopes))
    if magnitude > 0:  # delta method: the variance of |slopes| along their direction
        unit = slopes / magnitude
        se = float(np.sqrt(max(unit @ cov[1:, 1:] @ unit, 0.0)))
    else:
        se = float(np.sqrt(max(np.trace(cov[1:, 1:]), 0.0)))
    return FloorFit(gradient=axes[:num_slopes].T @ slopes, height=float(coef[0]), origin=origin,
                    slope_deg=float(np.degrees(np.arctan(magnitude))),
                    slope_se_deg=float(np.degrees(se / (1.0 + magnitude ** 2))),
                    travel_dir=axes[0].copy(), travel=travel, cross_fitted=cross_fitted,
                    residual_rms=float(np.sqrt(np.mean(resid ** 2))), inliers=inliers, contacts=contacts)


def _auto_refusal(fit: FloorFit, band: Tuple[float, float], settings: FloorLevelSettings) -> Optional[str]:
    """Why 'auto' leaves the clip alone, or None when it levels it."""
    num_inliers = int(fit.inliers.sum())
    if num_inliers < settings.min_contacts:
        return "{} inlier stances < {}".format(num_inliers, settings.min_contacts)
    if num_inliers < settings.min_inlier_fraction * len(fit.contacts):
        return "only {}/{} stances fit a plane".format(num_inliers, len(fit.contacts))
    if fit.travel < settings.min_travel:
        return "stances span {:.2f} m < {:.2f} m".format(fit.travel, settings.min_travel)
    if fit.residual_rms > settings.max_residual_rms:
        return "residual {:.2f} cm > {:.2f} cm".format(100.0 * fit.residual_rms, 100.0 * settings.max_residual_rms)
    if fit.slope_deg < settings.min_slope_deg:
        return "slope below {:.2f} deg".format(settings.min_slope_deg)
    if fit.slope_deg < settings.min_slope_se * fit.slope_se_deg:
        return "slope within {:g} standard errors of 0".format(settings.min_slope_se)
    if fit.slope_deg > settings.max_slope_deg:
        return "slope above {:g} deg".format(settings.max_slope_deg)
    if band[1] > (1.0 - settings.min_band_gain) * band[0]:
        return "stance height band {:.1f} -> {:.1f} cm, gain below {:.0%}".format(
            100.0 * band[0], 100.0 * band[1], settings.min_band_gain)
    return None


def level_floor(feet: FootGeometry, frames: np.ndarray, fps: float, mode: str = "auto",
                settings: FloorLevelSettings = FloorLevelSettings(), source: str = "motion") -> FloorLevelResult:
    """Remove a tilted capture floor (or a root height drifting with position) from a clip.

    A plane is fitted to the clip's stance contacts (:func:`stance_contacts`,
    :func:`fit_floor`) and its tilt removed from the root height, frame by frame, in the
    world Z-up frame: ``root_z -= gradient . (root_xy - root_xy[0])``; the constant height
    is left to the ground alignment. The root's horizontal position is used, not the
    stance foot's: it moves smoothly, where the stance foot changes at every step and would
    make the root height jump by ``slope * step length``. For a root height that drifts with
    position this is exact; on a floor that is really sloped, a stance foot ``d`` m from the
    root is left ``slope * d`` off the levelled floor (about 1 cm at 1.5 deg and 0.4 m), and
    the posture (ankle angles) stays as captured.

    Args:
        feet: the character's foot geometry.
        frames: ``[T, 6 + num_dofs]`` native clip frames (root pos m, root exp map, joint dofs).
        fps: frames per second of the clip.
        mode: ``auto`` levels only when the fit is trustworthy and helps: enough inlier
            stances spread far enough, a small residual, a slope that is significant, and
            a narrower band of lowest-foot heights over the stance frames (thresholds in
            :class:`FloorLevelSettings`); ``on`` levels whenever a plane can be fitted;
            ``off`` returns the frames unchanged without fitting.
        settings: thresholds.
        source: the clip's name for messages.

    Raises:
        MimicKitError: on an unknown mode, or with ``on`` when fewer than 3 stance contacts
            spread horizontally.
    """
    if mode not in LEVEL_FLOOR_MODES:
        raise MimicKitError("{}: floor levelling must be one of {}, got '{}'".format(
            source, "|".join(LEVEL_FLOOR_MODES), mode))
    if mode == "off":
        return FloorLevelResult(frames=frames, applied=False, fit=None, band=None, note="floor levelling off")
    lowest, origin = feet.foot_points_from_frames(frames)
    contacts = stance_contacts(lowest, origin, frames[:, :2], fps, settings.contact_speed, settings.min_stance_time)
    fit = fit_floor(contacts, frames[0, :2], settings)
    if fit is None:
        if mode == "on":
            raise MimicKitError("{}: cannot level the floor: {} stance contacts (feet slower than {:g} m/s), need 3 "
                                "spread horizontally".format(source, len(contacts), settings.contact_speed))
        return FloorLevelResult(frames=frames, applied=False, fit=None, band=None,
                                note="floor not levelled: {} stances, too few to fit".format(len(contacts)))
    tilt = fit.tilt(frames[:, :2])
    stance_frames = contacts.in_stance.any(axis=1)
    heights = lowest[..., 2].min(axis=1)[stance_frames]
    band = (float(np.ptp(heights)), float(np.ptp(heights - tilt[stance_frames])))
    refusal = _auto_refusal(fit, band, settings) if mode == "auto" else None
    if refusal is not None:
        return FloorLevelResult(frames=frames, applied=False, fit=fit, band=band,
                                note="floor not levelled ({}): {}".format(refusal, fit.describe()))
    levelled = np.array(frames, dtype=np.float64)
    levelled[:, 2] -= tilt
    return FloorLevelResult(frames=levelled, applied=True, fit=fit, band=band,
                            note="floor levelled: {}, stance height band {:.1f} -> {:.1f} cm".format(
                                fit.describe(), 100.0 * band[0], 100.0 * band[1]))

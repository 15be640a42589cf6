"""The native motion clip: a ``.npz`` file that loads without pickle.

A clip holds frames sampled at ``fps`` for one character:

``frames[t] = [root pos (3, m, world), root rot exp map (3, rad, world),
joint_dof (num_dofs): exp map (rad) for a 3-dof joint, angle (rad) for a 1-dof joint]``

in the character's dof order (see docs/architecture.md), with the dof names stored for
validation. ``loop_mode`` is ``clamp`` (hold the last frame) or ``wrap`` (cycle, the root
advancing by the clip's displacement each cycle). Optional per-clip ``extras`` are named
numpy arrays, e.g. the commanded root velocity of a generated gait.
"""
from __future__ import annotations

import zipfile
import zlib
from typing import Dict, List, Optional

import numpy as np

from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError, require_file

LOOP_MODES = ("clamp", "wrap")
FORMAT_VERSION = 1
ROOT_COLUMNS = ["root_pos_x", "root_pos_y", "root_pos_z",
                "root_rot_exp_x", "root_rot_exp_y", "root_rot_exp_z"]
_EXTRA_PREFIX = "extra__"
_NPY_SIGNATURE = b"\x93NUMPY"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive


class Motion:
    """One clip.

    Args:
        fps: frames per second (> 0).
        loop_mode: ``clamp`` or ``wrap``.
        frames: ``[num_frames, 6 + num_dofs]`` as in the module docstring.
        dof_names: ``[num_dofs]`` the character's hinge names in order.
        extras: optional named arrays stored with the clip.

    Raises:
        MimicKitError: on a bad fps or loop mode, a frame width that does not match the dof
            names, or a NaN/Inf value (naming the frame and column).
    """

    def __init__(self, fps: float, loop_mode: str, frames: np.ndarray, dof_names: List[str],
                 extras: Optional[Dict[str, np.ndarray]] = None, source: str = "motion"):
        self.fps = float(fps)
        self.loop_mode = str(loop_mode)
        self.frames = np.asarray(frames, dtype=np.float32)
        self.dof_names = [str(n) for n in dof_names]
        self.extras = {k: np.asarray(v) for k, v in (extras or {}).items()}
        self._validate(source)

    @property
    def num_frames(self) -> int:
        """Frames in the clip (rows of :attr:`frames`)."""
        return self.frames.shape[0]

    @property
    def num_dofs(self) -> int:
        """Dofs per frame (``len(dof_names)``)."""
        return len(self.dof_names)

    @property
    def length(self) -> float:
        """Duration in s from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    def column_names(self) -> List[str]:
        """Names of the ``6 + num_dofs`` frame columns."""
        return ROOT_COLUMNS + self.dof_names

    def _validate(self, source: str) -> None:
        if not self.fps > 0:
            raise MimicKitError("{}: fps must be > 0, got {}".format(source, self.fps))
        if self.loop_mode not in LOOP_MODES:
            raise MimicKitError("{}: loop_mode must be one of {}, got '{}'".format(
                source, "|".join(LOOP_MODES), self.loop_mode))
        if self.frames.ndim != 2 or self.frames.shape[1] != 6 + self.num_dofs:
            raise MimicKitError("{}: frames must be [num_frames, {}] (6 root columns + {} dofs), "
                                "got shape {}".format(source, 6 + self.num_dofs, self.num_dofs,
                                                      list(self.frames.shape)))
        if self.num_frames < 2:
            raise MimicKitError("{}: a clip needs at least 2 frames, got {}".format(source, self.num_frames))
        check_finite(self.frames, self.column_names(), source)

    def check_dof_names(self, dof_names: List[str], char_file: str, source: str = "motion") -> None:
        """Raise MimicKitError naming both files unless the clip's dofs are ``dof_names``."""
        if list(dof_names) == self.dof_names:
            return
        missing = [n for n in dof_names if n not in self.dof_names]
        extra = [n for n in self.dof_names if n not in dof_names]
        detail = []
        if missing:
            detail.append("missing {}".format(", ".join(missing[:5])))
        if extra:
            detail.append("unknown {}".format(", ".join(extra[:5])))
        if not detail:
            detail.append("same dofs in a different order")
        raise MimicKitError("motion {} does not match character {}: {} ({} dofs in the clip, {} in the "
                            "character)".format(source, char_file, "; ".join(detail),
                                                self.num_dofs, len(dof_names)))

    def save(self, path: str) -> None:
        """Write the clip atomically (temporary file, then rename)."""
        arrays = {"format_version": np.array(FORMAT_VERSION), "fps": np.array(self.fps),
                  "loop_mode": np.array(self.loop_mode), "frames": self.frames,
                  "dof_names": np.array(self.dof_names)}
        arrays.update({_EXTRA_PREFIX + k: v for k, v in self.extras.items()})
        with atomic_write(path) as f:
            _write_npz(f, arrays)

    @classmethod
    def load(cls, path: str) -> "Motion":
        """Read a clip written by :meth:`save`; MimicKitError naming the file on any problem."""
        require_file(path, "motion file")
        arrays = _read_npz(path)
        for key in ("fps", "loop_mode", "frames", "dof_names"):
            if key not in arrays:
                raise MimicKitError("{}: not a mimickit motion clip: key '{}' missing".format(path, key))
        extras = {k[len(_EXTRA_PREFIX):]: v for k, v in arrays.items() if k.startswith(_EXTRA_PREFIX)}
        return cls(float(arrays["fps"]), str(arrays["loop_mode"]), arrays["frames"],
                   list(arrays["dof_names"]), extras, source=path)


def _corrupt(path: str, detail: object) -> MimicKitError:
    return MimicKitError("{}: corrupt or unreadable motion clip, not a valid .npz archive ({}); "
                         "write it again (tools/import_motion.py or Motion.save)".format(path, detail))


def _read_npz(path: str) -> Dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, read without pickle.

    numpy's own reader takes any file that is neither a zip archive nor an ``.npy`` array for
    a pickle, and says "pickled (object) data" about random bytes: the file's signature is
    checked here first, so that such a file is reported as corrupt; "object arrays" is kept
    for an archive that really holds them.

    Raises:
        MimicKitError: naming ``path``: corrupt or truncated (bad signature, zip or member
            damage), a plain ``.npy`` array, object arrays.
    """
    try:
        with open(path, "rb") as f:
            signature = f.read(len(_NPY_SIGNATURE))
    except OSError as e:
        raise _corrupt(path, e.strerror or e) from e
    if signature.startswith(_NPY_SIGNATURE):
        raise MimicKitError("{}: not a mimickit motion clip (a .npz archive); it holds a single array".format(path))
    if not signature.startswith(_ZIP_SIGNATURES):
        raise _corrupt(path, "no zip signature at the start" if signature else "empty file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            arrays = {}
            for name in names:
                key = name[:-len(".npy")] if name.endswith(".npy") else name
                with archive.open(name) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "bject arrays" in str(e):
            raise MimicKitError("{}: not a mimickit motion clip: it holds object arrays, which need pickle to "
                                "load (refused: a pickle can run code)".format(path)) from e
        raise _corrupt(path, e) from e
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise _corrupt(path, e) from e
    return arrays


def _write_npz(f, arrays: Dict[str, np.ndarray]) -> None:
    """``np.savez`` with a fixed timestamp on every member, so equal clips are equal bytes."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def check_finite(values: np.ndarray, column_names: List[str], source: str) -> None:
    """Raise MimicKitError naming the first frame and column of ``values`` that is NaN or Inf.

    values: ``[num_frames, num_columns]``.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        frame, col = np.argwhere(bad)[0]
        raise MimicKitError("{}: frame {} column {} ({}) is {} ({} bad values in the clip)".format(
            source, frame, col, column_names[col], values[frame, col], int(bad.sum())))

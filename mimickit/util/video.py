"""MP4 recording of rendered frames through imageio (the ``video`` extra).

Where the time goes (``--video true``, one 10 s DeepMimic test episode, 300 frames of
640x480, software EGL on 2 CPUs): rendering the frames ~19 s (``mjr_readPixels`` 14 s,
``mjr_render`` 4 s), encoding them with ffmpeg 0.6 s. So the progress counter ticks per
frame appended, as frames are rendered, and :meth:`VideoWriter.close` says where the file is.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

from mimickit.util.errors import MimicKitError

PROGRESS_INTERVAL_S = 0.1  # least time between redraws of the frame counter (s)


class VideoWriter:
    """Append ``[height, width, 3]`` uint8 frames to an MP4 file written at ``fps``.

    Args:
        path: the MP4 file; its folder is made.
        fps: frames per second of the video (the control rate for a simulation).
        progress: show a frame counter on stderr; ``None``: only where stderr is a terminal.

    Raises:
        MimicKitError: when imageio with its ffmpeg plugin is not installed.
    """

    def __init__(self, path: str, fps: float, progress: Optional[bool] = None):
        try:
            import imageio
        except ImportError as e:
            raise MimicKitError("--video needs imageio and imageio-ffmpeg: pip install -e \".[video]\"") from e
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.fps = float(fps)
        self.num_frames = 0
        self._writer = imageio.get_writer(path, fps=fps, macro_block_size=1)
        self._bar = tqdm(desc="recording " + path, unit="frame", leave=False, file=sys.stderr, dynamic_ncols=True,
                         mininterval=PROGRESS_INTERVAL_S, disable=None if progress is None else not progress,
                         bar_format="{desc}: {n_fmt} frames [{elapsed}, {rate_fmt}]")

    def append(self, frame: np.ndarray) -> None:
        """Append one ``[height, width, 3]`` uint8 frame."""
        self._writer.append_data(frame)
        self.num_frames += 1
        self._bar.update(1)

    def close(self) -> None:
        """Finish the file and print ``wrote <path> (<frames> frames, <seconds> s)``; later calls do nothing."""
        if self._writer is None:
            return
        self._bar.close()
        writer, self._writer = self._writer, None
        writer.close()
        print("wrote {} ({} frames, {:.1f} s)".format(self.path, self.num_frames, self.num_frames / self.fps))

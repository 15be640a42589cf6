"""MP4 recording of rendered frames through imageio (the ``video`` extra)."""
from __future__ import annotations

import os

import numpy as np

from mimickit.util.errors import MimicKitError


class VideoWriter:
    """Append ``[height, width, 3]`` uint8 frames to an MP4 file written at ``fps``.

    Raises:
        MimicKitError: when imageio with its ffmpeg plugin is not installed.
    """

    def __init__(self, path: str, fps: float):
        try:
            import imageio
        except ImportError as e:
            raise MimicKitError("--video needs imageio and imageio-ffmpeg: pip install -e \".[video]\"") from e
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._writer = imageio.get_writer(path, fps=fps, macro_block_size=1)

    def append(self, frame: np.ndarray) -> None:
        """Append one ``[height, width, 3]`` uint8 frame."""
        self._writer.append_data(frame)

    def close(self) -> None:
        """Finish the file; call once, after the last frame."""
        self._writer.close()

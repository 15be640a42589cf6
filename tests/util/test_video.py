"""MP4 recording (mimickit/util/video.py): where the video went, and progress while frames come.

imageio is an optional extra: a stand-in module records what the writer is given, and one
test encodes a real file where imageio-ffmpeg is installed.
"""
import sys
import types

import numpy as np
import pytest

from mimickit.util import video as video_module
from mimickit.util.video import VideoWriter


class FakeWriter:
    def __init__(self, path, fps, **kwargs):
        self.path, self.fps, self.kwargs = path, fps, kwargs
        self.frames = []
        self.closed = 0

    def append_data(self, frame):
        self.frames.append(frame)

    def close(self):
        self.closed += 1


@pytest.fixture
def fake_imageio(monkeypatch):
    writers = []
    module = types.ModuleType("imageio")

    def get_writer(path, fps, **kwargs):
        writers.append(FakeWriter(path, fps, **kwargs))
        return writers[-1]

    module.get_writer = get_writer
    monkeypatch.setitem(sys.modules, "imageio", module)
    return writers


def frames(n, height=8, width=16):
    return [np.full((height, width, 3), i, dtype=np.uint8) for i in range(n)]


def test_close_prints_one_line_naming_the_path_the_frames_and_the_seconds(tmp_path, capsys, fake_imageio):
    path = str(tmp_path / "out" / "video.mp4")
    video = VideoWriter(path, fps=30.0, progress=False)
    for frame in frames(45):
        video.append(frame)
    video.close()
    out = capsys.readouterr().out
    assert out == "wrote {} (45 frames, 1.5 s)\n".format(path)
    assert len(fake_imageio[0].frames) == 45 and fake_imageio[0].closed == 1
    video.close()  # a second close neither writes nor prints again
    assert capsys.readouterr().out == "" and fake_imageio[0].closed == 1


def test_progress_counts_the_frames_written_on_stderr(tmp_path, capsys, fake_imageio, monkeypatch):
    monkeypatch.setattr(video_module, "PROGRESS_INTERVAL_S", 0.0)  # redraw at every frame
    path = str(tmp_path / "video.mp4")
    video = VideoWriter(path, fps=30.0, progress=True)
    for frame in frames(3):
        video.append(frame)
    err = capsys.readouterr().err
    video.close()
    assert "video.mp4" in err and "3 frames" in err


def test_no_progress_where_stderr_is_not_a_terminal_by_default(tmp_path, capsys, fake_imageio):
    video = VideoWriter(str(tmp_path / "video.mp4"), fps=30.0)  # pytest's captured stderr is no terminal
    for frame in frames(3):
        video.append(frame)
    video.close()
    assert capsys.readouterr().err == ""


def test_a_real_mp4_has_the_frames_written(tmp_path, capsys):
    imageio = pytest.importorskip("imageio")
    pytest.importorskip("imageio_ffmpeg")
    path = str(tmp_path / "video.mp4")
    video = VideoWriter(path, fps=10.0, progress=False)
    for frame in frames(12, 32, 48):
        video.append(frame)
    video.close()
    assert "wrote {} (12 frames, 1.2 s)".format(path) in capsys.readouterr().out
    reader = imageio.get_reader(path)
    assert sum(1 for _ in reader) == 12
    reader.close()

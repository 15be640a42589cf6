"""The MuJoCo engines' viewer (mimickit/engines/mujoco_scene.py): one MimicKitError without a
display, and a close() that returns when the viewer's thread does not end.

Without a display MuJoCo's passive viewer kills the process from its thread (``ERROR: could
not initialize GLFW``, exit 1), so those runs happen in a subprocess. The close path is driven
with a stand-in viewer handle and thread: no display is needed and nothing waits on a clock
beyond the short join timeout the test sets.
"""
import atexit
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import yaml

from mimickit.engines import mujoco_scene
from mimickit.engines.engine_builder import build_engine

REPO = Path(__file__).resolve().parents[2]
HUMANOID = str(REPO / "data/assets/humanoid/humanoid.xml")

OPEN_VIEWER = """
import sys
from mimickit.engines.engine_builder import build_engine
from mimickit.util.errors import MimicKitError
engine = build_engine(sys.argv[1], 1, "cpu", True)
engine.add_character(sys.argv[2], "humanoid")
try:
    engine.initialize()
except MimicKitError as error:
    print("MimicKitError: " + str(error))
    sys.exit(2)
engine.close()
print("viewer opened")
"""


def open_viewer_in_subprocess(tmp_path, display=None):
    config = tmp_path / "engine.yaml"
    config.write_text(yaml.safe_dump({"engine_name": "mujoco", "num_threads": 1}))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display is not None:
        env["DISPLAY"] = display
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", OPEN_VIEWER, str(config), HUMANOID], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("display", [None, ":4711"], ids=["DISPLAY_unset", "DISPLAY_without_server"])
def test_viewer_without_display_raises_one_error_saying_what_to_do_without_glfw_noise(tmp_path, display):
    result = open_viewer_in_subprocess(tmp_path, display)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("MimicKitError: "), result.stdout
    message = lines[0]
    assert "display" in message and "--video true" in message and "xvfb-run" in message
    assert "GLFWError" not in result.stderr and "could not initialize GLFW" not in result.stderr, result.stderr


class StuckViewer:
    """A viewer handle whose window thread is ``thread``; close() asks it to stop."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.closed = 0

    def close(self):
        self.closed += 1
        self.stop.set()

    def is_running(self):
        return not self.stop.is_set()


def make_engine(tmp_path):
    config = tmp_path / "engine.yaml"
    config.write_text(yaml.safe_dump({"engine_name": "mujoco", "num_threads": 1}))
    engine = build_engine(str(config), 1, "cpu", False)
    engine.add_character(HUMANOID, "humanoid")
    engine.initialize()
    return engine


def test_close_returns_and_skips_glfw_terminate_when_the_viewer_thread_does_not_end(tmp_path, monkeypatch):
    import glfw
    engine = make_engine(tmp_path)
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, daemon=True)  # ignores the close request
    stuck.start()
    viewer = StuckViewer(threading.Event())
    engine._viewer, engine._viewer_threads = viewer, [stuck]
    unregistered = []
    monkeypatch.setattr(atexit, "unregister", unregistered.append)
    monkeypatch.setattr(mujoco_scene, "VIEWER_CLOSE_TIMEOUT_S", 0.05)
    try:
        with pytest.warns(UserWarning, match="viewer"):
            engine.close()
        assert viewer.closed == 1
        assert glfw.terminate in unregistered  # the exit would block in glfw.terminate
    finally:
        release.set()
        stuck.join()


def test_close_waits_for_the_viewer_thread_to_end_and_leaves_glfw_terminate(tmp_path, monkeypatch):
    engine = make_engine(tmp_path)
    stop = threading.Event()
    ended = []

    def window_thread():
        stop.wait()
        ended.append(True)

    thread = threading.Thread(target=window_thread, daemon=True)
    thread.start()
    viewer = StuckViewer(stop)
    engine._viewer, engine._viewer_threads = viewer, [thread]
    unregistered = []
    monkeypatch.setattr(atexit, "unregister", unregistered.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.close()
    assert viewer.closed == 1 and ended == [True] and not thread.is_alive()
    assert unregistered == []

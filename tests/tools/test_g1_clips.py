"""The shipped G1 clips (data/motions/g1/) are what the retargeting command makes of the shipped humanoid clips,
stay within the G1's joint limits and play on it (the DeepMimic G1 env trains on one)."""
import glob
import os

import numpy as np
import pytest

from mimickit.anim.kin_char_model import KinCharModel
from mimickit.anim.motion import Motion
from tools.retarget.ik import import_mink
from tools.retarget_motion import main as retarget_main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
G1 = os.path.join(REPO, "data/assets/g1/g1.xml")
CLIPS = sorted(glob.glob(os.path.join(REPO, "data/motions/g1/g1_*.npz")))


def test_nine_g1_clips_ship_within_the_joint_limits():
    kin = KinCharModel(G1)
    low, high = kin.dof_low.numpy(), kin.dof_high.numpy()
    assert len(CLIPS) == 9
    for path in CLIPS:
        clip = Motion.load(path)
        assert list(clip.dof_names) == kin.dof_names, path
        dofs = clip.frames[:, 6:]
        assert np.all(dofs >= low - 1e-6) and np.all(dofs <= high + 1e-6), path


@pytest.mark.skipif(import_mink() is None, reason="mink is not installed (pip install -e \".[retarget]\")")
def test_the_walk_is_what_the_retargeting_command_makes_of_the_humanoid_walk(tmp_path):
    source = os.path.join(REPO, "data/motions/humanoid/humanoid_walk_forward_medium.npz")
    out = str(tmp_path / "walk.npz")
    mapping = os.path.join(REPO, "tools/retarget/mappings/humanoid_to_g1.yaml")
    assert retarget_main(["--target_char", G1, "--mapping", mapping, "--out", out, source]) == 0
    made, shipped = Motion.load(out), Motion.load(os.path.join(REPO, "data/motions/g1/g1_walk_forward_medium.npz"))
    assert made.fps == shipped.fps and made.loop_mode == shipped.loop_mode
    np.testing.assert_allclose(made.frames, shipped.frames, atol=1e-5)

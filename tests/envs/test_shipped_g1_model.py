"""The shipped G1 walk model (data/models/deepmimic_g1_walk.pt) still tracks its clip with the shipped configs."""
import json
import os

from mimickit.run import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_shipped_g1_walk_model_tracks_the_retargeted_walk(tmp_path, monkeypatch):
    """Measured at shipping (32 episodes, seed 0): success 1.00, body_pos_err 0.0138 m; 4 episodes here (0.0139 m).
    The issue's bar: success >= 0.9 and body error <= 5 cm."""
    monkeypatch.chdir(REPO)
    assert main(["--arg_file", "args/deepmimic_g1_ppo_args.txt", "--mode", "test", "--model_file",
                 "data/models/deepmimic_g1_walk.pt", "--num_envs", "4", "--test_episodes", "4", "--rand_seed", "0",
                 "--out_dir", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "eval.json").read_text())
    assert stats["success_rate"] >= 0.9 and stats["body_pos_err_m"] <= 0.05, stats

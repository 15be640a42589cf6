"""A tiny PPO policy trained briefly on the DeepMimic humanoid, then exported (shared by the export tests).

Built once per pytest process: training 128 samples and exporting take a few seconds.
Without the export packages (onnx, onnxscript, onnxruntime) the tests that use it skip.
"""
import os
from typing import Dict

import pytest

from mimickit.learning.export import EXPORT_PACKAGES, INSTALL_HINT
from mimickit.run import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE = os.path.join("data", "engines", "mujoco_engine.yaml")
ENV = os.path.join("data", "envs", "deepmimic_humanoid_env.yaml")
TINY_AGENT = """agent_name: PPO
steps_per_iter: 16
iters_per_output: 2
test_episodes: 0
actor_net: fc_1layers_32units
critic_net: fc_1layers_32units
action_std: 0.05
actor_batch_size: 64
critic_batch_size: 64
actor_epochs: 1
critic_epochs: 1
"""

_CACHE = {}  # type: Dict[str, str]


def require_export_packages() -> None:
    """Skip the calling test unless every package ``--mode export`` needs imports."""
    for name in EXPORT_PACKAGES:
        pytest.importorskip(name, reason="{} is not installed ({})".format(name, INSTALL_HINT))


def tiny_export(tmp_path_factory) -> Dict[str, str]:
    """Train the tiny model and export it with ``--mode export``, once; returns the paths.

    Keys: ``agent`` (its YAML), ``model`` (``model.pt``), ``export`` (the export folder),
    ``argv`` (the run flags naming the engine, env and agent configs). Paths of the
    configs are relative to the repository root, which must be the working directory.
    Skips the calling test when a package of ``EXPORT_PACKAGES`` is not installed.
    """
    require_export_packages()
    if _CACHE:
        return _CACHE
    assert os.getcwd() == REPO or os.path.samefile(os.getcwd(), REPO), "run the tests from the repository root"
    root = tmp_path_factory.mktemp("tiny_policy")
    agent = root / "agent.yaml"
    agent.write_text(TINY_AGENT)
    argv = ["--engine_config", ENGINE, "--env_config", ENV, "--agent_config", str(agent)]
    assert main(argv + ["--num_envs", "4", "--max_samples", "128", "--rand_seed", "1",
                        "--out_dir", str(root / "train")]) == 0
    model = str(root / "train" / "model.pt")
    assert main(argv + ["--mode", "export", "--model_file", model, "--out_dir", str(root / "export"),
                        "--rand_seed", "2"]) == 0
    _CACHE.update(agent=str(agent), model=model, export=str(root / "export"), argv=argv)
    return _CACHE

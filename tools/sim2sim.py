"""Sim-to-sim check: run an exported ONNX policy with onnxruntime in the environment it was trained for.

    python tools/sim2sim.py output/export/policy.onnx --num_envs 4 --test_episodes 32 --rand_seed 0

No torch model code runs: actions come from ``onnxruntime`` alone, fed the raw
observations (and, for a hierarchical policy, the latent it holds, :class:`OnnxPolicy`).
The environment is built by mimickit from the configs that
``--mode export`` copied next to the policy (``engine.yaml``, ``env.yaml``; their SHA-256
must match the sidecar's), its observation layout, action size, dof names, control mode
and frequency are checked against the sidecar (``policy.json``), and the episodes run
through the same loop as ``run.py --mode test``, so the ``eval.json`` written has the
same keys. With the same ``--num_envs``, ``--test_episodes`` and ``--rand_seed`` as a
test run, the episodes start from the same states; the metrics then differ only by the
simulation's sensitivity to the tiny (~1e-7) differences between onnxruntime's and
torch's arithmetic. Run it from the repository root (the configs' asset paths are
relative to it).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mimickit.envs.base_env import BaseEnv  # noqa: E402
from mimickit.envs.env_builder import build_env  # noqa: E402
from mimickit.learning.evaluation import evaluate_perturbations, run_test_episodes, write_eval  # noqa: E402
from mimickit.learning.export import CONFIG_FILES, SIDECAR_FILE, check_env_matches, file_sha256, load_sidecar  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from tools.cli import run_tool  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", help="policy.onnx written by run.py --mode export")
    p.add_argument("--sidecar", help="its sidecar (default: policy.json next to the policy)")
    p.add_argument("--num_envs", type=int, default=1, help="environments in parallel (default 1)")
    p.add_argument("--test_episodes", type=int, default=10, help="episodes to run (default 10)")
    p.add_argument("--rand_seed", type=int, help="seed the episode starts as run.py --mode test does")
    p.add_argument("--out_dir", help="where eval.json goes (default: the policy's folder)")
    p.add_argument("--env_config", help="use this env YAML instead of the exported copy (no hash check)")
    p.add_argument("--engine_config", help="use this engine YAML instead of the exported copy (no hash check)")
    p.add_argument("--motion_file", help="replace the env config's motion_file (default: the export's)")
    p.add_argument("--char_file", help="replace the env config's char_file, e.g. the vendor's robot file "
                                       "(default: the export's)")
    p.add_argument("--perturbations", help="a perturbation set (YAML of named domain_rand blocks, e.g. "
                   "data/perturbations/quadruped.yaml): the episodes under each, all in eval.json")
    p.add_argument("--device", default="cpu", help="torch device of the environment (default cpu)")
    p.add_argument("--visualize", action="store_true", help="open a viewer window")
    return p


def _config_path(sidecar: Dict[str, Any], folder: str, key: str, override: Optional[str],
                 source: str) -> str:
    """The config to build with: ``override``, or the exported copy after checking its hash."""
    if override is not None:
        return override
    entry = sidecar["configs"][key]
    path = os.path.join(folder, entry.get("file", CONFIG_FILES[key]))
    if not os.path.isfile(path):
        raise MimicKitError("{}: the exported {} config {} is missing (pass --{}_config)".format(
            source, key, path, key))
    if file_sha256(path) != entry["sha256"]:
        raise MimicKitError("{}: {} was changed after the export (sha256 differs from the sidecar's); "
                            "pass --{}_config to run with another config on purpose".format(source, path, key))
    return path


class OnnxPolicy:
    """An exported policy evaluated by onnxruntime: :meth:`act` per control step, :meth:`on_reset` per episode start.

    A hierarchical policy (the sidecar's ``hierarchy``, HRL) holds a latent per env: it asks
    for a new one (``new_latent`` 1) at each episode's first control step and every
    ``llc_steps`` after, and feeds ``next_latent`` back.

    Args:
        policy_file: ``policy.onnx``.
        sidecar: its sidecar mapping.
        num_envs: environments stepped together.
        device: torch device of the environment's tensors.

    Raises:
        MimicKitError: when onnxruntime is missing or the file is not a readable ONNX
            model with the sidecar's input and output names.
    """

    def __init__(self, policy_file: str, sidecar: Dict[str, Any], num_envs: int, device: str):
        try:
            import onnxruntime
        except ImportError as e:
            raise MimicKitError("onnxruntime is not installed (pip install -e \".[onnx]\")") from e
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(policy_file, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise MimicKitError("{}: cannot load it as an ONNX model ({})".format(
                policy_file, str(e).split("\n")[0])) from e
        names = sidecar["onnx"]
        self.inputs = names.get("inputs", [names["input"]])
        self.outputs = names.get("outputs", [names["output"]])
        found_in = [i.name for i in self.session.get_inputs()]
        found_out = [o.name for o in self.session.get_outputs()]
        if found_in != self.inputs or not set(self.outputs) <= set(found_out):
            raise MimicKitError("{}: expected inputs {} and outputs {}, the model has inputs {} and outputs {}".format(
                policy_file, self.inputs, self.outputs, found_in, found_out))
        self.device = device
        self.hierarchy = sidecar.get("hierarchy")
        if self.hierarchy is not None:
            self.latent = np.zeros((num_envs, self.hierarchy["latent_dim"]), dtype=np.float32)
            self.steps = np.zeros(num_envs, dtype=np.int64)  # control steps since each episode started

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """``[num_envs, obs_dim]`` raw observations -> ``[num_envs, action_dim]`` env actions."""
        feed = {self.inputs[0]: obs.detach().cpu().numpy().astype(np.float32)}
        if self.hierarchy is None:
            return torch.from_numpy(self.session.run(self.outputs[:1], feed)[0]).to(self.device)
        h = self.hierarchy
        feed[h["latent_input"]] = self.latent
        feed[h["new_latent_input"]] = (self.steps % h["llc_steps"] == 0).astype(np.float32)[:, None]
        action, self.latent = self.session.run([self.outputs[0], h["latent_output"]], feed)
        self.steps += 1
        return torch.from_numpy(action).to(self.device)

    def on_reset(self, env_ids: torch.Tensor) -> None:
        """Episodes start in ``env_ids`` (long ``[k]``): a hierarchical policy takes a new latent next."""
        if self.hierarchy is not None:
            self.steps[env_ids.cpu().numpy()] = 0


def run_sim2sim(policy_file: str, sidecar_file: Optional[str] = None, num_envs: int = 1, test_episodes: int = 10,
                rand_seed: Optional[int] = None, env_config: Optional[str] = None,
                engine_config: Optional[str] = None, motion_file: Optional[str] = None, device: str = "cpu",
                visualize: bool = False, char_file: Optional[str] = None,
                perturbations: Optional[str] = None) -> Dict[str, Any]:
    """Run ``test_episodes`` episodes of the ONNX policy; return the ``eval.json`` statistics.

    With ``perturbations`` (a perturbation set YAML), ``{name: statistics}`` of the episodes
    under each (:func:`mimickit.learning.evaluation.evaluate_perturbations`), each from ``rand_seed``.

    Raises:
        MimicKitError: on a missing or foreign file, a config changed since the export,
            or an environment that does not match the sidecar.
    """
    if not os.path.isfile(policy_file):
        raise MimicKitError("policy file not found: {}".format(policy_file))
    folder = os.path.dirname(os.path.abspath(policy_file))
    sidecar_file = sidecar_file or os.path.join(folder, SIDECAR_FILE)
    sidecar = load_sidecar(sidecar_file)
    sidecar_folder = os.path.dirname(os.path.abspath(sidecar_file))
    env_path = _config_path(sidecar, sidecar_folder, "env", env_config, sidecar_file)
    engine_path = _config_path(sidecar, sidecar_folder, "engine", engine_config, sidecar_file)
    policy = OnnxPolicy(policy_file, sidecar, num_envs, device)
    motion_file = motion_file if motion_file is not None else sidecar["env"].get("motion_file")
    char_file = char_file if char_file is not None else sidecar["env"].get("char_file")
    env: BaseEnv = build_env(env_path, engine_path, num_envs, device, visualize, motion_file=motion_file,
                             char_file=char_file)
    try:
        check_env_matches(sidecar, env, sidecar_file)

        def test() -> Dict[str, float]:
            return run_test_episodes(env, policy.act, test_episodes, seed=rand_seed, on_reset=policy.on_reset)

        return test() if perturbations is None else evaluate_perturbations(env, perturbations, test)
    finally:
        env.close()


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool; returns the exit status (0, or 2 after a user mistake)."""
    args = build_parser().parse_args(argv)
    return run_tool(lambda: _sim2sim_to_eval(args))


def _sim2sim_to_eval(args: argparse.Namespace) -> None:
    """:func:`run_sim2sim` with the flags, then ``eval.json``."""
    if args.num_envs < 1 or args.test_episodes < 1:
        raise MimicKitError("--num_envs and --test_episodes must be >= 1")
    stats = run_sim2sim(args.policy, args.sidecar, args.num_envs, args.test_episodes, args.rand_seed,
                        args.env_config, args.engine_config, args.motion_file, args.device, args.visualize,
                        args.char_file, args.perturbations)
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.policy))
    os.makedirs(out_dir, exist_ok=True)
    write_eval(stats, os.path.join(out_dir, "eval.json"))


if __name__ == "__main__":
    sys.exit(main())

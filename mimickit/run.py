"""Entry point: parse the flags, build engine -> env -> agent, then train or test.

Run as ``python mimickit/run.py --arg_file args/deepmimic_humanoid_ppo_args.txt``,
``python -m mimickit.run ...`` or the ``mimickit`` console script. ``--help`` lists the
flags (declared in :class:`mimickit.util.arg_parser.RunArgs`). A user mistake prints one
line, ``error: ...``, on stderr and exits with code 2.
"""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Run as a script: make the repository root, the parent of mimickit/, importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import glob
import importlib.util
import shutil
import signal
import threading
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from mimickit.util import distributed
from mimickit.util.arg_parser import RunArgs, help_text, parse_args, to_arg_lines
from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError

if TYPE_CHECKING:
    from mimickit.envs.base_env import BaseEnv
    from mimickit.learning.base_agent import BaseAgent
    from mimickit.learning.runner import Runner

# Files whose presence marks a folder as holding a training run.
RUN_FILES = ("model.pt", "log.txt")
INT_MODEL_DIR = "int_models"

# Observations of a deterministic rollout on which --mode export checks the exported files.
EXPORT_CHECK_OBS = 1000

# Logger formats that need a package beyond the core dependencies, and how to get it.
_LOGGER_PACKAGES = {"tb": ("tensorboard", "pip install tensorboard"),
                    "wandb": ("wandb", "pip install -e \".[wandb]\"")}


def _require_file(path: Optional[str], flag: str, what: str) -> str:
    """Return ``path`` when it names an existing file, else raise naming ``flag``."""
    if path is None:
        raise MimicKitError("--{}: not given (expected {})".format(flag, what))
    if not os.path.isfile(path):
        raise MimicKitError("--{}: file not found: {}".format(flag, path))
    return path


def _check_device(device: str) -> None:
    """Raise when ``device`` is not a torch device this machine has."""
    import torch
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise MimicKitError("--device: expected a torch device such as cpu or cuda:0, got '{}'".format(device)) from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MimicKitError("--device {}: CUDA is not available on this machine; use --device cpu".format(device))


def _seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's random number generators."""
    from mimickit.learning.evaluation import seed_generators
    seed_generators(seed)


def _save_run_config(args: RunArgs, configs: Dict[str, str]) -> None:
    """Copy the three configs into ``out_dir`` and write ``args.txt`` that reruns the same flags, atomically."""
    for key, src in configs.items():
        dst = os.path.join(args.out_dir, key + ".yaml")
        if not (os.path.exists(dst) and os.path.samefile(src, dst)):
            with open(src, "rb") as f_in, atomic_write(dst) as f_out:
                f_out.write(f_in.read())
    with atomic_write(os.path.join(args.out_dir, "args.txt"), "w") as f:
        f.write(to_arg_lines(args))


def _holds_run(folder: str) -> bool:
    """Whether ``folder`` holds a training run (its ``model.pt`` or ``log.txt``)."""
    return any(os.path.isfile(os.path.join(folder, name)) for name in RUN_FILES)


def _check_run_folder(args: RunArgs) -> None:
    """Refuse to train into a folder that holds a run, unless resuming it or told to replace it.

    Raises:
        MimicKitError: naming the folder and the three ways on.
    """
    if _holds_run(args.out_dir) and not (args.resume or args.overwrite):
        raise MimicKitError("--out_dir {} holds a training run ({}): say --resume true to continue it, "
                            "--overwrite true to replace it, or give another --out_dir".format(
                                args.out_dir, ", ".join(n for n in RUN_FILES
                                                        if os.path.isfile(os.path.join(args.out_dir, n)))))


def _clear_run_folder(args: RunArgs) -> None:
    """Prepare ``out_dir`` for training.

    Removes stale temporary files (of a save killed mid-write) and, with ``--overwrite`` and
    no ``--resume``, the replaced run's ``model.pt``, ``log.txt`` and ``int_models/``.
    """
    for folder in (args.out_dir, os.path.join(args.out_dir, INT_MODEL_DIR)):
        for path in glob.glob(os.path.join(folder, "*.tmp")):
            os.remove(path)
    if args.overwrite and not args.resume:
        for name in RUN_FILES:
            if os.path.isfile(os.path.join(args.out_dir, name)):
                os.remove(os.path.join(args.out_dir, name))
        shutil.rmtree(os.path.join(args.out_dir, INT_MODEL_DIR), ignore_errors=True)


def _output_dir(args: RunArgs, out_dir_given: bool) -> str:
    """Where this run writes.

    ``out_dir``, except for test and export when ``out_dir`` holds a training run that the
    command line did not name (e.g. an arg file's training folder): then its ``test/``
    (``export/``) subfolder.
    """
    if args.mode == "train" or args.overwrite or out_dir_given or not _holds_run(args.out_dir):
        return args.out_dir
    return os.path.join(args.out_dir, args.mode)


def _export(args: RunArgs, configs: Dict[str, str], runner: Runner, agent: BaseAgent,
            model_file: Optional[str], out_dir: str) -> None:
    """Write the deployment files of ``agent``'s policy into ``out_dir`` and check them.

    See :mod:`mimickit.learning.export`; the check compares the files' outputs with the
    torch policy's on :data:`EXPORT_CHECK_OBS` observations of a deterministic rollout (the
    test-mode policy, :meth:`BaseAgent.deterministic_env_action`).
    """
    from mimickit.learning.export import SIDECAR_FILE, collect_obs, export_policy
    from mimickit.util.config import load_yaml
    agent.build_deploy_policy()  # refuses an agent that cannot be exported before the rollout
    obs = collect_obs(runner.env, agent.deterministic_env_action, EXPORT_CHECK_OBS, on_reset=agent.on_reset)
    sidecar = export_policy(agent, runner.env, out_dir, configs, load_yaml(configs["env"])["env_name"],
                            model_file=model_file, env_overrides={"motion_file": args.motion_file,
                                                                  "char_file": args.char_file}, verify_obs=obs,
                            trained=(runner.iteration, runner.sample_count))
    check = sidecar["verification"]
    for name in (sidecar["files"]["onnx"], sidecar["files"]["torchscript"], SIDECAR_FILE):
        print("wrote " + os.path.join(out_dir, name))
    print("largest difference from the torch policy's actions on {} rollout observations: onnx {:.2e}, "
          "torchscript {:.2e}".format(check["num_obs"], check["max_abs_err_onnx"], check["max_abs_err_torchscript"]))


def run(args: RunArgs, out_dir_given: bool = True) -> None:
    """Build engine -> env -> agent from ``args`` and run its mode.

    Run folders: training refuses an ``out_dir`` that holds a run (``model.pt`` or
    ``log.txt``) unless ``--resume true`` or ``--overwrite true``; test and export write into
    ``<out_dir>/test`` (``export``) when ``out_dir`` holds a run and ``out_dir_given`` is
    false (it came from an arg file or the default), so they never mix their files with a
    training run's unless told. Nothing is written before every input has been checked
    (configs, model file, env and agent built).

    train: loads ``--model_file`` (or, with ``--resume true``, ``<out_dir>/model.pt`` when
    no model file is given), writes ``engine.yaml``, ``env.yaml``, ``agent.yaml`` and
    ``args.txt`` into ``out_dir`` atomically, then trains. test: loads ``--model_file`` (a
    learning agent without it needs ``--random_policy true``),
    runs ``--test_episodes`` episodes (with ``--rand_seed``, the generators are seeded
    again right before the first episode, so ``tools/sim2sim.py`` with the same seed and
    ``--num_envs`` starts the same episodes), prints the statistics and writes
    ``eval.json``; ``--latent_seed`` runs every episode under the one latent drawn from
    that seed (ASE). export: loads ``--model_file`` and writes ``policy.onnx``,
    ``policy.pt``, ``policy.json`` and the config copies into ``out_dir``
    (:mod:`mimickit.learning.export`), with one environment.

    Under ``torchrun`` (or ``--num_workers``) every process runs this with its own envs,
    device (``cuda`` -> ``cuda:<local rank>``) and seed (``--rand_seed`` + rank), and
    rank 0 alone writes files (:mod:`mimickit.util.distributed`).

    Raises:
        MimicKitError: on a missing config or model file, an unusable device or logger,
            missing export packages, or any user mistake found while building.
    """
    configs = {"engine": _require_file(args.engine_config, "engine_config",
                                       "the engine YAML, e.g. data/engines/mujoco_engine.yaml"),
               "env": _require_file(args.env_config, "env_config", "the environment YAML under data/envs/"),
               "agent": _require_file(args.agent_config, "agent_config", "the agent YAML under data/agents/")}
    if args.motion_file is not None:
        _require_file(args.motion_file, "motion_file", "a motion file")
    if args.char_file is not None:
        _require_file(args.char_file, "char_file", "a character MJCF or URDF")
    model_file = args.model_file
    if args.mode == "train" and args.resume and model_file is None:
        model_file = os.path.join(args.out_dir, "model.pt")
    if model_file is not None:
        _require_file(model_file, "model_file", "a model saved by training")
    if args.latent_seed is not None and args.mode != "test":
        raise MimicKitError("--latent_seed: only for --mode test (training draws its latents at random)")
    if args.perturbations is not None and args.mode != "test":
        raise MimicKitError("--perturbations: only for --mode test")
    if args.mode == "export":
        if distributed.launched_by_torchrun():
            raise MimicKitError("--mode export: runs in one process (without torchrun or --num_workers)")
        if model_file is None:
            raise MimicKitError("--model_file: not given (expected the model saved by training to export)")
        from mimickit.learning.export import check_export_packages
        check_export_packages()
    if args.mode == "train" and args.logger in _LOGGER_PACKAGES:
        package, install = _LOGGER_PACKAGES[args.logger]
        if importlib.util.find_spec(package) is None:
            raise MimicKitError("--logger {}: the {} package is not installed ({})".format(
                args.logger, package, install))
    _check_device(args.device)
    if args.mode == "train":
        _check_run_folder(args)
    out_dir = _output_dir(args, out_dir_given)
    device = distributed.setup(args.device)
    seed = None if args.rand_seed is None else args.rand_seed + distributed.rank()
    if seed is not None:
        _seed(seed)

    # Imported here so that flag errors and --help answer without loading torch.
    from mimickit.envs.env_builder import build_env
    from mimickit.learning.agent_builder import build_agent
    from mimickit.learning.evaluation import write_eval
    from mimickit.learning.runner import Runner

    main = distributed.is_main()
    video_file = os.path.join(out_dir, "video.mp4") if args.video and main else None
    num_envs = 1 if args.mode == "export" else args.num_envs
    env = build_env(configs["env"], configs["engine"], num_envs, device, args.visualize and main,
                    motion_file=args.motion_file, video_file=video_file, char_file=args.char_file)
    try:
        agent = build_agent(configs["agent"], env, device)
        runner = Runner(agent, env, device)
        if model_file is not None:
            runner.load(model_file)
        elif args.mode == "test" and agent.TRAINS and not args.random_policy:
            raise MimicKitError("--mode test: --model_file not given (expected the model saved by training; "
                                "--random_policy true tests the untrained policy)")
        if args.latent_seed is not None:
            from mimickit.learning.ase_agent import set_fixed_latent
            set_fixed_latent(agent, args.latent_seed)
        max_samples = agent.config.max_samples if args.max_samples is None else args.max_samples
        if args.mode == "train" and args.resume and runner.sample_count >= max_samples:
            raise MimicKitError("--resume: {} has trained {} samples, max_samples is {}: nothing left to train "
                                "(raise --max_samples to continue)".format(model_file, runner.sample_count,
                                                                             max_samples))
        if args.mode == "train":
            runner.check_trainable()
        runner.sync_ranks()  # every rank has checked the run folder and built; all start from rank 0's model
        _make_dir(out_dir)
        if args.mode == "train":
            if main:
                _clear_run_folder(args)
                _save_run_config(args, configs)
            runner.train(max_samples=max_samples, out_dir=out_dir, logger=args.logger)
        elif args.mode == "export":
            _export(args, configs, runner, agent, model_file, out_dir)
        else:
            stats = _test(args, runner, env, seed)
            if main:
                write_eval(stats, os.path.join(out_dir, "eval.json"))
    finally:
        env.close()
        distributed.teardown()


def _test(args: RunArgs, runner: Runner, env: BaseEnv, seed: Optional[int]) -> Dict[str, Any]:
    """The test statistics: of the env as configured, or ``{perturbation: statistics}`` with ``--perturbations``.

    Each test starts from the same seed (when given), so every perturbation meets the same episode starts.

    Raises:
        MimicKitError: a bad perturbation file, or an env that cannot be randomised.
    """
    from mimickit.learning.evaluation import evaluate_perturbations

    def test() -> Dict[str, float]:
        if seed is not None:
            _seed(seed)  # the episodes draw the same starts whatever building drew
        return runner.test(num_episodes=args.test_episodes)

    if args.perturbations is None:
        return test()
    return evaluate_perturbations(env, args.perturbations, test)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings`` output as one ``warning: ...`` line (no source line)."""
    return "warning: {}\n".format(" ".join(str(message).split("\n")))


def _make_dir(folder: str) -> None:
    """Create ``folder`` (and its parents).

    Raises:
        MimicKitError: naming the folder when it cannot be created.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise MimicKitError("--out_dir: cannot create {}: {}".format(folder, e.strerror)) from e


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _interrupt_on_signals() -> None:
    """Turn SIGINT and SIGTERM into ``KeyboardInterrupt``.

    This also holds where a shell started us in the background with SIGINT ignored
    (``nohup ... &``) or a cluster stops the job.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _launch_workers(num_workers: int, argv: List[str]) -> int:
    """``--num_workers K``: run these flags in K processes on this machine with ``torchrun --standalone``.

    torchrun's elastic agent starts the ranks (``python -m mimickit.run`` with the same
    flags) and stops them all when one fails. Returns 0, or 1 when a rank failed (its
    error is printed by the rank and by torchrun).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun
    try:
        torchrun(["--standalone", "--nproc_per_node", str(num_workers), "--module", "mimickit.run"] + argv)
    except ChildFailedError:
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run with the flags ``argv`` (default ``sys.argv[1:]``); return the exit code.

    0: done; 2: a user mistake, printed as one ``error: ...`` line on stderr; 130:
    interrupted by Ctrl-C, SIGINT or SIGTERM (training saves ``model.pt`` first).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    _interrupt_on_signals()
    warnings.formatwarning = _one_line_warning
    if "-h" in argv or "--help" in argv:
        try:
            print(help_text())
        except BrokenPipeError:  # e.g. `mimickit --help | head -3`: the reader left, nothing to report
            sys.stdout = open(os.devnull, "w")
        return 0
    try:
        args = parse_args(argv)
        if args.num_workers > 1 and not distributed.launched_by_torchrun():
            return _launch_workers(args.num_workers, argv)
        run(args, out_dir_given="--out_dir" in argv)
    except MimicKitError as e:
        print("error: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generate gait clips for a robot, check them, and write a dataset YAML.

The robot's settings (``tools/gait_generation/robots/<robot>.yaml``) name its
``generator``: ``placo_biped`` (placo's walk pattern generator, needs ``pip install -e
".[gait]"``) or ``quadruped`` (the kinematic gaits of
:mod:`tools.gait_generation.quadruped_gait`, numpy only). Usage (from the repository root)::

    python tools/gait_generation/generate.py --robot duckling --preset all
    python tools/gait_generation/generate.py --robot humanoid --preset all
    python tools/gait_generation/generate.py --robot quadruped --preset all
    python tools/gait_generation/generate.py --robot duckling --preset grid --out_dir output/walks
    python tools/gait_generation/generate.py --robot duckling --preset random --num_random 20 --seed 3
    python tools/gait_generation/generate.py --robot duckling --preset walk_forward_fast --out_dir /tmp/x
    python tools/gait_generation/generate.py --robot duckling --check    # check the shipped clips only

Presets: ``all`` (the clips shipped in ``data/motions/<robot>/``, listed under ``shipped``
in ``tools/gait_generation/robots/<robot>.yaml``), ``grid`` (every direction x speed, and
idle), ``random`` (``--num_random`` commands drawn with ``--seed`` within the fast speed's
step sizes), or one clip name (``walk_forward_medium``, ``turn_left_slow``, ``idle``, ...).

For the quadruped, the clip names are the keys of ``clips`` in its settings, ``grid`` is all
of them and ``random`` draws trot commands (see :func:`quadruped_requests`).

Each clip is ``<robot>_<name>.npz`` in the output folder: one steady-state gait cycle in
``wrap`` mode with extras ``command`` (``[vx m/s, vy m/s, wz rad/s]``, the root velocity
the footstep plan commands, heading frame), ``measured_root_vel`` (the clip's mean root
velocity, same frame) and, for bipeds, ``step_command`` (``[dx m, dy m, dtheta rad]`` per
step), for the quadruped ``foot_contacts`` (the stance schedule). A clip
whose content is unchanged (within 1e-5) is not rewritten, so regenerating leaves the
shipped files as they are. The quality report (see :mod:`tools.gait_generation.quality`)
is printed after the clips; the exit code is 1 if a clip fails it, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np

from mimickit.anim.motion import Motion
from mimickit.anim.motion_lib import load_dataset, save_dataset
from mimickit.util.config import load_config, load_yaml
from mimickit.util.errors import MimicKitError
from tools.gait_generation.quadruped_gait import QuadrupedConfig, QuadrupedGait, quadruped_requests
from tools.gait_generation.quality import ClipChecker, ClipReport, format_report
from tools.gait_generation.robot import (REPO_ROOT, RobotConfig, available_robots, parse_clip_name,
                                         robot_config_path, step_command)

PRESETS = ("all", "grid", "random")


@dataclasses.dataclass
class ClipRequest:
    """One clip to generate: its name and per-step command ``(dx m, dy m, dtheta rad)``
    (None for idle), and the speed whose timing it uses."""

    name: str
    step: Optional[Tuple[float, float, float]]
    speed: Optional[str]


def resolve_preset(config: RobotConfig, preset: str, num_random: int, seed: int) -> List[ClipRequest]:
    """The clips of ``preset`` (see the module docstring).

    Raises:
        MimicKitError: on an unknown preset or clip name.
    """
    if preset == "random":
        rng = np.random.default_rng(seed)
        fast = max(config.speeds, key=lambda s: config.speeds[s].forward)
        medium = sorted(config.speeds, key=lambda s: config.speeds[s].forward)[len(config.speeds) // 2]
        sp = config.speeds[fast]
        out = []
        for i in range(num_random):
            dx = float(rng.uniform(-sp.backward, sp.forward))
            dy = float(rng.uniform(-sp.lateral, sp.lateral))
            dtheta = float(rng.uniform(-sp.turn, sp.turn))
            out.append(ClipRequest("random_{:03d}".format(i), (dx, dy, dtheta), medium))
        return out
    names = {"all": config.shipped, "grid": config.clip_names()}.get(preset, [preset])
    out = []
    for name in names:
        parsed = parse_clip_name(name, config, "--preset")
        if parsed is None:
            out.append(ClipRequest(name, None, None))
        else:
            out.append(ClipRequest(name, step_command(config, *parsed), parsed[1]))
    return out


def _speed_walk(config: RobotConfig, speed: Optional[str]):
    if speed is None or config.speeds[speed].single_support_duration is None:
        return config.walk
    return dataclasses.replace(config.walk, single_support_duration=config.speeds[speed].single_support_duration)


def generate_clip(walker, request: ClipRequest) -> Motion:
    """One clip from placo (``walker`` is a :class:`PlacoWalker`)."""
    from tools.gait_generation.clip import make_motion

    config = walker.config
    if request.step is None:
        traj = walker.idle()
        command = np.zeros(3)
        step = np.zeros(3)
    else:
        walk = _speed_walk(config, request.speed)
        traj = walker.walk(*request.step, walk=walk)
        command = walker.footstep_velocity(*request.step, walk=walk)
        step = np.array(request.step)
    return make_motion(walker.kin, traj.root_pos, traj.root_rot, traj.dof_pos, traj.fps, "wrap", command,
                       extras={"step_command": step.astype(np.float32)})


def same_clip(a: Motion, b: Motion, atol: float = 1e-5) -> bool:
    """True if two clips hold the same frames, settings and extras (within ``atol``)."""
    if (a.loop_mode, a.dof_names, a.frames.shape, sorted(a.extras)) != (b.loop_mode, b.dof_names, b.frames.shape,
                                                                        sorted(b.extras)):
        return False
    if abs(a.fps - b.fps) > 1e-9 or not np.allclose(a.frames, b.frames, atol=atol, rtol=0):
        return False
    return all(np.allclose(a.extras[k], b.extras[k], atol=atol, rtol=0) for k in a.extras)


def save_if_changed(motion: Motion, path: str) -> bool:
    """Write ``motion`` unless ``path`` already holds the same clip; True if written."""
    if os.path.isfile(path):
        try:
            if same_clip(motion, Motion.load(path)):
                return False
        except MimicKitError:
            pass
    motion.save(path)
    return True


def dataset_entry_path(path: str) -> str:
    """A clip path for a dataset YAML: relative to the repository root when inside it."""
    path = os.path.abspath(path)
    rel = os.path.relpath(path, REPO_ROOT)
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def write_dataset(path: str, clip_paths: Sequence[str], robot: str) -> None:
    """A dataset YAML (``motions: [{file, weight}]``) listing ``clip_paths`` with weight 1."""
    header = ("# {} clips generated by tools/gait_generation/generate.py --robot {}; paths relative to the\n"
              "# repository root. Regenerate rather than edit.\n").format(len(clip_paths), robot)
    save_dataset(path, [dataset_entry_path(p) for p in clip_paths], [1.0] * len(clip_paths), header)


def _placo_producer(config: RobotConfig) -> Callable[[ClipRequest], Motion]:
    try:
        from tools.gait_generation.placo_walk import PlacoWalker
    except ImportError as e:
        raise MimicKitError(str(e))
    walker = PlacoWalker(config)
    return lambda request: generate_clip(walker, request)


@dataclasses.dataclass
class Generator:
    """One way of making a robot's clips, chosen by the ``generator`` key of its settings.

    config_class: the settings dataclass (with ``shipped``, ``out_dir``, ``dataset_file``,
    ``path()``); requests: ``(config, preset, num_random, seed)`` -> requests with a
    ``name``; producer: ``config`` -> a function from a request to its :class:`Motion`
    (may import optional packages); foot_bodies: ``config`` -> the feet the checks watch.
    """

    config_class: type
    requests: Callable[[Any, str, int, int], List[Any]]
    producer: Callable[[Any], Callable[[Any], Motion]]
    foot_bodies: Callable[[Any], List[str]]


GENERATORS: Dict[str, Generator] = {
    "placo_biped": Generator(RobotConfig, resolve_preset, _placo_producer,
                             lambda c: [c.left_foot_body, c.right_foot_body]),
    "quadruped": Generator(QuadrupedConfig, quadruped_requests, lambda c: QuadrupedGait(c).clip,
                           lambda c: c.foot_bodies()),
}


def load_settings(robot: str) -> Tuple[Generator, Any]:
    """The generator and settings of ``robot`` (a name under ``robots/`` or a YAML path).

    Raises:
        MimicKitError: for an unknown robot or generator (listing the known ones) or a bad key.
    """
    path = robot if robot.endswith((".yaml", ".yml")) else robot_config_path(robot)
    if not os.path.isfile(path):
        raise MimicKitError("unknown robot '{}' (no {}); known robots: {}".format(
            robot, path, ", ".join(available_robots())))
    name = load_yaml(path).get("generator", "placo_biped")
    if name not in GENERATORS:
        raise MimicKitError("{}: key 'generator': unknown generator '{}'; expected one of {}".format(
            path, name, ", ".join(GENERATORS)))
    generator = GENERATORS[name]
    return generator, load_config(generator.config_class, path)


def check_clips(config: Any, paths: Sequence[str], foot_bodies: Sequence[str]) -> List[ClipReport]:
    """Quality reports of the clips at ``paths``."""
    checker = ClipChecker(config.path(config.char_file), foot_bodies, config.quality)
    return [checker.check(Motion.load(p), os.path.splitext(os.path.basename(p))[0]) for p in paths]


def run(args: argparse.Namespace) -> int:
    generator, config = load_settings(args.robot)
    robot = os.path.splitext(os.path.basename(args.robot))[0]
    feet = generator.foot_bodies(config)
    if args.check:
        dataset = args.dataset or config.path(config.dataset_file)
        files, _ = load_dataset(dataset)
        reports = check_clips(config, files, feet)
        print(format_report(reports))
        return 0 if all(r.passed for r in reports) else 1

    requests = generator.requests(config, args.preset, args.num_random, args.seed)
    out_dir = args.out_dir or config.path(config.out_dir)
    if args.dataset:
        dataset = args.dataset
    elif args.preset == "all" and args.out_dir is None:
        dataset = config.path(config.dataset_file)
    else:
        dataset = os.path.join(out_dir, "{}_{}.yaml".format(robot, args.preset))

    from tqdm import tqdm

    produce = generator.producer(config)
    checker = ClipChecker(config.path(config.char_file), feet, config.quality)
    os.makedirs(out_dir, exist_ok=True)
    reports, paths, written = [], [], 0
    for request in tqdm(requests, desc="{} clips".format(robot), unit="clip"):
        motion = produce(request)
        path = os.path.join(out_dir, "{}_{}.npz".format(robot, request.name))
        written += save_if_changed(motion, path)
        paths.append(path)
        reports.append(checker.check(motion, request.name))
    write_dataset(dataset, paths, robot)
    print(format_report(reports))
    print("wrote {} of {} clips to {} ({} unchanged); dataset {}".format(
        written, len(paths), out_dir, len(paths) - written, dataset))
    return 0 if all(r.passed for r in reports) else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate gait clips (see the module docstring).")
    parser.add_argument("--robot", required=True,
                        help="robot name ({}) or a settings YAML".format(", ".join(available_robots())))
    parser.add_argument("--preset", default="all",
                        help="all, grid, random, or a clip name such as walk_forward_medium, idle or "
                             "trot_forward_fast")
    parser.add_argument("--out_dir", default=None, help="folder for the clips (default: the robot's out_dir)")
    parser.add_argument("--dataset", default=None, help="dataset YAML to write (or to check with --check)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random preset")
    parser.add_argument("--num_random", type=int, default=10, help="clips of the random preset")
    parser.add_argument("--check", action="store_true",
                        help="only check the clips of the robot's dataset (no placo needed)")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except MimicKitError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""What the policy tools share: the flags naming a trained model and its configs, loading it, and the exit code.

``tools/steering_profile.py``, ``tools/view_skills.py``, ``tools/sim2sim.py``,
``tools/import_motion.py`` and ``tools/retarget_motion.py`` use it, so that they report a user
mistake the same way as ``run.py`` (one ``error: ...`` line on stderr, exit code 2).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from mimickit.envs.base_env import BaseEnv
from mimickit.envs.env_builder import build_env
from mimickit.learning.agent_builder import build_agent
from mimickit.learning.base_agent import BaseAgent
from mimickit.learning.runner import Runner
from mimickit.util.errors import MimicKitError


def add_model_flags(parser: argparse.ArgumentParser, model_help: str, env_config: str, agent_config: str,
                    num_envs: int) -> None:
    """``--model_file`` (required), ``--env_config``, ``--engine_config``, ``--agent_config``, ``--motion_file``,
    ``--char_file`` and ``--num_envs``, with the given defaults."""
    parser.add_argument("--model_file", required=True, help=model_help)
    parser.add_argument("--env_config", default=env_config)
    parser.add_argument("--engine_config", default="data/engines/mujoco_engine.yaml")
    parser.add_argument("--agent_config", default=agent_config)
    parser.add_argument("--motion_file", default=None, help="overrides the env config's motion_file")
    parser.add_argument("--char_file", default=None, help="overrides the env config's char_file")
    parser.add_argument("--num_envs", type=int, default=num_envs)


def load_model(args: argparse.Namespace, video_file: Optional[str] = None,
               check_env: Optional[Callable[[BaseEnv], None]] = None) -> Tuple[BaseEnv, BaseAgent]:
    """The env and agent of :func:`add_model_flags`' flags on the CPU, the model loaded.

    ``video_file``: record env 0 there. ``check_env(env)`` may refuse the env before the
    agent is built. The env is closed when anything fails.

    Raises:
        MimicKitError: a config or the model does not fit (the message names it).
    """
    env = build_env(args.env_config, args.engine_config, args.num_envs, "cpu", False,
                    motion_file=args.motion_file, video_file=video_file, char_file=args.char_file)
    try:
        if check_env is not None:
            check_env(env)
        agent = build_agent(args.agent_config, env, "cpu")
        Runner(agent, env, "cpu").load(args.model_file)
    except BaseException:
        env.close()
        raise
    return env, agent


def clip_outputs(inputs: List[str], out: Optional[str], out_dir: Optional[str]) -> List[str]:
    """The ``.npz`` path each input clip is written to: ``--out`` (one input) or ``<out_dir>/<input name>.npz``.

    Raises:
        MimicKitError: --out and --out_dir both or neither, --out with several inputs, two
            inputs that would be written to one file.
    """
    if out and out_dir:
        raise MimicKitError("give --out or --out_dir, not both")
    if out:
        if len(inputs) > 1:
            raise MimicKitError("--out names one clip but {} inputs were given; use --out_dir".format(len(inputs)))
        return [out]
    if not out_dir:
        raise MimicKitError("give --out FILE.npz (one input) or --out_dir DIR")
    outs = [os.path.join(out_dir, os.path.splitext(os.path.basename(p))[0] + ".npz") for p in inputs]
    seen: Dict[str, str] = {}
    for src, path in zip(inputs, outs):
        if path in seen:
            raise MimicKitError("inputs {} and {} would both be written to {}".format(seen[path], src, path))
        seen[path] = src
    return outs


def run_tool(tool: Callable[[], Any]) -> int:
    """Run ``tool()``; 0, or 2 after printing a :class:`MimicKitError` as one ``error: ...`` line on stderr."""
    try:
        tool()
    except MimicKitError as e:
        print("error: " + " ".join(str(e).split("\n")), file=sys.stderr)
        return 2
    return 0

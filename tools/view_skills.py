r"""Latent skills of a trained ASE low-level policy: how the character moves under each latent.

    python tools/view_skills.py --env_config data/envs/amp_humanoid_env.yaml \
        --agent_config data/agents/ase_humanoid_agent.yaml --model_file output/ase_humanoid/model.pt \
        --num_latents 16 --num_envs 4 --steps 300 --rand_seed 0 --out_dir output/skills [--video] [--frames K]

Latent ``k`` is the one drawn from seed ``k`` (:meth:`ASEAgent.use_fixed_latent`, as
``run.py --mode test --latent_seed k``). For each latent the generators are seeded with
``--rand_seed`` (so every latent's episodes start from the same states), all envs are
reset and the deterministic policy runs for ``--steps`` control steps on ``--num_envs``
envs; envs whose episode ends are reset, as in test episodes. From the simulated
character (world frame) each latent gets: the mean horizontal root speed (m/s), the mean
root velocity in the heading frame (forward, left; m/s), the mean absolute and the mean
signed heading rate (rad/s, the root's yaw rate), falls per minute of simulated time,
and a pose: the body positions relative to the root in the heading frame (m), averaged
over time.

Skill diversity: each env's run is cut into ``--windows`` time windows; a (env, window)
pair is a *group* with its mean heading-frame velocity and mean pose. ``between`` is the
spread of the per-latent means across latents, ``within`` the spread of one latent's
groups about that latent's mean, averaged over latents (:func:`skill_spread`).
``between / within`` well above 1 says distinct latents give distinct motions; latents
that all did the same would give about ``1 / sqrt(groups)``.

It prints one row per latent and the diversity summary and writes ``<out_dir>/skills.json``.
``--video`` records env 0 of each latent to ``<out_dir>/skill_<k>.mp4`` (the env is built
again per latent with its video file; needs ``pip install -e ".[video]"`` and an offscreen
OpenGL context, e.g. ``MUJOCO_GL=egl``); ``--frames K`` writes ``<out_dir>/skill_<k>.png``,
K frames of env 0 evenly spaced over the run, side by side. Run it from the repository root.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from mimickit.envs.base_env import DoneFlags  # noqa: E402
from mimickit.learning.agent_builder import AGENTS  # noqa: E402
from mimickit.learning.ase_agent import ASEAgent  # noqa: E402
from mimickit.learning.evaluation import seed_generators  # noqa: E402
from mimickit.util.atomic_file import atomic_write  # noqa: E402
from mimickit.util.config import load_yaml  # noqa: E402
from mimickit.util.errors import MimicKitError  # noqa: E402
from mimickit.util.torch_util import calc_heading, calc_heading_quat_inv, quat_rotate, wrap_angle  # noqa: E402
from tools.cli import add_model_flags, load_model, run_tool  # noqa: E402

FRAME_SIZE = (640, 480)  # rendered frame (width, height), the size the env's video records
FRAME_STRIDE = 2  # --frames keeps every 2nd pixel: 320x240 per frame in the strip


# ---------------------------------------------------------------------- measures (pure)
def horizontal_speed(root_vel: Tensor) -> Tensor:
    """Horizontal root speed ``|(v_x, v_y)|``: ``root_vel`` ``[..., 3]`` m/s (world, z up) -> ``[...]`` m/s."""
    return torch.linalg.norm(root_vel[..., :2], dim=-1)


def heading_velocity(root_rot: Tensor, root_vel: Tensor) -> Tensor:
    """Root velocity in the heading frame, ``[..., 2]`` m/s (forward, left).

    Args:
        root_rot: ``[..., 4]`` root rotations (x, y, z, w).
        root_vel: ``[..., 3]`` m/s, world frame.
    """
    return quat_rotate(calc_heading_quat_inv(root_rot), root_vel)[..., :2]


def heading_rate(prev_root_rot: Tensor, root_rot: Tensor, dt: float) -> Tensor:
    """Yaw rate of the root's heading over one step, ``[...]`` rad/s (positive: turning left, about +z).

    The heading change is wrapped to ``[-pi, pi)``, so it is right for turns below ``pi``
    per step.

    Args:
        prev_root_rot: ``[..., 4]`` root rotations at the start of the step.
        root_rot: ``[..., 4]`` at its end.
        dt: s, the step's duration.
    """
    return wrap_angle(calc_heading(root_rot) - calc_heading(prev_root_rot)) / dt


def local_body_pos(root_pos: Tensor, root_rot: Tensor, body_pos: Tensor) -> Tensor:
    """Pose descriptor: body positions relative to the root in the heading frame, flattened.

    Args:
        root_pos: ``[..., 3]`` m, world.
        root_rot: ``[..., 4]`` root rotations.
        body_pos: ``[..., num_bodies, 3]`` m, world.

    Returns:
        ``[..., num_bodies * 3]`` m, body by body (x forward, y left, z up).
    """
    rel = body_pos - root_pos.unsqueeze(-2)
    inv = calc_heading_quat_inv(root_rot).unsqueeze(-2).expand(rel.shape[:-1] + (4,))
    local = quat_rotate(inv, rel)
    return local.reshape(local.shape[:-2] + (-1,))


def rms_dist(x: Tensor, ref: Tensor) -> Tensor:
    """Root mean square over the last dimension of ``x - ref``: ``[..., dim]`` -> ``[...]``, in ``x``'s unit."""
    return (x - ref).square().mean(dim=-1).sqrt()


def skill_spread(groups: Tensor) -> Tuple[Tensor, Tensor]:
    """Spread of a descriptor between latents and within a latent.

    ``between = sqrt(mean_{k,d} (m_kd - M_d)^2)`` with ``m_k`` latent ``k``'s mean over its
    groups and ``M`` the mean of the ``m_k``: the population std across latents, RMS over
    the descriptor's dimensions (so ``between^2`` is the mean of :func:`rms_dist` ``(m_k, M)^2``).
    ``within = mean_k sqrt(mean_{g,d} (x_kgd - m_kd)^2)``: each latent's std across its
    groups, RMS over dimensions, averaged over latents.

    Args:
        groups: ``[num_latents, num_groups, dim]`` the descriptor's mean per latent and group
            (an env's time window), any unit.

    Returns:
        ``(between, within)``, scalars in ``groups``' unit.
    """
    means = groups.mean(dim=1)
    between = rms_dist(means, means.mean(dim=0)).square().mean().sqrt()
    within = rms_dist(groups, means.unsqueeze(1)).square().mean(dim=1).sqrt().mean()
    return between, within


def window_index(num_steps: int, num_windows: int) -> Tensor:
    """``[num_steps]`` long: the time window (``0 .. num_windows - 1``, near-equal lengths) of each step."""
    return torch.arange(num_steps) * num_windows // num_steps


# ---------------------------------------------------------------------- running the latents
def build_parser() -> argparse.ArgumentParser:
    """The tool's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, "model.pt of an ASE agent", "data/envs/amp_humanoid_env.yaml",
                    "data/agents/ase_humanoid_agent.yaml", num_envs=4)
    p.add_argument("--num_latents", type=int, default=16, help="latents 0 .. N-1 (latent k: drawn from seed k)")
    p.add_argument("--steps", type=int, default=300, help="control steps per latent")
    p.add_argument("--windows", type=int, default=3, help="time windows per env run, for the within-latent spread")
    p.add_argument("--rand_seed", type=int, default=0, help="seeds the generators before each latent's run")
    p.add_argument("--out_dir", default="output/skills", help="where skills.json (and videos, frames) go")
    p.add_argument("--video", action="store_true", help="record env 0 of each latent to skill_<k>.mp4")
    p.add_argument("--frames", type=int, default=0,
                   help="K > 0: a strip of K frames of env 0 per latent, skill_<k>.png")
    return p


def check_counts(args: argparse.Namespace) -> None:
    """Raise :class:`MimicKitError` naming the flag when a count is out of range."""
    for flag in ("num_latents", "num_envs", "steps", "windows"):
        if getattr(args, flag) < 1:
            raise MimicKitError("--{} must be >= 1, got {}".format(flag, getattr(args, flag)))
    if args.windows > args.steps:
        raise MimicKitError("--windows {} exceeds --steps {}: a window needs a step".format(args.windows, args.steps))
    if args.num_envs * args.windows < 2:
        raise MimicKitError("--num_envs {} x --windows {}: the spread within a latent needs at least 2 "
                            "(env, window) groups".format(args.num_envs, args.windows))
    if not 0 <= args.frames <= args.steps:
        raise MimicKitError("--frames must be in 0 .. --steps ({}), got {}".format(args.steps, args.frames))


def check_agent_is_ase(agent_config: str) -> None:
    """Raise :class:`MimicKitError` naming ``--agent_config`` unless it names an ASE agent (builds nothing)."""
    agent_class = AGENTS.lookup(load_yaml(agent_config), agent_config)
    if not issubclass(agent_class, ASEAgent):
        raise MimicKitError("--agent_config {}: agent '{}' has no latent skills (only ASE models have latents)".format(
            agent_config, getattr(agent_class, "NAME", agent_class.__name__)))


def run_latent(env: Any, agent: ASEAgent, latent_seed: int, steps: int, num_windows: int, rand_seed: int,
               frame_steps: Tuple[int, ...] = ()) -> Dict[str, Any]:
    """Run the deterministic policy under latent ``latent_seed`` for ``steps`` control steps; measure the motion.

    ``env`` is a character env (``char_state``, ``control_dt``, ``engine``). The generators are
    seeded with ``rand_seed`` right before the first reset; envs whose episode ends are reset
    and ``agent.on_reset`` is told, as in test episodes.

    Returns:
        ``latent`` ``[latent_dim]``; per (window, env) group, ``vel`` ``[num_windows * num_envs, 2]``
        m/s (heading frame) and ``pose`` ``[num_windows * num_envs, pose_dim]`` m (:func:`local_body_pos`);
        the means over all steps and envs ``root_speed`` (m/s), ``heading_rate_abs`` and
        ``heading_rate`` (rad/s); ``falls`` (steps that ended an episode with ``DoneFlags.FAIL``),
        ``falls_per_min`` (per minute of simulated time over all envs); ``frames``, env 0's
        images after each step in ``frame_steps``.
    """
    num_envs, dt = env.num_envs, float(env.control_dt)
    latent = agent.use_fixed_latent(latent_seed).clone()
    window = window_index(steps, num_windows).tolist()
    vel_sum = torch.zeros(num_windows, num_envs, 2)
    pose_sum = torch.zeros(num_windows, num_envs, 3 * env.char_state.body_pos.shape[-2])
    window_steps = torch.zeros(num_windows)
    speed_sum = yaw_abs_sum = yaw_sum = 0.0
    falls = 0
    frames = []
    seed_generators(rand_seed)
    obs = env.reset()
    agent.on_reset(torch.arange(num_envs, device=env.device))
    with torch.no_grad():
        for step in range(steps):
            prev_rot = env.char_state.root_rot.clone()
            obs, _, done, _ = env.step(agent.deterministic_env_action(obs))
            state = env.char_state
            w = window[step]
            vel_sum[w] += heading_velocity(state.root_rot, state.root_vel).cpu()
            pose_sum[w] += local_body_pos(state.root_pos, state.root_rot, state.body_pos).cpu()
            window_steps[w] += 1
            yaw = heading_rate(prev_rot, state.root_rot, dt)
            speed_sum += float(horizontal_speed(state.root_vel).sum())
            yaw_abs_sum += float(yaw.abs().sum())
            yaw_sum += float(yaw.sum())
            falls += int((done == DoneFlags.FAIL).sum())
            if step in frame_steps:
                frames.append(env.engine.render_frame(*FRAME_SIZE)[::FRAME_STRIDE, ::FRAME_STRIDE])
            env_ids = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
            if len(env_ids) > 0:
                obs = env.reset(env_ids)
                agent.on_reset(env_ids)
    count = window_steps.view(-1, 1, 1)
    num = steps * num_envs
    return dict(latent=latent.cpu(), vel=(vel_sum / count).flatten(0, 1), pose=(pose_sum / count).flatten(0, 1),
                root_speed=speed_sum / num, heading_rate_abs=yaw_abs_sum / num, heading_rate=yaw_sum / num,
                falls=falls, falls_per_min=falls / (num * dt / 60.0), frames=frames)


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per-latent rows and the diversity summary of :func:`run_latent`'s results (latent ``k`` = ``runs[k]``).

    Returns:
        ``latents``: one dict per latent (its means, ``vel`` and ``pose`` over its groups, and
        ``pose_dist``, :func:`rms_dist` of its mean pose to the mean over latents, m);
        ``diversity``: ``velocity`` (m/s) and ``pose`` (m), each ``between``, ``within`` and
        ``ratio`` (None when ``within`` is 0).
    """
    vel = torch.stack([r["vel"] for r in runs])
    pose = torch.stack([r["pose"] for r in runs])
    latent_pose = pose.mean(dim=1)
    pose_dist = rms_dist(latent_pose, latent_pose.mean(dim=0))
    rows = []
    for k, run in enumerate(runs):
        forward, left = run["vel"].mean(dim=0).tolist()
        rows.append(dict(latent=k, root_speed=run["root_speed"], forward_vel=forward, left_vel=left,
                         heading_rate_abs=run["heading_rate_abs"], heading_rate=run["heading_rate"],
                         falls=run["falls"], falls_per_min=run["falls_per_min"], pose_dist=float(pose_dist[k]),
                         z=run["latent"].tolist(), pose=latent_pose[k].tolist()))
    diversity = {}
    for name, groups in (("velocity", vel), ("pose", pose)):
        between, within = (float(x) for x in skill_spread(groups))
        diversity[name] = dict(between=between, within=within, ratio=between / within if within > 0 else None)
    return dict(latents=rows, diversity=diversity)


def print_summary(summary: Dict[str, Any], num_groups: int) -> None:
    """The per-latent table and the diversity lines."""
    print("{:>6} {:>10} {:>9} {:>9} {:>11} {:>10} {:>9} {:>10}".format(
        "latent", "speed m/s", "fwd m/s", "left m/s", "|yaw| r/s", "yaw r/s", "falls/min", "pose d m"))
    for row in summary["latents"]:
        print("{:>6d} {:>10.3f} {:>9.3f} {:>9.3f} {:>11.3f} {:>10.3f} {:>9.2f} {:>10.4f}".format(
            row["latent"], row["root_speed"], row["forward_vel"], row["left_vel"], row["heading_rate_abs"],
            row["heading_rate"], row["falls_per_min"], row["pose_dist"]))
    print("skill diversity over {} (env, window) groups per latent:".format(num_groups))
    print("{:>14} {:>10} {:>10} {:>15}".format("", "between", "within", "between/within"))
    for name, unit in (("velocity", "m/s"), ("pose", "m")):
        d = summary["diversity"][name]
        ratio = "inf" if d["ratio"] is None else "{:.2f}".format(d["ratio"])
        print("{:>14} {:>10.4f} {:>10.4f} {:>15}".format(name + " " + unit, d["between"], d["within"], ratio))


def write_strip(frames: List[np.ndarray], path: str) -> None:
    """Write ``[height, width, 3]`` uint8 frames side by side as one PNG (needs imageio)."""
    try:
        import imageio
    except ImportError as e:
        raise MimicKitError("--frames needs imageio: pip install -e \".[video]\"") from e
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.imwrite(path, np.concatenate(frames, axis=1))
    print("wrote " + path)


def view_skills(args: argparse.Namespace) -> Dict[str, Any]:
    """Run every latent as the module docstring says; print and write ``skills.json``; return its content.

    Raises:
        MimicKitError: on a bad count, a missing file, an agent that is not ASE or a model that does not load.
    """
    check_counts(args)
    for flag in ("model_file", "env_config", "engine_config", "agent_config"):
        if not os.path.isfile(getattr(args, flag)):
            raise MimicKitError("--{}: file not found: {}".format(flag, getattr(args, flag)))
    check_agent_is_ase(args.agent_config)
    frame_steps = tuple(int(s) for s in np.linspace(0, args.steps - 1, args.frames).round()) if args.frames else ()
    runs = []
    env, agent = None, None
    try:
        for k in range(args.num_latents):
            if env is None or args.video:  # an env records one video file: a new env per latent
                if env is not None:
                    env.close()
                    env = None
                video_file = os.path.join(args.out_dir, "skill_{}.mp4".format(k)) if args.video else None
                env, agent = load_model(args, video_file)
                assert isinstance(agent, ASEAgent), "check_agent_is_ase first"
            runs.append(run_latent(env, agent, k, args.steps, args.windows, args.rand_seed, frame_steps))
            if frame_steps:
                write_strip(runs[-1]["frames"], os.path.join(args.out_dir, "skill_{}.png".format(k)))
        control_dt = float(env.control_dt)
    finally:
        if env is not None:
            env.close()
    summary = summarize(runs)
    print_summary(summary, args.num_envs * args.windows)
    content = dict(model_file=args.model_file, env_config=args.env_config, agent_config=args.agent_config,
                   engine_config=args.engine_config, num_envs=args.num_envs, steps=args.steps, windows=args.windows,
                   rand_seed=args.rand_seed, control_dt=control_dt,
                   pose_layout="body positions relative to the root, heading frame (x forward, y left, z up), m",
                   body_names=list(env.kin_char_model.body_names), **summary)
    path = os.path.join(args.out_dir, "skills.json")
    with atomic_write(path, "w") as f:
        json.dump(content, f, indent=2)
    print("wrote " + path)
    return content


def main(argv: Optional[List[str]] = None) -> int:
    """Run the tool; returns the exit status (0, or 2 after a user mistake)."""
    args = build_parser().parse_args(argv)
    return run_tool(lambda: view_skills(args))


if __name__ == "__main__":
    sys.exit(main())

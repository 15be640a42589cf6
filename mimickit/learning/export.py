"""Deployment export: the deterministic policy as ONNX and TorchScript, with a JSON sidecar.

:func:`export_policy` writes into a folder:

- ``policy.onnx`` and ``policy.pt`` (TorchScript): ``obs [batch, obs_dim] float32 ->
  action [batch, action_dim] float32`` (:class:`DeployPolicy`; a hierarchical controller's
  graph has more inputs and outputs, :class:`DeployModule`), the deterministic action (the Gaussian's mean) in
  the environment's units, computed from the *raw* observation. The graph holds the whole
  chain: ``clip((obs - mean) / std, -clip, clip)`` (the agent's frozen observation
  normaliser), the actor network, then ``offset + scale * a`` (the agent's
  :class:`mimickit.learning.base_agent.ActionScaling`). For the DeepMimic env in ``pos``
  control mode the output is the absolute PD target of every dof (rad, in the dof
  coordinates: hinge angles); in ``torque`` mode joint torques (N·m). Actions are not
  clipped in the graph; the simulator clips them to the actuator ranges.
- ``policy.json``, the sidecar (:func:`build_sidecar` lists the keys): observation layout,
  action meaning, scale and offset, dof names, default dof positions, PD gains, control
  frequency and the configs' SHA-256 hashes.
- ``engine.yaml``, ``env.yaml``, ``agent.yaml``: copies of the configs the policy was
  trained with (``tools/sim2sim.py`` builds the same environment from them).

The ONNX file is written with torch's ``torch.export``-based exporter, which needs the
``onnx`` and ``onnxscript`` packages (``pip install -e ".[onnx]"``, which also installs
``onnxruntime`` for :func:`verify_export`).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, DoneFlags
from mimickit.util.atomic_file import atomic_write
from mimickit.util.errors import MimicKitError

if TYPE_CHECKING:
    from mimickit.learning.base_agent import BaseAgent

ONNX_FILE = "policy.onnx"
TORCHSCRIPT_FILE = "policy.pt"
SIDECAR_FILE = "policy.json"
FORMAT = "mimickit.policy"
VERSION = 1
INPUT_NAME = "obs"
OUTPUT_NAME = "action"
CONFIG_FILES = {"engine": "engine.yaml", "env": "env.yaml", "agent": "agent.yaml"}
# Packages export needs, and how to get them.
EXPORT_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = "pip install -e \".[onnx]\""


class DeployModule(nn.Module):
    """What export needs of a deployable graph: its input and output names, example inputs, sidecar extras.

    The default is one input ``obs`` ``[batch, obs_dim]`` and one output ``action``; a
    stateful policy (HRL's held latent) declares the state as extra inputs and outputs and
    says in :meth:`sidecar_extras` how to feed them. The sidecar reads the buffers
    ``obs_mean``, ``obs_std`` (``[obs_dim]``, the normaliser of the observation input),
    ``action_offset``, ``action_scale`` (``[action_dim]``, env units) and the attribute
    ``obs_clip`` (not declared here: TorchScript cannot read this module's postponed
    annotations).
    """

    INPUT_NAMES: Tuple[str, ...] = (INPUT_NAME,)
    OUTPUT_NAMES: Tuple[str, ...] = (OUTPUT_NAME,)

    def example_inputs(self, obs: Tensor) -> Tuple[Tensor, ...]:
        """The graph's inputs for ``[n, obs_dim]`` raw observations (export examples, verification)."""
        return (obs,)

    def sidecar_extras(self) -> Dict[str, Any]:
        """Sidecar keys beside the common ones (none by default)."""
        return {}


class DeployPolicy(DeployModule):
    """Raw observation -> environment action of a deterministic policy, self-contained.

    ``forward(obs)`` = ``action_offset + action_scale * actor(clamp((obs - obs_mean) /
    obs_std, -obs_clip, obs_clip))``, all float32.

    Args:
        actor: ``[batch, obs_dim]`` normalised observations -> ``[batch, action_dim]``
            deterministic actions in the policy's normalised units.
        obs_mean, obs_std: ``[obs_dim]`` normaliser statistics (raw observation units).
        obs_clip: normalised observations are clipped to ``[-obs_clip, obs_clip]``.
        action_offset, action_scale: ``[action_dim]``, environment units.
    """

    def __init__(self, actor: nn.Module, obs_mean: Tensor, obs_std: Tensor, obs_clip: float,
                 action_offset: Tensor, action_scale: Tensor):
        super().__init__()
        self.actor = actor
        self.obs_clip = float(obs_clip)
        self.register_buffer("obs_mean", obs_mean.detach().to(torch.float32).clone())
        self.register_buffer("obs_std", obs_std.detach().to(torch.float32).clone())
        self.register_buffer("action_offset", action_offset.detach().to(torch.float32).clone())
        self.register_buffer("action_scale", action_scale.detach().to(torch.float32).clone())

    def forward(self, obs: Tensor) -> Tensor:
        """``[batch, obs_dim]`` raw observations -> ``[batch, action_dim]`` environment actions."""
        norm_obs = torch.clamp((obs - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)
        return self.action_offset + self.action_scale * self.actor(norm_obs)


def make_deploy_policy(actor: nn.Module, obs_mean: Tensor, obs_std: Tensor, obs_clip: float,
                       action_offset: Tensor, action_scale: Tensor) -> DeployPolicy:
    """A :class:`DeployPolicy` on the CPU in eval mode, holding a copy of ``actor``."""
    actor = copy.deepcopy(actor).to("cpu", torch.float32)
    return DeployPolicy(actor, obs_mean.cpu(), obs_std.cpu(), obs_clip, action_offset.cpu(),
                        action_scale.cpu()).eval()


def check_export_packages() -> None:
    """Raise :class:`MimicKitError` naming the missing packages when export cannot run."""
    missing = [p for p in EXPORT_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise MimicKitError("--mode export: the package(s) {} are not installed ({})".format(
            ", ".join(missing), INSTALL_HINT))


def collect_obs(env: BaseEnv, act: Callable[[Tensor], Tensor], num_obs: int,
                on_reset: Optional[Callable[[Tensor], None]] = None) -> Tensor:
    """Observations of a rollout: ``[num_obs, obs_dim]``, every env's state at each step.

    Resets every env, then steps with ``act(obs [num_envs, obs_dim]) -> [num_envs,
    action_dim]`` (environment units), resetting the envs whose episode ended, until
    ``num_obs`` observations are gathered; ``on_reset(env_ids)`` (long ``[k]``) follows every
    reset. Leaves the envs mid-episode.
    """
    obs = env.reset()
    if on_reset is not None:
        on_reset(torch.arange(env.num_envs, device=env.device))
    gathered: List[Tensor] = []
    count = 0
    with torch.no_grad():
        while count < num_obs:
            gathered.append(obs.detach().cpu().clone())
            count += obs.shape[0]
            obs, _, done, _ = env.step(act(obs))
            ended = (done != DoneFlags.NULL).nonzero(as_tuple=False).flatten()
            if len(ended) > 0:
                obs = env.reset(ended)
                if on_reset is not None:
                    on_reset(ended)
    return torch.cat(gathered)[:num_obs].to(torch.float32)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def as_floats(t: Tensor) -> List[float]:
    """``t``'s values as a flat list of Python floats (for the JSON sidecar)."""
    return [float(v) for v in t.detach().cpu().reshape(-1)]


def _character_info(env: BaseEnv) -> Dict[str, Any]:
    """Sidecar keys of a character environment (action meaning, dofs, gains, timing).

    Other environments get only ``action_meaning`` (``env_action``).
    """
    from mimickit.envs.char_env import CharEnv
    if not isinstance(env, CharEnv):
        return {"action_meaning": {"type": "env_action", "units": "unspecified",
                                   "description": "the environment's own action units"}}
    engine, char_id = env.engine, env.char_id
    low, high = engine.get_dof_limits(char_id)
    kp, kd = engine.get_pd_gains(char_id)
    if engine.control_mode == "pos":
        meaning = {"type": "pd_target", "units": "rad", "absolute": True,
                   "description": "absolute PD targets of the dofs (hinge angles, dof_names order), tracked "
                                  "by the character's position actuators with pd_gains; not offsets"}
    else:
        meaning = {"type": "torque", "units": "N*m", "absolute": True,
                   "description": "joint torques of the dofs (dof_names order)"}
    return {
        "action_meaning": meaning,
        "char_file": env.kin_char_model.file,
        "control_mode": engine.control_mode,
        "dof_names": list(engine.get_dof_names(char_id)),
        "body_names": list(engine.get_body_names(char_id)),
        # The character's default pose (its MJCF keyframe 'default', else every dof at 0 within the limits).
        "default_dof_pos": as_floats(env.kin_char_model.default_dof_pos.to(low).clamp(low, high)),
        "dof_limits": {"low": as_floats(low), "high": as_floats(high), "units": "rad"},
        "torque_limits": {"value": as_floats(engine.get_torque_limits(char_id)), "units": "N*m"},
        "pd_gains": {"kp": as_floats(kp), "kd": as_floats(kd), "kp_units": "N*m/rad", "kd_units": "N*m*s/rad"},
        "control_freq_hz": engine.config.control_freq,
        "sim_freq_hz": engine.config.sim_freq,
        "control_dt_s": engine.control_dt,
    }


def build_sidecar(agent: BaseAgent, policy: DeployModule, env: BaseEnv, configs: Dict[str, str], env_name: str,
                  model_file: Optional[str], env_overrides: Dict[str, Optional[str]],
                  trained: Tuple[int, int]) -> Dict[str, Any]:
    """The sidecar mapping of ``agent``'s policy on ``env``.

    Keys: ``format``, ``version``, ``files`` (``onnx``, ``torchscript``), ``onnx``
    (``input``/``output``: the observation's and the action's names; ``inputs``/``outputs``:
    every name in order; opset), ``observation`` (``size``, ``dtype``, ``layout``: a list
    of ``{name, start, end, units, frame}`` from :meth:`BaseEnv.get_obs_layout`,
    ``normalization`` inside the graph: ``mean``, ``std``, ``clip``), ``action``
    (``size``, ``scale``, ``offset``, ``low``, ``high``, ``clipped_in_graph``: false,
    ``meaning``: ``type`` ``pd_target`` / ``torque`` / ``env_action`` with ``units``), and
    for character envs ``char_file``, ``control_mode``, ``dof_names``, ``body_names``,
    ``default_dof_pos`` (rad), ``dof_limits``, ``torque_limits``, ``pd_gains`` (kp N·m/rad,
    kd N·m·s/rad), ``control_freq_hz``, ``sim_freq_hz``, ``control_dt_s``; then ``env``
    (``env_name``, then the ``motion_file`` and ``char_file`` overrides or null), ``source`` (model file, agent name,
    iteration, sample count, torch version), ``configs`` (per ``engine``/``env``/``agent``:
    ``file`` next to the sidecar, ``source`` path, ``sha256``), then
    :meth:`DeployModule.sidecar_extras` (HRL: ``hierarchy``).

    Args:
        agent: a :class:`mimickit.learning.base_agent.BaseAgent`.
        policy: its :meth:`build_deploy_policy`.
        env: the environment it acts in (for the layout, action space, dofs and gains).
        configs: ``{"engine": path, "env": path, "agent": path}`` of the run.
        env_name: the env config's ``env_name``.
        model_file: the loaded checkpoint, or ``None``.
        env_overrides: the env config values the run replaced, ``{"motion_file": path or None,
            "char_file": path or None}`` (``--motion_file``, ``--char_file``).
        trained: ``(iteration, sample_count)`` of the model's training
            (:class:`mimickit.learning.runner.Runner`'s counters).
    """
    space = env.get_action_space()
    obs_mean, obs_std, offset, scale = (getattr(policy, name) for name in
                                        ("obs_mean", "obs_std", "action_offset", "action_scale"))
    char = _character_info(env)
    meaning = char.pop("action_meaning")
    layout = [s._asdict() for s in env.get_obs_layout()]
    sidecar: Dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "files": {"onnx": ONNX_FILE, "torchscript": TORCHSCRIPT_FILE},
        "onnx": {"input": INPUT_NAME, "output": OUTPUT_NAME, "inputs": list(policy.INPUT_NAMES),
                 "outputs": list(policy.OUTPUT_NAMES), "batch_axis": 0, "dtype": "float32"},
        "observation": {
            "size": int(obs_mean.shape[0]),
            "dtype": "float32",
            "layout": layout,
            "normalization": {"in_graph": True, "formula": "clip((obs - mean) / std, -clip, clip)",
                              "mean": as_floats(obs_mean), "std": as_floats(obs_std), "clip": float(policy.obs_clip)},
        },
        "action": {
            "size": int(scale.shape[0]),
            "meaning": meaning,
            "formula": "offset + scale * a, a = actor output in normalised units (in the graph)",
            "scale": as_floats(scale),
            "offset": as_floats(offset),
            "low": as_floats(space.low),
            "high": as_floats(space.high),
            "clipped_in_graph": False,
        },
    }
    sidecar.update(char)
    sidecar["env"] = {"env_name": env_name, "motion_file": env_overrides.get("motion_file"),
                      "char_file": env_overrides.get("char_file")}
    sidecar["source"] = {"model_file": model_file, "agent_name": agent.NAME, "iteration": trained[0],
                         "sample_count": trained[1], "torch_version": torch.__version__}
    sidecar["configs"] = {key: {"file": CONFIG_FILES[key], "source": path, "sha256": file_sha256(path)}
                          for key, path in configs.items()}
    sidecar.update(policy.sidecar_extras())
    return sidecar


def _quiet_export(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with the exporters' deprecation warnings and progress logs silenced."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def write_onnx(policy: DeployModule, example_obs: Tensor, path: str) -> None:
    """Export ``policy`` to ``path`` (one file, dynamic batch axis ``batch`` on every input).

    Raises:
        MimicKitError: when ``onnx``/``onnxscript`` are missing.
    """
    check_export_packages()
    example = example_obs.detach().cpu().to(torch.float32)
    if example.shape[0] < 2:  # a batch of 1 would be specialised to a fixed size
        example = example.expand(2, -1).contiguous()
    inputs = policy.example_inputs(example)
    batch = torch.export.Dim("batch")

    def export() -> None:
        torch.onnx.export(policy, inputs, path, dynamo=True, input_names=list(policy.INPUT_NAMES),
                          output_names=list(policy.OUTPUT_NAMES), dynamic_shapes=tuple({0: batch} for _ in inputs),
                          external_data=False, verbose=False)

    _quiet_export(export)


def write_torchscript(policy: DeployModule, path: str) -> None:
    """Script ``policy`` and save it to ``path`` (load with ``torch.jit.load``)."""
    scripted = _quiet_export(lambda: torch.jit.script(policy))
    _quiet_export(lambda: torch.jit.save(scripted, path))


def _outputs(result: Any) -> List[Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def verify_export(policy: DeployModule, out_dir: str, obs: Tensor) -> Dict[str, float]:
    """Largest absolute difference of the exported files' outputs from ``policy``'s.

    Args:
        policy: the torch policy the files were written from.
        out_dir: the folder holding ``policy.onnx`` and ``policy.pt``.
        obs: ``[n, obs_dim]`` raw observations to compare on (the other inputs, if any,
            from :meth:`DeployModule.example_inputs`).

    Returns:
        ``num_obs``, ``max_abs_err_onnx`` and ``max_abs_err_torchscript`` (over every
        output; env action units for the action).
    """
    import onnxruntime
    inputs = policy.example_inputs(obs.detach().cpu().to(torch.float32))
    with torch.no_grad():
        expected = _outputs(policy(*inputs))
        scripted = _quiet_export(lambda: torch.jit.load(os.path.join(out_dir, TORCHSCRIPT_FILE)))
        ts_out = _outputs(scripted(*inputs))
    session = onnxruntime.InferenceSession(os.path.join(out_dir, ONNX_FILE), providers=["CPUExecutionProvider"])
    feed = {name: x.numpy() for name, x in zip(policy.INPUT_NAMES, inputs)}
    onnx_out = [torch.from_numpy(y) for y in session.run(list(policy.OUTPUT_NAMES), feed)]

    def max_err(got: List[Tensor]) -> float:
        return max(float((g - e).abs().max()) for g, e in zip(got, expected))

    return {"num_obs": int(inputs[0].shape[0]), "max_abs_err_onnx": max_err(onnx_out),
            "max_abs_err_torchscript": max_err(ts_out)}


def export_policy(agent: BaseAgent, env: BaseEnv, out_dir: str, configs: Dict[str, str], env_name: str,
                  model_file: Optional[str] = None, env_overrides: Optional[Dict[str, Optional[str]]] = None,
                  verify_obs: Optional[Tensor] = None, trained: Tuple[int, int] = (0, 0)) -> Dict[str, Any]:
    """Write ``policy.onnx``, ``policy.pt``, ``policy.json`` and the config copies to ``out_dir``.

    Args:
        agent: a :class:`mimickit.learning.base_agent.BaseAgent` with its model loaded.
        env: the environment it acts in (for the layout, action space, dofs and gains).
        out_dir: the folder to write to; created when missing.
        configs: ``{"engine": path, "env": path, "agent": path}`` of the run; copied next to
            the policy.
        env_name: the env config's ``env_name``.
        model_file: the loaded checkpoint, or ``None``.
        env_overrides: the env config values the run replaced (:func:`build_sidecar`); ``None``: none.
        verify_obs: ``[n, obs_dim]`` raw observations (e.g. :func:`collect_obs`); when
            given, the files' outputs are compared with the torch policy's on them and
            the result is stored in the sidecar under ``verification``.
        trained: ``(iteration, sample_count)`` of the model's training.

    Returns:
        The sidecar mapping.

    Raises:
        MimicKitError: when the export packages are missing or the agent cannot export.
    """
    check_export_packages()
    policy = agent.build_deploy_policy()
    os.makedirs(out_dir, exist_ok=True)
    sidecar = build_sidecar(agent, policy, env, configs, env_name, model_file, env_overrides or {}, trained)
    example = verify_obs[:2] if verify_obs is not None else torch.zeros(2, agent.obs_dim)
    write_onnx(policy, example, os.path.join(out_dir, ONNX_FILE))
    write_torchscript(policy, os.path.join(out_dir, TORCHSCRIPT_FILE))
    import onnx
    sidecar["onnx"]["opset"] = int(onnx.load(os.path.join(out_dir, ONNX_FILE)).opset_import[0].version)
    for key, path in configs.items():
        dst = os.path.join(out_dir, CONFIG_FILES[key])
        if not (os.path.exists(dst) and os.path.samefile(path, dst)):
            shutil.copyfile(path, dst)
    if verify_obs is not None:
        sidecar["verification"] = verify_export(policy, out_dir, verify_obs)
    with atomic_write(os.path.join(out_dir, SIDECAR_FILE), "w") as f:
        json.dump(sidecar, f, indent=1)
    return sidecar


def load_sidecar(path: str) -> Dict[str, Any]:
    """Read a sidecar written by :func:`export_policy`.

    Raises:
        MimicKitError: naming ``path`` when it is missing, not JSON, or not a MimicKit
            policy sidecar of this version.
    """
    if not os.path.isfile(path):
        raise MimicKitError("policy sidecar not found: {} (written next to the policy by --mode export)".format(path))
    try:
        with open(path, "r") as f:
            sidecar = json.load(f)
    except ValueError as e:
        raise MimicKitError("{}: not valid JSON ({})".format(path, e)) from e
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise MimicKitError("{}: not a MimicKit policy sidecar (expected 'format': '{}')".format(path, FORMAT))
    if sidecar.get("version") != VERSION:
        raise MimicKitError("{}: sidecar version {} (this code reads version {})".format(
            path, sidecar.get("version"), VERSION))
    return sidecar


def check_env_matches(sidecar: Dict[str, Any], env: BaseEnv, source: str) -> None:
    """Check that ``env`` is the environment the policy was exported for.

    Compares the observation size and layout (names and slices, in order), the action
    size and, for character environments, the dof names, control mode and control
    frequency.

    Raises:
        MimicKitError: naming ``source`` (the sidecar) and the first difference.
    """
    obs = sidecar["observation"]
    size = env.get_obs_space().shape[0]
    if size != obs["size"]:
        raise MimicKitError("{}: the policy takes observations of size {}, the environment builds {}".format(
            source, obs["size"], size))
    layout = [(s.name, s.start, s.end) for s in env.get_obs_layout()]
    expected = [(s["name"], s["start"], s["end"]) for s in obs["layout"]]
    for i, (want, got) in enumerate(zip(expected, layout)):
        if want != got:
            raise MimicKitError("{}: observation part {} is {} [{}:{}] in the sidecar but {} [{}:{}] in the "
                                "environment".format(source, i, want[0], want[1], want[2], got[0], got[1], got[2]))
    if len(expected) != len(layout):
        raise MimicKitError("{}: the sidecar lists {} observation parts, the environment {}".format(
            source, len(expected), len(layout)))
    action_size = env.get_action_space().shape[0]
    if action_size != sidecar["action"]["size"]:
        raise MimicKitError("{}: the policy outputs actions of size {}, the environment takes {}".format(
            source, sidecar["action"]["size"], action_size))
    from mimickit.envs.char_env import CharEnv
    if isinstance(env, CharEnv) and "dof_names" in sidecar:
        engine = env.engine
        found = {"dof_names": list(engine.get_dof_names(env.char_id)), "control_mode": engine.control_mode,
                 "control_freq_hz": engine.config.control_freq}
        for key, value in found.items():
            if sidecar[key] != value:
                raise MimicKitError("{}: key '{}' is {} in the sidecar but {} in the environment".format(
                    source, key, sidecar[key], value))

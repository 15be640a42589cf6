"""ASE's high-level controller (Peng et al. 2022, "ASE: Large-Scale Reusable Adversarial Skill Embeddings", Sec. 6).

``agent_name: HRL``: a PPO policy whose action is a latent skill for a **frozen** low-level
ASE policy (:mod:`mimickit.learning.ase_agent`, loaded from ``llc_model_file``). It solves a
task (the env YAML's ``task``, :mod:`mimickit.envs.locomotion_tasks`) by choosing latents; the
low level turns them into joint targets in the style it learned.

Training. The runner steps :class:`mimickit.learning.skill_env.SkillEnv` over the task
environment (:attr:`HRLAgent.rollout_env`): one high-level step holds the latent
``z = a / |a|`` for ``llc_steps`` control steps. PPO trains on
``r = task_reward_w * r_task + disc_reward_w * r_style`` per high-level step, ``r_task`` the
sum of the task rewards of its control steps and ``r_style`` the sum of the frozen
discriminator's style rewards (ASE's high-level reward, the task's plus an optional
style term). The low level's networks, normalisers and discriminator never change: no
gradient reaches them and no optimiser holds them.

Test and deployment. Test episodes (``--mode test`` and the test at every output) run both
levels at the control rate on the task environment itself, as an exported policy runs:
each env draws its latent from the high level's deterministic action at the first control
step of its episode and every ``llc_steps`` control steps after, and holds it in between
(:meth:`HRLAgent.deterministic_env_action`). So test metrics (return, tracking errors,
falls per minute, ``style_reward`` of the frozen discriminator) are in the same units as an
AMP policy's on the same env, episode lengths in control steps.

Logged beside PPO's: ``task_reward`` and ``style_reward``, means per high-level step (sums
over its control steps) of the iteration's valid steps.

Export (``--mode export``) writes both levels as one graph, :class:`HRLDeployPolicy`: inputs
``obs``, ``latent`` (the held one) and ``new_latent`` (1 at the first control step of an
episode and every ``llc_steps`` after, else 0), outputs ``action`` (joint commands) and
``next_latent`` (to feed back as ``latent``); the sidecar's ``hierarchy`` says so.
``tools/sim2sim.py`` runs it that way.

Checkpoints hold the high level and a copy of the low level (its state dict, under
``llc``); loading one restores the low level it was trained with, so ``llc_model_file`` only
seeds a new high-level controller.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.ase_agent import ASEAgent
from mimickit.learning.checkpoint import load_checkpoint
from mimickit.learning.export import DeployModule, DeployPolicy, as_floats
from mimickit.learning.ppo_agent import PPOAgent, PPOAgentConfig
from mimickit.learning.skill_env import ObsPrefixEnv, SkillEnv
from mimickit.util.config import check_key, from_dict, keys_of
from mimickit.util.errors import MimicKitError


@dataclasses.dataclass
class HRLAgentConfig(PPOAgentConfig):
    """The high-level controller's keys, in addition to :class:`PPOAgentConfig`'s; see the module docstring.

    Attributes:
        llc_model_file: ``model.pt`` of a trained ASE low-level policy (``agent_name: ASE``),
            relative to the working directory; required.
        llc_steps: control steps each latent is held, >= 1.
        task_reward_w: weight of the task reward.
        disc_reward_w: weight of the frozen discriminator's style reward (0: task alone).
    """

    llc_model_file: str = ""
    llc_steps: int = 5
    task_reward_w: float = 1.0
    disc_reward_w: float = 0.0

    def validate(self, source: str) -> None:
        """PPO's checks, then these keys; :class:`MimicKitError` naming ``source`` and the key."""
        super().validate(source)
        check_key(self.llc_model_file != "", source, "llc_model_file", "nothing",
                  "the model.pt of a trained ASE low-level policy")
        check_key(self.llc_steps >= 1, source, "llc_steps", self.llc_steps, ">= 1")
        for key in ("task_reward_w", "disc_reward_w"):
            check_key(getattr(self, key) >= 0, source, key, getattr(self, key), ">= 0")


def load_low_level(path: str, env: BaseEnv, device: str, source: str) -> ASEAgent:
    """The frozen ASE agent saved in ``path``, reading the character part of ``env``'s observation.

    It is built from the config saved in the checkpoint on :class:`ObsPrefixEnv` of ``env``
    (the checkpoint's ``obs_dim``), its state loaded, every parameter's ``requires_grad``
    off and its networks in eval mode.

    Raises:
        MimicKitError: naming ``source`` and ``path``: missing, not an ASE checkpoint, trained
            with a privileged critic (``actor_obs``: not supported for a low level), or not
            fitting ``env`` (another character, observation or AMP observation).
    """
    if not os.path.isfile(path):
        raise MimicKitError("{}: file not found: {} (train the low level first, e.g. with "
                            "args/ase_humanoid_args.txt)".format(source, path))
    checkpoint = load_checkpoint(path, ASEAgent.NAME, map_location=device)
    if "critic_obs_dim" in checkpoint:
        raise MimicKitError("{}: {} was trained with a privileged critic (actor_obs in its env YAML); a low level "
                            "for HRL must be trained without actor_obs".format(source, path))
    saved = "{} (the low-level model's saved config)".format(path)
    llc = ASEAgent(config=dict(checkpoint["config"]), config_file=saved,
                   env=ObsPrefixEnv(env, int(checkpoint["obs_dim"]), "{} ({})".format(source, path)), device=device)
    llc.load_state_dict(checkpoint, path)
    for module in (llc.model, llc.disc, llc.encoder):
        module.requires_grad_(False)
        module.eval()
    return llc


class HRLDeployPolicy(DeployModule):
    """Both levels of an HRL policy as one self-contained graph (module docstring, Export).

    ``forward(obs [b, obs_dim], latent [b, latent_dim], new_latent [b, 1]) -> (action [b,
    action_dim], next_latent [b, latent_dim])``: ``next_latent`` is the high level's unit
    latent where ``new_latent > 0.5``, else ``latent``; ``action`` is the low level's mean
    action under it, in env units, from the first ``low_obs_mean.shape[0]`` entries of ``obs``.

    Args:
        high: the high level as a :class:`DeployPolicy` (raw obs -> latent before normalisation).
        low_actor: ``[b, llc_obs_dim + latent_dim]`` ``[normalised obs, z]`` -> normalised actions.
        low_obs_mean, low_obs_std: ``[llc_obs_dim]`` the low level's normaliser.
        low_obs_clip: its clip.
        action_offset, action_scale: ``[action_dim]`` the low level's action scaling (env units).
        llc_steps: control steps a latent is held (for the sidecar).
    """

    INPUT_NAMES = ("obs", "latent", "new_latent")
    OUTPUT_NAMES = ("action", "next_latent")

    def __init__(self, high: DeployPolicy, low_actor: nn.Module, low_obs_mean: Tensor, low_obs_std: Tensor,
                 low_obs_clip: float, action_offset: Tensor, action_scale: Tensor, llc_steps: int):
        super().__init__()
        self.high = high
        self.low_actor = low_actor
        self.llc_obs_dim = int(low_obs_mean.shape[0])
        self.latent_dim = int(high.action_scale.shape[0])
        self.llc_steps = llc_steps
        self.obs_clip = high.obs_clip
        self.low_obs_clip = float(low_obs_clip)
        for name, value in (("obs_mean", high.obs_mean), ("obs_std", high.obs_std), ("low_obs_mean", low_obs_mean),
                            ("low_obs_std", low_obs_std), ("action_offset", action_offset),
                            ("action_scale", action_scale)):
            self.register_buffer(name, value.detach().to("cpu", torch.float32).clone())

    def forward(self, obs: Tensor, latent: Tensor, new_latent: Tensor) -> Tuple[Tensor, Tensor]:
        """See the class docstring."""
        z = torch.where(new_latent > 0.5, F.normalize(self.high(obs), dim=-1), latent)
        low_obs = torch.clamp((obs[:, :self.llc_obs_dim] - self.low_obs_mean) / self.low_obs_std,
                              -self.low_obs_clip, self.low_obs_clip)
        return self.action_offset + self.action_scale * self.low_actor(torch.cat([low_obs, z], dim=-1)), z

    def example_inputs(self, obs: Tensor) -> Tuple[Tensor, ...]:
        """``obs``, fixed random unit latents and ``new_latent`` alternating 0, 1 over the batch."""
        generator = torch.Generator().manual_seed(0)
        latent = F.normalize(torch.randn(len(obs), self.latent_dim, generator=generator), dim=-1)
        new_latent = (torch.arange(len(obs)) % 2).to(torch.float32).unsqueeze(-1)
        return obs, latent, new_latent

    def sidecar_extras(self) -> Dict[str, Any]:
        """``hierarchy``: how the latent is held, and the low level's observation normaliser."""
        return {"hierarchy": {
            "llc_steps": self.llc_steps, "latent_dim": self.latent_dim,
            "latent_input": "latent", "new_latent_input": "new_latent", "latent_output": "next_latent",
            "rule": "new_latent = 1 at the first control step of an episode and every llc_steps control steps "
                    "after, else 0; feed next_latent back as the next step's latent (its value is ignored "
                    "where new_latent = 1)",
            "low_level_obs_size": self.llc_obs_dim,
            "low_level_normalization": {"mean": as_floats(self.low_obs_mean), "std": as_floats(self.low_obs_std),
                                        "clip": self.low_obs_clip},
        }}


@register_agent("HRL")
class HRLAgent(PPOAgent):
    """High-level controller over a frozen ASE low level; keys of :class:`HRLAgentConfig`.

    Args:
        config: the agent YAML mapping without ``agent_name``.
        config_file: its path, for messages.
        env: the task environment (AMP observations, ``control_dt``).
        device: torch device of the networks.

    Attributes:
        llc: the frozen low-level :class:`ASEAgent`.
        task_env: ``env``; :attr:`rollout_env` is the :class:`SkillEnv` over it.
        latents: ``[num_envs, latent_dim]`` the latents test episodes hold.
        latent_steps: ``[num_envs]`` long, control steps since each env's episode started.

    Raises:
        MimicKitError: on a bad config key or value (naming ``config_file``), a missing or
            unfitting low-level model, or an environment without AMP observations.
    """

    NAME = "HRL"

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        cfg = from_dict(HRLAgentConfig, config, config_file)
        self.llc = load_low_level(cfg.llc_model_file, env, device, "{}: key 'llc_model_file'".format(config_file))
        self.task_env = env
        super().__init__(keys_of(PPOAgentConfig, config), config_file,
                         SkillEnv(env, self.llc, cfg.llc_steps), device)
        self.config: HRLAgentConfig = cfg
        self.buffer.add("style_reward", ())
        self.latents = torch.zeros(self.num_envs, self.llc.latent_dim, device=device)
        self.latent_steps = torch.zeros(self.num_envs, dtype=torch.long, device=device)

    # ------------------------------------------------------------------ acting
    def high_level_latent(self, obs: Tensor) -> Tensor:
        """``[n, latent_dim]`` unit latents of the deterministic high level for raw observations ``[n, obs_dim]``."""
        return F.normalize(self.act(obs, deterministic=True)[0], dim=-1)

    def deterministic_env_action(self, obs: Tensor) -> Tensor:
        """``[num_envs, action_dim]`` joint commands of both levels at the control rate (module docstring).

        ``obs``: ``[num_envs, obs_dim]`` raw task observations. Envs at a multiple of
        ``llc_steps`` control steps into their episode take a new latent first.
        """
        obs = obs.to(self.device)
        with torch.no_grad():
            choose = (self.latent_steps % self.config.llc_steps) == 0
            if bool(choose.any()):
                self.latents = torch.where(choose.unsqueeze(-1), self.high_level_latent(obs), self.latents)
            self.latent_steps += 1
            return self.llc.latent_env_action(obs[:, :self.llc.obs_dim], self.latents)

    def build_deploy_policy(self) -> DeployModule:
        """Both levels as one :class:`HRLDeployPolicy`, on the CPU in eval mode."""
        high = super().build_deploy_policy()
        assert isinstance(high, DeployPolicy)
        llc = self.llc
        return HRLDeployPolicy(high, copy.deepcopy(llc.latent_actor()).to("cpu", torch.float32), llc.obs_norm.mean,
                               llc.obs_norm.std, llc.obs_norm.clip, llc.action_scaling.offset,
                               llc.action_scaling.scale, self.config.llc_steps).eval()

    def on_reset(self, env_ids: Tensor) -> None:
        """Episodes start in ``env_ids`` (long ``[k]``): their next control step takes a new latent."""
        self.latent_steps[env_ids.to(self.device)] = 0

    def test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """``style_reward`` of the frozen discriminator, per control step, as an AMP policy's test reports it."""
        return {"style_reward": self.llc.style_reward(info["amp_obs"].to(self.device))}

    # ------------------------------------------------------------------ training
    def _record_step_info(self, step: int, info: Dict[str, Any]) -> None:
        self.buffer.record("style_reward", step, info["style_reward"].to(self.device))

    def _update(self) -> Dict[str, float]:
        cfg = self.config
        valid = self.buffer.get("valid")
        task_reward = self.buffer.get("reward").clone()
        style = self.buffer.get("style_reward")
        reward = cfg.task_reward_w * task_reward + cfg.disc_reward_w * style
        self.buffer.get("reward").copy_(torch.where(valid, reward, torch.zeros_like(reward)))
        info = super()._update()
        any_valid = bool(valid.any())
        info["task_reward"] = float(task_reward[valid].mean()) if any_valid else float("nan")
        info["style_reward"] = float(style[valid].mean()) if any_valid else float("nan")
        return info

    # ------------------------------------------------------------------ checkpoints
    def _model_state(self) -> Dict[str, Any]:
        state = super()._model_state()
        state["llc"] = self.llc.state_dict()
        return state

    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        super()._load_model_state(checkpoint)
        self.llc.load_state_dict(checkpoint["llc"], "the low level saved with the HRL model")

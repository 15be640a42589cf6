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

Checkpoints hold the high level and a copy of the low level (its state dict, under
``llc``); loading one restores the low level it was trained with, so ``llc_model_file`` only
seeds a new high-level controller.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.ase_agent import ASEAgent
from mimickit.learning.checkpoint import load_checkpoint
from mimickit.learning.ppo_agent import PPOAgent, PPOAgentConfig
from mimickit.learning.skill_env import ObsPrefixEnv, SkillEnv
from mimickit.util.config import check_key, from_dict
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
        MimicKitError: naming ``source`` and ``path``: missing, not an ASE checkpoint, or not
            fitting ``env`` (another character, observation or AMP observation).
    """
    if not os.path.isfile(path):
        raise MimicKitError("{}: file not found: {} (train the low level first, e.g. with "
                            "args/ase_humanoid_args.txt)".format(source, path))
    checkpoint = load_checkpoint(path, ASEAgent.NAME, map_location=device)
    saved = "{} (the low-level model's saved config)".format(path)
    llc = ASEAgent(config=dict(checkpoint["config"]), config_file=saved,
                   env=ObsPrefixEnv(env, int(checkpoint["obs_dim"]), "{} ({})".format(source, path)), device=device)
    llc.load_state_dict(checkpoint, path)
    for module in (llc.model, llc.disc, llc.encoder):
        module.requires_grad_(False)
        module.eval()
    return llc


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
        ppo_keys = {f.name for f in dataclasses.fields(PPOAgentConfig)}
        super().__init__({k: v for k, v in config.items() if k in ppo_keys}, config_file,
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

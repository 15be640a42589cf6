"""Proximal Policy Optimization (Schulman et al. 2017) with GAE (Schulman et al. 2016).

``agent_name: PPO``. Each iteration (see :mod:`mimickit.learning.base_agent` for the
rollout, episode ends and bootstrapping):

1. Values ``V(s_t)`` and ``V(s'_t)`` of the stored observations and next observations (the
   critic's own, privileged ones when the env gives them: asymmetric actor-critic, see
   :mod:`mimickit.learning.base_agent`).
2. Advantages by GAE, :func:`compute_gae`; the critic's targets are the TD(lambda)
   returns ``R_t = A_t + V(s_t)``. The targets are *not* normalised: the critic outputs
   values in return units directly (rewards of order 1 and ``discount`` <= 0.99 keep
   them within a few hundred, which Adam handles).
3. Advantages normalised over the iteration's samples to mean 0, std 1, then clipped to
   ``[-adv_clip, adv_clip]``.
4. ``actor_epochs`` passes over the samples in shuffled minibatches of
   ``actor_batch_size``, minimising :func:`actor_loss`: the clipped surrogate (eq. 7 of
   Schulman et al. 2017) + ``action_bound_weight`` x :func:`action_bound_loss` +
   ``action_reg_weight`` x mean squared action mean - ``entropy_weight`` x entropy.
5. ``critic_epochs`` passes in minibatches of ``critic_batch_size`` minimising the mean
   squared error to the targets.

Gradients of each minibatch are clipped to the global norm ``max_grad_norm`` when set.
The actor and critic have separate networks and optimisers
(``actor_optimizer``/``critic_optimizer``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import BaseEnv, DoneFlags
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.base_agent import (
    BaseAgent,
    BaseAgentConfig,
    OptimizerConfig,
    build_optimizer,
    minibatches,
    optimizer_step,
)
from mimickit.learning.distributions import DiagGaussian
from mimickit.learning.networks import check_network_name
from mimickit.learning.ppo_model import PPOModel
from mimickit.util.config import check_key, from_dict


@dataclasses.dataclass
class PPOAgentConfig(BaseAgentConfig):
    """PPO's keys, in addition to :class:`BaseAgentConfig`'s (defaults here).

    Attributes:
        actor_net, critic_net: network body names (``fc_<L>layers_<U>units``).
        action_std: initial (or fixed) policy std, normalised action units.
        learn_action_std: train the std (state-independent) instead of keeping it fixed.
        actor_optimizer, critic_optimizer: ``{type, learning_rate, args}``.
        td_lambda: GAE / TD(lambda) parameter, in [0, 1].
        ppo_clip_ratio: epsilon of the clipped surrogate, > 0.
        actor_epochs, critic_epochs: passes over an iteration's samples.
        actor_batch_size, critic_batch_size: samples per minibatch.
        adv_clip: normalised advantages are clipped to ``[-adv_clip, adv_clip]``.
        action_bound_weight: weight of :func:`action_bound_loss`.
        entropy_weight: weight of the entropy bonus.
        action_reg_weight: weight of the mean squared (normalised) action mean.
        max_grad_norm: clip each minibatch's gradient to this global norm; null: no clipping.
    """

    actor_net: str = "fc_2layers_256units"
    critic_net: str = "fc_2layers_256units"
    action_std: float = 0.2
    learn_action_std: bool = False
    actor_optimizer: OptimizerConfig = dataclasses.field(
        default_factory=lambda: OptimizerConfig(type="Adam", learning_rate=1e-4))
    critic_optimizer: OptimizerConfig = dataclasses.field(
        default_factory=lambda: OptimizerConfig(type="Adam", learning_rate=1e-3))
    td_lambda: float = 0.95
    ppo_clip_ratio: float = 0.2
    actor_epochs: int = 5
    critic_epochs: int = 5
    actor_batch_size: int = 512
    critic_batch_size: int = 512
    adv_clip: float = 4.0
    action_bound_weight: float = 10.0
    entropy_weight: float = 0.0
    action_reg_weight: float = 0.0
    max_grad_norm: Optional[float] = None

    def validate(self, source: str) -> None:
        """The shared checks, then PPO's keys; :class:`MimicKitError` naming ``source`` and the key."""
        super().validate(source)
        check_network_name(self.actor_net, "{}: key 'actor_net'".format(source))
        check_network_name(self.critic_net, "{}: key 'critic_net'".format(source))
        check_key(self.action_std > 0, source, "action_std", self.action_std, "> 0")
        check_key(0.0 <= self.td_lambda <= 1.0, source, "td_lambda", self.td_lambda, "in [0, 1]")
        check_key(self.ppo_clip_ratio > 0, source, "ppo_clip_ratio", self.ppo_clip_ratio, "> 0")
        for key in ("actor_epochs", "critic_epochs", "actor_batch_size", "critic_batch_size"):
            check_key(getattr(self, key) >= 1, source, key, getattr(self, key), ">= 1")
        check_key(self.adv_clip > 0, source, "adv_clip", self.adv_clip, "> 0")
        for key in ("action_bound_weight", "entropy_weight", "action_reg_weight"):
            check_key(getattr(self, key) >= 0, source, key, getattr(self, key), ">= 0")
        if self.max_grad_norm is not None:
            check_key(self.max_grad_norm > 0, source, "max_grad_norm", self.max_grad_norm, "> 0 or null")


def compute_gae(reward: Tensor, value: Tensor, next_value: Tensor, done: Tensor, discount: float,
                td_lambda: float, valid: Optional[Tensor] = None) -> Tensor:
    """Generalized advantage estimates (Schulman et al. 2016, eq. 16).

    ``A_t = sum_l (discount * td_lambda)^l delta_{t+l}`` over the steps ``t+l`` of the same
    episode within the rollout, with the TD error ``delta_t = r_t + discount * V(s'_t) - V(s_t)``,
    computed backwards as ``A_t = delta_t + discount * td_lambda * [done_t == NULL] * A_{t+1}``
    (``A_T = 0``: the sum is cut at the end of the rollout, where ``V(s'_{T-1})`` bootstraps).
    ``V(s'_t)`` is the value of the state the step reached (before any reset):

    - ``done_t`` ``NULL`` or ``TIME``: ``V(s'_t)`` is used (a time limit is not a true end);
    - ``done_t`` ``FAIL`` or ``SUCC``: terminal, ``V(s'_t)`` is taken as 0.

    The TD(lambda) return, the critic's target, is ``A_t + V(s_t)``.

    Args:
        reward: ``[T, num_envs]`` rewards ``r_t``.
        value: ``[T, num_envs]`` values ``V(s_t)`` of the states the steps started from.
        next_value: ``[T, num_envs]`` values ``V(s'_t)`` of the states the steps reached.
        done: ``[T, num_envs]`` long :class:`DoneFlags` of each step.
        discount: gamma in [0, 1).
        td_lambda: lambda in [0, 1].
        valid: ``[T, num_envs]`` bool; an invalid step (failed env) gets ``A_t = 0`` and
            adds nothing to earlier steps (its reward and ``next_value`` may be non-finite).

    Returns:
        ``[T, num_envs]`` advantages.
    """
    terminal = (done == DoneFlags.FAIL) | (done == DoneFlags.SUCC)
    bootstrap = torch.where(terminal, torch.zeros_like(next_value), next_value)
    delta = reward + discount * bootstrap - value
    if valid is not None:
        delta = torch.where(valid, delta, torch.zeros_like(delta))
    carry = (done == DoneFlags.NULL).to(delta.dtype) * (discount * td_lambda)
    advantage = torch.zeros_like(delta)
    next_adv = torch.zeros_like(delta[0])
    for t in reversed(range(delta.shape[0])):
        next_adv = delta[t] + carry[t] * next_adv
        advantage[t] = next_adv
    return advantage


def normalize_advantages(advantage: Tensor, adv_clip: float, eps: float = 1e-5) -> Tensor:
    """``[n]`` -> ``[n]``: ``clip((A - mean(A)) / (std(A) + eps), -adv_clip, adv_clip)`` (population std)."""
    std, mean = torch.std_mean(advantage, unbiased=False)
    return ((advantage - mean) / (std + eps)).clamp(-adv_clip, adv_clip)


def ppo_surrogate_loss(logp: Tensor, old_logp: Tensor, advantage: Tensor, clip_ratio: float) -> Tuple[Tensor, Tensor]:
    """Negated clipped surrogate objective (Schulman et al. 2017, eq. 7).

    ``L = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)`` with the probability
    ratio ``rho_t = pi(a_t | s_t) / pi_old(a_t | s_t) = exp(logp - old_logp)``.

    Args:
        logp: ``[n]`` log-probabilities of the taken actions under the current policy.
        old_logp: ``[n]`` log-probabilities of the taken actions under the data-collecting policy.
        advantage: ``[n]`` (normalised) advantages.
        clip_ratio: eps > 0.

    Returns:
        ``(loss, clip_frac)``: scalar loss to minimise, and the fraction of samples whose
        ratio lies outside ``[1 - eps, 1 + eps]`` (no gradient).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantage
    clipped = ratio.clamp(1.0 - clip_ratio, 1.0 + clip_ratio) * advantage
    loss = -torch.min(unclipped, clipped).mean()
    clip_frac = ((ratio - 1.0).abs() > clip_ratio).float().mean().detach()
    return loss, clip_frac


def action_bound_loss(mean: Tensor, bounded: Tensor) -> Tensor:
    """Penalty on a Gaussian mean outside the action bounds (MimicKit's ``action_bound_weight`` term).

    In normalised units the bounds are ``[-1, 1]``:
    ``0.5 * mean_n sum_d bounded_d * (max(mu - 1, 0)^2 + max(-1 - mu, 0)^2)``.

    Args:
        mean: ``[n, action_dim]`` policy means, normalised units.
        bounded: ``[action_dim]`` bool, dimensions that have bounds.

    Returns:
        Scalar loss.
    """
    violation = F.relu(mean - 1.0).square() + F.relu(-1.0 - mean).square()
    return 0.5 * (violation * bounded.to(mean.dtype)).sum(dim=-1).mean()


@register_agent("PPO")
class PPOAgent(BaseAgent):
    """PPO agent; the config keys are those of :class:`PPOAgentConfig`.

    Args:
        config: the agent YAML mapping without ``agent_name``.
        config_file: its path, for messages.
        env: the environments.
        device: torch device of the networks.

    Raises:
        MimicKitError: on a bad config key or value (naming ``config_file``).
    """

    NAME = "PPO"

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        cfg = from_dict(PPOAgentConfig, config, config_file)
        super().__init__(cfg, config_file, env, device)
        self.config: PPOAgentConfig = cfg
        self.model = PPOModel(self._net_input_dim(self.obs_dim), self.action_dim, cfg.actor_net, cfg.critic_net,
                              cfg.action_std, cfg.learn_action_std, config_file,
                              critic_obs_dim=self._net_input_dim(self.critic_obs_dim),
                              matmul_dtype=self.matmul_dtype).to(device)
        self.actor_optimizer = build_optimizer(cfg.actor_optimizer, self.model.actor_parameters(),
                                               "{}: key 'actor_optimizer'".format(config_file))
        self.critic_optimizer = build_optimizer(cfg.critic_optimizer, self.model.critic_parameters(),
                                                "{}: key 'critic_optimizer'".format(config_file))
        self.buffer.add("logp", ())

    # ------------------------------------------------------------------ network input
    def _net_input_dim(self, obs_dim: int) -> int:
        """Size of a network's input for observations of size ``obs_dim`` (the actor's or the critic's).

        PPO: ``obs_dim``. Called by ``__init__`` to build the model.
        """
        return obs_dim

    def _net_input(self, norm_obs: Tensor, from_buffer: bool) -> Tensor:
        """The actor's or critic's input for normalised observations; PPO: ``norm_obs`` itself.

        Every network call of the agent goes through here (acting, the values and the
        minibatch losses of an update), so a subclass that conditions the networks on more
        than the observation (ASE: a latent) overrides this and :meth:`_net_input_dim`
        (and :meth:`_deterministic_actor`, which exports the policy of normalised
        observations alone).

        Args:
            norm_obs: ``[n, obs_dim]`` normalised observations (or ``[n, critic_obs_dim]``, the critic's).
            from_buffer: false: the current observations of every env (``n = num_envs``), as
                :meth:`_act` gets them; true: the buffer's samples in :meth:`ExperienceBuffer.get_flat`
                order (``n = steps_per_iter * num_envs``), ``obs`` or ``next_obs`` alike.

        Returns:
            ``[n, _net_input_dim(obs_dim)]``.
        """
        return norm_obs

    # ------------------------------------------------------------------ acting
    def _act(self, norm_obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        dist = self.model.actor(self._net_input(norm_obs, from_buffer=False))
        if deterministic:
            return dist.mode, {}
        action = dist.sample()
        return action, {"logp": dist.log_prob(action)}

    def _deterministic_actor(self) -> nn.Module:
        """The Gaussian's mean: actor body then the head's mean layer."""
        return nn.Sequential(self.model.actor_body, self.model.actor_head.mean_layer)

    # ------------------------------------------------------------------ training
    def actor_loss(self, dist: DiagGaussian, action: Tensor, old_logp: Tensor,
                   advantage: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Actor loss of a minibatch (module docstring, step 4).

        Args:
            dist: the current policy at the minibatch's observations, ``[n, action_dim]``.
            action: ``[n, action_dim]`` taken actions (normalised units).
            old_logp: ``[n]`` their log-probabilities when taken.
            advantage: ``[n]`` normalised, clipped advantages.

        Returns:
            ``(loss, parts)``; ``parts`` holds detached ``surrogate_loss``, ``bound_loss``,
            ``action_reg_loss``, ``entropy``, ``clip_frac`` and ``approx_kl``
            (``mean(old_logp - logp)``).
        """
        cfg = self.config
        logp = dist.log_prob(action)
        surrogate, clip_frac = ppo_surrogate_loss(logp, old_logp, advantage, cfg.ppo_clip_ratio)
        bound = action_bound_loss(dist.mean, self.action_scaling.bounded)
        reg = dist.mean.square().sum(dim=-1).mean()
        entropy = dist.entropy().mean()
        loss = surrogate + cfg.action_bound_weight * bound + cfg.action_reg_weight * reg - cfg.entropy_weight * entropy
        parts = {"surrogate_loss": surrogate, "bound_loss": bound, "action_reg_loss": reg, "entropy": entropy,
                 "clip_frac": clip_frac, "approx_kl": (old_logp - logp).mean()}
        return loss, {k: v.detach() for k, v in parts.items()}

    def _actor_minibatch_loss(self, net_input: Tensor, action: Tensor, old_logp: Tensor,
                              advantage: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The actor loss of one minibatch: :meth:`actor_loss` of the policy at ``net_input``.

        Args:
            net_input: ``[n, _net_input_dim(obs_dim)]`` rows of :meth:`_net_input` of the stored observations.
            action: ``[n, action_dim]`` taken actions (normalised units).
            old_logp: ``[n]`` their log-probabilities when taken.
            advantage: ``[n]`` normalised, clipped advantages.

        Returns:
            ``(loss, parts)``; a subclass may add terms (each part is logged under its name).
        """
        return self.actor_loss(self.model.actor(net_input), action, old_logp, advantage)

    def _update(self) -> Dict[str, float]:
        cfg = self.config
        steps, num_envs = cfg.steps_per_iter, self.num_envs
        valid = self.buffer.get("valid")
        with torch.no_grad():
            net_input = self._net_input(self.norm_buffer_obs("obs", critic=False), from_buffer=True)
            critic_input = (net_input if self.critic_obs_norm is None  # the critic observes what the actor does
                            else self._net_input(self.norm_buffer_obs("obs", critic=True), from_buffer=True))
            value = self.model.critic(critic_input).view(steps, num_envs)
            next_input = self._net_input(self.norm_buffer_obs("next_obs", critic=True), from_buffer=True)
            next_value = self.model.critic(next_input).view(steps, num_envs)
            advantage = compute_gae(self.buffer.get("reward"), value, next_value, self.buffer.get("done"),
                                    cfg.discount, cfg.td_lambda, valid)
            target = advantage + value
        valid = valid.flatten()
        num_valid = int(valid.sum())
        action = self.buffer.get_flat("action")
        old_logp = self.buffer.get_flat("logp")
        target = target.flatten()
        norm_adv = torch.zeros_like(target)
        sums: Dict[str, Tensor] = {}
        counts = {"actor": 0, "critic": 0}
        if num_valid > 0:
            norm_adv[valid] = normalize_advantages(advantage.flatten()[valid], cfg.adv_clip)
        actor_params = self.model.actor_parameters()
        for _ in range(cfg.actor_epochs):
            for batch in minibatches(len(valid), cfg.actor_batch_size, valid):
                if len(batch) == 0:
                    optimizer_step(self.actor_optimizer, None, actor_params, cfg.max_grad_norm)
                    continue
                loss, parts = self._actor_minibatch_loss(net_input[batch], action[batch], old_logp[batch],
                                                         norm_adv[batch])
                optimizer_step(self.actor_optimizer, loss, actor_params, cfg.max_grad_norm)
                parts["actor_loss"] = loss.detach()
                for key, val in parts.items():
                    sums[key] = sums.get(key, 0.0) + val
                counts["actor"] += 1
        critic_params = self.model.critic_parameters()
        for _ in range(cfg.critic_epochs):
            for batch in minibatches(len(valid), cfg.critic_batch_size, valid):
                if len(batch) == 0:
                    optimizer_step(self.critic_optimizer, None, critic_params, cfg.max_grad_norm)
                    continue
                loss = F.mse_loss(self.model.critic(critic_input[batch]), target[batch])
                optimizer_step(self.critic_optimizer, loss, critic_params, cfg.max_grad_norm)
                sums["critic_loss"] = sums.get("critic_loss", 0.0) + loss.detach()
                counts["critic"] += 1
        keys: Tuple[str, ...] = ("actor_loss", "surrogate_loss", "bound_loss", "action_reg_loss", "entropy",
                                 "clip_frac", "approx_kl", "critic_loss")
        keys += tuple(sorted(k for k in sums if k not in keys))  # terms a subclass's actor loss adds
        info: Dict[str, float] = {}
        for key in keys:
            count = counts["critic" if key == "critic_loss" else "actor"]
            info[key] = float(sums[key]) / count if count else float("nan")
        info["action_std"] = float(self.model.actor_head.log_std.detach().exp().mean())
        info["value_target_mean"] = float(target[valid].mean()) if num_valid > 0 else float("nan")
        info["actor_lr"] = self.actor_optimizer.param_groups[0]["lr"]
        info["critic_lr"] = self.critic_optimizer.param_groups[0]["lr"]
        return info

    # ------------------------------------------------------------------ checkpoints
    def _model_state(self) -> Dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizers": {"actor": self.actor_optimizer.state_dict(),
                               "critic": self.critic_optimizer.state_dict()}}

    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.actor_optimizer.load_state_dict(checkpoint["optimizers"]["actor"])
        self.critic_optimizer.load_state_dict(checkpoint["optimizers"]["critic"])
        # The YAML's learning rates win over the saved ones.
        for optimizer, opt_cfg in ((self.actor_optimizer, self.config.actor_optimizer),
                                   (self.critic_optimizer, self.config.critic_optimizer)):
            for group in optimizer.param_groups:
                group["lr"] = opt_cfg.learning_rate

"""Adversarial Skill Embeddings (Peng et al. 2022, "ASE: Large-Scale Reusable Adversarial Skill Embeddings").

``agent_name: ASE``: the *low-level* policy of ASE (and of AWD, its port to the BDX duckling),
AMP (:mod:`mimickit.learning.amp_agent`) conditioned on a latent skill ``z``. A high-level
controller that picks latents for a task is a separate agent (:mod:`mimickit.learning.hrl_agent`).

Sources. Written from the ASE paper (Sec. 5, the pre-training objective, its encoder and
the diversity objective; equation numbers are not cited because they were recalled, not
checked) and from the keys and defaults of the authors' MimicKit ``ase_humanoid_agent.yaml``
(latent time 0-5 s, ``diversity_weight`` 0.01, ``diversity_tar`` 1, style and encoder
reward weights 0.5 each). Where the paper and MimicKit differ (the encoder reward below)
the brief of issue 14 decided.

Latents. ``z`` lies on the unit sphere in ``latent_dim`` dimensions, drawn uniformly (a
normalised standard Gaussian, :func:`sample_latents`), one per env. An env keeps its latent
for a number of control steps drawn uniformly from :func:`latent_hold_steps` (the env's
``control_dt`` converts ``[latent_time_min, latent_time_max]`` s to steps) and draws a new
one, with a new hold time, when that runs out and at every episode start
(:meth:`ASEAgent.on_reset`). The actor and critic take ``[normalised obs, z]``
(:meth:`ASEAgent._net_input`); the rollout stores each step's ``z`` (buffer ``latent``).

Each iteration, beside AMP's steps:

1. Encoder rewards of every stored step from the encoder as it was during the rollout:
   ``r_enc = enc_reward_scale * max(0, mu(x)^T z)`` (:func:`clipped_enc_reward`), with ``x`` the
   step's AMP observation (the transition ``s -> s'``, normalised as for the discriminator)
   and ``z`` the latent the step acted under. The reward PPO trains on is
   ``r = task_reward_w * r_task + disc_reward_w * r_style + enc_reward_w * r_enc`` (the
   paper's ``-log(1 - D) + beta log q(z | s, s')`` with ``beta log q`` replaced by the
   clipped agreement: ``log q = kappa mu^T z + const``, so the scale absorbs ``kappa``).
2. The PPO update adds ``diversity_weight`` x :func:`diversity_loss` to each actor
   minibatch's loss: the minibatch's states get fresh latents ``z2`` and the action means
   under ``z`` and ``z2`` must differ in proportion to the latents' distance.
3. ``enc_epochs`` passes of the encoder over the iteration's (valid) AMP observations and
   latents in minibatches of ``enc_batch_size``, minimising :meth:`ASEAgent.enc_loss` with
   its own optimiser (``enc_optimizer``), before the AMP normaliser takes in the iteration.

The encoder ``q(z | s, s')`` is a von Mises-Fisher distribution on the sphere with mean
direction ``mu(x)`` (a unit vector, :class:`ASEEncoder`) and concentration ``kappa``:
``log q(z | x) = kappa mu(x)^T z + log C_d(kappa)`` (:func:`vmf_log_likelihood`).
Maximising it over the encoder for a fixed ``kappa`` is minimising ``-mean(mu^T z)``.

Logged: ``enc_reward`` (mean ``r_enc``, before ``enc_reward_w``; the progress line shows
it), ``enc_loss`` (total), ``enc_agreement`` (mean ``mu^T z`` of the trained minibatches),
``enc_grad_penalty``, ``enc_weight_decay_loss``, ``enc_lr`` and ``diversity_loss``, beside
AMP's. Test episodes report ``enc_reward`` (under the latent each step acted on) beside
``style_reward``.

Checkpoints hold the encoder and its optimiser beside AMP's; the latents are episode
state and are drawn again. ``--mode test --latent_seed N`` (:func:`set_fixed_latent`)
gives every env the one latent drawn from seed ``N`` for all test episodes, so a single
skill can be watched. A low level alone is not exported: an HRL policy exports both levels.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.amp_agent import AMPAgent, AMPAgentConfig, disc_grad_penalty
from mimickit.learning.base_agent import OptimizerConfig, build_optimizer, minibatches, optimizer_step
from mimickit.learning.export import DeployModule
from mimickit.learning.networks import build_network, check_network_name, run_body
from mimickit.util.config import check_key, from_dict, keys_of
from mimickit.util.errors import MimicKitError

# Added to the latents' distance in the diversity loss, so equal latents do not divide by 0.
DIVERSITY_EPS = 1e-5


# ---------------------------------------------------------------------- latents, likelihood, losses
def sample_latents(num: int, latent_dim: int, device: str = "cpu",
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """``[num, latent_dim]`` latents uniform on the unit sphere: standard Gaussians, normalised.

    ``generator`` (a CPU generator) draws them instead of torch's global one.
    """
    if generator is None:
        return F.normalize(torch.randn(num, latent_dim, device=device), dim=-1)
    return F.normalize(torch.randn(num, latent_dim, generator=generator), dim=-1).to(device)


def latent_hold_steps(time_min: float, time_max: float, control_dt: float) -> Tuple[int, int]:
    """Control steps ``(n_min, n_max)`` a latent is held, from the hold time range in s.

    ``n = round(t / control_dt)`` for each end, at least 1 step (a latent acts at least
    once), ``n_max >= n_min``. Hold times are then drawn uniformly from ``n_min .. n_max``.
    """
    n_min = max(1, int(round(time_min / control_dt)))
    n_max = max(n_min, int(round(time_max / control_dt)))
    return n_min, n_max


def vmf_log_likelihood(mu: Tensor, z: Tensor, kappa: float) -> Tensor:
    """``log q(z | x) - log C_d(kappa) = kappa mu^T z`` of a von Mises-Fisher encoder (Peng et al. 2022, Sec. 5).

    The normalising term ``log C_d(kappa)`` depends on ``kappa`` and the dimension alone, not
    on ``mu`` or ``z``, and is left out.

    Args:
        mu: ``[n, latent_dim]`` unit mean directions (the encoder's output).
        z: ``[n, latent_dim]`` unit latents.
        kappa: concentration, > 0.

    Returns:
        ``[n]``.
    """
    return kappa * (mu * z).sum(dim=-1)


def clipped_enc_reward(mu: Tensor, z: Tensor, scale: float) -> Tensor:
    """Encoder reward ``scale * max(0, mu^T z)``, ``[n]``, in ``[0, scale]``.

    The agreement of the encoder's mean direction with the latent the step acted under, the
    skill-discovery term of ASE's reward (``beta log q(z | s, s')``, Peng et al. 2022, Sec. 5)
    with ``kappa`` folded into ``scale`` and clipped at 0 as in the authors' MimicKit.

    Args:
        mu: ``[n, latent_dim]`` unit mean directions.
        z: ``[n, latent_dim]`` unit latents.
        scale: ``enc_reward_scale``.
    """
    return scale * (mu * z).sum(dim=-1).clamp(min=0.0)


def enc_fit_loss(mu: Tensor, z: Tensor) -> Tensor:
    """Encoder loss ``-mean_i mu_i^T z_i``: the negative vMF log-likelihood divided by ``kappa``, up to a constant.

    Args:
        mu: ``[n, latent_dim]`` unit mean directions (with gradient).
        z: ``[n, latent_dim]`` the latents the steps acted under.

    Returns:
        A scalar in ``[-1, 1]``.
    """
    return -(mu * z).sum(dim=-1).mean()


def diversity_loss(mean: Tensor, other_mean: Tensor, z: Tensor, other_z: Tensor, target: float) -> Tensor:
    """ASE's diversity objective (Peng et al. 2022, Sec. 5), as a loss to minimise.

    ``mean_i (D_a,i / (D_z,i + eps) - target)^2`` with ``D_a,i`` the mean over action
    dimensions of the squared difference of the two action means of state ``i`` and
    ``D_z,i = (1 - z_i^T z2_i) / 2`` in ``[0, 1]``, the latents' distance;
    ``eps`` = :data:`DIVERSITY_EPS`. The paper compares the action distributions; with a
    fixed, state-independent std the squared mean difference is what changes.

    Args:
        mean: ``[n, action_dim]`` action means under ``z`` (normalised units).
        other_mean: ``[n, action_dim]`` action means of the same states under ``other_z``.
        z: ``[n, latent_dim]`` unit latents.
        other_z: ``[n, latent_dim]`` other unit latents.
        target: ``diversity_tar``, the wanted ratio.

    Returns:
        A scalar.
    """
    action_dist = (mean - other_mean).square().mean(dim=-1)
    latent_dist = 0.5 * (1.0 - (z * other_z).sum(dim=-1))
    return (action_dist / (latent_dist + DIVERSITY_EPS) - target).square().mean()


# ---------------------------------------------------------------------- model and config
class ASEEncoder(nn.Module):
    """``[batch, amp_obs_dim]`` normalised AMP observations -> ``[batch, latent_dim]`` unit vectors ``mu``.

    A network body, one linear layer, then normalisation onto the unit sphere: the mean
    direction of the von Mises-Fisher posterior ``q(z | s, s')``.

    Args:
        amp_obs_dim: input size.
        latent_dim: output size.
        net: body name for :func:`mimickit.learning.networks.build_network`.
        source: config file and key, for the error on an unknown name.
        matmul_dtype: dtype of the body's matrix products (:func:`mimickit.learning.networks.run_body`);
            the output layer runs in float32.
    """

    def __init__(self, amp_obs_dim: int, latent_dim: int, net: str, source: str = "enc_net",
                 matmul_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.matmul_dtype = matmul_dtype
        self.body, out_dim = build_network(net, amp_obs_dim, source)
        self.mean_layer = nn.Linear(out_dim, latent_dim)

    def forward(self, norm_amp_obs: Tensor) -> Tensor:
        """``[batch, amp_obs_dim]`` -> ``[batch, latent_dim]`` of unit length."""
        return F.normalize(self.mean_layer(run_body(self.body, norm_amp_obs, self.matmul_dtype)), dim=-1)

    def weights(self) -> List[Tensor]:
        """The weight matrices of every linear layer (biases excluded)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]


@dataclasses.dataclass
class ASEAgentConfig(AMPAgentConfig):
    """ASE's keys, in addition to :class:`AMPAgentConfig`'s (defaults here); see the module docstring.

    Attributes:
        latent_dim: dimension of the latent space (latents lie on its unit sphere), >= 2.
        latent_time_min, latent_time_max: range (s) of the time a latent is held, 0 <= min <= max.
        enc_net: encoder body name (``fc_<L>layers_<U>units``).
        enc_optimizer: ``{type, learning_rate, args}`` of the encoder.
        enc_epochs: passes over an iteration's AMP observations.
        enc_batch_size: samples per encoder minibatch.
        enc_grad_penalty: weight of the mean squared gradient of ``mu^T z`` w.r.t. the
            (normalised) AMP observation, >= 0.
        enc_weight_decay: weight of the squared weights of every encoder layer, >= 0.
        enc_reward_scale: multiplies the encoder reward.
        enc_reward_w: weight of the encoder reward in the total reward.
        diversity_weight: weight of :func:`diversity_loss` in the actor loss (0: off).
        diversity_tar: the ratio of action distance to latent distance it asks for.
    """

    latent_dim: int = 64
    latent_time_min: float = 0.5
    latent_time_max: float = 5.0
    enc_net: str = "fc_2layers_256units"
    enc_optimizer: OptimizerConfig = dataclasses.field(
        default_factory=lambda: OptimizerConfig(type="Adam", learning_rate=1e-4))
    enc_epochs: int = 1
    enc_batch_size: int = 512
    enc_grad_penalty: float = 0.0
    enc_weight_decay: float = 1e-4
    enc_reward_scale: float = 1.0
    enc_reward_w: float = 0.5
    diversity_weight: float = 0.01
    diversity_tar: float = 1.0

    def validate(self, source: str) -> None:
        """AMP's checks, then ASE's keys; :class:`MimicKitError` naming ``source`` and the key."""
        super().validate(source)
        check_key(self.latent_dim >= 2, source, "latent_dim", self.latent_dim, ">= 2")
        check_key(self.latent_time_min >= 0, source, "latent_time_min", self.latent_time_min, ">= 0")
        check_key(self.latent_time_max >= self.latent_time_min, source, "latent_time_max", self.latent_time_max,
                  ">= latent_time_min ({})".format(self.latent_time_min))
        check_network_name(self.enc_net, "{}: key 'enc_net'".format(source))
        for key in ("enc_epochs", "enc_batch_size"):
            check_key(getattr(self, key) >= 1, source, key, getattr(self, key), ">= 1")
        for key in ("enc_grad_penalty", "enc_weight_decay", "enc_reward_scale", "enc_reward_w",
                    "diversity_weight", "diversity_tar"):
            check_key(getattr(self, key) >= 0, source, key, getattr(self, key), ">= 0")


@runtime_checkable
class ControlTimedEnv(Protocol):
    """An environment that says how long a control step lasts (character envs do)."""

    @property
    def control_dt(self) -> float:
        """Seconds per ``step``."""


# ---------------------------------------------------------------------- agent
@register_agent("ASE")
class ASEAgent(AMPAgent):
    """AMP conditioned on latent skills, with an encoder and a diversity loss; keys of :class:`ASEAgentConfig`.

    Args:
        config: the agent YAML mapping without ``agent_name``.
        config_file: its path, for messages.
        env: an environment with AMP observations and ``control_dt`` (s).
        device: torch device of the networks.

    Attributes:
        latents: ``[num_envs, latent_dim]`` the latent each env acts under at its next step.
        latent_steps_left: ``[num_envs]`` long, steps each env keeps its latent (>= 1).
        acted_latents: ``[num_envs, latent_dim]`` the latents of the last :meth:`act`.
        hold_steps: ``(n_min, n_max)`` from :func:`latent_hold_steps`.
        fixed_latent: ``[latent_dim]`` the latent every env gets instead of random ones
            (:func:`set_fixed_latent`), or None.

    Raises:
        MimicKitError: on a bad config key or value (naming ``config_file``), or an
            environment without AMP observations or ``control_dt``.
    """

    NAME = "ASE"

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        cfg = from_dict(ASEAgentConfig, config, config_file)
        if not isinstance(env, ControlTimedEnv):
            raise MimicKitError("{}: agent_name ASE needs an environment with control_dt (a character env), "
                                "got {}".format(config_file, type(env).__name__))
        self.latent_dim = cfg.latent_dim  # before the model is built: _net_input_dim reads it
        super().__init__(keys_of(AMPAgentConfig, config), config_file, env, device)
        self.config: ASEAgentConfig = cfg
        self.encoder = ASEEncoder(self.amp_obs_dim, cfg.latent_dim, cfg.enc_net,
                                  "{}: key 'enc_net'".format(config_file), self.matmul_dtype).to(device)
        self.enc_optimizer = build_optimizer(cfg.enc_optimizer, list(self.encoder.parameters()),
                                             "{}: key 'enc_optimizer'".format(config_file))
        self.buffer.add("latent", (cfg.latent_dim,))
        self.hold_steps = latent_hold_steps(cfg.latent_time_min, cfg.latent_time_max, float(env.control_dt))
        self.fixed_latent: Optional[Tensor] = None
        self.latents = sample_latents(self.num_envs, cfg.latent_dim, device)
        self.latent_steps_left = self._draw_hold_steps(self.num_envs)
        self.acted_latents = self.latents
        self._iter_enc_reward: Optional[Tensor] = None  # [steps_per_iter, num_envs] during _update

    # ------------------------------------------------------------------ latents
    def _draw_hold_steps(self, num: int) -> Tensor:
        n_min, n_max = self.hold_steps
        return torch.randint(n_min, n_max + 1, (num,), device=self.device)

    def _redraw_latents(self, env_ids: Tensor) -> None:
        """New latents (or the fixed one) and hold times for ``env_ids`` (long ``[k]``).

        ``latents`` is replaced, not written into, so tensors handed out before (the
        buffer's extras, ``acted_latents``) keep their values.
        """
        latents = self.latents.clone()
        if self.fixed_latent is not None:
            latents[env_ids] = self.fixed_latent
        else:
            latents[env_ids] = sample_latents(len(env_ids), self.latent_dim, self.device)
        self.latents = latents
        self.latent_steps_left[env_ids] = self._draw_hold_steps(len(env_ids))

    def on_reset(self, env_ids: Tensor) -> None:
        """Episodes start in ``env_ids`` (long ``[k]``): each gets a new latent and hold time."""
        if len(env_ids) > 0:
            self._redraw_latents(env_ids.to(self.device))

    def use_fixed_latent(self, seed: int) -> Tensor:
        """Give every env, now and at every reset, the one latent drawn from ``seed``; returns it ``[latent_dim]``."""
        generator = torch.Generator().manual_seed(seed)
        self.fixed_latent = sample_latents(1, self.latent_dim, self.device, generator)[0]
        self._redraw_latents(torch.arange(self.num_envs, device=self.device))
        return self.fixed_latent

    # ------------------------------------------------------------------ network input, acting
    def _net_input_dim(self, obs_dim: int) -> int:
        """``obs_dim + latent_dim``: the networks take ``[normalised obs, z]``."""
        return obs_dim + self.latent_dim

    def _net_input(self, norm_obs: Tensor, from_buffer: bool) -> Tensor:
        """``[n, dim + latent_dim]``: ``norm_obs`` ``[n, dim]`` and each sample's latent (the buffer's stored one)."""
        latent = self.buffer.get_flat("latent") if from_buffer else self.latents
        return torch.cat([norm_obs, latent], dim=-1)

    def _act(self, norm_obs: Tensor, deterministic: bool) -> Tuple[Tensor, Dict[str, Tensor]]:
        """PPO's actions under the current latents; extras get ``latent``; then the hold times count down."""
        latent = self.latents
        action, extras = super()._act(norm_obs, deterministic)
        self.acted_latents = latent
        self.latent_steps_left -= 1
        expired = (self.latent_steps_left <= 0).nonzero(as_tuple=False).flatten()
        if len(expired) > 0:
            self._redraw_latents(expired)
        return action, dict(extras, latent=latent)

    def latent_env_action(self, obs: Tensor, latent: Tensor) -> Tensor:
        """``[n, action_dim]`` env actions of the deterministic policy under given latents (no state changes).

        What a high-level controller drives the frozen low level with: the Gaussian's mean at
        ``[normalised obs, latent]``, scaled to the env's action space.

        Args:
            obs: ``[n, obs_dim]`` raw observations.
            latent: ``[n, latent_dim]`` unit latents.
        """
        with torch.no_grad():
            net_input = torch.cat([self.obs_norm.normalize(obs.to(self.device)), latent.to(self.device)], dim=-1)
            return self.env_action(self.latent_actor()(net_input))

    def latent_actor(self) -> nn.Module:
        """The Gaussian's mean, ``[n, obs_dim + latent_dim]`` ``[normalised obs, z]`` -> ``[n, action_dim]``."""
        return nn.Sequential(self.model.actor_body, self.model.actor_head.mean_layer)

    def test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """AMP's ``style_reward`` and the encoder reward ``enc_reward`` under the latents the step acted on."""
        metrics = super().test_step_metrics(info)
        metrics["enc_reward"] = self.enc_reward(info["amp_obs"].to(self.device), self.acted_latents)
        return metrics

    # ------------------------------------------------------------------ rewards and losses
    def enc_reward(self, amp_obs: Tensor, latent: Tensor) -> Tensor:
        """Scaled encoder reward ``[n]`` (:func:`clipped_enc_reward`) of raw AMP observations (no gradient).

        ``amp_obs``: ``[n, amp_obs_dim]``; ``latent``: ``[n, latent_dim]`` the latents the steps acted under.
        """
        with torch.no_grad():
            mu = self.encoder(self.amp_obs_norm.normalize(amp_obs))
            return clipped_enc_reward(mu, latent, self.config.enc_reward_scale)

    def enc_loss(self, norm_amp_obs: Tensor, latent: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Encoder loss of a minibatch (module docstring, step 3).

        ``enc_fit_loss + enc_grad_penalty * mean_i |d(mu_i^T z_i)/dx_i|^2 + enc_weight_decay * sum |W|^2``
        (:func:`enc_fit_loss`; the penalty as :func:`mimickit.learning.amp_agent.disc_grad_penalty`).

        Args:
            norm_amp_obs: ``[n, amp_obs_dim]`` normalised agent AMP observations.
            latent: ``[n, latent_dim]`` the latents they were produced under.

        Returns:
            ``(loss, parts)``; detached ``enc_agreement`` (mean ``mu^T z``), ``enc_grad_penalty``
            and ``enc_weight_decay_loss``.
        """
        cfg = self.config
        x = norm_amp_obs.detach().clone().requires_grad_(cfg.enc_grad_penalty > 0)
        mu = self.encoder(x)
        agreement = (mu * latent).sum(dim=-1)
        fit = enc_fit_loss(mu, latent)
        penalty = disc_grad_penalty(agreement, x) if cfg.enc_grad_penalty > 0 else torch.zeros((), device=x.device)
        decay = sum(w.square().sum() for w in self.encoder.weights())
        loss = fit + cfg.enc_grad_penalty * penalty + cfg.enc_weight_decay * decay
        parts = {"enc_agreement": agreement.mean(), "enc_grad_penalty": penalty, "enc_weight_decay_loss": decay}
        return loss, {k: v.detach() for k, v in parts.items()}

    def _actor_minibatch_loss(self, net_input: Tensor, action: Tensor, old_logp: Tensor,
                              advantage: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """PPO's actor loss plus ``diversity_weight`` x :func:`diversity_loss` against fresh latents.

        Args:
            net_input: ``[n, obs_dim + latent_dim]``, the stored ``[normalised obs, z]``.
            action: ``[n, action_dim]`` taken actions (normalised units).
            old_logp: ``[n]`` their log-probabilities when taken.
            advantage: ``[n]`` normalised, clipped advantages.

        Returns:
            ``(loss, parts)``: PPO's parts and ``diversity_loss``.
        """
        cfg = self.config
        dist = self.model.actor(net_input)
        loss, parts = self.actor_loss(dist, action, old_logp, advantage)
        norm_obs, latent = net_input[:, :self.obs_dim], net_input[:, self.obs_dim:]
        other = sample_latents(len(net_input), self.latent_dim, self.device)
        other_mean = self.model.actor(torch.cat([norm_obs, other], dim=-1)).mean
        diversity = diversity_loss(dist.mean, other_mean, latent, other, cfg.diversity_tar)
        parts["diversity_loss"] = diversity.detach()
        return loss + cfg.diversity_weight * diversity, parts

    # ------------------------------------------------------------------ training
    def _total_reward(self, task_reward: Tensor, style_reward: Tensor) -> Tensor:
        """AMP's reward plus ``enc_reward_w * r_enc`` (module docstring, step 1); ``[steps_per_iter, num_envs]``."""
        if self._iter_enc_reward is None:
            raise RuntimeError("ASE: the encoder reward is computed in _update before AMP's")
        return super()._total_reward(task_reward, style_reward) + self.config.enc_reward_w * self._iter_enc_reward

    def _update(self) -> Dict[str, float]:
        valid = self.buffer.get("valid")
        enc = self.enc_reward(self.buffer.get_flat("amp_obs"), self.buffer.get_flat("latent")).view_as(valid)
        self._iter_enc_reward = enc
        try:
            info = super()._update()
        finally:
            self._iter_enc_reward = None
        info["enc_reward"] = float(enc[valid].mean()) if bool(valid.any()) else float("nan")
        info["enc_lr"] = self.enc_optimizer.param_groups[0]["lr"]
        return info

    def _update_disc(self, amp_obs: Tensor, valid: Tensor) -> Dict[str, float]:
        """AMP's discriminator update, then the encoder's on the same samples (the normaliser still frozen)."""
        info = super()._update_disc(amp_obs, valid)
        info.update(self._update_enc(amp_obs, self.buffer.get_flat("latent"), valid))
        return info

    def _update_enc(self, amp_obs: Tensor, latent: Tensor, valid: Tensor) -> Dict[str, float]:
        """Train the encoder on the iteration's AMP observations and latents.

        Args:
            amp_obs: ``[n, amp_obs_dim]`` raw, every step of the iteration.
            latent: ``[n, latent_dim]`` the latents the steps acted under.
            valid: ``[n]`` bool, the steps to learn from; at least one.
        """
        cfg = self.config
        sums: Dict[str, Tensor] = {}
        count = 0
        for _ in range(cfg.enc_epochs):
            for batch in minibatches(len(amp_obs), cfg.enc_batch_size, valid):
                if len(batch) == 0:
                    optimizer_step(self.enc_optimizer, None, self.encoder.parameters(), cfg.max_grad_norm)
                    continue
                loss, parts = self.enc_loss(self.amp_obs_norm.normalize(amp_obs[batch]), latent[batch])
                optimizer_step(self.enc_optimizer, loss, self.encoder.parameters(), cfg.max_grad_norm)
                parts["enc_loss"] = loss.detach()
                for key, val in parts.items():
                    sums[key] = sums.get(key, 0.0) + val
                count += 1
        return {key: float(val) / count for key, val in sums.items()}

    # ------------------------------------------------------------------ export
    def _export_error(self) -> MimicKitError:
        return MimicKitError("agent 'ASE' ({}): a latent-conditioned policy is exported with the high-level "
                             "controller that picks its latents (agent_name HRL, whose llc_model_file is this "
                             "model)".format(self.config_file))

    def _deterministic_actor(self) -> nn.Module:
        """Not available: the policy needs a latent beside the observation.

        Raises:
            MimicKitError: always.
        """
        raise self._export_error()

    def build_deploy_policy(self) -> DeployModule:
        """Not available alone: the low level is exported inside an HRL policy (:mod:`mimickit.learning.hrl_agent`).

        Raises:
            MimicKitError: always, saying so.
        """
        raise self._export_error()

    # ------------------------------------------------------------------ checkpoints
    def _model_state(self) -> Dict[str, Any]:
        state = super()._model_state()
        state.update(encoder=self.encoder.state_dict(), enc_optimizer=self.enc_optimizer.state_dict())
        return state

    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        super()._load_model_state(checkpoint)
        self.encoder.load_state_dict(checkpoint["encoder"])
        self.enc_optimizer.load_state_dict(checkpoint["enc_optimizer"])
        for group in self.enc_optimizer.param_groups:
            group["lr"] = self.config.enc_optimizer.learning_rate


def set_fixed_latent(agent: Any, seed: int) -> Tensor:
    """``--latent_seed``: all envs of ``agent`` get the latent drawn from ``seed`` (:meth:`ASEAgent.use_fixed_latent`).

    Returns:
        The latent, ``[latent_dim]``.

    Raises:
        MimicKitError: ``agent`` is not latent-conditioned.
    """
    if not isinstance(agent, ASEAgent):
        raise MimicKitError("--latent_seed: agent '{}' takes no latent (only ASE does)".format(
            getattr(agent, "NAME", type(agent).__name__)))
    return agent.use_fixed_latent(seed)

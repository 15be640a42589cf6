"""Adversarial Motion Priors (Peng et al. 2021): PPO with a discriminator-based style reward.

``agent_name: AMP``, for an environment that provides AMP observations (``env_name:
amp``, :mod:`mimickit.envs.amp_env`): ``info["amp_obs"]`` at every step and
``fetch_demo_amp_obs(n)`` for demonstrations. Each iteration:

1. The rollout (:mod:`mimickit.learning.base_agent`) stores each step's AMP observation
   ``amp_obs`` (of the state reached, the terminal one for an ended episode) and the
   environment's reward, the task reward ``r_task``.
2. Style rewards of every stored step from the discriminator as it was during the
   rollout: :func:`bce_style_reward` or :func:`lsq_style_reward`, times
   ``disc_reward_scale``. The reward PPO trains on is
   ``r = task_reward_w * r_task + disc_reward_w * r_style`` (Peng et al. 2021, eq. 4).
3. The PPO update (:class:`mimickit.learning.ppo_agent.PPOAgent`) on ``r``.
4. ``disc_epochs`` passes of the discriminator over the iteration's AMP observations in
   minibatches of ``disc_batch_size``; a ``disc_replay_fraction`` of each minibatch's
   agent samples is replaced by samples from a replay buffer of earlier iterations'
   (``disc_buffer_size`` samples), and as many demonstration samples are drawn from the
   environment. :meth:`AMPAgent.disc_loss` is minimised with its own optimiser
   (``disc_optimizer``).
5. The iteration's AMP observations join the replay buffer; the AMP-observation
   normaliser, shared by demonstrations and agent samples, takes in the samples the
   discriminator saw (it stays fixed during the rollout and the update).

Discriminator losses (``disc_loss``), on normalised AMP observations ``x``:

- ``bce``: binary cross-entropy on logits, demonstrations labelled 1 and agent samples 0,
  :func:`bce_disc_loss` (the GAN objective, Peng et al. 2021, eq. 5, as in the authors'
  MimicKit); ``D = sigmoid(logit)`` and the style reward is ``-log(max(1 - D, 1e-4))``.
- ``lsq``: least squares with targets +1 (demonstrations) and -1 (agent),
  :func:`lsq_disc_loss` (Peng et al. 2021, eq. 6; Escontrela et al. 2022,
  "Adversarial Motion Priors Make Good Substitutes for Complex Reward Functions", the
  AMP_for_hardware code); the style reward is ``max(0, 1 - 0.25 (d - 1)^2)`` (eq. 7).

Both add ``disc_grad_penalty`` x :func:`disc_grad_penalty` (the mean squared gradient
norm on demonstrations; Peng et al. 2021, eq. 8 with ``w_gp = 2 * disc_grad_penalty``),
``disc_logit_reg`` x the squared weights of the output layer and ``disc_weight_decay``
x the squared weights of every layer.

Logged (per iteration, averaged between outputs): ``disc_loss`` (total), ``disc_adv_loss``
(BCE or LSQ part), ``disc_grad_penalty``, ``disc_logit_reg_loss``,
``disc_weight_decay_loss``, ``disc_demo_logit``/``disc_agent_logit`` (mean raw outputs),
``disc_demo_pred``/``disc_agent_pred`` (mean ``D``: sigmoid for ``bce``, the raw output
for ``lsq``), ``disc_demo_acc``/``disc_agent_acc`` (fraction on the right side of 0),
``style_reward`` (mean, before ``disc_reward_w``) and ``task_reward`` (mean). The
``train_return``/``test_return`` columns are task returns (0 without a task).

Checkpoints hold the discriminator, its optimiser and the AMP normaliser; the replay
buffer is not saved (a resumed run refills it).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mimickit.envs.base_env import AMPEnvLike, BaseEnv
from mimickit.learning.agent_builder import register_agent
from mimickit.learning.base_agent import OptimizerConfig, build_optimizer, minibatches, optimizer_step
from mimickit.learning.networks import build_network, check_network_name, run_body
from mimickit.learning.normalizer import Normalizer
from mimickit.learning.ppo_agent import PPOAgent, PPOAgentConfig
from mimickit.learning.replay_buffer import ReplayBuffer
from mimickit.util.config import check_key, from_dict, keys_of
from mimickit.util.errors import MimicKitError

# Floor of 1 - D in the BCE style reward, so the reward stays finite (<= -log(1e-4) = 9.21).
BCE_REWARD_FLOOR = 1e-4


# ---------------------------------------------------------------------- losses and rewards
def bce_disc_loss(demo_logit: Tensor, agent_logit: Tensor) -> Tensor:
    """Binary cross-entropy of a discriminator on logits (Peng et al. 2021, eq. 5).

    ``0.5 * (mean_i -log sigmoid(l_demo_i) + mean_j -log(1 - sigmoid(l_agent_j)))``.

    demo_logit ``[n]``, agent_logit ``[m]``. Returns a scalar.
    """
    demo = F.binary_cross_entropy_with_logits(demo_logit, torch.ones_like(demo_logit))
    agent = F.binary_cross_entropy_with_logits(agent_logit, torch.zeros_like(agent_logit))
    return 0.5 * (demo + agent)


def lsq_disc_loss(demo_d: Tensor, agent_d: Tensor) -> Tensor:
    """Least-squares discriminator loss with targets +1 / -1 (Peng et al. 2021, eq. 6).

    ``0.5 * (mean_i (d_demo_i - 1)^2 + mean_j (d_agent_j + 1)^2)`` (also Escontrela et al. 2022).

    demo_d ``[n]``, agent_d ``[m]`` raw outputs. Returns a scalar.
    """
    return 0.5 * ((demo_d - 1.0).square().mean() + (agent_d + 1.0).square().mean())


def bce_style_reward(logit: Tensor) -> Tensor:
    """``-log(max(1 - D, 1e-4))`` with ``D = sigmoid(logit)``, ``[n]`` -> ``[n]``, in [0, 9.21]."""
    return -torch.log(torch.clamp(1.0 - torch.sigmoid(logit), min=BCE_REWARD_FLOOR))


def lsq_style_reward(d: Tensor) -> Tensor:
    """``max(0, 1 - 0.25 (d - 1)^2)`` (Peng et al. 2021, eq. 7), ``[n]`` -> ``[n]``, in [0, 1]."""
    return torch.clamp(1.0 - 0.25 * (d - 1.0).square(), min=0.0)


def disc_grad_penalty(demo_output: Tensor, demo_input: Tensor) -> Tensor:
    """Mean squared norm of the discriminator's gradient at the demonstrations.

    ``mean_i |d D(x_i) / d x_i|^2`` (Peng et al. 2021, eq. 8, without ``w_gp / 2``).

    Args:
        demo_output: ``[n]`` outputs computed from ``demo_input``. The graph is kept so
            the penalty can be minimised.
        demo_input: ``[n, dim]`` discriminator inputs; must require grad.

    Returns:
        A scalar.
    """
    grad, = torch.autograd.grad(demo_output.sum(), demo_input, create_graph=True)
    return grad.square().sum(dim=-1).mean()


# Per disc_loss: (discriminator loss, style reward, prediction D from the raw output).
_DiscLossFns = Tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]
DISC_LOSSES: Dict[str, _DiscLossFns] = {
    "bce": (bce_disc_loss, bce_style_reward, torch.sigmoid),
    "lsq": (lsq_disc_loss, lsq_style_reward, lambda d: d),
}


# ---------------------------------------------------------------------- model and config
class AMPDiscriminator(nn.Module):
    """``[batch, amp_obs_dim]`` normalised AMP observations -> ``[batch]`` raw outputs.

    The outputs are logits for ``bce`` and scores for ``lsq``; a network body then one
    linear unit.

    Args:
        amp_obs_dim: input size.
        net: body name for :func:`mimickit.learning.networks.build_network`.
        source: config file and key, for the error on an unknown name.
        matmul_dtype: dtype of the body's matrix products (:func:`mimickit.learning.networks.run_body`);
            the output layer runs in float32.
    """

    def __init__(self, amp_obs_dim: int, net: str, source: str = "disc_net",
                 matmul_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.matmul_dtype = matmul_dtype
        self.body, out_dim = build_network(net, amp_obs_dim, source)
        self.logit_layer = nn.Linear(out_dim, 1)

    def forward(self, norm_amp_obs: Tensor) -> Tensor:
        """``[batch, amp_obs_dim]`` normalised AMP observations -> ``[batch]`` raw outputs."""
        return self.logit_layer(run_body(self.body, norm_amp_obs, self.matmul_dtype)).squeeze(-1)

    def weights(self) -> List[Tensor]:
        """The weight matrices of every linear layer (biases excluded), output layer last."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]


@dataclasses.dataclass
class AMPAgentConfig(PPOAgentConfig):
    """AMP's keys, in addition to :class:`PPOAgentConfig`'s (defaults here); see the module docstring.

    Attributes:
        disc_net: discriminator body name (``fc_<L>layers_<U>units``).
        disc_optimizer: ``{type, learning_rate, args}`` of the discriminator.
        disc_loss: ``bce`` or ``lsq``.
        disc_epochs: passes over an iteration's AMP observations.
        disc_batch_size: agent samples (and as many demonstrations) per minibatch.
        disc_grad_penalty, disc_logit_reg, disc_weight_decay: regulariser weights, >= 0.
        disc_buffer_size: capacity of the replay buffer of agent AMP observations.
        disc_replay_fraction: share of a minibatch's agent samples drawn from it, in [0, 1].
        disc_reward_scale: multiplies the style reward.
        task_reward_w, disc_reward_w: weights of the task and style rewards.
    """

    disc_net: str = "fc_2layers_256units"
    disc_optimizer: OptimizerConfig = dataclasses.field(
        default_factory=lambda: OptimizerConfig(type="Adam", learning_rate=1e-4))
    disc_loss: str = "bce"
    disc_epochs: int = 1
    disc_batch_size: int = 512
    disc_grad_penalty: float = 5.0
    disc_logit_reg: float = 0.01
    disc_weight_decay: float = 1e-4
    disc_buffer_size: int = 20000
    disc_replay_fraction: float = 0.5
    disc_reward_scale: float = 2.0
    task_reward_w: float = 0.0
    disc_reward_w: float = 1.0

    def validate(self, source: str) -> None:
        """PPO's checks, then AMP's keys; :class:`MimicKitError` naming ``source`` and the key."""
        super().validate(source)
        check_network_name(self.disc_net, "{}: key 'disc_net'".format(source))
        check_key(self.disc_loss in DISC_LOSSES, source, "disc_loss", self.disc_loss,
               "one of {}".format(", ".join(sorted(DISC_LOSSES))))
        for key in ("disc_epochs", "disc_batch_size", "disc_buffer_size"):
            check_key(getattr(self, key) >= 1, source, key, getattr(self, key), ">= 1")
        for key in ("disc_grad_penalty", "disc_logit_reg", "disc_weight_decay", "disc_reward_scale",
                    "task_reward_w", "disc_reward_w"):
            check_key(getattr(self, key) >= 0, source, key, getattr(self, key), ">= 0")
        check_key(0.0 <= self.disc_replay_fraction <= 1.0, source, "disc_replay_fraction",
               self.disc_replay_fraction, "in [0, 1]")


# ---------------------------------------------------------------------- agent
@register_agent("AMP")
class AMPAgent(PPOAgent):
    """PPO with an adversarial motion prior; the config keys are those of :class:`AMPAgentConfig`.

    Args:
        config: the agent YAML mapping without ``agent_name``.
        config_file: its path, for messages.
        env: an environment with AMP observations (``amp_obs_dim``,
            ``fetch_demo_amp_obs(n)`` and ``info["amp_obs"]``).
        device: torch device of the networks.

    Raises:
        MimicKitError: on a bad config key or value (naming ``config_file``), or an
            environment without AMP observations.
    """

    NAME = "AMP"

    def __init__(self, config: Dict[str, Any], config_file: str, env: BaseEnv, device: str):
        if not isinstance(env, AMPEnvLike):
            raise MimicKitError("{}: agent_name {} needs an environment with AMP observations (env_name: amp), "
                                "got {}".format(config_file, self.NAME, type(env).__name__))
        cfg = from_dict(AMPAgentConfig, config, config_file)
        super().__init__(keys_of(PPOAgentConfig, config), config_file, env, device)
        self.config: AMPAgentConfig = cfg
        self.demo_env: AMPEnvLike = env
        self.amp_obs_dim = int(env.amp_obs_dim)
        self.disc = AMPDiscriminator(self.amp_obs_dim, cfg.disc_net, "{}: key 'disc_net'".format(config_file),
                                     self.matmul_dtype).to(device)
        self.disc_optimizer = build_optimizer(cfg.disc_optimizer, list(self.disc.parameters()),
                                              "{}: key 'disc_optimizer'".format(config_file))
        self.amp_obs_norm = Normalizer(self.amp_obs_dim, cfg.obs_norm_clip, cfg.normalizer_samples, device=device)
        self.replay_buffer = ReplayBuffer(cfg.disc_buffer_size, self.amp_obs_dim, device)
        self.buffer.add("amp_obs", (self.amp_obs_dim,))
        self._disc_loss_fn, self._style_reward_fn, self._disc_pred_fn = DISC_LOSSES[cfg.disc_loss]

    def _record_step_info(self, step: int, info: Dict[str, Any]) -> None:
        if "amp_obs" not in info:
            raise KeyError("AMP agent: the environment's step() returned no info['amp_obs']")
        self.buffer.record("amp_obs", step, info["amp_obs"].to(self.device))

    def test_step_metrics(self, info: Dict[str, Any]) -> Dict[str, Tensor]:
        """Test statistics get the mean style reward (scaled, as in training) per step."""
        return {"style_reward": self.style_reward(info["amp_obs"].to(self.device))}

    # ------------------------------------------------------------------ rewards and losses
    def style_reward(self, amp_obs: Tensor) -> Tensor:
        """Scaled style reward ``[n]`` of raw AMP observations ``[n, amp_obs_dim]`` (no gradient).

        ``disc_reward_scale`` x the ``disc_loss`` kind's style reward of the discriminator's output.
        """
        with torch.no_grad():
            out = self.disc(self.amp_obs_norm.normalize(amp_obs))
            return self.config.disc_reward_scale * self._style_reward_fn(out)

    def disc_loss(self, norm_demo_obs: Tensor, norm_agent_obs: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Discriminator loss of a minibatch (module docstring).

        Args:
            norm_demo_obs: ``[n, amp_obs_dim]`` normalised demonstrations.
            norm_agent_obs: ``[m, amp_obs_dim]`` normalised agent samples.

        Returns:
            ``(loss, parts)``; ``parts`` holds the detached terms and statistics named as
            the logged ``disc_*`` keys.
        """
        cfg = self.config
        demo_in = norm_demo_obs.detach().clone().requires_grad_(True)
        demo_out = self.disc(demo_in)
        agent_out = self.disc(norm_agent_obs)
        adv = self._disc_loss_fn(demo_out, agent_out)
        penalty = disc_grad_penalty(demo_out, demo_in)
        weights = self.disc.weights()
        logit_reg = weights[-1].square().sum()
        decay = sum(w.square().sum() for w in weights)
        loss = (adv + cfg.disc_grad_penalty * penalty + cfg.disc_logit_reg * logit_reg
                + cfg.disc_weight_decay * decay)
        parts = {"disc_adv_loss": adv, "disc_grad_penalty": penalty, "disc_logit_reg_loss": logit_reg,
                 "disc_weight_decay_loss": decay, "disc_demo_logit": demo_out.mean(),
                 "disc_agent_logit": agent_out.mean(), "disc_demo_pred": self._disc_pred_fn(demo_out).mean(),
                 "disc_agent_pred": self._disc_pred_fn(agent_out).mean(),
                 "disc_demo_acc": (demo_out > 0).float().mean(), "disc_agent_acc": (agent_out < 0).float().mean()}
        return loss, {k: v.detach() for k, v in parts.items()}

    # ------------------------------------------------------------------ training
    def _total_reward(self, task_reward: Tensor, style_reward: Tensor) -> Tensor:
        """The reward PPO trains on, ``task_reward_w * r_task + disc_reward_w * r_style`` (Peng et al. 2021, eq. 4).

        Args:
            task_reward: ``[steps_per_iter, num_envs]`` the environment's rewards.
            style_reward: ``[steps_per_iter, num_envs]`` scaled style rewards (:meth:`style_reward`).

        Returns:
            ``[steps_per_iter, num_envs]``; a subclass may add terms (ASE: the encoder reward).
        """
        return self.config.task_reward_w * task_reward + self.config.disc_reward_w * style_reward

    def _update(self) -> Dict[str, float]:
        valid = self.buffer.get("valid")
        amp_obs = self.buffer.get_flat("amp_obs")
        task_reward = self.buffer.get("reward").clone()
        style = self.style_reward(amp_obs).view_as(task_reward)
        reward = self._total_reward(task_reward, style)
        self.buffer.get("reward").copy_(torch.where(valid, reward, torch.zeros_like(reward)))

        info = super()._update()
        if bool(valid.any()):
            info.update(self._update_disc(amp_obs, valid.flatten()))
            self.replay_buffer.add(amp_obs[valid.flatten()])
        info["style_reward"] = float(style[valid].mean()) if bool(valid.any()) else float("nan")
        info["task_reward"] = float(task_reward[valid].mean()) if bool(valid.any()) else float("nan")
        info["disc_lr"] = self.disc_optimizer.param_groups[0]["lr"]
        self.amp_obs_norm.update()
        return info

    def _update_disc(self, amp_obs: Tensor, valid: Tensor) -> Dict[str, float]:
        """Train the discriminator on the iteration's AMP observations.

        Args:
            amp_obs: ``[n, amp_obs_dim]`` raw, every step of the iteration.
            valid: ``[n]`` bool, the steps to learn from (not in failed envs); at least one.
        """
        cfg = self.config
        sums: Dict[str, Tensor] = {}
        count = 0
        self.amp_obs_norm.record(amp_obs[valid])
        for _ in range(cfg.disc_epochs):
            for batch in minibatches(len(amp_obs), cfg.disc_batch_size, valid):
                if len(batch) == 0:
                    optimizer_step(self.disc_optimizer, None, self.disc.parameters(), cfg.max_grad_norm)
                    continue
                agent = amp_obs[batch]
                num_replay = int(round(cfg.disc_replay_fraction * len(batch))) if len(self.replay_buffer) > 0 else 0
                if num_replay > 0:
                    agent = torch.cat([agent[num_replay:], self.replay_buffer.sample(num_replay)])
                demo = self.demo_env.fetch_demo_amp_obs(len(batch)).to(self.device)
                self.amp_obs_norm.record(demo)
                loss, parts = self.disc_loss(self.amp_obs_norm.normalize(demo), self.amp_obs_norm.normalize(agent))
                optimizer_step(self.disc_optimizer, loss, self.disc.parameters(), cfg.max_grad_norm)
                parts["disc_loss"] = loss.detach()
                for key, val in parts.items():
                    sums[key] = sums.get(key, 0.0) + val
                count += 1
        return {key: float(val) / count for key, val in sums.items()}

    # ------------------------------------------------------------------ checkpoints
    def _model_state(self) -> Dict[str, Any]:
        state = super()._model_state()
        state.update(disc=self.disc.state_dict(), disc_optimizer=self.disc_optimizer.state_dict(),
                     amp_obs_norm=self.amp_obs_norm.state_dict())
        return state

    def _load_model_state(self, checkpoint: Dict[str, Any]) -> None:
        super()._load_model_state(checkpoint)
        self.disc.load_state_dict(checkpoint["disc"])
        self.disc_optimizer.load_state_dict(checkpoint["disc_optimizer"])
        self.amp_obs_norm.load_state_dict(checkpoint["amp_obs_norm"])
        for group in self.disc_optimizer.param_groups:
            group["lr"] = self.config.disc_optimizer.learning_rate

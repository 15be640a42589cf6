"""PPO's actor loss against direct computations: clipped surrogate, Gaussian terms, bound loss."""
import math

import numpy as np
import pytest
import torch

from mimickit.learning.ppo_agent import action_bound_loss, normalize_advantages, ppo_surrogate_loss


def test_clipped_surrogate_matches_hand_computation():
    ratio = torch.tensor([1.5, 0.5, 1.1, 0.7], dtype=torch.float64)
    adv = torch.tensor([2.0, -1.0, -3.0, 1.0], dtype=torch.float64)
    old_logp = torch.tensor([-1.0, -2.0, 0.3, -0.7], dtype=torch.float64)
    logp = (old_logp + ratio.log()).requires_grad_(True)
    # eps = 0.2; min(rho A, clip(rho, 0.8, 1.2) A) per sample:
    #   1.5 *  2 = 3.0   vs 1.2 *  2 =  2.4  -> 2.4  (clipped: ratio outside [0.8, 1.2])
    #   0.5 * -1 = -0.5  vs 0.8 * -1 = -0.8  -> -0.8 (clipped)
    #   1.1 * -3 = -3.3  vs 1.1 * -3 = -3.3  -> -3.3 (inside)
    #   0.7 *  1 = 0.7   vs 0.8 *  1 =  0.8  -> 0.7  (outside, but the unclipped term is the min)
    # loss = -mean = -(2.4 - 0.8 - 3.3 + 0.7) / 4 = 0.25
    loss, clip_frac = ppo_surrogate_loss(logp, old_logp, adv, 0.2)
    assert loss.item() == pytest.approx(0.25)
    assert clip_frac.item() == pytest.approx(0.75)
    # d loss / d logp_i = -rho_i A_i / 4 where the unclipped term is the min, else 0.
    loss.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [0.0, 0.0, 3.3 / 4, -0.7 / 4], atol=1e-12)


def test_action_bound_loss_matches_hand_computation():
    mean = torch.tensor([[1.5, -0.2], [-3.0, 0.5], [0.0, 2.0]])
    # violations: (1.5-1)^2 = 0.25; (-1-(-3))^2 = 4; dim 1 of the last row 1^2 = 1 (only if bounded)
    both = action_bound_loss(mean, torch.tensor([True, True]))
    assert both.item() == pytest.approx(0.5 * (0.25 + 4.0 + 1.0) / 3)
    first_only = action_bound_loss(mean, torch.tensor([True, False]))
    assert first_only.item() == pytest.approx(0.5 * (0.25 + 4.0) / 3)


def test_advantages_are_normalised_then_clipped():
    adv = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0])
    mean, std = 10.0, math.sqrt(0.9 * 100 + 0.1 * 8100)  # population std = 30
    out = normalize_advantages(adv, adv_clip=2.0)
    assert out[0].item() == pytest.approx((0 - mean) / (std + 1e-5))
    assert out[-1].item() == 2.0  # (100 - 10) / 30 = 3 clipped to 2


def test_agent_actor_loss_matches_direct_gaussian_computation(make_agent):
    agent = make_agent(num_envs=4, entropy_weight=0.01, action_reg_weight=0.1, action_bound_weight=10.0,
                       action_std=0.5)
    torch.manual_seed(1)
    obs = torch.randn(5, 4)
    with torch.no_grad():
        agent.model.actor_head.mean_layer.bias.copy_(torch.tensor([1.3, -1.2]))  # means past the bounds
    dist = agent.model.actor(obs)
    action = torch.randn(5, 2)
    old_logp = torch.randn(5) - 2.0
    adv = torch.randn(5)
    loss, parts = agent.actor_loss(dist, action, old_logp, adv)

    mu = dist.mean.detach().double().numpy()
    a, sigma = action.double().numpy(), 0.5
    logp = np.sum(-0.5 * ((a - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi), axis=1)
    ratio = np.exp(logp - old_logp.double().numpy())
    A = adv.double().numpy()
    surrogate = -np.mean(np.minimum(ratio * A, np.clip(ratio, 0.8, 1.2) * A))
    entropy = 2 * (0.5 + 0.5 * math.log(2 * math.pi) + math.log(sigma))
    bound = 0.5 * np.mean(np.sum(np.maximum(mu - 1, 0) ** 2 + np.maximum(-1 - mu, 0) ** 2, axis=1))
    reg = np.mean(np.sum(mu ** 2, axis=1))
    expected = surrogate + 10.0 * bound + 0.1 * reg - 0.01 * entropy
    assert bound > 0
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["entropy"].item() == pytest.approx(entropy, rel=1e-6)
    assert parts["bound_loss"].item() == pytest.approx(bound, rel=1e-5)

"""AMP discriminator losses, gradient penalty and style rewards against direct computations."""
import numpy as np
import pytest
import torch
from scipy.special import expit

from mimickit.learning.amp_agent import (
    bce_disc_loss,
    bce_style_reward,
    disc_grad_penalty,
    lsq_disc_loss,
    lsq_style_reward,
)


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(7, generator=gen, dtype=torch.float64) * 3, torch.randn(5, generator=gen, dtype=torch.float64) * 3


def test_bce_loss_is_the_mean_of_the_two_cross_entropies(logits):
    demo, agent = logits
    d, a = demo.numpy(), agent.numpy()
    expected = 0.5 * (np.mean(-np.log(expit(d))) + np.mean(-np.log(1.0 - expit(a))))
    assert float(bce_disc_loss(demo, agent)) == pytest.approx(expected, rel=1e-9)


def test_lsq_loss_pulls_demonstrations_to_plus_one_and_agent_samples_to_minus_one(logits):
    demo, agent = logits
    expected = 0.5 * (np.mean((demo.numpy() - 1.0) ** 2) + np.mean((agent.numpy() + 1.0) ** 2))
    assert float(lsq_disc_loss(demo, agent)) == pytest.approx(expected, rel=1e-12)
    assert float(lsq_disc_loss(torch.ones(3), -torch.ones(4))) == 0.0


def test_bce_style_reward_is_minus_log_one_minus_d_floored_at_1e_minus_4():
    logit = torch.tensor([-20.0, -2.0, 0.0, 1.5, 9.0, 9.3, 30.0], dtype=torch.float64)
    d = expit(logit.numpy())
    expected = -np.log(np.maximum(1.0 - d, 1e-4))
    np.testing.assert_allclose(bce_style_reward(logit).numpy(), expected, rtol=1e-9, atol=1e-12)
    assert float(bce_style_reward(torch.tensor([0.0]))) == pytest.approx(np.log(2.0))
    assert float(bce_style_reward(torch.tensor([50.0]))) == pytest.approx(-np.log(1e-4))  # the floor


def test_lsq_style_reward_is_one_minus_quarter_squared_error_clipped_at_zero():
    d = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    expected = np.maximum(0.0, 1.0 - 0.25 * (d.numpy() - 1.0) ** 2)
    np.testing.assert_allclose(lsq_style_reward(d).numpy(), expected, rtol=0, atol=1e-7)
    assert lsq_style_reward(torch.tensor([1.0, -1.0, 0.0])).tolist() == [1.0, 0.0, 0.75]


def test_grad_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    layer = torch.nn.Linear(4, 1).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    penalty = disc_grad_penalty(layer(x).squeeze(-1), x)
    w = layer.weight.detach()
    assert float(penalty.detach()) == pytest.approx(float((w ** 2).sum()), rel=1e-12)
    # The penalty stays differentiable: d|w|^2/dw = 2w.
    penalty.backward()
    torch.testing.assert_close(layer.weight.grad, 2.0 * w)


def test_grad_penalty_matches_finite_differences_of_an_mlp():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    x_in = x.clone().requires_grad_(True)
    penalty = disc_grad_penalty(net(x_in).squeeze(-1), x_in)
    eps = 1e-6
    norms = []
    with torch.no_grad():
        for i in range(len(x)):
            grad = []
            for j in range(3):
                step = torch.zeros(3, dtype=torch.float64)
                step[j] = eps
                grad.append((net(x[i] + step) - net(x[i] - step)).item() / (2 * eps))
            norms.append(sum(g * g for g in grad))
    assert float(penalty.detach()) == pytest.approx(np.mean(norms), rel=1e-7)

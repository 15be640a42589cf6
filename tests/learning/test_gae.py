"""GAE / TD(lambda): hand-worked values, FAIL/SUCC terminal, TIME bootstrapped, rollout end cut."""
import numpy as np
import pytest
import torch

from mimickit.envs.base_env import DoneFlags
from mimickit.learning.ppo_agent import compute_gae

N, F, S, T = int(DoneFlags.NULL), int(DoneFlags.FAIL), int(DoneFlags.SUCC), int(DoneFlags.TIME)


def columns(*envs):
    """[T, num_envs] tensor from per-env lists."""
    return torch.tensor(envs, dtype=torch.float32).T.contiguous()


def test_gae_matches_hand_worked_example_with_fail_time_and_rollout_end():
    gamma, lam = 0.9, 0.8  # gamma * lambda = 0.72
    # env 0: steps NULL, FAIL, NULL (new episode), TIME.
    # env 1: steps NULL, NULL, TIME, NULL (cut by the end of the rollout).
    done = columns([N, F, N, T], [N, N, T, N]).long()
    reward = columns([1.0, 2.0, 0.5, 1.0], [0.0, 1.0, 1.0, 2.0])
    value = columns([0.5, 1.0, 2.0, 1.5], [1.0, 2.0, 0.0, 4.0])
    # V(s'_t): the state each step reached, before reset. 9.0 follows the FAIL: must be ignored.
    next_value = columns([1.0, 9.0, 1.5, 3.0], [2.0, 0.0, 5.0, 2.5])

    # By hand, backwards, delta_t = r_t + gamma V(s'_t) [0 if FAIL/SUCC] - V(s_t),
    # A_t = delta_t + 0.72 A_{t+1} only when done_t is NULL and t+1 is in the rollout.
    # env 0:
    #   t=3 TIME: delta = 1 + 0.9*3.0 - 1.5 = 2.2                 A = 2.2
    #   t=2 NULL: delta = 0.5 + 0.9*1.5 - 2.0 = -0.15             A = -0.15 + 0.72*2.2 = 1.434
    #   t=1 FAIL: delta = 2 + 0 - 1.0 = 1.0                       A = 1.0
    #   t=0 NULL: delta = 1 + 0.9*1.0 - 0.5 = 1.4                 A = 1.4 + 0.72*1.0 = 2.12
    # env 1:
    #   t=3 NULL (rollout end): delta = 2 + 0.9*2.5 - 4.0 = 0.25  A = 0.25
    #   t=2 TIME: delta = 1 + 0.9*5.0 - 0.0 = 5.5                 A = 5.5
    #   t=1 NULL: delta = 1 + 0.9*0.0 - 2.0 = -1.0                A = -1.0 + 0.72*5.5 = 2.96
    #   t=0 NULL: delta = 0 + 0.9*2.0 - 1.0 = 0.8                 A = 0.8 + 0.72*2.96 = 2.9312
    expected_adv = columns([2.12, 1.0, 1.434, 2.2], [2.9312, 2.96, 5.5, 0.25])
    # TD(lambda) returns = A + V.
    expected_ret = columns([2.62, 2.0, 3.434, 3.7], [3.9312, 4.96, 5.5, 4.25])

    adv = compute_gae(reward, value, next_value, done, gamma, lam)
    torch.testing.assert_close(adv, expected_adv, rtol=0, atol=1e-5)
    torch.testing.assert_close(adv + value, expected_ret, rtol=0, atol=1e-5)


def test_succ_is_terminal_like_fail():
    kwargs = dict(reward=columns([1.0, 1.0]), value=columns([0.5, 0.5]), next_value=columns([0.5, 7.0]),
                  discount=0.9, td_lambda=0.8)
    adv_fail = compute_gae(done=columns([N, F]).long(), **kwargs)
    adv_succ = compute_gae(done=columns([N, S]).long(), **kwargs)
    torch.testing.assert_close(adv_fail, adv_succ)
    assert adv_succ[1, 0].item() == pytest.approx(1.0 - 0.5)


def test_lambda_one_gives_discounted_return_and_lambda_zero_one_step_td():
    rng = np.random.default_rng(0)
    steps, gamma = 6, 0.95
    reward = rng.normal(size=steps)
    value = rng.normal(size=steps)
    next_value = np.append(value[1:], rng.normal())  # one episode; the last step ends it with FAIL
    done = torch.tensor([[N]] * (steps - 1) + [[F]])
    r, v, nv = (torch.tensor(x, dtype=torch.float64)[:, None] for x in (reward, value, next_value))

    adv1 = compute_gae(r, v, nv, done, gamma, 1.0)
    mc_return = [sum(gamma ** k * reward[t + k] for k in range(steps - t)) for t in range(steps)]
    np.testing.assert_allclose((adv1 + v)[:, 0].numpy(), mc_return, rtol=1e-10)

    adv0 = compute_gae(r, v, nv, done, gamma, 0.0)
    one_step = reward + gamma * next_value * np.array([1.0] * (steps - 1) + [0.0]) - value
    np.testing.assert_allclose(adv0[:, 0].numpy(), one_step, rtol=1e-10)


def test_invalid_step_has_zero_advantage_and_nan_inputs_do_not_leak():
    # Step 1 is a failed env: reward and V(s') are nan; the agent marks it FAIL and invalid.
    done = columns([N, F, N]).long()
    reward = columns([1.0, float("nan"), 1.0])
    value = columns([0.5, 0.5, 0.5])
    next_value = columns([0.5, float("nan"), 0.5])
    valid = columns([1, 0, 1]).bool()
    adv = compute_gae(reward, value, next_value, done, 0.9, 0.8, valid)
    assert torch.isfinite(adv).all()
    assert adv[1, 0].item() == 0.0
    # Step 0 bootstraps from its own V(s'_0) = 0.5 and gets nothing from step 1.
    assert adv[0, 0].item() == pytest.approx(1.0 + 0.9 * 0.5 - 0.5)

"""Networks by name, experience buffer, return tracker, Gaussian head, optimisers from config."""
import math

import pytest
import torch
import torch.nn as nn
from scipy import stats

from mimickit.envs.base_env import BoxSpace, DoneFlags
from mimickit.learning.base_agent import ActionScaling, OptimizerConfig, build_optimizer
from mimickit.learning.distributions import GaussianPolicyHead
from mimickit.learning.experience_buffer import ExperienceBuffer
from mimickit.learning.networks import build_network
from mimickit.learning.return_tracker import ReturnTracker
from mimickit.util.config import from_dict
from mimickit.util.errors import MimicKitError


@pytest.mark.parametrize("name, sizes", [("fc_2layers_1024units", [1024, 1024]),
                                         ("fc_3layers_256units", [256, 256, 256]),
                                         ("fc_1layers_8units", [8])])
def test_fc_network_name_states_its_layer_sizes(name, sizes):
    net, out_dim = build_network(name, 5)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == sizes and out_dim == sizes[-1]
    assert linears[0].in_features == 5
    assert net(torch.zeros(3, 5)).shape == (3, sizes[-1])


@pytest.mark.parametrize("name", ["fc_0layers_8units", "fc_2layers_0units", "mlp_big", "fc_2layers"])
def test_unknown_network_name_is_an_error_naming_the_source(name):
    with pytest.raises(MimicKitError, match="agent.yaml: key 'actor_net'.*fc_<L>layers_<U>units"):
        build_network(name, 5, "agent.yaml: key 'actor_net'")


def test_experience_buffer_is_preallocated_and_flattens_time_major():
    buf = ExperienceBuffer(steps_per_iter=3, num_envs=2, device="cpu")
    buf.add("obs", (4,))
    buf.add("done", (), torch.long)
    assert buf.get("obs").shape == (3, 2, 4) and buf.get("done").dtype == torch.long
    storage = buf.get("obs").data_ptr()
    for t in range(3):
        buf.record("obs", t, torch.full((2, 4), float(t)))
    assert buf.get("obs").data_ptr() == storage
    assert buf.get_flat("obs")[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        buf.add("obs", (4,))


def test_return_tracker_averages_finished_episodes_only():
    tracker = ReturnTracker(num_envs=2, device="cpu")
    N, T, F = int(DoneFlags.NULL), int(DoneFlags.TIME), int(DoneFlags.FAIL)
    assert math.isnan(tracker.mean_return())
    steps = [([1.0, 2.0], [N, N]), ([1.0, 2.0], [T, N]), ([5.0, 2.0], [N, F]), ([1.0, 7.0], [N, N])]
    for reward, done in steps:
        tracker.update(torch.tensor(reward), torch.tensor(done))
    # finished: env 0 (1 + 1, 2 steps), env 1 (2 + 2 + 2, 3 steps); running ones are not counted
    assert tracker.num_episodes == 2
    assert tracker.mean_return() == pytest.approx((2.0 + 6.0) / 2)
    assert tracker.mean_ep_len() == pytest.approx(2.5)
    tracker.reset_stats()
    tracker.update(torch.tensor([1.0, 1.0]), torch.tensor([T, T]))
    assert tracker.mean_return() == pytest.approx((5.0 + 1.0 + 1.0 + 7.0 + 1.0) / 2)  # running ones carried on


def test_gaussian_head_log_prob_and_entropy_match_scipy():
    torch.manual_seed(0)
    head = GaussianPolicyHead(3, 2, init_std=0.7, learn_std=True)
    features = torch.randn(4, 3)
    dist = head(features)
    action = torch.randn(4, 2)
    mean = dist.mean.detach().numpy()
    expected = stats.norm(mean, 0.7).logpdf(action.numpy()).sum(axis=1)
    assert dist.log_prob(action).detach().numpy() == pytest.approx(expected, rel=1e-5)
    assert dist.entropy()[0].item() == pytest.approx(stats.norm(0, 0.7).entropy() * 2, rel=1e-6)
    assert any(p is head.log_std for p in head.parameters())
    fixed = GaussianPolicyHead(3, 2, init_std=0.7, learn_std=False)
    assert all(p is not fixed.log_std for p in fixed.parameters())


def test_action_scaling_maps_unit_box_onto_the_bounds_and_leaves_unbounded_dims():
    inf = float("inf")
    scaling = ActionScaling(BoxSpace(low=torch.tensor([-2.0, 0.0, -inf]), high=torch.tensor([2.0, 1.0, inf])), "cpu")
    out = scaling.to_env(torch.tensor([[-1.0, -1.0, 3.0], [1.0, 1.0, -3.0]]))
    assert out.tolist() == [[-2.0, 0.0, 3.0], [2.0, 1.0, -3.0]]
    assert scaling.bounded.tolist() == [True, True, False]


def test_optimizer_is_built_by_torch_optim_name_with_extra_args():
    params = [nn.Parameter(torch.zeros(2))]
    cfg = from_dict(OptimizerConfig, {"type": "SGD", "learning_rate": 0.5, "args": {"momentum": 0.9}}, "a.yaml")
    opt = build_optimizer(cfg, params, "a.yaml: key 'actor_optimizer'")
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(MimicKitError, match="a.yaml.*'Adamm'.*Adam"):
        from_dict(OptimizerConfig, {"type": "Adamm"}, "a.yaml")
    bad = from_dict(OptimizerConfig, {"type": "Adam", "args": {"momentum": 0.9}}, "a.yaml")
    with pytest.raises(MimicKitError, match="a.yaml: key 'actor_optimizer'.*Adam"):
        build_optimizer(bad, params, "a.yaml: key 'actor_optimizer'")

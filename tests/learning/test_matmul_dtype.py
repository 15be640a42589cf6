"""``matmul_dtype``: network bodies in bfloat16 under autocast, against the float32 networks they stand for."""
import pytest
import torch

from mimickit.learning.amp_agent import AMPDiscriminator, disc_grad_penalty
from mimickit.learning.networks import build_network, native_bf16_cpu, resolve_matmul_dtype, run_body
from mimickit.util.errors import MimicKitError
from tests.learning.toy_envs import PointMassEnv

BF16_EPS = 2.0 ** -8  # bfloat16 keeps 8 significant bits


def _body_and_input(in_dim=40, batch=256):
    torch.manual_seed(0)
    body, _ = build_network("fc_2layers_64units", in_dim)
    return body, torch.randn(batch, in_dim)


def test_bf16_body_is_float32_out_and_within_bf16_rounding_of_the_float32_body():
    body, x = _body_and_input()
    ref = body(x)
    out = run_body(body, x, torch.bfloat16)
    assert out.dtype == torch.float32
    err = (out - ref).abs().max() / ref.abs().max()
    # Each of the 3 layers rounds its inputs and weights to bfloat16: a few ulps, not more.
    assert 0 < err < 8 * BF16_EPS, float(err)
    assert torch.equal(run_body(body, x, torch.float32), ref)


def test_bf16_body_gradients_reach_the_float32_parameters_close_to_the_float32_ones():
    body, x = _body_and_input()
    grads = []
    for dtype in (torch.float32, torch.bfloat16):
        body.zero_grad()
        run_body(body, x, dtype).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in body.parameters()]))
    assert all(p.dtype == torch.float32 for p in body.parameters())
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cos > 0.999, float(cos)


def test_gradient_penalty_runs_through_a_bf16_discriminator_and_matches_float32():
    torch.manual_seed(0)
    disc = AMPDiscriminator(12, "fc_2layers_32units")
    penalties = []
    for dtype in (torch.float32, torch.bfloat16):
        disc.matmul_dtype = dtype
        x = torch.randn(128, 12, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        penalties.append(disc_grad_penalty(disc(x), x).detach())
    assert penalties[1].dtype == torch.float32
    assert abs(penalties[1].item() - penalties[0].item()) < 0.05 * penalties[0].item()


def test_auto_is_bf16_only_on_a_cpu_with_bf16_instructions():
    assert resolve_matmul_dtype("auto", "cpu") == (torch.bfloat16 if native_bf16_cpu() else torch.float32)
    assert resolve_matmul_dtype("auto", "cuda:0") == torch.float32
    assert resolve_matmul_dtype("bfloat16", "cuda:0") == torch.bfloat16
    assert resolve_matmul_dtype("float32", "cpu") == torch.float32


def test_bf16_agent_acts_in_bf16_and_exports_float32(make_agent):
    agent = make_agent(num_envs=4, env=PointMassEnv(4), matmul_dtype="bfloat16")
    assert agent.model.matmul_dtype == torch.bfloat16
    obs = torch.randn(64, 4) * 3.0
    policy = agent.build_deploy_policy()
    with torch.no_grad():
        exported = policy(obs)
        agent.model.matmul_dtype = torch.float32
        float32_action = agent.deterministic_env_action(obs)
    # The exported policy is the float32 function of the trained parameters.
    assert torch.allclose(exported, float32_action, atol=1e-6)
    assert all(p.dtype == torch.float32 for p in policy.parameters())


def test_unknown_matmul_dtype_is_named_with_the_accepted_ones(make_agent):
    with pytest.raises(MimicKitError, match="ppo_toy_agent.yaml: key 'matmul_dtype' must be one of float32, bfloat16, auto, got float16"):
        make_agent(matmul_dtype="float16")

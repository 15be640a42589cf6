"""model.pt: full round trip, atomic writes, and one-line errors for bad files."""
import os
import random

import numpy as np
import pytest
import torch

from mimickit.learning import checkpoint as checkpoint_module
from mimickit.learning.checkpoint import load_checkpoint, save_checkpoint
from mimickit.util.errors import MimicKitError


def trained_runner(make_runner, **overrides):
    torch.manual_seed(0)
    runner = make_runner(num_envs=4, **overrides)
    runner.train_iter()
    runner.train_iter()
    return runner


def test_round_trip_restores_networks_normaliser_optimisers_and_counters(make_runner, tmp_path):
    runner = trained_runner(make_runner, learn_action_std=True)
    agent = runner.agent
    path = str(tmp_path / "model.pt")
    runner.save(path)
    other_runner = make_runner(num_envs=4, learn_action_std=True)
    other = other_runner.agent
    other_runner.load(path)
    for (name, a), (_, b) in zip(agent.model.state_dict().items(), other.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(agent.obs_norm.mean, other.obs_norm.mean) and torch.equal(agent.obs_norm.var, other.obs_norm.var)
    assert other.obs_norm.count.item() == 160
    for opt_a, opt_b in ((agent.actor_optimizer, other.actor_optimizer), (agent.critic_optimizer, other.critic_optimizer)):
        state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
        assert state_a.keys() == state_b.keys() and len(state_a) > 0
        for key in state_a:
            assert torch.equal(state_a[key]["exp_avg_sq"], state_b[key]["exp_avg_sq"])
    assert (other_runner.iteration, other_runner.sample_count, other_runner.wall_time) == (2, 160, runner.wall_time)
    # Same policy.
    obs = torch.randn(3, 4)
    assert torch.equal(agent.model.actor(obs).mean, other.model.actor(obs).mean)


def test_checkpoint_holds_the_config_and_random_states(make_runner, tmp_path):
    runner = trained_runner(make_runner)
    path = str(tmp_path / "model.pt")
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    runner.save(path)
    expected = (torch.rand(2), np.random.rand(2), random.random())
    content = load_checkpoint(path, "PPO")
    assert content["config"]["actor_net"] == "fc_2layers_64units"
    assert content["config"]["actor_optimizer"] == {"type": "Adam", "learning_rate": 1e-3, "args": {}}

    # load() restores the random states when training starts (not at load, so test runs keep --rand_seed).
    other_runner = make_runner(num_envs=4)
    other_runner.load(path)
    torch.manual_seed(99)
    other_runner.train(max_samples=160, out_dir=str(tmp_path / "resume"), logger="txt")  # nothing left to train
    drawn = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(drawn[0], expected[0])
    np.testing.assert_array_equal(drawn[1], expected[1])
    assert drawn[2] == expected[2]


def test_truncated_file_is_an_error_naming_it(make_runner, tmp_path):
    runner = trained_runner(make_runner)
    path = tmp_path / "model.pt"
    runner.save(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MimicKitError, match="model.pt: cannot read it as a model file"):
        make_runner(num_envs=4).load(str(path))


@pytest.mark.parametrize("write", [
    lambda p: torch.save({"weight": torch.ones(2)}, p),  # a bare state dict
    lambda p: torch.save(torch.nn.Linear(2, 2), p),  # a pickled module
    lambda p: open(p, "w").write("not a model"),
])
def test_foreign_file_is_an_error_naming_it(make_runner, tmp_path, write):
    path = str(tmp_path / "foreign.pt")
    write(path)
    with pytest.raises(MimicKitError, match="foreign.pt: .*(not a MimicKit checkpoint|cannot read)"):
        make_runner(num_envs=4).load(path)


def test_checkpoint_of_other_networks_or_sizes_is_an_error_naming_it(make_runner, tmp_path):
    path = str(tmp_path / "model.pt")
    trained_runner(make_runner).save(path)
    with pytest.raises(MimicKitError, match="model.pt: does not fit this agent.*actor_net"):
        make_runner(num_envs=4, actor_net="fc_3layers_32units").load(path)
    save_checkpoint(path, "other_agent", {})
    with pytest.raises(MimicKitError, match="model.pt: saved by agent 'other_agent'"):
        make_runner(num_envs=4).load(path)


def test_failed_save_leaves_the_previous_file_and_no_temporary(make_runner, tmp_path, monkeypatch):
    runner = trained_runner(make_runner)
    path = tmp_path / "model.pt"
    runner.save(str(path))
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", broken_save)
    with pytest.raises(OSError):
        runner.save(str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]

"""Replay buffer: first in, first out at capacity; samples come only from what it holds."""
import pytest
import torch

from mimickit.learning.replay_buffer import ReplayBuffer


def test_holds_the_newest_samples_up_to_its_capacity():
    buf = ReplayBuffer(capacity=5, dim=1)
    buf.add(torch.arange(3.0).unsqueeze(-1))
    assert len(buf) == 3
    assert set(buf.sample(200).flatten().tolist()) == {0.0, 1.0, 2.0}
    buf.add(torch.arange(3.0, 7.0).unsqueeze(-1))  # 0 and 1 drop out
    assert len(buf) == 5
    assert set(buf.sample(400).flatten().tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}
    buf.add(torch.arange(10.0, 18.0).unsqueeze(-1))  # more than the capacity at once: the last 5 stay
    assert set(buf.sample(400).flatten().tolist()) == {13.0, 14.0, 15.0, 16.0, 17.0}


def test_sampling_an_empty_buffer_raises():
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(capacity=3, dim=2).sample(1)

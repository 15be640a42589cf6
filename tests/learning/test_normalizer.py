"""Observation normaliser against numpy; freezing; clipping; saved statistics."""
import numpy as np
import pytest
import torch

from mimickit.learning.normalizer import Normalizer


def batches(seed=0):
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.01])
    offset = np.array([0.0, -50.0, 3.0])
    return [rng.normal(size=(n, 3)) * scale + offset for n in (7, 64, 1, 200)]


def test_running_statistics_match_numpy_mean_and_std_of_all_samples():
    data = batches()
    norm = Normalizer(3, clip=100.0, max_samples=10 ** 9)
    for i, x in enumerate(data):
        norm.record(torch.tensor(x, dtype=torch.float32))
        if i % 2 == 1:
            norm.update()
    norm.update()
    every = np.concatenate(data).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), every.mean(axis=0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.std.numpy(), every.std(axis=0), rtol=1e-8)
    assert norm.count.item() == len(every)

    x = torch.tensor(every[:5], dtype=torch.float32)
    expected = (every[:5] - every.mean(axis=0)) / every.std(axis=0)
    np.testing.assert_allclose(norm.normalize(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.unnormalize(norm.normalize(x)).numpy(), x.numpy(), rtol=1e-5, atol=1e-4)


def test_recorded_samples_change_nothing_until_update():
    norm = Normalizer(3, clip=5.0, max_samples=10 ** 9)
    norm.record(torch.randn(10, 3) + 4.0)
    assert torch.equal(norm.mean, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(norm.std, torch.ones(3, dtype=torch.float64))


def test_statistics_freeze_after_normalizer_samples():
    data = batches(1)
    norm = Normalizer(3, clip=5.0, max_samples=70)
    norm.record(torch.tensor(data[0]))
    norm.update()
    assert not norm.frozen  # 7 < 70
    norm.record(torch.tensor(data[1]))
    norm.update()  # 71 >= 70: frozen
    assert norm.frozen
    first = np.concatenate(data[:2])
    mean = norm.mean.clone()
    norm.record(torch.tensor(data[3]))
    norm.update()
    assert torch.equal(norm.mean, mean) and norm.count.item() == 71
    np.testing.assert_allclose(norm.mean.numpy(), first.mean(axis=0), rtol=1e-10)


def test_normalised_values_are_clipped():
    norm = Normalizer(1, clip=3.0, max_samples=100)
    norm.record(torch.tensor([[-1.0], [1.0]]))
    norm.update()  # mean 0, std 1
    out = norm.normalize(torch.tensor([[-10.0], [2.0], [10.0]]))
    assert out.flatten().tolist() == [-3.0, 2.0, 3.0]


def test_state_dict_holds_the_statistics_but_not_pending_samples():
    norm = Normalizer(3, clip=5.0, max_samples=1000)
    norm.record(torch.randn(20, 3) * 2 + 1)
    norm.update()
    norm.record(torch.randn(5, 3))
    state = norm.state_dict()
    assert set(state) == {"count", "mean", "var"}
    other = Normalizer(3, clip=5.0, max_samples=1000)
    other.load_state_dict(state)
    x = torch.randn(4, 3)
    assert torch.equal(other.normalize(x), norm.normalize(x))
    assert other.count.item() == pytest.approx(20)

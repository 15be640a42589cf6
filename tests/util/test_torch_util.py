"""Rotation helpers against scipy.spatial.transform (which also stores x, y, z, w)."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from mimickit.util import torch_util as tu

N = 200


@pytest.fixture
def rots():
    return Rotation.random(N, random_state=0), Rotation.random(N, random_state=1)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def same_rotation(q_torch, rot):
    """Angle between the torch quaternions and the scipy rotations (rad)."""
    diff = Rotation.from_quat(q_torch.numpy()) * rot.inv()
    return diff.magnitude()


def test_quat_mul_matches_scipy_composition(rots):
    a, b = rots
    assert same_rotation(tu.quat_mul(t(a.as_quat()), t(b.as_quat())), a * b).max() < 1e-9


def test_quat_rotate_and_inverse_match_scipy(rots):
    a, _ = rots
    v = np.random.default_rng(0).normal(size=(N, 3))
    np.testing.assert_allclose(tu.quat_rotate(t(a.as_quat()), t(v)).numpy(), a.apply(v), atol=1e-9)
    np.testing.assert_allclose(tu.quat_rotate_inverse(t(a.as_quat()), t(v)).numpy(), a.inv().apply(v), atol=1e-9)


def test_exp_map_round_trip_matches_scipy_rotvec(rots):
    a, _ = rots
    rotvec = a.as_rotvec()
    assert same_rotation(tu.exp_map_to_quat(t(rotvec)), a).max() < 1e-9
    np.testing.assert_allclose(tu.quat_to_exp_map(t(a.as_quat())).numpy(), rotvec, atol=1e-9)


def test_exp_map_is_smooth_at_zero():
    tiny = t([[1e-7, -2e-7, 3e-7], [0.0, 0.0, 0.0]])
    q = tu.exp_map_to_quat(tiny)
    np.testing.assert_allclose(q.numpy(), Rotation.from_rotvec(tiny.numpy()).as_quat(), atol=1e-12)
    np.testing.assert_allclose(tu.quat_to_exp_map(q).numpy(), tiny.numpy(), atol=1e-12)


def test_matrix_conversions_match_scipy(rots):
    a, _ = rots
    np.testing.assert_allclose(tu.quat_to_matrix(t(a.as_quat())).numpy(), a.as_matrix(), atol=1e-9)
    assert same_rotation(tu.matrix_to_quat(t(a.as_matrix())), a).max() < 1e-9


def test_slerp_matches_scipy_at_random_fractions(rots):
    a, b = rots
    frac = np.random.default_rng(2).uniform(size=N)
    ours = tu.slerp(t(a.as_quat()), t(b.as_quat()), t(frac))
    for i in range(0, N, 20):
        ref = Slerp([0, 1], Rotation.concatenate([a[i], b[i]]))(frac[i])
        assert same_rotation(ours[i:i + 1], ref)[0] < 1e-7


def test_wxyz_conversion_round_trips(rots):
    a, _ = rots
    q = t(a.as_quat())
    wxyz = tu.quat_xyzw_to_wxyz(q)
    np.testing.assert_allclose(wxyz.numpy(), a.as_quat(scalar_first=True), atol=0)
    np.testing.assert_allclose(tu.quat_wxyz_to_xyzw(wxyz).numpy(), q.numpy(), atol=0)


def test_heading_is_yaw_of_rotated_x_axis(rots):
    a, _ = rots
    x = a.apply([1.0, 0.0, 0.0])
    heading = tu.calc_heading(t(a.as_quat())).numpy()
    np.testing.assert_allclose(heading, np.arctan2(x[:, 1], x[:, 0]), atol=1e-9)
    # Removing the heading leaves a rotated x axis with no y component.
    local = tu.quat_mul(tu.calc_heading_quat_inv(t(a.as_quat())), t(a.as_quat()))
    assert np.abs(tu.quat_rotate(local, t(np.tile([1.0, 0, 0], (N, 1))))[:, 1].numpy()).max() < 1e-9


def test_tan_norm_holds_rotated_x_and_z_axes(rots):
    a, _ = rots
    tn = tu.quat_to_tan_norm(t(a.as_quat())).numpy()
    np.testing.assert_allclose(tn[:, :3], a.apply([1.0, 0, 0]), atol=1e-9)
    np.testing.assert_allclose(tn[:, 3:], a.apply([0, 0, 1.0]), atol=1e-9)


def test_written_out_tan_norm_and_heading_equal_the_rotated_axes_in_float32(rots):
    # The quat_rotate forms these replaced (issue #17), as float32 observations use them.
    a, _ = rots
    q = t(a.as_quat()).float()
    axes = torch.eye(3, dtype=torch.float32)
    x_axis, z_axis = tu.quat_rotate(q, axes[0].expand(N, 3)), tu.quat_rotate(q, axes[2].expand(N, 3))
    torch.testing.assert_close(tu.quat_to_tan_norm(q), torch.cat([x_axis, z_axis], dim=-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(tu.calc_heading(q), torch.atan2(x_axis[:, 1], x_axis[:, 0]), atol=1e-6, rtol=0)


def test_quat_diff_angle_matches_scipy_magnitude(rots):
    a, b = rots
    ours = tu.quat_diff_angle(t(a.as_quat()), t(b.as_quat())).numpy()
    np.testing.assert_allclose(ours, (a * b.inv()).magnitude(), atol=1e-7)

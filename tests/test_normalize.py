import numpy as np
import pytest

from cabinlift.arrays import load_arrays, save_arrays
from cabinlift.errors import CabinliftError
from cabinlift.normalize import centre_3d, normalize_2d
from cabinlift.skeleton import L_SHOULDER, R_SHOULDER


def _pose2d():
    xy = np.zeros((1, 13, 2))
    xy[0, :, 0] = np.linspace(100, 300, 13)  # horizontal extent 200
    xy[0, :, 1] = np.linspace(50, 450, 13)  # vertical extent 400
    xy[0, L_SHOULDER] = [260.0, 200.0]
    xy[0, R_SHOULDER] = [140.0, 220.0]  # neck = (200, 210)
    return xy


def test_normalize_2d_centres_on_neck_and_scales_by_extents():
    xy = _pose2d()
    out, ok = normalize_2d(xy)
    assert ok.all()
    expected = (xy[0] - np.array([200.0, 210.0])) / np.array([200.0, 400.0])
    np.testing.assert_allclose(out[0], expected)
    np.testing.assert_allclose(0.5 * (out[0, L_SHOULDER] + out[0, R_SHOULDER]), [0, 0], atol=1e-12)
    np.testing.assert_allclose(out[0].max(0) - out[0].min(0), [1.0, 1.0])


def test_normalize_2d_is_invariant_to_image_scale_and_shift():
    xy = _pose2d()
    a, _ = normalize_2d(xy)
    b, _ = normalize_2d(xy * np.array([3.0, 0.5]) + 17.0)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_degenerate_2d_flagged():
    _, ok = normalize_2d(np.ones((2, 13, 2)))
    assert not ok.any()


def test_centre_3d_in_millimetres():
    xyz = np.zeros((1, 13, 3))
    xyz[0, L_SHOULDER] = [0.2, 0.0, 1.0]
    xyz[0, R_SHOULDER] = [-0.2, 0.0, 1.2]
    xyz[0, 0] = [0.0, -0.3, 1.1]
    out = centre_3d(xyz)
    np.testing.assert_allclose(out[0, 0], [0.0, -300.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out[0, L_SHOULDER], [200.0, 0.0, -100.0], atol=1e-9)


def test_processed_arrays_round_trip_and_shape_check(tmp_path):
    arrays = {"x2d": np.zeros((3, 13, 2), np.float32), "y3d": np.zeros((3, 13, 3), np.float32),
              "mask": np.ones((3, 13), bool), "subject": np.arange(3)}
    save_arrays(tmp_path / "a.npz", arrays)
    back = load_arrays(tmp_path / "a.npz")
    assert back["x2d"].shape == (3, 13, 2) and back["subject"].tolist() == [0, 1, 2]
    arrays["y3d"] = np.zeros((3, 12, 3), np.float32)
    save_arrays(tmp_path / "b.npz", arrays)
    with pytest.raises(CabinliftError, match=r"b\.npz.*'y3d'"):
        load_arrays(tmp_path / "b.npz")
    with pytest.raises(CabinliftError, match="not found"):
        load_arrays(tmp_path / "c.npz")

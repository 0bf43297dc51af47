from __future__ import annotations

import numpy as np
import pytest

from mtl_heads.datasets import LandmarkFile, image_fingerprint, load_landmarks, save_landmarks


def _images(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def _landmarks(n: int = 4) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 47, (n, 68, 2)).astype(np.float32)


def test_fingerprint_depends_on_pixels_order_and_shape() -> None:
    a = _images()
    assert image_fingerprint(a) == image_fingerprint(a.copy())
    assert image_fingerprint(a) != image_fingerprint(a[::-1].copy())
    b = a.copy()
    b[2, 10, 10] ^= 1
    assert image_fingerprint(a) != image_fingerprint(b)
    assert image_fingerprint(a) != image_fingerprint(a.reshape(4, 96, 24))
    with pytest.raises(TypeError, match="uint8"):
        image_fingerprint(a.astype(np.float32))


def test_round_trip(tmp_path) -> None:
    images, lm = _images(), _landmarks()
    valid = np.array([True, False, True, True])
    path = save_landmarks(
        tmp_path / "lm.npz",
        lm,
        valid,
        fingerprint=image_fingerprint(images),
        source="test",
        detector="d",
        detector_version="1",
        settings={"upsample": 4},
        passes=[1, 0, 2, 1],
        scores=[0.5, np.nan, -0.2, 1],
    )
    back = load_landmarks(path, images=images)
    assert isinstance(back, LandmarkFile) and len(back) == 4
    assert back.landmarks.dtype == np.float32 and back.landmarks.shape == (4, 68, 2)
    np.testing.assert_array_equal(back.landmarks[valid], lm[valid])
    assert np.isnan(back.landmarks[1]).all()  # invalid rows are NaN whatever was passed
    assert back.valid.tolist() == valid.tolist()
    assert back.settings == {"upsample": 4} and back.source == "test"
    assert back.passes.tolist() == [1, 0, 2, 1] and back.passes.dtype == np.int8
    # Plain arrays only: the file loads without pickle.
    with np.load(path, allow_pickle=False) as data:
        assert {"landmarks", "valid", "fingerprint", "num_images", "settings"} <= set(data.files)


def test_mismatch_errors_name_both_sides(tmp_path) -> None:
    images = _images()
    path = save_landmarks(
        tmp_path / "lm.npz", _landmarks(), np.ones(4, bool), fingerprint=image_fingerprint(images)
    )
    other = _images(seed=5)
    with pytest.raises(ValueError) as err:
        load_landmarks(path, images=other)
    msg = str(err.value)
    assert image_fingerprint(images) in msg and image_fingerprint(other) in msg and "lm.npz" in msg
    with pytest.raises(ValueError, match=r"has 4 images but the data source has 3"):
        load_landmarks(path, images=images[:3])


def test_bad_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_landmarks(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="missing keys"):
        load_landmarks(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", landmarks=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        load_landmarks(tmp_path / "pickled.npz")
    with pytest.raises(ValueError, match=r"\(N, 68, 2\)"):
        save_landmarks(tmp_path / "x.npz", np.zeros((2, 5, 2)), np.ones(2, bool), fingerprint="f")
    lm = _landmarks(2)
    lm[0, 3] = np.nan
    with pytest.raises(ValueError, match="marked valid hold non-finite"):
        save_landmarks(tmp_path / "x.npz", lm, np.ones(2, bool), fingerprint="f")
    with pytest.raises(ValueError, match="passes must have shape"):
        save_landmarks(
            tmp_path / "x.npz", _landmarks(2), np.ones(2, bool), fingerprint="f", passes=[1, 1, 1]
        )

"""SyntheticFaces: determinism, the data set contract, landmark/pixel alignment, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_heads.datasets import SYNTHETIC_CLASSES, SyntheticFaces


def test_contract_and_determinism():
    ds = SyntheticFaces(40, seed=1)
    assert ds.images.shape == (40, 48, 48) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and set(ds.labels.tolist()) <= set(range(7))
    assert ds.landmarks.shape == (40, 68, 2) and ds.landmarks.dtype == np.float32
    assert ds.landmarks_valid.all() and ds.classes == list(SYNTHETIC_CLASSES)
    item = ds[3]
    assert item["image"].shape == (1, 48, 48) and item["image"].dtype == torch.uint8
    assert item["label"].dtype == torch.int64 and item["landmarks_valid"].dtype == torch.bool
    again = SyntheticFaces(40, seed=1)
    assert np.array_equal(ds.images, again.images) and np.array_equal(ds.landmarks,
                                                                      again.landmarks)
    assert not np.array_equal(ds.images, SyntheticFaces(40, seed=2).images)


def test_collates_like_the_real_data_sets():
    batch = torch.utils.data.default_collate([SyntheticFaces(4)[i] for i in range(4)])
    assert batch["image"].shape == (4, 1, 48, 48) and batch["landmarks"].shape == (4, 68, 2)


def test_invalid_fraction_marks_nan_rows():
    ds = SyntheticFaces(400, invalid_fraction=0.3, seed=0)
    invalid = ~ds.landmarks_valid
    assert 0.2 < invalid.mean() < 0.4
    assert np.isnan(ds.landmarks[invalid]).all() and np.isfinite(ds.landmarks[~invalid]).all()


def test_classes_are_balanced_by_default_and_weighted_on_request():
    counts = np.bincount(SyntheticFaces(1400, seed=0).labels, minlength=7)
    assert counts.min() > 150
    weighted = SyntheticFaces(700, seed=0, class_weights=[0, 0, 0, 1, 0, 0, 1]).labels
    assert set(weighted.tolist()) == {3, 6}


def test_landmarks_sit_on_the_drawn_features():
    ds = SyntheticFaces(64, seed=0, noise=(0.0, 0.0))
    img = ds.images.astype(np.float32)
    idx = np.arange(64)[:, None]

    def at(points: np.ndarray) -> np.ndarray:
        xy = np.clip(np.round(points), 0, 47).astype(int)
        return img[idx, xy[..., 1], xy[..., 0]]

    brows = at(ds.landmarks[:, 17:27]).mean(1)
    # skin: halfway between the outer eye corner and the jaw, inside the face
    cheeks = at((ds.landmarks[:, [36, 45]] + ds.landmarks[:, [3, 13]]) / 2).mean(1)
    assert (brows < cheeks).mean() > 0.95


def test_size_scales_the_template():
    small, large = SyntheticFaces(8, size=48, seed=0), SyntheticFaces(8, size=96, seed=0)
    assert large.images.shape == (8, 96, 96)
    np.testing.assert_allclose((large.landmarks + 0.5) / 2 - 0.5, small.landmarks, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=0), "num_samples"),
    (dict(num_samples=4, size=8), "size"),
    (dict(num_samples=4, invalid_fraction=1.5), "invalid_fraction"),
    (dict(num_samples=4, scale=(1.2, 0.8)), "scale"),
    (dict(num_samples=4, class_weights=[1, 2]), "class_weights"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticFaces(**kwargs)

"""The Kornia path gives the studies' augmentation bit for bit.

The committed study results were trained with ``AlignedAugmentation`` as it was at commit aafcbc9
(frozen in aligned_reference.py). For the engine's settings, the parameters drawn by
``sample_parameters`` from a generator must be that class's draw (same values, dtypes and
generator state after), and ``paper_augmentation()`` must give its images, label maps and
landmarks exactly (``torch.equal``), also for the rows of one process of several.
"""

import pytest
import torch
from aligned_reference import AlignedAugmentation as StudyAugmentation

from mtl_heads.augmentation import (
    AlignedAugmentation,
    RandomAffineCrop,
    SoftMaskSequential,
    paper_augmentation,
    sample_parameters,
    select_parameters,
    zoom_of,
)
from mtl_heads.augmentation._warp import is_exact
from mtl_heads.datasets import synthetic_landmarks
from mtl_heads.landmarks import landmarks_to_label_maps

# the engine's --augment choices
SETTINGS = {
    "none": dict(flip=False, shift=0, rotation=0.0, zoom=1.0),
    "crop": dict(flip=False, shift=3, rotation=0.0, zoom=1.0),
    "flip-shift": dict(flip=True, shift=3, rotation=0.0, zoom=1.0),
    "full": dict(flip=True, shift=3, rotation=45.0, zoom=1.2),
}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA not available"))]


def _batch(n: int, seed: int, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, 48, 48, generator=g)
    landmarks = torch.from_numpy(synthetic_landmarks(n, seed=seed)[0])
    landmarks[1] = float("nan")  # a face without landmarks, as the data sets store it
    valid = torch.isfinite(landmarks).all(-1).all(-1)
    maps = landmarks_to_label_maps(landmarks, 48, valid=valid)  # soft maps, as the engine warps
    return tuple(t.to(device) for t in (images, landmarks, maps))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.device == b.device and torch.equal(
        torch.nan_to_num(a, nan=-123.0), torch.nan_to_num(b, nan=-123.0)
    )


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_sample_parameters_is_the_studies_random_stream(setting, seed):
    study = StudyAugmentation(**SETTINGS[setting], crop=42)
    aug = paper_augmentation(**SETTINGS[setting], crop=42)
    g_study, g_new = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for batch in (64, 7):  # two steps in a row: the generators must stay in step
        expected = study.generate_parameters(batch, g_study)
        params = sample_parameters(aug, (batch, 1, 48, 48), g_new)
        assert [item.name for item in params] == ["RandomAffineCrop_0"]
        for key, value in expected.items():
            assert _same(params[0].data[key], value), key
        assert torch.equal(g_study.get_state(), g_new.get_state())
        assert _same(zoom_of(params), expected["scale"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("rank", "world"), [(0, 1), (1, 3)])
def test_outputs_equal_the_studies_bit_for_bit(device, setting, rank, world):
    study = StudyAugmentation(**SETTINGS[setting], crop=42)
    aug = paper_augmentation(**SETTINGS[setting], crop=42)
    for seed in (0, 1):
        # the engine: draw for the global batch, keep this process's rows
        expected_all = study.generate_parameters(48, torch.Generator().manual_seed(seed))
        expected = {k: v[rank::world] for k, v in expected_all.items()}
        params = sample_parameters(aug, (48, 1, 48, 48), torch.Generator().manual_seed(seed))
        params = select_parameters(params, slice(rank, None, world))
        images, landmarks, maps = _batch(len(expected["flip"]), seed, device)
        # the copy path without rotation and zoom, the grid_sample path with them
        assert is_exact(params[0].data) == (setting != "full")
        if setting in ("flip-shift", "full"):
            assert expected["flip"].any() and not expected["flip"].all()

        x_ref, maps_ref = study(images, masks=maps, params=expected)
        x, maps_out = aug(images, maps, data_keys=["input", "mask"], params=params)
        assert _same(x, x_ref) and _same(maps_out, maps_ref)

        x_ref, lm_ref = study(images, landmarks, params=expected)
        x, lm_out = aug(images, landmarks, data_keys=["input", "keypoints"], params=params)
        assert _same(x, x_ref) and _same(lm_out, lm_ref)
        assert torch.isnan(lm_out[1]).all() and torch.isfinite(lm_out[0]).all()

        x = aug(images, data_keys=["input"], params=params)
        assert _same(x, study(images, params=expected))

        # all three keys in one call give the same
        x, maps_out, lm_out = aug(images, maps, landmarks, params=params)
        assert _same(x, x_ref) and _same(maps_out, maps_ref) and _same(lm_out, lm_ref)
        assert _same(zoom_of(params), expected["scale"])


def test_a_batch_with_rotated_and_unrotated_rows_stays_equal():
    # p < 1 leaves some rows un-augmented, same_on_batch shares one draw: both as in the studies
    for kwargs in (dict(p=0.6), dict(same_on_batch=True), dict(p=0.0)):
        study = StudyAugmentation(**kwargs)
        aug = SoftMaskSequential(RandomAffineCrop(**kwargs), data_keys=["input", "mask"])
        expected = study.generate_parameters(32, torch.Generator().manual_seed(5))
        params = sample_parameters(aug, (32, 1, 48, 48), torch.Generator().manual_seed(5))
        images, _, maps = _batch(32, 5)
        x_ref, maps_ref = study(images, masks=maps, params=expected)
        x, maps_out = aug(images, maps, params=params)
        assert _same(x, x_ref) and _same(maps_out, maps_ref), kwargs


def test_the_global_generator_draws_the_same_augmentation():
    # without params both draw from torch's global generator, in the same order
    images, landmarks, maps = _batch(16, 2)
    torch.manual_seed(7)
    x_ref, lm_ref, maps_ref = StudyAugmentation()(images, landmarks, maps)
    torch.manual_seed(7)
    x, maps_out, lm_out = paper_augmentation()(images, maps, landmarks)
    assert _same(x, x_ref) and _same(maps_out, maps_ref) and _same(lm_out, lm_ref)


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_package_aligned_augmentation_is_unchanged(setting):
    # AlignedAugmentation now shares its code with the Kornia transforms
    study = StudyAugmentation(**SETTINGS[setting], generator=torch.Generator().manual_seed(3))
    kept = AlignedAugmentation(**SETTINGS[setting], generator=torch.Generator().manual_seed(3))
    images, landmarks, maps = _batch(24, 3)
    for a, b in zip(study(images, landmarks, maps), kept(images, landmarks, maps), strict=True):
        assert _same(a, b)
    for key, value in study.last_params.items():
        assert _same(kept.last_params[key], value)

"""AlignedAugmentation (deprecated, kept one release) and the deprecated RandomAlignedCrop alias."""

from __future__ import annotations

import pytest
import torch

from mtl_heads.augmentation import AlignedAugmentation, center_crop
from mtl_heads.landmarks import landmarks_to_label_maps

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA not available"))]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _centroid_x(maps: torch.Tensor) -> torch.Tensor:
    xs = torch.arange(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    return (maps.sum(-2) * xs).sum(-1) / maps.sum((-2, -1))


def _iou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample and pooled IoU of maps thresholded at 0.5, per channel."""
    a, b = a > 0.5, b > 0.5
    inter, union = (a & b).sum((2, 3)).double(), (a | b).sum((2, 3)).double()
    return inter / union.clamp_min(1), inter.sum(0) / union.sum(0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_of_warped_maps_and_maps_from_warped_landmarks(device, seed, frontal_faces):
    # The label maps themselves are the image: after augmentation, the warped maps and the maps
    # drawn from the augmented landmarks must agree, channel for channel, flips included.
    g = _gen(seed)
    lm = frontal_faces(400, seed).to(device)
    maps = landmarks_to_label_maps(lm, 48)
    aug = AlignedAugmentation(generator=g)  # paper defaults: flip, ±45°, zoom 1.2, ±3 px, 42
    image, lm_aug, maps_aug = aug(maps, lm, masks=maps)
    params = aug.last_params
    flip = params["flip"].to(device)
    assert 0.35 < params["flip"].float().mean() < 0.65
    assert params["angle"].abs().max() > 40 and params["scale"].max() > 1.15
    assert len(set(params["offset"].flatten().tolist())) == 7  # -3..3
    redrawn = landmarks_to_label_maps(lm_aug, 42, thickness_scale=params["scale"].float())

    per_sample, pooled = _iou(maps_aug, redrawn)
    assert (pooled >= 0.9).all(), pooled
    # per face, one bilinear resampling costs the thinnest maps (closed mouths of ~20 px) most
    assert (per_sample >= 0.7).all(), per_sample.min(0)
    # the image channels are not semantic: they are the masks before the channel swap
    swapped = torch.where(flip[:, None, None, None], image[:, [1, 0, 2]], image)
    torch.testing.assert_close(swapped, maps_aug)
    # centroids agree to a fraction of a pixel (a 1 px misalignment would fail)
    err = (_centroid_x(maps_aug) - _centroid_x(redrawn)).abs()
    assert err.max() < 0.4 and err.mean() < 0.05
    # frontal faces: channel 0 (image-left brow) lies left of channel 1 on every sample
    for m in (maps_aug, redrawn):
        cx = _centroid_x(m)
        assert (cx[:, 0] < cx[:, 1]).all()


def test_without_the_flip_table_the_brows_swap_sides(frontal_faces):
    g = _gen(3)
    lm = frontal_faces(64, 3)
    aug = AlignedAugmentation(rotation=0, zoom=1, flip_index=None, generator=g)
    _, lm_aug = aug(torch.zeros(64, 1, 48, 48), lm)
    cx = _centroid_x(landmarks_to_label_maps(lm_aug, 42))
    flip = aug.last_params["flip"]
    assert flip.any() and (cx[flip, 0] > cx[flip, 1]).all()


def test_landmarks_follow_the_image_point_by_point():
    # A single bright pixel at an integer landmark lands where the transformed landmark says.
    aug = AlignedAugmentation(rotation=0, zoom=1, generator=_gen(4))
    img = torch.zeros(16, 1, 48, 48)
    pts = torch.randint(5, 43, (16, 68, 2)).float()
    img[torch.arange(16), 0, pts[:, 17, 1].long(), pts[:, 17, 0].long()] = 1.0
    out, lm = aug(img, pts)
    flip = aug.last_params["flip"]
    src = torch.where(flip[:, None], lm[:, 26], lm[:, 17])  # index 17 moved to 26 on flips
    peak = out.flatten(1).argmax(1)
    torch.testing.assert_close(src[:, 0], (peak % 42).float())
    torch.testing.assert_close(src[:, 1], (peak // 42).float())


def test_rotation_matrix_agrees_with_warp():
    # A pixel far from the centre, rotated 45°: the transformed point is where its mass goes.
    aug = AlignedAugmentation(flip=False, shift=0, rotation=45.0, zoom=1.2, generator=_gen(5))
    img = torch.zeros(8, 1, 48, 48)
    img[:, 0, 12:15, 30:33] = 1.0
    pts = torch.tensor([[31.0, 13.0]]).expand(8, 1, 2)
    aug.flip_index = None
    out, lm = aug(img, pts)
    ys, xs = torch.meshgrid(torch.arange(42.0), torch.arange(42.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    centre = torch.stack([(out[:, 0] * xs).sum((1, 2)), (out[:, 0] * ys).sum((1, 2))], -1)
    torch.testing.assert_close(centre / mass[:, None], lm[:, 0], atol=0.05, rtol=0)


def test_no_transformations_is_the_exact_centre_crop():
    images = torch.rand(5, 2, 48, 48)
    aug = AlignedAugmentation(flip=False, shift=0, rotation=0, zoom=1, generator=_gen(6))
    assert torch.equal(aug(images), center_crop(images, 42))
    lm = torch.rand(5, 68, 2) * 47
    _, lm_out = aug(images, lm)
    torch.testing.assert_close(lm_out, lm - 3)


def test_tfd_setting_copies_pixels_exactly():
    images = torch.rand(32, 1, 48, 48)
    aug = AlignedAugmentation(rotation=0, zoom=1, generator=_gen(7))
    out = aug(images)
    p = aug.last_params
    for i in range(32):
        dx, dy = p["offset"][i].tolist()
        src = images[i].flip(-1) if p["flip"][i] else images[i]
        # a mirror about the centre, then a crop shifted by (dx, dy) in the mirrored image
        assert torch.equal(out[i], src[:, 3 + dy : 45 + dy, 3 + dx : 45 + dx])


def test_shift_beyond_the_border_pads_with_zeros():
    aug = AlignedAugmentation(flip=False, shift=5, rotation=0, zoom=1, crop=42, generator=_gen(8))
    images = torch.rand(64, 1, 48, 48) + 1
    out = aug(images)
    off = aug.last_params["offset"]
    i = int(((off[:, 0] == 5) & (off[:, 1].abs() <= 3)).nonzero()[0])
    assert (out[i, :, :, -2:] == 0).all() and (out[i, :, :, :-2] > 0).all()


def test_p0_p1_and_same_on_batch():
    images = torch.rand(6, 1, 48, 48)
    aug0 = AlignedAugmentation(p=0.0, generator=_gen(9))
    assert torch.equal(aug0(images), center_crop(images, 42))
    aug1 = AlignedAugmentation(p=1.0, p_flip=1.0, rotation=0, zoom=1, shift=0, generator=_gen(9))
    assert torch.equal(aug1(images), center_crop(images.flip(-1), 42))
    same = AlignedAugmentation(same_on_batch=True, generator=_gen(10))
    out = same(images[:1].expand(6, -1, -1, -1).contiguous())
    assert all(torch.equal(out[0], out[i]) for i in range(6))
    assert (same.last_params["angle"] == same.last_params["angle"][0]).all()
    per_sample = AlignedAugmentation(generator=_gen(10))
    per_sample(images)
    assert len(set(per_sample.last_params["angle"].tolist())) == 6


def test_generator_reproducibility_and_replay():
    images, lm = torch.rand(4, 1, 48, 48), torch.rand(4, 68, 2) * 47
    a = AlignedAugmentation(generator=_gen(11))(images, lm)
    b = AlignedAugmentation()(images, lm, generator=_gen(11))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    aug = AlignedAugmentation(generator=_gen(12))
    first = aug(images, lm)
    replay = aug(images, lm, params=aug.last_params)
    assert all(torch.equal(x, y) for x, y in zip(first, replay, strict=True))
    assert aug.last_params["matrix"].shape == (4, 3, 3)


def test_gradients_flow_to_the_image():
    images = torch.rand(3, 1, 48, 48, requires_grad=True)
    AlignedAugmentation(generator=_gen(13))(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    images.grad = None
    AlignedAugmentation(rotation=0, zoom=1, generator=_gen(13))(images).sum().backward()
    assert images.grad.sum() == 3 * 42 * 42


def test_nan_landmarks_stay_nan_and_shapes_of_outputs():
    lm = torch.rand(2, 68, 2) * 47
    lm[1] = float("nan")
    aug = AlignedAugmentation(generator=_gen(14))
    out, lm_out, masks = aug(torch.rand(2, 1, 48, 48), lm, masks=torch.rand(2, 3, 48, 48))
    assert out.shape == (2, 1, 42, 42) and masks.shape == (2, 3, 42, 42)
    assert torch.isnan(lm_out[1]).all() and torch.isfinite(lm_out[0]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_images_device(device):
    images = torch.rand(4, 1, 48, 48, device=device)
    lm = (torch.rand(4, 68, 2) * 47).to(device)
    out, lm_out = AlignedAugmentation(generator=_gen(15))(images, lm)
    assert out.device.type == device and lm_out.device.type == device
    cpu = AlignedAugmentation(generator=_gen(15))(images.cpu(), lm.cpu())
    torch.testing.assert_close(out.cpu(), cpu[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(lm_out.cpu(), cpu[1])


def test_bad_input_raises_clear_errors():
    aug = AlignedAugmentation()
    with pytest.raises(ValueError, match="4-D"):
        aug(torch.rand(1, 48, 48))
    with pytest.raises(ValueError, match="larger than the images"):
        AlignedAugmentation(crop=50)(torch.rand(1, 1, 48, 48))
    with pytest.raises(ValueError, match=r"\(B, N, 2\) with B = 2"):
        aug(torch.rand(2, 1, 48, 48), torch.rand(3, 68, 2))
    with pytest.raises(ValueError, match="N = 5 points but flip_index has 68"):
        aug(torch.rand(2, 1, 48, 48), torch.rand(2, 5, 2))
    with pytest.raises(ValueError, match="masks have 4 channels but mask_flip_channels"):
        aug(torch.rand(2, 1, 48, 48), masks=torch.rand(2, 4, 48, 48))
    with pytest.raises(ValueError, match="masks must be"):
        aug(torch.rand(2, 1, 48, 48), masks=torch.rand(2, 3, 42, 42))
    with pytest.raises(TypeError, match="floating point"):
        aug(torch.zeros(2, 1, 48, 48, dtype=torch.uint8))
    with pytest.raises(ValueError, match="permutation"):
        AlignedAugmentation(mask_flip_channels=(0, 0, 2))
    with pytest.raises(ValueError, match="zoom"):
        AlignedAugmentation(zoom=0.8)
    with pytest.raises(ValueError, match="whole number"):
        AlignedAugmentation(shift=1.5)


def test_user_points_and_channels():
    # 5 points with their own mirror table, 2 mask channels swapped on flips.
    aug = AlignedAugmentation(
        rotation=0, zoom=1, flip_index=(1, 0, 2, 4, 3), mask_flip_channels=(1, 0), p_flip=1.0,
        generator=_gen(16),
    )
    masks = torch.zeros(1, 2, 48, 48)
    masks[0, 0, :, :24] = 1
    masks[0, 1, :, 24:] = 1
    pts = torch.tensor([[[10.0, 5], [37, 5], [24, 20], [15, 30], [32, 30]]])
    _, lm, m = aug(torch.rand(1, 1, 48, 48), pts, masks=masks)
    assert lm[0, 0, 0] < lm[0, 1, 0]  # point 0 is still the image-left one
    assert m[0, 0, :, :10].all() and not m[0, 0, :, 32:].any()


def test_warp_equals_kornia_warp_affine():
    from kornia.geometry.transform import warp_affine

    images, masks = torch.rand(16, 1, 48, 48), torch.rand(16, 3, 48, 48)
    aug = AlignedAugmentation(mask_flip_channels=None, generator=_gen(17))
    out, maps = aug(images, masks=masks)
    matrix = aug.last_params["matrix"][:, :2].float()
    ref = warp_affine(torch.cat([images, masks], 1), matrix, (42, 42), align_corners=True)
    torch.testing.assert_close(torch.cat([out, maps], 1), ref, atol=1e-4, rtol=0)


def test_deprecated_kornia_adapter_still_works() -> None:
    import kornia.augmentation as K

    from mtl_heads.augmentation import RandomAffineCrop, RandomAlignedCrop
    from mtl_heads.datasets import SyntheticFaces

    torch.manual_seed(0)
    faces = SyntheticFaces(6, seed=0)
    images = torch.from_numpy(faces.images)[:, None].float() / 255
    landmarks = torch.from_numpy(faces.landmarks)
    maps = landmarks_to_label_maps(landmarks, 48)
    aug = AlignedAugmentation(p_flip=0.5)
    with pytest.warns(DeprecationWarning, match="RandomAlignedCrop is deprecated"):
        crop = RandomAlignedCrop(aug)
    assert isinstance(crop, RandomAffineCrop)
    seq = K.AugmentationSequential(
        K.ColorJiggle(brightness=0.3, contrast=0.3, p=1.0), crop,
        data_keys=["input", "mask", "keypoints"])
    out, out_maps, out_lm = seq(images, maps, landmarks)
    params = {k: crop._params[k] for k in ("flip", "angle", "scale", "offset")}
    assert params["flip"].any() and not params["flip"].all()
    # geometry equals AlignedAugmentation's with the same parameters (masks and keypoints are
    # untouched by the colour jitter), the mirrored samples re-indexed; masks are resampled
    # bilinearly in Kornia's container, as the adapter always did
    ref_img, ref_lm, ref_maps = aug(images, landmarks, maps, params=params)
    torch.testing.assert_close(out_lm, ref_lm)
    torch.testing.assert_close(out_maps, ref_maps)
    assert out.shape == ref_img.shape == (6, 1, 42, 42) and not torch.allclose(out, ref_img)
    # image-left stays image-left: the left-brow channel is drawn from the left-brow points
    redrawn = landmarks_to_label_maps(out_lm, 42)
    overlap = torch.einsum("bkhw,bjhw->bkj", out_maps, redrawn)  # (B, warped map, drawn map)
    assert (overlap[:, 0, 0] > overlap[:, 0, 1]).all()
    assert (overlap[:, 1, 1] > overlap[:, 1, 0]).all()
    assert (out_lm[:, 17:22, 0].mean(1) < out_lm[:, 22:27, 0].mean(1)).all()
    # replay, as with any Kornia augmentation
    again = seq(images, maps, landmarks, params=seq._params)
    torch.testing.assert_close(again[1], out_maps)
    with pytest.raises(TypeError, match="aug must be an AlignedAugmentation"), pytest.warns(
        DeprecationWarning
    ):
        RandomAlignedCrop(K.RandomHorizontalFlip())
    # parameters from the wrapped augmentation's generator, as before
    seeded = AlignedAugmentation(generator=torch.Generator().manual_seed(4))
    with pytest.warns(DeprecationWarning):
        seeded_crop = RandomAlignedCrop(seeded)
    seeded_crop(images)
    expected = AlignedAugmentation().generate_parameters(6, torch.Generator().manual_seed(4))
    assert torch.equal(seeded_crop._params["angle"], expected["angle"])

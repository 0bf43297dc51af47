"""RandomMirror, RandomAffineCrop, SoftMaskSequential and paper_augmentation as Kornia transforms.

Kornia's contract for each (p=0/p=1, batch, same_on_batch, keepdim, inverse, masks and keypoints
aligned with the image, gradients, any device), and the issue's checks on synthetic faces.
"""

import kornia.augmentation as K
import pytest
import torch
from kornia.constants import DataKey
from kornia.geometry.linalg import transform_points

from mtl_heads.augmentation import (
    RandomAffineCrop,
    RandomMirror,
    SoftMaskSequential,
    center_crop,
    paper_augmentation,
    sample_parameters,
    select_parameters,
    zoom_of,
)
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.landmarks import FLIP_INDEX_68, landmarks_to_label_maps

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA not available"))]
# COCO's 17 body keypoints: nose, then left/right eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles
COCO_FLIP_INDEX = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)


def _centroid_x(maps: torch.Tensor) -> torch.Tensor:
    xs = torch.arange(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    return (maps.sum(-2) * xs).sum(-1) / maps.sum((-2, -1)).clamp_min(1e-6)


def _faces(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    faces = SyntheticFaces(n, seed=seed)
    images = torch.from_numpy(faces.images)[:, None].float() / 255
    landmarks = torch.from_numpy(faces.landmarks)
    return images, landmarks, landmarks_to_label_maps(landmarks, 48)


# --- RandomMirror ------------------------------------------------------------------------


def test_mirror_p0_and_p1():
    images, masks = torch.rand(3, 2, 6, 5), torch.rand(3, 3, 6, 5)
    points = torch.rand(3, 68, 2) * 4
    seq = K.AugmentationSequential(RandomMirror(p=0.0), data_keys=["input", "mask", "keypoints"])
    out = seq(images, masks, points)
    assert all(torch.equal(a, b) for a, b in zip(out, (images, masks, points), strict=True))

    seq = K.AugmentationSequential(RandomMirror(p=1.0), data_keys=["input", "mask", "keypoints"])
    out, out_masks, out_points = seq(images, masks, points)
    assert torch.equal(out, images.flip(-1))
    assert torch.equal(out_masks, masks.flip(-1)[:, [1, 0, 2]])  # the brows swap channels
    flipped = torch.stack([4 - points[..., 0], points[..., 1]], -1)  # x -> W - 1 - x
    torch.testing.assert_close(out_points, flipped[:, list(FLIP_INDEX_68)])


def test_mirror_batch_swaps_exactly_the_flipped_samples():
    torch.manual_seed(1)
    images, masks = torch.rand(256, 1, 8, 8), torch.rand(256, 3, 8, 8)
    points = torch.rand(256, 17, 2) * 7
    seq = K.AugmentationSequential(
        RandomMirror(flip_index=COCO_FLIP_INDEX, mask_flip_channels=(1, 0, 2)),
        data_keys=["input", "mask", "keypoints"],
    )
    out, out_masks, out_points = seq(images, masks, points)
    flip = seq._params[0].data["batch_prob"] > 0.5
    assert 0.3 < flip.float().mean() < 0.7
    assert torch.equal(out[flip], images[flip].flip(-1)) and torch.equal(out[~flip], images[~flip])
    assert torch.equal(out_masks[flip], masks[flip].flip(-1)[:, [1, 0, 2]])
    assert torch.equal(out_masks[~flip], masks[~flip])
    expected = torch.stack([7 - points[..., 0], points[..., 1]], -1)[:, list(COCO_FLIP_INDEX)]
    torch.testing.assert_close(out_points[flip], expected[flip])
    assert torch.equal(out_points[~flip], points[~flip])


def test_mirror_is_kornias_flip_for_the_pixels():
    images = torch.rand(64, 1, 8, 8)
    torch.manual_seed(2)
    ours = RandomMirror()(images)
    torch.manual_seed(2)
    assert torch.equal(ours, K.RandomHorizontalFlip()(images))
    assert isinstance(RandomMirror(), K.RandomHorizontalFlip)


def test_mirror_same_on_batch_and_keepdim():
    image = torch.rand(1, 1, 8, 8).expand(16, -1, -1, -1)
    outcomes = set()
    for seed in range(8):
        torch.manual_seed(seed)
        out = RandomMirror(same_on_batch=True)(image)
        assert all(torch.equal(out[0], o) for o in out)
        outcomes.add(bool(torch.equal(out[0], image[0].flip(-1))))
    assert outcomes == {True, False}
    assert RandomMirror(p=1.0, keepdim=True)(torch.rand(1, 8, 8)).shape == (1, 8, 8)


def test_mirror_inverse_restores_images_masks_and_points():
    torch.manual_seed(3)
    images, masks, points = torch.rand(32, 1, 8, 8), torch.rand(32, 3, 8, 8), torch.rand(32, 68, 2)
    seq = K.AugmentationSequential(RandomMirror(), data_keys=["input", "mask", "keypoints"])
    back = seq.inverse(*seq(images, masks, points))
    for a, b in zip(back, (images, masks, points), strict=True):
        torch.testing.assert_close(a, b)


def test_mirror_integer_masks_stay_integer():
    labels = torch.randint(0, 5, (8, 1, 6, 6))
    seq = K.AugmentationSequential(RandomMirror(mask_flip_channels=None, p=1.0),
                                   data_keys=["input", "mask"])
    _, out = seq(torch.rand(8, 1, 6, 6), labels)
    assert out.dtype == torch.int64 and torch.equal(out, labels.flip(-1))


def test_mirror_gradients_and_bad_input():
    images = torch.rand(4, 1, 8, 8, requires_grad=True)
    (RandomMirror(p=1.0)(images) * torch.arange(8.0)).sum().backward()
    assert torch.equal(images.grad[0, 0, 0], torch.arange(8.0).flip(0))
    seq = K.AugmentationSequential(RandomMirror(p=1.0), data_keys=["input", "keypoints"])
    with pytest.raises(ValueError, match="N = 5 points but flip_index has 68"):
        seq(torch.rand(1, 1, 8, 8), torch.rand(1, 5, 2))
    seq = K.AugmentationSequential(RandomMirror(p=1.0), data_keys=["input", "mask"])
    with pytest.raises(ValueError, match="masks have 1 channels but mask_flip_channels"):
        seq(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="flip_index must be a permutation"):
        RandomMirror(flip_index=(0, 0, 1))
    with pytest.raises(ValueError, match="p must be in"):
        RandomMirror(p=1.5)


# --- RandomAffineCrop --------------------------------------------------------------------


def test_affine_crop_p0_is_the_centre_crop():
    images, masks = torch.rand(5, 2, 48, 48), torch.rand(5, 3, 48, 48)
    points = torch.rand(5, 68, 2) * 47
    seq = SoftMaskSequential(RandomAffineCrop(p=0.0), data_keys=["input", "mask", "keypoints"])
    out, out_masks, out_points = seq(images, masks, points)
    assert torch.equal(out, center_crop(images, 42))
    assert torch.equal(out_masks, masks[..., 3:45, 3:45])
    torch.testing.assert_close(out_points, points - 3)


def test_affine_crop_p1_mirror_only():
    images, points = torch.rand(4, 1, 48, 48), torch.rand(4, 68, 2) * 47
    aug = RandomAffineCrop(rotation=0.0, zoom=1.0, shift=0, p_flip=1.0)
    seq = K.AugmentationSequential(aug, data_keys=["input", "keypoints"])
    out, out_points = seq(images, points)
    assert torch.equal(out, center_crop(images.flip(-1), 42))
    mirrored = torch.stack([47 - points[..., 0] - 3, points[..., 1] - 3], -1)
    torch.testing.assert_close(out_points, mirrored[:, list(FLIP_INDEX_68)])


def test_affine_crop_batch_and_same_on_batch():
    torch.manual_seed(4)
    aug = RandomAffineCrop()
    aug(torch.rand(64, 1, 48, 48))
    params = aug._params
    assert 0.3 < params["flip"].float().mean() < 0.7
    assert params["angle"].abs().max() > 40 and params["scale"].max() > 1.15
    assert len(set(params["offset"].flatten().tolist())) == 7  # -3..3
    same = RandomAffineCrop(same_on_batch=True)
    out = same(torch.rand(1, 1, 48, 48).expand(6, -1, -1, -1).contiguous())
    assert all(torch.equal(out[0], o) for o in out)
    assert all((same._params[k] == same._params[k][0]).all() for k in ("angle", "flip", "offset"))


def test_affine_crop_keepdim_and_repr():
    out = RandomAffineCrop(keepdim=True)(torch.rand(1, 48, 48))
    assert out.shape == (1, 42, 42)
    text = repr(RandomAffineCrop(p=0.7))
    assert "p=0.7" in text and "p=1.0" not in text and "size=(42, 42)" in text


def test_affine_crop_inverse():
    torch.manual_seed(5)
    images, masks = torch.rand(8, 1, 48, 48), torch.rand(8, 3, 48, 48)
    points = torch.rand(8, 68, 2) * 20 + 14
    seq = SoftMaskSequential(RandomAffineCrop(), data_keys=["input", "mask", "keypoints"])
    out, out_masks, out_points = seq(images, masks, points)
    assert seq._params[0].data["flip"].any()
    back, back_masks, back_points = seq.inverse(out, out_masks, out_points)
    assert back.shape == images.shape and back_masks.shape == masks.shape
    torch.testing.assert_close(back_points, points, atol=1e-4, rtol=0)
    # one transform alone: the inverse maps the crop back in place (a translation: exact pixels)
    crop = RandomAffineCrop(rotation=0.0, zoom=1.0, p_flip=0.0)
    back = crop.inverse(crop(images))
    off = crop._params["offset"]
    for i in range(8):
        dx, dy = off[i].tolist()
        inner = (slice(None), slice(3 + dy, 45 + dy), slice(3 + dx, 45 + dx))
        torch.testing.assert_close(back[i][inner], images[i][inner], atol=1e-5, rtol=0)
    # masks come back with their own channels: each warped-back channel matches its source best
    labels = torch.zeros(8, 3, 48, 48)
    labels[:, 0, 10:20, 8:20], labels[:, 1, 10:20, 28:40], labels[:, 2, 30:38, 16:32] = 1, 1, 1
    _, warped = seq(images, labels, data_keys=["input", "mask"])
    _, restored = seq.inverse(images[..., :42, :42], warped, data_keys=["input", "mask"])
    overlap = torch.einsum("bkhw,bjhw->bkj", restored, labels)
    assert (overlap.argmax(-1) == torch.arange(3)).all()


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool])
def test_integer_masks_stay_integer(dtype):
    torch.manual_seed(6)
    labels = (torch.arange(48) // 8 % 2 * 5).expand(4, 1, 48, 48).to(dtype)
    aug = paper_augmentation(mask_flip_channels=None, data_keys=["input", "mask"])
    _, out = aug(torch.rand(4, 1, 48, 48), labels)
    assert out.dtype == dtype and set(out.unique().tolist()) <= set(labels.unique().tolist())
    assert len(out.unique()) == 2  # labels kept, nothing in between (nearest)
    # the same parameters on the same labels as floats: resampled bilinearly, in-between values
    _, soft = aug(torch.rand(4, 1, 48, 48), labels.float(), params=aug._params)
    assert soft.dtype == torch.float32 and len(soft.unique()) > 2


def test_masks_in_a_plain_kornia_container_follow_kornias_rule():
    # Kornia's default is nearest for every mask; extra_args asks for bilinear, as in Kornia
    torch.manual_seed(7)
    images, maps = torch.rand(4, 1, 48, 48), torch.rand(4, 3, 48, 48)
    seq = K.AugmentationSequential(RandomAffineCrop(), data_keys=["input", "mask"])
    _, nearest = seq(images, maps)
    soft = SoftMaskSequential(RandomAffineCrop(), data_keys=["input", "mask"])
    _, bilinear = soft(images, maps, params=seq._params)
    bilinear_seq = K.AugmentationSequential(
        RandomAffineCrop(), data_keys=["input", "mask"],
        extra_args={DataKey.MASK: dict(resample="bilinear", align_corners=None)},
    )
    _, asked = bilinear_seq(images, maps, params=seq._params)
    assert torch.equal(asked, bilinear) and not torch.equal(nearest, bilinear)
    assert set(nearest.unique().tolist()) <= set(maps.unique().tolist()) | {0.0}  # 0: outside
    with pytest.raises(ValueError, match="two calls with the same params"):
        SoftMaskSequential(RandomAffineCrop(), data_keys=["input", "mask", "mask"])(
            images, maps, maps[:, :1].long())


def test_image_masks_and_points_stay_aligned():
    # a bright pixel at landmark 17 lands where the augmented landmark 17 (or 26 when mirrored)
    # says; its mask channel follows it
    torch.manual_seed(8)
    images, masks = torch.zeros(16, 1, 48, 48), torch.zeros(16, 3, 48, 48)
    points = torch.randint(5, 43, (16, 68, 2)).float()
    rows, cols = points[:, 17, 1].long(), points[:, 17, 0].long()
    images[torch.arange(16), 0, rows, cols] = 1.0
    masks[torch.arange(16), 0, rows, cols] = 1.0
    seq = SoftMaskSequential(RandomAffineCrop(rotation=0.0, zoom=1.0),
                             data_keys=["input", "mask", "keypoints"])
    out, out_masks, out_points = seq(images, masks, points)
    flip = seq._params[0].data["flip"]
    assert flip.any() and not flip.all()
    src = torch.where(flip[:, None], out_points[:, 26], out_points[:, 17])
    peak = out.flatten(1).argmax(1)
    torch.testing.assert_close(src[:, 0], (peak % 42).float())
    torch.testing.assert_close(src[:, 1], (peak // 42).float())
    channel = torch.where(flip, 1, 0)  # the mask channel swaps with the points
    assert torch.equal(out_masks[torch.arange(16), channel].flatten(1).argmax(1), peak)
    # rotated and zoomed: the mass of a blob goes where its centre point goes
    images = torch.zeros(8, 1, 48, 48)
    images[:, 0, 12:15, 30:33] = 1.0
    seq = K.AugmentationSequential(
        RandomAffineCrop(shift=0, p_flip=0.0, flip_index=None), data_keys=["input", "keypoints"])
    out, out_points = seq(images, torch.tensor([[[31.0, 13.0]]]).expand(8, 1, 2))
    ys, xs = torch.meshgrid(torch.arange(42.0), torch.arange(42.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    centre = torch.stack([(out[:, 0] * xs).sum((1, 2)), (out[:, 0] * ys).sum((1, 2))], -1)
    torch.testing.assert_close(centre / mass[:, None], out_points[:, 0], atol=0.05, rtol=0)


def test_affine_crop_gradients():
    images = torch.rand(3, 1, 48, 48, requires_grad=True)
    RandomAffineCrop()(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    images.grad = None
    RandomAffineCrop(rotation=0.0, zoom=1.0)(images).sum().backward()  # the copy path
    assert images.grad.sum() == 3 * 42 * 42


def test_affine_crop_bad_input():
    with pytest.raises(ValueError, match="larger than the images"):
        RandomAffineCrop(50)(torch.rand(1, 1, 48, 48))
    with pytest.raises(ValueError, match="resample must be"):
        RandomAffineCrop(resample="bicubic")
    with pytest.raises(ValueError, match="padding_mode"):
        RandomAffineCrop(padding_mode="wrap")
    with pytest.raises(ValueError, match="whole number"):
        RandomAffineCrop(shift=1.5)
    with pytest.raises(ValueError, match="zoom"):
        RandomAffineCrop(zoom=0.9)
    with pytest.raises(ValueError, match="p must be"):
        RandomAffineCrop(p=2.0)
    seq = paper_augmentation()
    with pytest.raises(ValueError, match="N = 5 points but flip_index has 68"):
        seq(torch.rand(2, 1, 48, 48), torch.rand(2, 3, 48, 48), torch.rand(2, 5, 2))
    with pytest.raises(ValueError, match="masks have 4 channels"):
        seq(torch.rand(2, 1, 48, 48), torch.rand(2, 4, 48, 48), torch.rand(2, 68, 2))


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_images_device(device):
    images, landmarks, maps = (t.to(device) for t in _faces(8, 0))
    aug = paper_augmentation().to(device)
    params = sample_parameters(aug, images.shape, torch.Generator().manual_seed(0))
    out, out_maps, out_lm = aug(images, maps, landmarks, params=params)
    assert {t.device.type for t in (out, out_maps, out_lm)} == {device}
    cpu = paper_augmentation()(images.cpu(), maps.cpu(), landmarks.cpu(), params=params)
    for a, b in zip((out, out_maps, out_lm), cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=0)
    back = aug.inverse(out, out_maps, out_lm)
    assert {t.device.type for t in back} == {device}
    mirror = K.AugmentationSequential(RandomMirror(), data_keys=["input", "keypoints"]).to(device)
    assert {t.device.type for t in mirror(images, landmarks)} == {device}


# --- paper_augmentation and its parameters --------------------------------------------------


def test_paper_augmentation_on_synthetic_faces():
    # the checks: maps warped with the image match maps redrawn from the returned
    # landmarks; 30-70 % mirrored, each with its indices swapped; brow 0 stays image-left
    images, landmarks, maps = _faces(256, 0)
    torch.manual_seed(0)
    aug = paper_augmentation()
    assert isinstance(aug, K.AugmentationSequential)
    out, out_maps, out_lm = aug(images, maps, landmarks)
    redrawn = landmarks_to_label_maps(out_lm, 42, thickness_scale=zoom_of(aug._params).float())
    soft_iou = torch.minimum(out_maps, redrawn).sum((2, 3)) / torch.maximum(
        out_maps, redrawn).sum((2, 3))
    assert soft_iou.mean() >= 0.6 and (soft_iou.mean(0) >= 0.6).all(), soft_iou.mean(0)

    flip = aug._params[0].data["flip"]
    assert 0.3 <= flip.float().mean() <= 0.7
    moved = transform_points(aug[0].transform_matrix, landmarks)  # Kornia's matrix, no swap
    swapped = torch.where(flip[:, None, None], moved[:, list(FLIP_INDEX_68)], moved)
    torch.testing.assert_close(out_lm, swapped, atol=1e-4, rtol=0)

    for m in (out_maps, redrawn):
        cx = _centroid_x(m)
        assert (cx[:, 0] < cx[:, 1]).float().mean() >= 0.95


def test_a_stock_kornia_flip_fails_the_brow_check():
    # why the mirror-aware flip exists: with Kornia's own flip "left brow" ends up image-right
    images, landmarks, maps = _faces(256, 0)
    torch.manual_seed(0)
    stock = K.AugmentationSequential(K.RandomHorizontalFlip(), K.CenterCrop(42),
                                     data_keys=["input", "mask", "keypoints"])
    _, out_maps, _ = stock(images, maps, landmarks)
    cx = _centroid_x(out_maps)
    assert (cx[:, 0] < cx[:, 1]).float().mean() < 0.7


def test_paper_augmentation_settings():
    assert paper_augmentation().disable_features  # a plain module call: tensors in and out
    crop = paper_augmentation()[0]
    gen = crop._param_generator
    assert (gen.rotation, gen.zoom, gen.shift, gen.p_flip, gen.p) == (45.0, 1.2, 3, 0.5, 1.0)
    assert crop.flags["size"] == (42, 42) and crop.flags["flip_index"] == FLIP_INDEX_68
    assert crop.flags["mask_flip_channels"] == (1, 0, 2)
    none = paper_augmentation(flip=False, shift=0, rotation=0.0, zoom=1.0, crop=(40, 44))
    images = torch.rand(3, 1, 48, 48)
    assert torch.equal(none(images, data_keys=["input"]), center_crop(images, (40, 44)))


def test_sample_and_select_parameters():
    aug = paper_augmentation()
    params = sample_parameters(aug, (6, 1, 48, 48), torch.Generator().manual_seed(0))
    again = sample_parameters(aug, (6, 1, 48, 48), torch.Generator().manual_seed(0))
    assert all(torch.equal(params[0].data[k], again[0].data[k]) for k in params[0].data)
    before = {k: v.clone() for k, v in params[0].data.items()}
    for index in (slice(1, None, 2), torch.tensor([1, 3, 5]), torch.arange(6) % 2 == 1):
        part = select_parameters(params, index)[0].data
        assert part["forward_input_shape"].tolist() == [3, 1, 48, 48]
        assert torch.equal(part["angle"], params[0].data["angle"][1::2])
        assert torch.equal(part["offset"], params[0].data["offset"][1::2])
    assert all(torch.equal(params[0].data[k], v) for k, v in before.items())
    # a process's rows give those rows of the whole batch
    images, maps = torch.rand(6, 1, 48, 48), torch.rand(6, 3, 48, 48)
    whole = aug(images, maps, data_keys=["input", "mask"], params=params)
    part = aug(images[1::2], maps[1::2], data_keys=["input", "mask"],
               params=select_parameters(params, slice(1, None, 2)))
    assert all(torch.equal(a[1::2], b) for a, b in zip(whole, part, strict=True))


def test_a_replay_follows_parameters_edited_in_place():
    aug = paper_augmentation()
    images, maps = torch.rand(4, 1, 48, 48), torch.rand(4, 3, 48, 48)
    params = sample_parameters(aug, images.shape, torch.Generator().manual_seed(0))
    first = aug(images, maps, data_keys=["input", "mask"], params=params)
    params[0].data["angle"][0] += 10.0
    again = aug(images, maps, data_keys=["input", "mask"], params=params)
    for a, b in zip(first, again, strict=True):
        assert not torch.equal(a[0], b[0]) and torch.equal(a[1:], b[1:])


def test_sample_parameters_with_a_separate_mirror():
    aug = SoftMaskSequential(RandomMirror(), RandomAffineCrop(p_flip=0.0, size=40),
                             data_keys=["input", "keypoints"])
    params = sample_parameters(aug, (64, 1, 48, 48), torch.Generator().manual_seed(1))
    assert [p.name for p in params] == ["RandomMirror_0", "RandomAffineCrop_1"]
    gate = params[0].data["batch_prob"]
    assert 0.3 < gate.mean() < 0.7 and not params[1].data["flip"].any()
    assert params[1].data["forward_input_shape"].tolist() == [64, 1, 48, 48]
    out, _ = aug(torch.rand(64, 1, 48, 48), torch.rand(64, 68, 2) * 47, params=params)
    assert out.shape == (64, 1, 40, 40)
    torch.testing.assert_close(zoom_of(params), params[1].data["scale"])


def test_parameter_helpers_reject_what_they_cannot_draw():
    g = torch.Generator()
    with pytest.raises(TypeError, match="AugmentationSequential"):
        sample_parameters(RandomAffineCrop(), (2, 1, 48, 48), g)
    with pytest.raises(TypeError, match="ColorJiggle"):
        sample_parameters(K.AugmentationSequential(K.ColorJiggle(0.1)), (2, 1, 48, 48), g)
    with pytest.raises(ValueError, match="random_apply"):
        sample_parameters(
            K.AugmentationSequential(RandomMirror(), RandomAffineCrop(), random_apply=1),
            (2, 1, 48, 48), g)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        sample_parameters(paper_augmentation(), (2, 48, 48), g)
    mirror_only = K.AugmentationSequential(RandomMirror())
    with pytest.raises(ValueError, match="no RandomAffineCrop draw"):
        zoom_of(sample_parameters(mirror_only, (2, 1, 8, 8), g))

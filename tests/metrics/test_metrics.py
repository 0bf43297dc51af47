import math

import pytest
import torch

from mtl_heads.landmarks import PAPER_GROUPS, landmarks_to_heatmaps
from mtl_heads.metrics import (
    LabelMapMetrics,
    inter_ocular_distance,
    label_map_prior,
    map_centroids,
    soft_argmax,
)


def _square(b, k, size, y0, x0, side):
    m = torch.zeros(b, k, size, size)
    m[:, :, y0:y0 + side, x0:x0 + side] = 1.0
    return m


def test_iou_soft_iou_by_hand():
    target = _square(2, 1, 10, 2, 2, 4)  # 16 px each
    pred = _square(2, 1, 10, 2, 4, 4)  # shifted right by 2: 8 px overlap, union 24
    logits = (pred * 2 - 1) * 30
    m = LabelMapMetrics(["a"])
    m.update(logits, target)
    res = m.compute()
    assert res["iou"]["a"] == pytest.approx(8 / 24)
    assert res["soft_iou"]["a"] == pytest.approx(8 / 24, abs=1e-6)
    # NME: predicted soft-argmax at x=5.5, target centroid x=3.5 -> 2 px over the diagonal
    assert res["nme"]["a"] == pytest.approx(2 / math.hypot(10, 10), abs=1e-4)


def test_pooled_over_batches_and_valid_mask():
    target = _square(2, 1, 8, 0, 0, 2)
    logits = torch.full((2, 1, 8, 8), -20.0)
    logits[0] = (target[0] * 2 - 1) * 20  # image 0 perfect, image 1 empty prediction
    m = LabelMapMetrics(["a"])
    m.update(logits[:1], target[:1])
    m.update(logits[1:], target[1:])
    assert m.compute()["iou"]["a"] == pytest.approx(4 / 8)
    m.reset()
    m.update(logits, target, valid=torch.tensor([True, False]))
    assert m.compute()["iou"]["a"] == pytest.approx(1.0)


def test_prior_scored_on_the_same_images():
    target = _square(4, 2, 8, 2, 2, 3)
    prior = label_map_prior(target)
    prior[1] *= 0.4  # map 1: below threshold everywhere -> IoU 0
    m = LabelMapMetrics(["a", "b"], prior=prior)
    m.update((target * 2 - 1) * 20, target)
    res = m.compute()
    assert res["prior"]["iou"] == {"a": 1.0, "b": 0.0}
    assert res["iou_mean"] == 1.0


def test_nme_uses_inter_ocular_distance():
    lm = torch.zeros(1, 68, 2)
    lm[0, 36] = torch.tensor([0.0, 0.0])
    lm[0, 45] = torch.tensor([4.0, 3.0])
    assert inter_ocular_distance(lm).item() == 5.0
    target = _square(1, 1, 10, 4, 4, 2)
    logits = torch.full((1, 1, 10, 10), -30.0)
    logits[0, 0, 4, 7] = 30.0  # soft-argmax (7, 4), target centroid (4.5, 4.5)
    m = LabelMapMetrics(["a"])
    m.update(logits, target, landmarks=lm)
    assert m.compute()["nme"]["a"] == pytest.approx(math.hypot(2.5, 0.5) / 5, abs=1e-4)


def test_soft_argmax_and_centroids_agree_on_heatmaps():
    lm = torch.tensor([[[7.3, 4.6]]])
    heat = landmarks_to_heatmaps(lm, 16, sigma=1.0)
    torch.testing.assert_close(map_centroids(heat), lm[:, :, :], atol=1e-3, rtol=0)
    torch.testing.assert_close(soft_argmax(torch.log(heat + 1e-30)), lm, atol=1e-3, rtol=0)


def test_bad_input_named():
    with pytest.raises(ValueError, match="prior must be"):
        LabelMapMetrics(["a"], prior=torch.zeros(2, 4, 4))
    m = LabelMapMetrics(["a", "b"])
    with pytest.raises(ValueError, match=r"logits must be \(B, 2, H, W\)"):
        m.update(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="target must have the logits' shape"):
        m.update(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="no maps given"):
        label_map_prior(torch.zeros(0, 1, 2, 2))


def test_heatmaps_groups_nan_and_flip():
    lm = torch.rand(3, 68, 2) * 40 + 4
    lm[1] = float("nan")
    with pytest.warns(UserWarning, match="1 of 3 samples"):
        heat = landmarks_to_heatmaps(lm, 48, sigma=2.0, groups=PAPER_GROUPS)
    assert heat.shape == (3, 3, 48, 48) and heat[1].abs().sum() == 0
    quiet = landmarks_to_heatmaps(lm, 48, sigma=2.0, groups=PAPER_GROUPS,
                                  valid=torch.tensor([True, False, True]))
    torch.testing.assert_close(quiet, heat)
    # a horizontal flip of the landmarks with re-indexing = flipped maps with the brows swapped
    from mtl_heads.landmarks import FLIP_INDEX_68

    ok = lm[[0, 2]]
    flipped = ok.clone()
    flipped[..., 0] = 47 - flipped[..., 0]
    flipped = flipped[:, list(FLIP_INDEX_68)]
    a = landmarks_to_heatmaps(flipped, 48, sigma=2.0, groups=PAPER_GROUPS)
    b = landmarks_to_heatmaps(ok, 48, sigma=2.0, groups=PAPER_GROUPS).flip(-1)[:, [1, 0, 2]]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="N >= 60"):
        landmarks_to_heatmaps(torch.zeros(1, 10, 2), 8, groups=PAPER_GROUPS)
    with pytest.raises(ValueError, match="sigma"):
        landmarks_to_heatmaps(lm, 8, sigma=-1.0)


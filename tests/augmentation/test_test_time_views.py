"""The paper's test-time views: centre crop, 10 crops, averaged predictions."""

import pytest
import torch
import torch.nn as nn

from mtl_heads.augmentation import center_crop, predict_ten_crop, ten_crop_views


def test_center_crop_and_views_match_torchvision():
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    images = torch.rand(2, 1, 48, 48)
    views = ten_crop_views(images, 42)
    assert views.shape == (10, 2, 1, 42, 42)
    expected = tvf.ten_crop(images, [42, 42])
    for v, e in zip(views, expected, strict=True):
        assert torch.equal(v, e)
    assert torch.equal(views[4], center_crop(images, 42))
    assert torch.equal(views[4], images[..., 3:45, 3:45])
    assert torch.equal(views[5], views[1].flip(-1))  # mirror of the top-right crop
    assert torch.equal(views[9], views[4].flip(-1))
    assert torch.equal(views[0], images[..., :42, :42])


def test_predict_ten_crop_equals_a_hand_loop():
    model = nn.Sequential(nn.Flatten(), nn.Linear(42 * 42, 7)).eval()
    images = torch.rand(3, 1, 48, 48)
    probs = predict_ten_crop(model, images, 42)
    hand = torch.zeros(3, 7)
    for top, left in [(0, 0), (0, 6), (6, 0), (6, 6), (3, 3)]:
        for mirrored in (False, True):
            src = images.flip(-1) if mirrored else images
            hand += model(src[..., top : top + 42, left : left + 42]).softmax(-1) / 10
    torch.testing.assert_close(probs, hand)

    class DictModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.inner(x), "label_maps": x}

    torch.testing.assert_close(predict_ten_crop(DictModel(), images, 42), probs)


def test_predict_ten_crop_with_a_timm_model():
    timm = pytest.importorskip("timm")
    model = timm.create_model("test_resnet", in_chans=1, num_classes=7).eval()
    with torch.inference_mode():
        probs = predict_ten_crop(model, torch.rand(2, 1, 48, 48), 42)
    assert probs.shape == (2, 7)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))


def test_predict_ten_crop_rejects_other_outputs():
    with pytest.raises(TypeError, match="'logits'"):
        predict_ten_crop(lambda x: {"maps": x}, torch.rand(1, 1, 48, 48), 42)



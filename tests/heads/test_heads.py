import pytest
import torch

from mtl_heads import LabelMapHead, LinearLabelMapHead, SpatialLabelMapHead


def test_linear_paper_size() -> None:
    head = LinearLabelMapHead(3072, num_label_maps=3, img_size=42)
    assert head.fc.out_features == 5292
    assert sum(p.numel() for p in head.parameters()) == 3072 * 5292 + 5292
    x = torch.randn(4, 3072)
    out = head(x)
    assert out.shape == (4, 3, 42, 42)
    # one output unit per (map, row, column), row-major like the flattened target maps
    assert torch.equal(out.flatten(1), head.fc(x))


def test_linear_rectangular_and_4d_input() -> None:
    head = LinearLabelMapHead(16, num_label_maps=2, img_size=(6, 10))
    assert head(torch.randn(3, 16, 1, 1)).shape == (3, 2, 6, 10)
    assert head(torch.randn(3, 16), size=(6, 10)).shape == (3, 2, 6, 10)


def test_linear_errors() -> None:
    head = LinearLabelMapHead(16, num_label_maps=3, img_size=42)
    with pytest.raises(ValueError, match="built for 42x42 inputs but got 48x48"):
        head(torch.randn(2, 16), size=(48, 48))
    with pytest.raises(ValueError, match=r"expects a \(B, 16\) pre-logits vector, got \(2, 8\)"):
        head(torch.randn(2, 8))
    with pytest.raises(TypeError, match="takes a \\(B, D\\) tensor, got list"):
        head([torch.randn(2, 16)])


@pytest.mark.parametrize("size", [(42, 42), (48, 48), (37, 53)])
def test_spatial_any_input_size(size: tuple[int, int]) -> None:
    head = SpatialLabelMapHead([8, 16, 32], num_label_maps=3, channels=16)
    h, w = size
    # stride 2, 8 and 32 maps with ceil rounding as a CNN gives them
    feats = [torch.randn(2, c, -(-h // s), -(-w // s)) for c, s in ((8, 2), (16, 8), (32, 32))]
    out = head(feats, size=size)
    assert out.shape == (2, 3, h, w)
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.lateral.parameters())


def test_spatial_uses_the_finest_map() -> None:
    head = SpatialLabelMapHead([4, 4], num_label_maps=1, channels=4).eval()
    coarse = torch.randn(1, 4, 2, 2)
    fine_a, fine_b = torch.randn(1, 4, 12, 12), torch.randn(1, 4, 12, 12)
    # the output depends on the fine map: detail comes from the early stages
    assert not torch.allclose(
        head([fine_a, coarse], size=(48, 48)), head([fine_b, coarse], size=(48, 48))
    )


def test_spatial_errors() -> None:
    head = SpatialLabelMapHead([8, 16], num_label_maps=3)
    feats = [torch.randn(1, 8, 12, 12), torch.randn(1, 16, 6, 6)]
    with pytest.raises(ValueError, match="needs size=\\(H, W\\)"):
        head(feats)
    with pytest.raises(
        ValueError, match=r"expects 2 NCHW maps with channels \[8, 16\], got shapes"
    ):
        head([feats[0], torch.randn(1, 4, 6, 6)], size=(48, 48))
    with pytest.raises(ValueError, match="expects 2 NCHW maps"):
        head(feats[:1], size=(48, 48))
    with pytest.raises(TypeError, match="takes a list of NCHW feature maps, got Tensor"):
        head(feats[0], size=(48, 48))


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="num_label_maps must be a positive int, got 0"):
        LinearLabelMapHead(8, num_label_maps=0, img_size=4)
    with pytest.raises(ValueError, match="num_label_maps must be a positive int, got True"):
        SpatialLabelMapHead([8], num_label_maps=True)
    with pytest.raises(ValueError, match="in_features must be a positive int, got 0"):
        LinearLabelMapHead(0, num_label_maps=3, img_size=4)
    with pytest.raises(ValueError, match="in_channels must be a non-empty list"):
        SpatialLabelMapHead([], num_label_maps=3)
    with pytest.raises(ValueError, match="in_channels must be a non-empty list"):
        SpatialLabelMapHead(8, num_label_maps=3)
    with pytest.raises(ValueError, match="img_size must be an int or an \\(H, W\\) pair"):
        LinearLabelMapHead(8, num_label_maps=3, img_size=(4, 4, 4))
    # one class per form, one base class for both
    assert issubclass(LinearLabelMapHead, LabelMapHead)
    assert issubclass(SpatialLabelMapHead, LabelMapHead)
    assert (LinearLabelMapHead.kind, SpatialLabelMapHead.kind) == ("linear", "spatial")


def test_init_prior_linear_is_per_pixel() -> None:
    torch.manual_seed(0)
    head = LinearLabelMapHead(16, num_label_maps=2, img_size=(3, 4))
    prior = torch.rand(2, 3, 4) * 0.9 + 0.05
    head.init_prior(prior)
    # a zero feature vector predicts exactly the prior, pixel by pixel, in the maps' layout
    torch.testing.assert_close(torch.sigmoid(head(torch.zeros(1, 16)))[0], prior)
    head.init_prior(torch.tensor([0.0, 1.0]))  # per-map rates; 0 and 1 are clamped, not inf
    assert torch.isfinite(head.fc.bias).all()
    assert (head.fc.bias[:12] < 0).all() and (head.fc.bias[12:] > 0).all()


def test_init_prior_spatial_takes_the_per_map_mean() -> None:
    head = SpatialLabelMapHead([8], num_label_maps=3, channels=8)
    prior = torch.stack([torch.full((5, 5), p) for p in (0.1, 0.2, 0.5)])
    head.init_prior(prior)
    torch.testing.assert_close(torch.sigmoid(head.classifier.bias), torch.tensor([0.1, 0.2, 0.5]))


def test_init_prior_errors() -> None:
    head = LinearLabelMapHead(16, num_label_maps=2, img_size=4)
    with pytest.raises(ValueError, match=r"\(K,\) = \(2,\) or \(K, H, W\) = \(2, 4, 4\)"):
        head.init_prior(torch.full((3,), 0.1))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        head.init_prior(torch.full((2, 4, 4), 1.5))
    with pytest.raises(TypeError, match="tensor"):
        head.init_prior([0.1, 0.2])


def test_old_label_maps_name_is_a_deprecated_alias() -> None:
    torch.manual_seed(0)
    new = LinearLabelMapHead(16, num_label_maps=2, img_size=4)
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"\(label_maps=\.\.\.\) is deprecated.*num_label"):
        old = LinearLabelMapHead(16, label_maps=2, img_size=4)
    assert torch.equal(old.fc.weight, new.fc.weight)  # a pure rename: same init from one seed
    with pytest.warns(DeprecationWarning, match=r"SpatialLabelMapHead\(label_maps=\.\.\.\)"):
        spatial = SpatialLabelMapHead([8], label_maps=3)
    with pytest.warns(DeprecationWarning, match=r"SpatialLabelMapHead\.label_maps .*num_label"):
        assert spatial.label_maps == spatial.num_label_maps == 3
    assert "num_label_maps=3" in repr(spatial)
    with pytest.raises(TypeError, match="got both label_maps= .* and num_label_maps="):
        LinearLabelMapHead(16, label_maps=2, num_label_maps=2, img_size=4)
    # positional calls are unchanged
    assert LinearLabelMapHead(16, 2, 4).num_label_maps == 2

import numpy as np
import pytest
import torch
import torch.nn as nn

from mtl_heads.augmentation import AlignedAugmentation, center_crop
from mtl_heads.preprocessing import (
    PREPROCESSING,
    MinibatchNormalization,
    PaperPreprocessing,
    PerImageNormalization,
    PerPixelStandardization,
    per_image_normalize,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA not available"))]

RAW = np.array(
    [
        [[[10, 20], [30, 40]]],
        [[[0, 0], [0, 90]]],
        [[[5, 5], [5, 5]]],  # constant: no contrast
    ],
    dtype=np.uint8,
)


def _hand_per_image(raw: np.ndarray, norm: float) -> np.ndarray:
    out = np.zeros(raw.shape, dtype=np.float64)
    for i, img in enumerate(raw.astype(np.float64)):
        centred = img - img.mean()
        length = np.sqrt((centred**2).sum())
        out[i] = centred * norm / length if length > 0 else 0.0
    return out


def test_per_image_normalization_matches_a_hand_computation():
    got = per_image_normalize(torch.from_numpy(RAW).double(), 150.0).numpy()
    np.testing.assert_allclose(got, _hand_per_image(RAW, 150.0), rtol=1e-12)
    # image 0: [-15, -5, 5, 15], norm sqrt(500) -> * 150 / sqrt(500)
    np.testing.assert_allclose(got[0, 0, 0], np.array([-15, -5]) * 150 / np.sqrt(500))
    mod = PerImageNormalization(150.0)(torch.from_numpy(RAW))
    assert mod.dtype == torch.float32
    np.testing.assert_allclose(mod.numpy(), _hand_per_image(RAW, 150.0), rtol=1e-6, atol=1e-5)


def test_per_pixel_standardization_matches_a_hand_computation():
    x = torch.from_numpy(_hand_per_image(RAW, 150.0))
    std = PerPixelStandardization(1, 2).fit(x)
    mean_hand = x.numpy().mean(0)
    std_hand = x.numpy().std(0)  # population std
    np.testing.assert_allclose(std.mean.numpy(), mean_hand, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std.std.numpy(), np.maximum(std_hand, 1e-6), rtol=1e-6)
    y = std(x)
    np.testing.assert_allclose(y.numpy(), (x.numpy() - mean_hand) / std_hand, rtol=1e-5, atol=1e-5)
    # streaming over batches gives the same statistics
    streamed = PerPixelStandardization(1, 2).fit([x[:1], x[1:]])
    torch.testing.assert_close(streamed.mean, std.mean)
    torch.testing.assert_close(streamed.std, std.std)
    assert int(streamed.num_samples) == 3


def test_per_pixel_fit_is_accurate_for_large_offsets():
    x = torch.randn(1000, 1, 4, 4, dtype=torch.float64) * 0.01 + 1e4
    std = PerPixelStandardization(1, 4).fit(x.split(100))
    torch.testing.assert_close(std.std.double(), x.std(0, unbiased=False), rtol=1e-4, atol=0)


def test_minibatch_normalization_train_and_eval():
    norm = MinibatchNormalization()
    batches = [torch.randn(4, 1, 3, 3) * (i + 1) + i for i in range(3)]
    for b in batches:
        y = norm(b)
        torch.testing.assert_close(y, (b - b.mean()) / torch.sqrt(b.var(unbiased=False) + 1e-5))
    # momentum=None: the plain average of the batch statistics (unbiased variance, as BatchNorm)
    means = torch.stack([b.mean() for b in batches]).double()
    variances = torch.stack([b.var() for b in batches]).double()
    assert torch.isclose(norm.running_mean, means.mean())
    assert torch.isclose(norm.running_var, variances.mean())
    norm.eval()
    x = torch.randn(5, 1, 3, 3)
    alone = norm(x[:1])
    assert torch.equal(norm(x)[:1], alone)  # no dependence on the rest of the batch
    expected = (x[:1] - norm.running_mean.float()) / torch.sqrt(norm.running_var.float() + 1e-5)
    torch.testing.assert_close(alone, expected)
    with pytest.raises(RuntimeError, match="no statistics fixed in training"):
        MinibatchNormalization().eval()(x)


def test_minibatch_momentum_matches_batchnorm():
    ours, bn = MinibatchNormalization(momentum=0.1), nn.BatchNorm2d(1, momentum=0.1, affine=False)
    for _ in range(4):
        b = torch.randn(8, 1, 5, 5) * 2 + 1
        torch.testing.assert_close(ours(b), bn(b))
    torch.testing.assert_close(ours.running_mean.float(), bn.running_mean[0])
    torch.testing.assert_close(ours.running_var.float(), bn.running_var[0])


def _trained_preprocessing(size: int = 48, crop: int = 42) -> PaperPreprocessing:
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (64, 1, size, size), generator=g, dtype=torch.uint8)
    pre = PaperPreprocessing(size=size, crop=crop).fit(train.split(16))
    aug = AlignedAugmentation(crop=crop, generator=g)
    for batch in train.split(16):
        pre.normalize_batch(aug(pre.standardize(batch)))
    return pre


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_statistics_round_trip(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    pre = _trained_preprocessing()
    path = tmp_path / f"pre{suffix}"
    pre.save(path)
    loaded = PaperPreprocessing.load(path)
    for k, v in pre.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert loaded.crop == (42, 42) and loaded.per_image.norm == 150.0
    assert loaded.minibatch.momentum is None
    raw = torch.randint(0, 256, (3, 1, 48, 48), dtype=torch.uint8)
    assert torch.equal(loaded.eval()(raw), pre.eval()(raw))


def test_steps_left_out_round_trip_and_equal_plain_standardisation(tmp_path):
    raw = torch.randint(0, 256, (32, 1, 8, 8), generator=torch.Generator().manual_seed(1),
                        dtype=torch.uint8)
    pre = PaperPreprocessing(size=8, crop=None, **PREPROCESSING["standard"]).fit(raw)
    x = raw.float()
    expected = (x - x.mean(0)) / x.std(0, unbiased=False)
    assert torch.allclose(pre.normalize_batch(pre.standardize(raw)), expected, atol=1e-5)
    pre.save(tmp_path / "pre.pt")
    loaded = PaperPreprocessing.load(tmp_path / "pre.pt")
    assert isinstance(loaded.per_image, nn.Identity) and isinstance(loaded.minibatch, nn.Identity)
    assert torch.equal(loaded.eval()(raw), pre.eval()(raw))
    # a file written before the steps could be left out holds all three
    tensors = torch.load(tmp_path / "pre.pt", weights_only=True)
    full = PaperPreprocessing(size=8, crop=None).fit(raw)
    full.save(tmp_path / "full.pt")
    old = torch.load(tmp_path / "full.pt", weights_only=True)
    del old["config.steps"]
    torch.save(old, tmp_path / "old.pt")
    assert isinstance(PaperPreprocessing.load(tmp_path / "old.pt").minibatch,
                      MinibatchNormalization)
    assert tensors["config.steps"].tolist() == [False, False]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no preprocessing statistics"):
        PaperPreprocessing.load(tmp_path / "missing.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(KeyError, match="missing"):
        PaperPreprocessing.load(tmp_path / "other.pt")


def test_deploy_pipeline_reproduces_eval_and_is_batch_independent():
    timm = pytest.importorskip("timm")
    pre = _trained_preprocessing().eval()
    model = timm.create_model("test_resnet", in_chans=1, num_classes=7).eval()
    deployed = nn.Sequential(pre, model).eval()
    raw = torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8)
    with torch.inference_mode():
        by_hand = pre.per_pixel(pre.per_image(raw))
        by_hand = center_crop(by_hand, 42)
        mean, var = pre.minibatch.running_mean.float(), pre.minibatch.running_var.float()
        by_hand = (by_hand - mean) / torch.sqrt(var + pre.minibatch.eps)
        torch.testing.assert_close(deployed(raw), model(by_hand))
        torch.testing.assert_close(deployed(raw[:1]), deployed(raw)[:1], atol=1e-6, rtol=1e-5)
        assert deployed(raw.float()).shape == (4, 7)


def test_bad_input():
    pre = PaperPreprocessing()
    with pytest.raises(RuntimeError, match="not fitted"):
        pre.standardize(torch.zeros(1, 1, 48, 48))
    pre.fit(torch.rand(4, 1, 48, 48))
    with pytest.raises(ValueError, match="standardise before cropping"):
        pre.standardize(torch.zeros(1, 1, 42, 42))
    with pytest.raises(ValueError, match="4-D"):
        pre.standardize(torch.zeros(48, 48))
    with pytest.raises(ValueError, match=r"batch 1: images must be \(N, 1, 48, 48\)"):
        PerPixelStandardization(1, 48).fit([torch.rand(2, 1, 48, 48), torch.rand(2, 1, 42, 42)])
    with pytest.raises(ValueError, match="norm"):
        PerImageNormalization(0.0)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_batch_device(device):
    pre = _trained_preprocessing(size=16, crop=12).to(device).eval()
    raw = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8, device=device)
    out = pre(raw)
    assert out.device.type == device and out.shape == (2, 1, 12, 12)


def test_torch_export_of_the_deployed_classifier() -> None:
    # the documented inference graph: fitted preprocessing (eval) + the plain timm classifier
    import mtl_heads

    torch.manual_seed(0)
    images = torch.randint(0, 256, (32, 1, 48, 48), dtype=torch.uint8)
    pre = PaperPreprocessing().fit(images)
    pre.normalize_batch(pre.standardize(images.float())[..., 3:45, 3:45])  # training statistics
    model = mtl_heads.create_model("fer_convnet", num_classes=7, label_maps=3)
    net = torch.nn.Sequential(pre.eval(), model.deploy()).eval()
    x = images[:3].float()
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x), net(x))

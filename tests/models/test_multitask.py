import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from backbone_matrix import BACKBONE_MATRIX, BackboneCase
from timm.optim import create_optimizer_v2
from torch import nn

import mtl_heads
from mtl_heads import (
    LinearLabelMapHead,
    MultiTaskModel,
    ResizedClassifier,
    SpatialLabelMapHead,
    create_model,
)

MATRIX = [
    pytest.param(case, size, id=f"{case.id}-{size}", marks=[pytest.mark.slow] if case.slow else [])
    for case in BACKBONE_MATRIX
    for size in case.sizes
]


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("case,size", MATRIX)
def test_backbone_matrix(case: BackboneCase, size: int) -> None:
    kwargs = case.create_kwargs(size)
    model = create_model(case.name, **kwargs)
    # fer_convnet declares the paper's linear head; every other matrix backbone has
    # forward_intermediates and feature_info, so the rule picks the spatial decoder
    expected = "linear" if case.name == "fer_convnet" else "spatial"
    head_class = {"linear": LinearLabelMapHead, "spatial": SpatialLabelMapHead}[expected]
    assert model.head_kind == expected and type(model.label_map_head) is head_class
    x = torch.randn(2, 1, size, size)

    model.train()
    out = model(x)
    assert set(out) == {"logits", "label_maps"}
    assert out["logits"].shape == (2, 7)
    assert out["label_maps"].shape == (2, 3, size, size)
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 6])) + out["label_maps"].mean()
    loss.backward()
    assert all(p.grad is not None for p in model.label_map_head.parameters())
    assert torch.isfinite(loss)

    model.eval()
    with torch.no_grad():
        out = model(x)
        deployed = model.deploy()
        assert torch.equal(deployed(x), out["logits"])
    # the deployed classifier is exactly the baseline architecture
    plain_kwargs = {k: v for k, v in kwargs.items() if k != "num_label_maps"}
    plain = timm.create_model(case.name, **plain_kwargs)
    assert _n_params(deployed) == _n_params(plain)
    assert deployed.state_dict().keys() == plain.state_dict().keys()


@pytest.mark.parametrize("name", ["test_resnet", "fer_convnet"])
def test_baseline_has_no_head(name: str) -> None:
    model = create_model(name, num_classes=7, in_chans=1, num_label_maps=0).eval()
    plain = timm.create_model(name, num_classes=7, in_chans=1)
    assert model.label_map_head is None
    assert _n_params(model) == _n_params(plain)
    out = model(torch.randn(2, 1, 42, 42))
    assert list(out) == ["logits"]
    assert out["logits"].shape == (2, 7)


def test_default_head_rule() -> None:
    assert create_model("fer_convnet", num_classes=7).head_kind == "linear"
    assert create_model("test_resnet", num_classes=7).head_kind == "spatial"
    assert create_model("test_vit", num_classes=7).head_kind == "spatial"


def test_spatial_head_draws_on_fine_maps() -> None:
    # at 48 px a stride-32 CNN ends in 2x2 maps: the decoder must read earlier maps too
    model = create_model("test_resnet", num_classes=7, in_chans=1)
    reductions = [model.backbone.feature_info[i]["reduction"] for i in model.intermediate_indices]
    assert min(reductions) <= 4 and max(reductions) == 32
    vit = create_model("deit_tiny_patch16_224", num_classes=7, img_size=48, patch_size=6)
    assert vit.intermediate_indices == [2, 5, 8, 11]


def test_linear_head_reads_the_classifier_input() -> None:
    # mobilenetv3 applies its dropout after pre_logits: the head must see the classifier's input
    model = create_model(
        "mobilenetv3_small_050",
        num_classes=7,
        in_chans=1,
        img_size=48,
        head="linear",
        drop_rate=0.5,
    )
    assert model.label_map_head.in_features == model.backbone.head_hidden_size == 1024
    model.eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        out = model(x)
        pre = model.backbone.forward_head(model.backbone.forward_features(x), pre_logits=True)
        assert torch.equal(out["label_maps"], model.label_map_head(pre))
        assert torch.equal(out["logits"], model.deploy()(x))
    # in training the classifier and the head share one dropout mask (the paper's hidden layer)
    model.train()
    seen: list[torch.Tensor] = []
    model.backbone.get_classifier().register_forward_hook(lambda m, a, o: seen.append(a[0]))
    out = model(x)
    assert torch.equal(out["label_maps"], model.label_map_head(seen[0]))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("test_resnet", {}),
        ("test_vit", dict(patch_size=6)),
        ("test_convnext", {}),
    ],
)
def test_linear_head_on_other_families(name: str, kwargs: dict) -> None:
    model = create_model(name, num_classes=7, in_chans=1, img_size=42, head="linear", **kwargs)
    model.eval()
    x = torch.randn(2, 1, 42, 42)
    out = model(x)
    assert out["label_maps"].shape == (2, 3, 42, 42)
    assert torch.equal(out["logits"], model.deploy()(x))


def test_head_dict_options() -> None:
    model = create_model(
        "test_resnet",
        num_classes=7,
        in_chans=1,
        head=dict(kind="spatial", channels=16, indices=[1, 2, 4]),
    )
    assert model.intermediate_indices == [1, 2, 4]
    assert model.label_map_head.channels == 16
    assert model(torch.randn(1, 1, 42, 42))["label_maps"].shape == (1, 3, 42, 42)
    with pytest.raises(ValueError, match="unknown options for the spatial head"):
        create_model("test_resnet", num_classes=7, head=dict(kind="spatial", width=8))
    with pytest.raises(ValueError, match=r"indices \[7\] out of range: test_resnet has 5"):
        create_model("test_resnet", num_classes=7, head=dict(kind="spatial", indices=[7]))


class _NoIntermediates(nn.Module):
    """A minimal timm-style classifier without forward_intermediates (as timm < 1.0.2x had for
    densenet, vgg, inception_v3, ...)."""

    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 8
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, num_classes)
        self.pretrained_cfg = {"architecture": "no_intermediates_net", "input_size": (1, 32, 32)}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).relu()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(8, num_classes)


def test_backbone_without_forward_intermediates() -> None:
    backbone = _NoIntermediates()
    model = create_model(backbone, num_classes=5)
    assert model.head_kind == "linear" and model.num_classes == 5
    out = model(torch.randn(2, 1, 32, 32))
    assert out["label_maps"].shape == (2, 3, 32, 32) and out["logits"].shape == (2, 5)
    with pytest.raises(
        ValueError, match="no_intermediates_net has no forward_intermediates .*use head='linear'"
    ):
        create_model(_NoIntermediates(), num_classes=7, head="spatial")


def test_densenet_both_heads() -> None:
    # densenet lacked forward_intermediates before timm 1.0.2x; the installed timm has it
    kwargs = dict(num_classes=7, in_chans=1, growth_rate=8, block_config=(1, 1, 1, 1), img_size=48)
    for head in (None, "linear"):
        model = create_model("densenet121", head=head, **kwargs).eval()
        x = torch.randn(2, 1, 48, 48)
        out = model(x)
        assert out["label_maps"].shape == (2, 3, 48, 48)
        assert torch.equal(out["logits"], model.deploy()(x))


def test_deploy_checkpoint_round_trip(tmp_path) -> None:
    model = create_model("test_resnet", num_classes=7, in_chans=1).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path / "deployed.pth"
    torch.save(model.deploy().state_dict(), path)
    loaded = timm.create_model(
        "test_resnet", num_classes=7, in_chans=1, checkpoint_path=str(path)
    ).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x)["logits"])
    assert model.deploy() is model.backbone


def test_existing_model_is_wrapped() -> None:
    backbone = timm.create_model("test_resnet", num_classes=1000, in_chans=1)
    model = create_model(backbone, num_classes=7, img_size=48)
    assert model.backbone is backbone and model.num_classes == 7
    assert model(torch.randn(1, 1, 48, 48))["logits"].shape == (1, 7)
    with pytest.raises(
        ValueError, match=r"\['drop_rate', 'in_chans'\] apply only when backbone is a model name"
    ):
        create_model(backbone, num_classes=7, in_chans=3, drop_rate=0.1)


def test_create_optimizer_v2_groups() -> None:
    model = create_model("test_vit", num_classes=7, in_chans=1, img_size=42, patch_size=6)
    opt = create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = [g for g in opt.param_groups if g["weight_decay"] > 0]
    no_decay = [g for g in opt.param_groups if g["weight_decay"] == 0]
    assert len(decay) == 1 and len(no_decay) == 1
    decay_names = {names[id(p)] for p in decay[0]["params"]}
    no_decay_names = {names[id(p)] for p in no_decay[0]["params"]}
    assert sum(len(g["params"]) for g in opt.param_groups) == len(names)
    assert "backbone.pos_embed" in model.no_weight_decay()
    assert {
        "backbone.pos_embed",
        "backbone.cls_token",
        "label_map_head.fuse.1.weight",
        "label_map_head.classifier.bias",
    } <= no_decay_names
    assert {"backbone.head.weight", "label_map_head.classifier.weight"} <= decay_names
    assert all(model.get_parameter(n).ndim > 1 for n in decay_names)

    # layer-wise LR decay goes through group_matcher; the head joins the last (classifier) group
    opt = create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-4, layer_decay=0.5)
    scales = {names[id(p)]: g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert scales["label_map_head.classifier.weight"] == scales["backbone.head.weight"] == 1.0
    assert (
        scales["backbone.patch_embed.proj.weight"]
        < scales["backbone.blocks.0.mlp.fc1.weight"]
        < 1.0
    )

    # a training step actually moves the parameters
    out = model(torch.randn(2, 1, 42, 42))
    before = model.label_map_head.classifier.weight.detach().clone()
    (out["logits"].sum() + out["label_maps"].mean()).backward()
    opt.step()
    assert not torch.equal(before, model.label_map_head.classifier.weight)


def test_passthroughs() -> None:
    model = create_model("test_vit", num_classes=7, in_chans=1, img_size=48, patch_size=6)
    assert model.num_classes == 7
    assert model.pretrained_cfg is model.backbone.pretrained_cfg
    assert model.default_cfg["architecture"] == "test_vit"
    model.set_grad_checkpointing(True)
    assert model.backbone.grad_checkpointing
    out = model(torch.randn(2, 1, 48, 48))
    (out["logits"].sum() + out["label_maps"].sum()).backward()


def test_public_exports() -> None:
    for name in (
        "create_model",
        "MultiTaskModel",
        "LabelMapHead",
        "LinearLabelMapHead",
        "SpatialLabelMapHead",
        "PaperPreprocessing",
        "MaskedMultiTaskLoss",
        "masked_multitask_loss",
    ):
        assert name in mtl_heads.__all__ and hasattr(mtl_heads, name)


def test_import_reaches_the_sub_packages() -> None:
    # a fresh interpreter: in this one, other tests have imported the sub-packages already
    code = ("import mtl_heads, timm; mtl_heads.datasets.SyntheticFaces; "
            "mtl_heads.preprocessing.PaperPreprocessing; mtl_heads.metrics.LabelMapMetrics; "
            "assert timm.is_model('fer_convnet')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


# --- bad input -> clear errors -------------------------------------------------------------------


def test_unknown_backbone_lists_close_matches() -> None:
    with pytest.raises(
        ValueError, match=r"unknown timm model 'resnet_18'; close matches: \['resnet18'"
    ):
        create_model("resnet_18", num_classes=7)
    with pytest.raises(ValueError, match="unknown timm model 'qqqqzzzz'; see timm.list_models"):
        create_model("qqqqzzzz", num_classes=7)


@pytest.mark.parametrize("num_label_maps", [-1, 1.5, True])
def test_bad_num_label_maps(num_label_maps: object) -> None:
    with pytest.raises(ValueError, match="num_label_maps must be an int >= 0"):
        create_model("test_resnet", num_classes=7, num_label_maps=num_label_maps)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown label-map head kind 'dense'"):
        create_model("test_resnet", num_classes=7, head="dense")
    with pytest.raises(TypeError, match="head must be None, 'linear', 'spatial' or a dict"):
        create_model("test_resnet", num_classes=7, head=3)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        create_model("test_resnet", num_classes=0)
    with pytest.raises(TypeError, match="backbone must be a timm model name or an nn.Module"):
        create_model(42, num_classes=7)
    with pytest.raises(ValueError, match="head='linear' given with num_label_maps=0"):
        create_model("test_resnet", num_classes=7, num_label_maps=0, head="linear")
    with pytest.raises(TypeError, match="Conv2d lacks forward_head"):
        MultiTaskModel(nn.Conv2d(1, 1, 1))


def test_linear_head_input_size_mismatch() -> None:
    model = create_model("fer_convnet", num_classes=7)  # the paper's 42x42 default
    with pytest.raises(
        ValueError, match="input is 48x48 but the linear label-map head was built for 42x42"
    ):
        model(torch.randn(1, 1, 48, 48))


def test_distilled_backbone_linear_head_error() -> None:
    with pytest.raises(ValueError, match="not one module .*use head='spatial'"):
        create_model(
            "deit_tiny_distilled_patch16_224",
            num_classes=7,
            img_size=48,
            patch_size=6,
            depth=1,
            head="linear",
        )
    model = create_model(
        "deit_tiny_distilled_patch16_224", num_classes=7, img_size=48, patch_size=6, depth=1
    ).eval()
    x = torch.randn(2, 3, 48, 48)
    assert torch.equal(model(x)["logits"], model.deploy()(x))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("test_resnet", {}),
        ("test_convnext", {}),
        ("test_vit", dict(img_size=48, patch_size=6)),
        ("swin_tiny_patch4_window7_224", BACKBONE_MATRIX[-1].kwargs | dict(img_size=48)),
        ("fer_convnet", {}),
    ],
)
@pytest.mark.parametrize("coarse", [False, True])
def test_group_matcher_matches_backbone(name: str, kwargs: dict, coarse: bool) -> None:
    from timm.models import group_parameters

    model = create_model(name, num_classes=7, **kwargs)
    own = group_parameters(
        model.backbone, model.backbone.group_matcher(coarse=coarse), reverse=True
    )
    ours = group_parameters(model, model.group_matcher(coarse=coarse), reverse=True)
    assert {f"backbone.{n}": i for n, i in own.items()} == {
        n: i for n, i in ours.items() if n.startswith("backbone.")
    }
    last = max(ours.values())
    assert all(i == last for n, i in ours.items() if n.startswith("label_map_head."))


def test_fer_convnet_spatial_head_on_request() -> None:
    model = create_model("fer_convnet", num_classes=7, head="spatial").eval()
    x = torch.randn(2, 1, 42, 42)
    out = model(x)
    assert model.head_kind == "spatial" and out["label_maps"].shape == (2, 3, 42, 42)
    assert torch.equal(out["logits"], model.deploy()(x))


def test_too_small_input_is_refused_with_the_smallest_size() -> None:
    # inception_v3's valid-padded stem leaves a 1x1 map for a 3x3 kernel at 48 px
    with pytest.raises(
        ValueError,
        match=r"inception_v3 \(inception_v3 family\) does not run on 48x48 inputs \(RuntimeError"
        r".*Kernel size can't be greater.*smallest square input it runs is 80x80\. "
        r"Pass resize_input=True",
    ):
        create_model("inception_v3", num_classes=7, in_chans=1, img_size=48)
    # the same check for an existing model
    with pytest.raises(ValueError, match="smallest square input it runs is 80x80"):
        create_model(timm.create_model("inception_v3", in_chans=1), num_classes=7, img_size=48)


def test_resize_input_needs_img_size() -> None:
    with pytest.raises(ValueError, match="resize_input=True needs img_size="):
        create_model("test_resnet", num_classes=7, resize_input=True)


def test_models_that_fit_are_untouched() -> None:
    # the probe is one eval forward on zeros: no resize, and the random stream does not move
    torch.manual_seed(0)
    model = create_model("test_resnet", num_classes=7, in_chans=1, img_size=48, resize_input=True)
    after = torch.rand(3)
    torch.manual_seed(0)
    create_model("test_resnet", num_classes=7, in_chans=1)
    assert torch.equal(torch.rand(3), after)
    assert not isinstance(model.backbone, ResizedClassifier) and model.training


def test_linear_head_gap_is_refused_at_build() -> None:
    # sequencer2d pools inside its ClassifierHead: get_classifier() sees a (B, H, W, C) map
    with pytest.raises(
        ValueError,
        match=r"sequencer2d_s cannot feed the linear label-map head: its classifier "
        r"\(ClassifierHead\) receives \(1, 3, 3, 384\) .*use head='spatial'",
    ):
        create_model("sequencer2d_s", num_classes=7, in_chans=1, img_size=48, head="linear")
    model = create_model("sequencer2d_s", num_classes=7, in_chans=1, img_size=48).eval()
    x = torch.randn(2, 1, 48, 48)
    assert torch.equal(model(x)["logits"], model.deploy()(x))


def test_linear_head_refuses_a_classifier_fed_another_vector() -> None:
    # efficientvit_msra's head is BatchNorm1d + Linear and get_classifier() is the Linear: the
    # pooled vector of forward_head(pre_logits=True) is not what the classifier reads
    with pytest.raises(ValueError, match=r"efficientvit_m0 cannot feed the linear label-map "
                       r"head: its classifier \(Linear\) receives a \(1, 192\) vector other"):
        create_model("efficientvit_m0", num_classes=7, in_chans=1, img_size=48, head="linear")


def test_linear_head_with_a_1x1_conv_classifier() -> None:
    # dpn classifies with a 1x1 conv on the pooled (B, D, 1, 1) map
    model = create_model("dpn48b", num_classes=7, in_chans=1, img_size=48, head="linear").eval()
    assert isinstance(model.backbone.get_classifier(), torch.nn.Conv2d)
    x = torch.randn(2, 1, 48, 48)
    out = model(x)
    assert out["label_maps"].shape == (2, 3, 48, 48)
    assert torch.equal(out["logits"], model.deploy()(x))


def test_linear_head_refuses_logits_with_another_term() -> None:
    # volo adds 0.5 x the max of an auxiliary token head to its classifier's logits
    with pytest.raises(ValueError, match=r"volo_d1_224 cannot feed the linear label-map head: "
                       r"its logits at 48x48 are not its classifier's \(Linear\) output"):
        create_model("volo_d1_224", num_classes=7, in_chans=1, img_size=48, head="linear")


def test_space_to_depth_stem_takes_the_users_channels() -> None:
    # tresnet folds 4 x 4 pixels into channels before its first conv (16 x in_chans inputs)
    model = create_model("tresnet_m", num_classes=7, in_chans=1, img_size=48).eval()
    x = torch.randn(2, 1, 48, 48)
    out = model(x)
    assert out["label_maps"].shape == (2, 3, 48, 48)
    assert torch.equal(out["logits"], model.deploy()(x))


def test_probe_input_channels() -> None:
    from timm.layers import SpaceToDepth

    from mtl_heads.models.multitask import _input_channels

    # a timm model's own in_chans first (a patch embedding by Linear has no conv to read)
    linear_stem = torch.nn.Sequential(torch.nn.Linear(4, 4))
    linear_stem.in_chans = 1
    assert _input_channels(linear_stem) == 1
    # else the first conv, less the pixels a space-to-depth stem folds into channels (tresnet)
    assert _input_channels(torch.nn.Sequential(SpaceToDepth(4), torch.nn.Conv2d(32, 8, 3))) == 2
    assert _input_channels(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))) == 3


@pytest.mark.parametrize("backbone", ["fer_convnet", "test_resnet"])
def test_old_label_maps_name_is_a_deprecated_alias(backbone: str) -> None:
    # a pure rename: the same seed builds the same model, bit for bit
    torch.manual_seed(0)
    new = create_model(backbone, num_classes=7, in_chans=1, img_size=42, num_label_maps=2)
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"create_model\(label_maps=\.\.\.\) is deprecated"):
        old = create_model(backbone, num_classes=7, in_chans=1, img_size=42, label_maps=2)
    x = torch.randn(2, 1, 42, 42)
    with torch.no_grad():
        a, b = new.eval()(x), old.eval()(x)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.warns(DeprecationWarning, match=r"MultiTaskModel\.label_maps .*num_label_maps"):
        assert old.label_maps == old.num_label_maps == 2
    with pytest.warns(DeprecationWarning, match=r"MultiTaskModel\(label_maps=\.\.\.\)"):
        assert MultiTaskModel(new.backbone, label_maps=0).num_label_maps == 0
    with pytest.raises(TypeError, match="got both label_maps= .* and num_label_maps="):
        create_model(backbone, num_classes=7, label_maps=2, num_label_maps=2)


def test_old_default_head_attribute_is_a_deprecated_alias() -> None:
    class OldStyle(timm.models.ResNet):
        default_label_map_head = "linear"  # the attribute's name before default_head_kind

    backbone = OldStyle(timm.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=7, in_chans=1)
    with pytest.warns(DeprecationWarning, match=r"OldStyle\.default_label_map_head .*default_head"):
        assert mtl_heads.default_head_kind(backbone) == "linear"
    OldStyle.default_label_map_head = "dense"
    with pytest.raises(ValueError, match=r"OldStyle\.default_label_map_head is 'dense'"):
        with pytest.warns(DeprecationWarning):
            mtl_heads.default_head_kind(backbone)

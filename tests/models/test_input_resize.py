"""InputResize and ResizedClassifier: create_model(..., resize_input=True) as an explicit module."""

import copy
import io
import json
import warnings

import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors import safe_open
from timm.models._features_fx import get_notrace_functions, get_notrace_modules
from timm.optim import create_optimizer_v2
from torch import nn
from trained_runs import write_run

from mtl_heads import InputResize, MultiTaskModel, ResizedClassifier, create_model, load_trained
from mtl_heads.export import DeployedClassifier


def _resized(head: str, seed: int = 0) -> MultiTaskModel:
    # test_vit (patch 16) does not run at 8 px: create_model resizes its inputs to 16 px
    torch.manual_seed(seed)
    return create_model(
        "test_vit", num_classes=7, in_chans=1, img_size=8, head=head, resize_input=True
    ).eval()


def _outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(x)


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _timm_fx(model: nn.Module) -> nn.Module:
    # timm's tests/test_models.py builds its FX extractor this way: last graph node as the output
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    kwargs = {"leaf_modules": list(get_notrace_modules()),
              "autowrap_functions": list(get_notrace_functions())}
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=kwargs)
    return create_feature_extractor(model, train_return_nodes=[train_nodes[-1]],
                                    eval_return_nodes=[eval_nodes[-1]], tracer_kwargs=kwargs)


def test_input_resize_layer() -> None:
    x = torch.rand(2, 3, 8, 12)
    assert InputResize((16, 20))(x).shape == (2, 3, 16, 20)
    same = torch.rand(2, 3, 16, 20)
    assert InputResize((16, 20))(same) is same  # nothing to do: no interpolation at all
    expected = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.equal(InputResize(16)(x), expected)
    nearest = InputResize(16, mode="nearest")
    assert nearest.align_corners is None and torch.equal(
        nearest(x), F.interpolate(x, size=(16, 16), mode="nearest"))
    assert "size=(16, 16), mode='bilinear'" in repr(InputResize(16))
    with pytest.raises(ValueError, match="size must be an int or"):
        InputResize((16, 16, 3))
    with pytest.raises(ValueError, match="size must be positive"):
        InputResize(0)


@pytest.mark.parametrize("head", ["spatial", "linear"])
def test_create_model_puts_the_resize_in_front(head: str) -> None:
    with pytest.raises(ValueError, match=r"smallest square input it runs is 16x16\. Pass "
                                         r"resize_input=True"):
        create_model("test_vit", num_classes=7, in_chans=1, img_size=8, head=head)
    model = _resized(head)
    backbone = model.backbone
    assert type(backbone) is ResizedClassifier and type(backbone.resize) is InputResize
    assert backbone.resize.size == (16, 16) and model.head_kind == head
    assert type(backbone.model) is timm.models.VisionTransformer  # the class is not swapped
    x = torch.randn(2, 1, 8, 8)
    out = _outputs(model, x)
    assert out["logits"].shape == (2, 7) and out["label_maps"].shape == (2, 3, 8, 8)
    with torch.no_grad():
        plain = backbone.model(F.interpolate(x, size=(16, 16), mode="bilinear",
                                             align_corners=False))
    assert torch.equal(out["logits"], plain)
    deployed = model.deploy()
    assert deployed is backbone
    assert torch.equal(_outputs(deployed, x), out["logits"])


@pytest.mark.parametrize("head", ["spatial", "linear"])
def test_pickle_deepcopy_and_state_dict_round_trip(head: str, tmp_path) -> None:
    model = _resized(head)
    x = torch.randn(3, 1, 8, 8)
    out = _outputs(model, x)
    path = tmp_path / "model.pt"
    torch.save(model, path)  # the whole module, pickled
    loaded = torch.load(path, weights_only=False)
    assert type(loaded.backbone) is ResizedClassifier and _equal(_outputs(loaded, x), out)
    assert _equal(_outputs(copy.deepcopy(model), x), out)
    buffer = io.BytesIO()
    torch.save(model.deploy(), buffer)
    buffer.seek(0)
    assert torch.equal(_outputs(torch.load(buffer, weights_only=False), x), out["logits"])

    state = model.state_dict()
    assert any(k.startswith("backbone.model.") for k in state)
    other = _resized(head, seed=1)
    assert not _equal(_outputs(other, x), out)
    assert str(other.load_state_dict(state)) == "<All keys matched successfully>"
    assert _equal(_outputs(other, x), out)


@pytest.mark.parametrize("head", ["spatial", "linear"])
def test_state_dicts_saved_before_the_resize_was_a_module_load(head: str) -> None:
    # The class-swapping wrapper kept the timm model's own keys under "backbone." (checked against
    # that code when this module replaced it: same keys, same logits, bit for bit)
    model = _resized(head)
    old = {k.replace("backbone.model.", "backbone."): v for k, v in model.state_dict().items()}
    assert not any(k.startswith("backbone.model.") for k in old)
    other = _resized(head, seed=1)
    assert str(other.load_state_dict(old)) == "<All keys matched successfully>"
    x = torch.randn(2, 1, 8, 8)
    assert _equal(_outputs(other, x), _outputs(model, x))
    # and the deployed classifier takes a plain timm checkpoint of its model
    deployed = _resized(head, seed=2).deploy()
    deployed.load_state_dict(model.deploy().model.state_dict())
    assert torch.equal(_outputs(deployed, x), _outputs(model, x)["logits"])
    # a wrong key is still reported, under its full name
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "backbone\.nope"'):
        other.load_state_dict({**old, "backbone.nope": torch.zeros(1)})


def test_timm_model_with_its_own_model_child_keeps_its_keys() -> None:
    # a timm model may have a child called "model" itself: its keys are not taken for ours
    inner = nn.Module()
    inner.model = nn.Linear(2, 2)
    inner.fc = nn.Linear(2, 2)
    net = ResizedClassifier(inner, 4)
    assert sorted(net.state_dict()) == [
        "model.fc.bias", "model.fc.weight", "model.model.bias", "model.model.weight"]
    plain = {k: torch.full_like(v, 1.0) for k, v in inner.state_dict().items()}
    net.load_state_dict(plain)
    assert all(bool((v == 1).all()) for v in net.state_dict().values())
    net.load_state_dict({k: torch.zeros_like(v) for k, v in net.state_dict().items()})
    assert all(bool((v == 0).all()) for v in net.state_dict().values())


@pytest.mark.parametrize("name", ["test_resnet", "resnet10t"])
def test_fx_symbolic_trace(name: str) -> None:
    torch.manual_seed(0)
    net = ResizedClassifier(timm.create_model(name, num_classes=5, in_chans=1), 32).eval()
    traced = torch.fx.symbolic_trace(net)
    # the resize is one leaf node (its size check is Python control flow FX cannot follow)
    assert "_resize" in [getattr(n.target, "__name__", n.target) for n in traced.graph.nodes]
    for size in (20, 32):
        x = torch.randn(2, 1, size, size)
        with torch.no_grad():
            assert torch.equal(traced(x), net(x))


def test_timm_fx_feature_extraction_of_the_deployed_model() -> None:
    model = _resized("spatial")
    deployed = model.deploy()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        (logits,) = _timm_fx(deployed).eval()(x).values()
    assert torch.equal(logits, _outputs(model, x)["logits"])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript() -> None:
    with timm.set_scriptable(True):
        net = ResizedClassifier(timm.create_model("test_resnet", num_classes=5, in_chans=1), 32)
    net.eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 1, 20, 20)
    with torch.no_grad():
        assert torch.equal(scripted(x), net(x))


def test_timm_model_contract_passes_through() -> None:
    model = _resized("spatial")
    net, vit = model.deploy(), model.backbone.model
    x = torch.randn(2, 1, 8, 8)
    resized = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    assert (net.num_classes, net.num_features, net.head_hidden_size) == (
        vit.num_classes, vit.num_features, vit.head_hidden_size)
    assert net.pretrained_cfg is vit.pretrained_cfg and net.default_cfg is vit.pretrained_cfg
    assert net.get_classifier() is vit.get_classifier()
    with torch.no_grad():
        assert torch.equal(net.forward_head(net.forward_features(x)), net(x))
        assert torch.equal(net.forward_features(x), vit.forward_features(resized))
        final, inters = net.forward_intermediates(x, indices=[0], output_fmt="NCHW")
        assert torch.equal(inters[0], vit.forward_intermediates(resized, indices=[0])[1][0])
    # feature_info's module paths name real modules of the wrapper
    modules = dict(net.named_modules())
    assert all(info["module"].startswith("model.") and info["module"] in modules
               for info in net.feature_info)
    net.reset_classifier(3)
    assert net.num_classes == 3 and net(x).shape == (2, 3)


def test_timm_optimizer_factory_sees_the_wrapped_names() -> None:
    net = _resized("spatial").deploy()
    skip = net.no_weight_decay()
    assert skip and all(n.startswith("model.") for n in skip)
    names = {n for n, _ in net.named_parameters()}
    assert {n for n in names if n.removeprefix("model.") in net.model.no_weight_decay()} <= skip
    optimizer = create_optimizer_v2(net, "adamw", lr=1e-3, weight_decay=0.05)
    no_decay = {id(p) for g in optimizer.param_groups if not g["weight_decay"] for p in g["params"]}
    assert id(net.model.pos_embed) in no_decay and id(net.model.cls_token) in no_decay
    groups = timm.models.group_parameters(net, net.group_matcher())
    assert sum(len(v) for v in groups.values()) == len(names)
    # a layer-decay optimizer (timm reads group_matcher) builds over the wrapped names too
    create_optimizer_v2(net, "adamw", lr=1e-3, layer_decay=0.75)


def test_missing_contract_methods_name_the_model() -> None:
    net = ResizedClassifier(nn.Conv2d(1, 2, 3), 8)
    with pytest.raises(AttributeError, match="Conv2d has no forward_intermediates"):
        net.forward_intermediates(torch.zeros(1, 1, 4, 4))
    with pytest.raises(AttributeError, match="Conv2d has no group_matcher"):
        net.group_matcher()
    assert net.no_weight_decay() == set() and not hasattr(net, "feature_info")
    with pytest.raises(ValueError, match=r"already resizes its inputs to \(8, 8\)"):
        ResizedClassifier(net, 16)
    with pytest.raises(TypeError, match="model must be a timm model"):
        ResizedClassifier("resnet18", 16)


def test_old_attribute_is_a_deprecated_alias() -> None:
    net = _resized("spatial").backbone
    with pytest.warns(DeprecationWarning, match=r"input_resize is deprecated.*read \.resize\.size"):
        assert net.input_resize == (16, 16)
    with pytest.raises(AttributeError, match="no attribute 'input_size'"):
        net.input_size  # noqa: B018  (other names fail as before)


def test_exported_safetensors_stay_a_plain_timm_checkpoint(tmp_path) -> None:
    model = _resized("spatial")
    net = DeployedClassifier(model.deploy(), torch.zeros(1, 8, 8), torch.ones(1, 8, 8), 0.0, 1.0,
                             classes=[str(i) for i in range(7)]).eval()
    path = tmp_path / "deploy.safetensors"
    net.save_safetensors(path, "test_vit")
    with safe_open(str(path), "pt") as f:
        keys, meta = set(f.keys()), json.loads(f.metadata()["mtl_heads_export"])
    assert keys == set(model.backbone.model.state_dict()) and meta["input_resize"] == [16, 16]
    plain = timm.create_model("test_vit", num_classes=7, in_chans=1, img_size=16, pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=7))
    loaded = DeployedClassifier.from_safetensors(path)
    assert type(loaded.classifier) is ResizedClassifier
    faces = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(faces), net(faces))
        x = torch.randn(2, 1, 16, 16)
        assert torch.equal(plain.eval()(x), model.backbone.model(x))


def test_load_trained_rebuilds_a_resized_run(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the helper's label_maps= spelling
        folder = write_run(tmp_path / "run", backbone="test_vit", crop=8, resize_input=True)
    args = json.loads((folder / "args.json").read_text())
    (folder / "args.json").write_text(json.dumps({**args, "resize_input": True}))
    trained = load_trained(folder)
    assert type(trained.model.backbone) is ResizedClassifier
    assert trained.model.backbone.resize.size == (16, 16) and trained.num_label_maps == 3
    with pytest.warns(DeprecationWarning, match=r"TrainedModel\.label_maps .*num_label_maps"):
        assert trained.label_maps == 3

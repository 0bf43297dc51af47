"""fer_convnet against the checks of timm's own tests/test_models.py, plus its size rule."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import timm
import torch
from timm.models import FeatureInfo
from timm.models._features_fx import get_notrace_functions, get_notrace_modules
from torch import nn

import mtl_heads  # noqa: F401  (registers fer_convnet)
from mtl_heads.models import FerConvNet

MODEL = 'fer_convnet'
# conv1 + conv2 + conv3 + hidden fc + classifier, weights and biases
PARAMS_7_CLASSES = (
    (1 * 32 * 5 * 5 + 32) + (32 * 64 * 4 * 4 + 64) + (64 * 64 * 5 * 5 + 64)
    + (64 * 5 * 5 * 3072 + 3072) + (3072 * 7 + 7)
)


def _input(size: int = 42, batch: int = 2, chans: int = 1) -> torch.Tensor:
    return torch.randn(batch, chans, size, size)


def test_registered() -> None:
    assert MODEL in timm.list_models('fer*')
    assert timm.is_model(MODEL)
    assert isinstance(timm.create_model(MODEL), FerConvNet)


def test_parameter_count() -> None:
    assert PARAMS_7_CLASSES == 5_075_911
    model = timm.create_model(MODEL, num_classes=7)
    assert sum(p.numel() for p in model.parameters()) == PARAMS_7_CLASSES


@pytest.mark.parametrize('size', [42, 48])
def test_forward(size: int) -> None:
    model = timm.create_model(MODEL).eval()
    out = model(_input(size, batch=3))
    assert out.shape == (3, 7)
    assert not torch.isnan(out).any()


def test_stage_shapes() -> None:
    model = timm.create_model(MODEL).eval()
    _, inter = model.forward_intermediates(_input(42))
    assert [tuple(t.shape[1:]) for t in inter] == [(32, 21, 21), (64, 10, 10), (64, 5, 5)]
    _, inter = model.forward_intermediates(_input(48))
    assert [tuple(t.shape[1:]) for t in inter] == [(32, 24, 24), (64, 11, 11), (64, 5, 5)]


def test_backward() -> None:
    model = timm.create_model(MODEL, num_classes=42).train()
    out = model(_input(42))
    out.mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f'No gradient for {name}'
    assert out.shape[-1] == 42
    assert not torch.isnan(out).any()


def test_default_cfg() -> None:
    model = timm.create_model(MODEL).eval()
    cfg = model.pretrained_cfg
    state_dict = model.state_dict()
    assert cfg['input_size'] == (1, 42, 42)
    assert cfg['num_classes'] == 7 and model.num_classes == 7
    assert len(cfg['mean']) == len(cfg['std']) == cfg['input_size'][0] == model.in_chans
    assert cfg['first_conv'] + '.weight' in state_dict
    assert cfg['classifier'] + '.weight' in state_dict
    x = torch.randn(1, *cfg['input_size'])

    # forward_features is unpooled and matches pool_size
    feats = model.forward_features(x)
    assert feats.shape[1] == model.num_features == 64
    assert tuple(feats.shape[-2:]) == cfg['pool_size']
    pre_logits = model.forward_head(feats, pre_logits=True)
    assert pre_logits.shape == (1, model.head_hidden_size) == (1, 3072)

    # classifier removed: pre-logits of head_hidden_size
    model.reset_classifier(0)
    assert model.num_classes == 0
    out = model(x)
    assert out.shape == (1, model.head_hidden_size)

    # classifier and pooling removed: the final maps
    model.reset_classifier(0, '')
    out = model(x)
    assert out.ndim == 4 and tuple(out.shape[-2:]) == cfg['pool_size']

    model = timm.create_model(MODEL, num_classes=0, global_pool='').eval()
    out = model(x)
    assert out.ndim == 4 and tuple(out.shape[-2:]) == cfg['pool_size']
    assert model.head_hidden_size == model.num_features


def test_reset_classifier() -> None:
    model = timm.create_model(MODEL).eval()
    hidden = model.pre_logits.fc.weight.clone()
    assert model.get_classifier() is model.head
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity)
    model.reset_classifier(10)
    assert model(_input()).shape == (2, 10)
    assert torch.equal(model.pre_logits.fc.weight, hidden), 'the hidden layer must be kept'
    model.reset_classifier(0, '')
    assert isinstance(model.pre_logits, nn.Identity)
    model.reset_classifier(5, 'flatten')
    assert model(_input()).shape == (2, 5)
    with pytest.raises(ValueError, match="global_pool must be 'flatten' or ''"):
        model.reset_classifier(5, 'avg')
    with pytest.raises(ValueError, match='num_classes must be 0'):
        model.reset_classifier(5, '')


def test_features_only() -> None:
    model = timm.create_model(MODEL, features_only=True).eval()
    info = model.feature_info
    assert info.channels() == [32, 64, 64]
    assert info.reduction() == [2, 4, 8]
    assert info.module_name() == ['stages.0', 'stages.1', 'stages.2']
    # flatten_sequential: the wrapper holds the stages, not the hidden layer or classifier
    assert [name for name, _ in model.named_children()] == ['stages_0', 'stages_1', 'stages_2']
    outs = model(_input(42, batch=1))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 21, 21), (1, 64, 10, 10), (1, 64, 5, 5)]

    model = timm.create_model(MODEL, features_only=True, out_indices=(1,))
    assert [o.shape[1] for o in model(_input(48))] == [64]


def test_feature_info() -> None:
    model = timm.create_model(MODEL).eval()
    modules = dict(model.named_modules())
    reductions = [f['reduction'] for f in model.feature_info]
    assert reductions == sorted(reductions)
    outputs = {}
    for f in model.feature_info:
        modules[f['module']].register_forward_hook(
            lambda mod, args, out, name=f['module']: outputs.__setitem__(name, out))
    model(_input())
    for f in model.feature_info:
        assert outputs[f['module']].shape[1] == f['num_chs']


@pytest.mark.parametrize('size', [42, 48])
def test_forward_intermediates(size: int) -> None:
    model = timm.create_model(MODEL).eval()
    info = FeatureInfo(model.feature_info, list(range(len(model.feature_info))))
    x = _input(size)
    final, inter = model.forward_intermediates(x)
    assert len(inter) == len(info.channels()) == 3
    for chs, red, t in zip(info.channels(), info.reduction(), inter, strict=True):
        assert t.shape[1] == chs
        assert t.shape[2] <= math.ceil(size / red) + 1 and t.shape[3] <= math.ceil(size / red) + 1
    assert torch.allclose(final, model.forward_features(x))
    assert torch.allclose(model.forward_head(final), model(x))

    only = model.forward_intermediates(x, indices=[0, -1], intermediates_only=True)
    assert len(only) == 2 and torch.equal(only[0], inter[0]) and torch.equal(only[1], inter[2])
    last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
    assert [t.shape[1] for t in last_two] == [64, 64]
    early, inter_early = model.forward_intermediates(x, indices=[1], stop_early=True)
    assert torch.equal(early, inter[1]) and torch.equal(inter_early[0], inter[1])
    with pytest.raises(ValueError, match='NCHW'):
        model.forward_intermediates(x, output_fmt='NHWC')


def test_features_getter() -> None:
    model = timm.create_model(
        MODEL, features_only=True, feature_cls='getter', out_indices=(0, 1)).eval()
    outs = model(_input())
    assert [o.shape[1:] for o in outs] == [(32, 21, 21), (64, 10, 10)]
    assert len(model.model.stages) == 2, 'the getter prunes the unused last stage'


def test_prune_intermediate_layers() -> None:
    model = timm.create_model(MODEL).eval()
    x = _input()
    ref = model.forward_intermediates(x, intermediates_only=True)
    assert model.prune_intermediate_layers([0, 1]) == [0, 1]
    assert len(model.stages) == 2
    assert isinstance(model.head, nn.Identity) and isinstance(model.pre_logits, nn.Identity)
    assert model.num_features == model.head_hidden_size == 64
    inter = model.forward_intermediates(x, intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(inter, ref[:2], strict=True))
    assert torch.equal(model(x), ref[1])

    model = timm.create_model(MODEL).eval()
    model.prune_intermediate_layers(1, prune_head=False)
    assert model(x).shape == (2, 7)


def test_group_matcher() -> None:
    model = timm.create_model(MODEL)
    groups = timm.models.group_parameters(model, model.group_matcher())
    names = [sorted(v) for _, v in sorted(groups.items())]
    assert names[0] == ['stages.0.conv.bias', 'stages.0.conv.weight']
    assert len(names) == 4, 'stem, stage 1, stage 2, head'
    assert names[-1] == ['head.bias', 'head.weight', 'pre_logits.fc.bias', 'pre_logits.fc.weight']
    assert sum(len(n) for n in names) == len(list(model.parameters()))


@pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated')
def test_torchscript() -> None:
    with timm.set_scriptable(True):
        model = timm.create_model(MODEL).eval()
    scripted = torch.jit.script(model)
    x = _input()
    assert torch.allclose(scripted(x), model(x))
    with pytest.raises(torch.jit.Error, match='42..49'):
        scripted(_input(50))


def _fx_model(model: nn.Module) -> nn.Module:
    # timm's tests/test_models.py builds its FX extractor this way: last graph node as the output
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    tracer_kwargs = {'leaf_modules': list(get_notrace_modules()),
                     'autowrap_functions': list(get_notrace_functions())}
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    return create_feature_extractor(
        model, train_return_nodes=[train_nodes[-1]], eval_return_nodes=[eval_nodes[-1]],
        tracer_kwargs=tracer_kwargs)


def test_fx() -> None:
    model = timm.create_model(MODEL).eval()
    x = _input()
    with torch.no_grad():
        ref = model(x)
        fx_model = _fx_model(model)
        out = torch.cat(tuple(fx_model(x).values()))
    assert torch.equal(out, ref)
    with pytest.raises(ValueError, match='42..49'):
        fx_model(_input(40))

    model = timm.create_model(MODEL, num_classes=42).train()
    fx_model = _fx_model(model)
    out = torch.cat(tuple(fx_model(x).values()))
    out.mean().backward()
    assert all(p.grad is not None for p in fx_model.parameters())
    assert out.shape[-1] == 42


def test_fx_feature_extractor() -> None:
    model = timm.create_model(MODEL, features_only=True, feature_cls='fx').eval()
    outs = model(_input())
    assert [o.shape[1] for o in outs] == [32, 64, 64]


def test_in_chans() -> None:
    model = timm.create_model(MODEL, in_chans=3).eval()
    assert model.stages[0].conv.in_channels == 3
    assert model(_input(chans=3)).shape == (2, 7)


def _count_saved_tensors(model: nn.Module, x: torch.Tensor) -> int:
    # checkpointed regions save through their own hooks, so the outer hook sees only the rest
    count = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count
        count += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return count


def test_grad_checkpointing() -> None:
    model = timm.create_model(MODEL, drop_rate=0.0).train()
    x = _input()
    ref_out = model(x)
    ref_out.square().sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    saved_plain = _count_saved_tensors(model, x)
    model.zero_grad()

    model.set_grad_checkpointing(True)
    assert model.grad_checkpointing
    assert _count_saved_tensors(model, x) < saved_plain, 'the stages must really be checkpointed'
    out = model(x)
    out.square().sum().backward()
    assert torch.allclose(out, ref_out)
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, ref_grads[n], atol=1e-6), n
    final, inter = model.forward_intermediates(x)
    assert torch.allclose(final, model.forward_features(x)) and inter[-1].requires_grad


def test_pretrained_raises() -> None:
    with pytest.raises(RuntimeError, match='No pretrained weights exist'):
        timm.create_model(MODEL, pretrained=True)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = timm.create_model(MODEL).eval()
    path = tmp_path / 'fer_convnet.pth'
    torch.save(model.state_dict(), path)
    x = _input()
    loaded = timm.create_model(MODEL, checkpoint_path=str(path)).eval()
    assert torch.equal(loaded(x), model(x))
    loaded = timm.create_model(
        MODEL, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize('size', [41, 50, (42, 40), 96])
def test_bad_size_raises(size: int | tuple[int, int]) -> None:
    model = timm.create_model(MODEL).eval()
    h, w = (size, size) if isinstance(size, int) else size
    with pytest.raises(ValueError, match=r'flattens a 5x5 feature map.*42\.\.49 px high'):
        model(torch.randn(1, 1, h, w))
    # the convolutional trunk itself takes any size
    assert model.forward_features(torch.randn(1, 1, h, w)).shape[1] == 64


def test_accepted_sizes_are_exactly_42_to_49() -> None:
    model = timm.create_model(MODEL, global_pool='', num_classes=0).eval()
    grids = {s: tuple(model(torch.zeros(1, 1, s, s)).shape[-2:]) for s in range(30, 60)}
    assert [s for s, g in grids.items() if g == (5, 5)] == list(range(42, 50))


@pytest.mark.parametrize('img_size', [96, (42, 64)])
def test_img_size(img_size: int | tuple[int, int]) -> None:
    model = timm.create_model(MODEL, img_size=img_size).eval()
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
    grid = model.forward_features(torch.randn(1, 1, h, w)).shape[-2:]
    assert model.pre_logits.fc.in_features == 64 * grid[0] * grid[1]
    with pytest.raises(ValueError, match='feature map'):
        model(_input(42))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='img_size'):
        timm.create_model(MODEL, img_size=8)
    with pytest.raises(ValueError, match="global_pool must be 'flatten' or ''"):
        timm.create_model(MODEL, global_pool='avg')
    with pytest.raises(ValueError, match='num_classes must be 0'):
        timm.create_model(MODEL, global_pool='')


def test_hidden_dim_and_default_head_kind() -> None:
    model = timm.create_model(MODEL, hidden_dim=256)
    assert model.head_hidden_size == 256
    assert model.forward_head(model.forward_features(_input()), pre_logits=True).shape == (2, 256)
    assert FerConvNet.default_head_kind == 'linear'


@pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated')
def test_fx_then_torchscript() -> None:
    # timm's test_model_forward_fx_torchscript: FX-trace the scriptable model, then script the
    # traced graph (string annotations from `from __future__ import annotations` break this)
    with timm.set_scriptable(True):
        model = timm.create_model(MODEL).eval()
    scripted = torch.jit.script(_fx_model(model))
    x = _input(batch=1)
    with torch.no_grad():
        out = torch.cat(tuple(scripted(x).values()))
        ref = model(x)
    assert out.shape[0] == 1
    assert not torch.isnan(out).any()
    assert torch.allclose(out, ref)

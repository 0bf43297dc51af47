"""FER ConvNet: the facial expression network of DeVries, Biswaranjan & Taylor 2014.

Paper: `Multi-Task Learning of Facial Landmarks and Expression`, CRV 2014; the network follows
Tang 2013 (arXiv:1306.0239), winner of the ICML 2013 FER challenge.

Three conv -> ReLU -> 2x2 max-pool stages (32 5x5, 64 4x4 and 64 5x5 filters; paddings 2, 1, 2),
a flatten, a 3072-unit ReLU layer with dropout and a linear classifier. A 42x42 grayscale crop
gives maps of 32x21x21, 64x10x10 and 64x5x5; a 48x48 image also ends in 64x5x5, so one set of
weights serves the paper's crops and the uncropped FER2013 images.

The flatten ties the hidden layer to the size of the last map. ``img_size`` sets that grid (5x5
for the default 42); every input ending in the same grid works (42..49 px for 5x5, in general
``8g + 2 .. 8g + 9`` px for a grid of g), other sizes raise a ``ValueError`` naming the range.
"""

import os
from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn
from timm.layers import register_notrace_function
from timm.models import (
    build_model_with_cfg,
    checkpoint_seq,
    generate_default_cfgs,
    register_model,
    resolve_pretrained_cfg,
)
from timm.models._features import feature_take_indices  # private in timm, used by its models

from ..pretrained import FER2013_WEIGHTS, missing_weights_error

__all__ = ['FerConvNet']

_STAGE_CFG = ((32, 5, 2), (64, 4, 1), (64, 5, 2))  # (out channels, kernel, padding) per stage


def _grid_size(img_size: tuple[int, int]) -> tuple[int, int]:
    """Size of the last feature map for an ``img_size`` input (per stage: conv, 2x2 pool)."""
    out = []
    for size in img_size:
        for _, kernel, padding in _STAGE_CFG:
            size = (size + 2 * padding - kernel + 1) // 2
        out.append(size)
    return out[0], out[1]


def _size_range(grid: int) -> tuple[int, int]:
    """Smallest and largest input side that ends in a map ``grid`` wide."""
    return 8 * grid + 2, 8 * grid + 9


# FX keeps this as one call instead of tracing the shape test; returning x keeps feature
# extractors from dropping the call as dead code.
@register_notrace_function
def check_feature_grid(x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """Return ``x`` if its last two dims are ``grid_size``, else raise naming the input sizes."""
    if x.shape[-2] != grid_size[0] or x.shape[-1] != grid_size[1]:
        lo_h, hi_h = _size_range(grid_size[0])
        lo_w, hi_w = _size_range(grid_size[1])
        raise ValueError(
            f'fer_convnet flattens a {grid_size[0]}x{grid_size[1]} feature map into its hidden '
            f'layer, got {x.shape[-2]}x{x.shape[-1]}: inputs must be {lo_h}..{hi_h} px high and '
            f'{lo_w}..{hi_w} px wide. Build the model with img_size= for other sizes.'
        )
    return x


def _check_global_pool(global_pool: str) -> str:
    if global_pool not in ('flatten', ''):
        raise ValueError(
            f"fer_convnet's head flattens its last map: global_pool must be 'flatten' or '' "
            f"(no head), got {global_pool!r}")
    return global_pool


class ConvStage(nn.Sequential):
    """Conv -> ReLU -> 2x2 max-pool, one stage of the network."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int,
            padding: int,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        self.add_module('conv', nn.Conv2d(
            in_chs, out_chs, kernel_size, padding=padding, device=device, dtype=dtype))
        self.add_module('act', nn.ReLU(inplace=True))
        self.add_module('pool', nn.MaxPool2d(2))


class FerConvNet(nn.Module):
    """The convnet of DeVries et al. 2014 for facial expression recognition.

    Args:
        num_classes: Number of classes; 0 drops the classifier.
        in_chans: Number of input channels.
        img_size: Input size the hidden layer is built for; every size that ends in the same
            last grid works too (42..49 px for the default 42).
        global_pool: ``'flatten'`` (the paper's head: flatten, hidden layer, classifier) or
            ``''`` (no head: ``forward_head`` returns the last maps; ``num_classes`` must be 0).
        hidden_dim: Width of the hidden fully-connected layer.
        drop_rate: Dropout rate on the hidden layer.

    Shape:
        - Input: ``(B, in_chans, H, W)``, H and W in the range that ends in ``grid_size``.
        - Output: ``(B, num_classes)``.

    Examples:
        >>> import timm, torch
        >>> import mtl_heads  # registers fer_convnet
        >>> model = timm.create_model('fer_convnet', num_classes=7).eval()
        >>> model(torch.randn(2, 1, 42, 42)).shape
        torch.Size([2, 7])
        >>> feats = model.forward_features(torch.randn(2, 1, 48, 48))
        >>> feats.shape
        torch.Size([2, 64, 5, 5])
        >>> model.forward_head(feats, pre_logits=True).shape
        torch.Size([2, 3072])
    """

    # The pre-logits come from a fully-connected layer over the flattened 5x5 map, not from a
    # global pool, so they still carry where things are: mtl_heads' default_head_kind() reads
    # this (the kind of label-map head, not of timm's classifier head) to give the net the
    # paper's linear label-map head.
    default_head_kind = 'linear'

    def __init__(
            self,
            num_classes: int = 7,
            in_chans: int = 1,
            img_size: int | tuple[int, int] = 42,
            global_pool: str = 'flatten',
            hidden_dim: int = 3072,
            drop_rate: float = 0.5,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        dd = {'device': device, 'dtype': dtype}
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(self.img_size) != 2 or min(self.img_size) < 10:
            raise ValueError(f'img_size must be a side or (H, W) of at least 10 px, got {img_size}')
        self.grid_size = _grid_size(self.img_size)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.hidden_dim = hidden_dim
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        stages = []
        self.feature_info = []
        prev_chs = in_chans
        for i, (out_chs, kernel_size, padding) in enumerate(_STAGE_CFG):
            stages.append(ConvStage(prev_chs, out_chs, kernel_size, padding, **dd))
            prev_chs = out_chs
            self.feature_info.append(
                dict(num_chs=out_chs, reduction=2 ** (i + 1), module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)
        self.num_features = prev_chs

        self.global_pool = _check_global_pool(global_pool)
        self.pre_logits = self._create_pre_logits(**dd)
        self.head_hidden_size = hidden_dim if self.global_pool else self.num_features
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._create_classifier(num_classes, **dd)

    def _create_pre_logits(self, **dd: Any) -> nn.Module:
        if not self.global_pool:
            return nn.Identity()
        in_features = self.num_features * self.grid_size[0] * self.grid_size[1]
        return nn.Sequential(OrderedDict([
            ('fc', nn.Linear(in_features, self.hidden_dim, **dd)),
            ('act', nn.ReLU(inplace=True)),
        ]))

    def _create_classifier(self, num_classes: int, **dd: Any) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        if not self.global_pool:
            raise ValueError(
                f"global_pool='' returns feature maps and takes no classifier: num_classes must "
                f"be 0, got {num_classes}")
        return nn.Linear(self.head_hidden_size, num_classes, **dd)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        # one conv per stage, so coarse and fine groups agree; the hidden layer joins the head
        return dict(stem=r'^stages\.0\.', blocks=r'^stages\.(\d+)')

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier; ``global_pool`` turns the hidden layer on or off.

        The hidden layer keeps its weights unless ``global_pool`` changes.
        """
        weight = self.stages[0].conv.weight
        dd = {'device': weight.device, 'dtype': weight.dtype}
        if global_pool is not None and _check_global_pool(global_pool) != self.global_pool:
            self.global_pool = global_pool
            self.pre_logits = self._create_pre_logits(**dd)
            self.pre_logits.train(self.training)
        self.head_hidden_size = self.hidden_dim if self.global_pool else self.num_features
        self.num_classes = num_classes
        self.head = self._create_classifier(num_classes, **dd)
        self.head.train(self.training)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward features that also returns the output of each stage.

        Args:
            x: Input image tensor.
            indices: Take last n stages if int, all if None, select matching indices if sequence.
            norm: Unused, the net has no final norm.
            stop_early: Stop after the last stage requested.
            output_fmt: Shape of intermediate feature outputs, only ``'NCHW'``.
            intermediates_only: Only return the intermediate features.

        Returns:
            The list of intermediates, or the final features and the list of intermediates.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages), indices)

        if torch.jit.is_scripting() or not stop_early:  # can't slice stages in torchscript
            stages = self.stages
        else:
            stages = self.stages[:max_index + 1]
        for feat_idx, stage in enumerate(stages):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)

        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages after the last one requested, and the head if asked or cut off."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        self.stages = self.stages[:max_index + 1]
        if prune_end:
            # the hidden layer is sized for the last stage's maps, it cannot follow an earlier one
            self.num_features = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)
        else:
            x = self.stages(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not self.global_pool:
            return x
        x = check_feature_grid(x, self.grid_size)
        x = self.pre_logits(x.flatten(1))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        x = self.forward_head(x)
        return x


def checkpoint_filter_fn(
        state_dict: dict[str, torch.Tensor],
        model: FerConvNet,
) -> dict[str, torch.Tensor]:
    """Accept ``mtl-heads train`` checkpoints as pretrained weights.

    A train.py checkpoint holds the whole run (``model.backbone.*``, ``model.label_map_head.*``,
    ``pre.*``, ``loss.*``, ``optim.*``); the classifier is the ``model.backbone.`` part. A plain
    state dict (``deploy.safetensors``, ``mtl-heads export --format safetensors``) passes as is.
    Weights of another architecture or class count raise a ``ValueError`` that says so, instead
    of timm's key dump or a silently re-initialised classifier.
    """
    prefix = 'model.backbone.'
    if any(k.startswith(prefix) for k in state_dict):
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(
            f'the weights are not a fer_convnet\'s: missing {missing[:4]}'
            f'{"..." if len(missing) > 4 else ""}, unexpected {unexpected[:4]}'
            f'{"..." if len(unexpected) > 4 else ""} (a checkpoint of another backbone?)'
        )
    for name, tensor in state_dict.items():
        if tensor.shape != own[name].shape:
            hint = ''
            if name in ('head.weight', 'head.bias'):
                hint = (f': a {tensor.shape[0]}-class checkpoint; pass num_classes='
                        f'{tensor.shape[0]} and pretrained_cfg_overlay=dict(file=..., '
                        f'num_classes={tensor.shape[0]})')
            raise ValueError(
                f'weight {name} is {tuple(tensor.shape)} in the checkpoint but '
                f'{tuple(own[name].shape)} in the model{hint}'
            )
    return state_dict


def _cfg(url: str = '', **kwargs: Any) -> dict[str, Any]:
    return {
        'url': url, 'num_classes': 7, 'input_size': (1, 42, 42), 'pool_size': (5, 5),
        # the paper's test views are 42 px crops of the 48 px images
        'crop_pct': 0.875, 'interpolation': 'bilinear', 'fixed_input_size': True,
        # the paper normalises per image (mtl_heads.preprocessing); these map [0, 1] to [-1, 1]
        'mean': (0.5,), 'std': (0.5,),
        'first_conv': 'stages.0.conv', 'classifier': 'head',
        'paper_ids': 'CRV 2014',
        'paper_name': 'Multi-Task Learning of Facial Landmarks and Expression',
        'license': 'apache-2.0',
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    # mtl-heads' FER2013 model, a file inside the package (no download); first, so that
    # pretrained=True without a tag loads it
    'fer_convnet.fer2013': _cfg(
        file=str(FER2013_WEIGHTS),
        label_names=('Angry', 'Disgust', 'Fear', 'Happy', 'Sad', 'Surprise', 'Neutral'),
        # FER2013 images and dlib's 300-W landmark model are both for research use only
        license='research-only',
        notes=('trained on FER2013 Training by mtl-heads; model card: fer_convnet.fer2013.md '
               'beside the file',),
    ),
    'fer_convnet.untrained': _cfg(),
})


def _create_fer_convnet(variant: str, pretrained: bool = False, **kwargs: Any) -> FerConvNet:
    if pretrained:
        # timm raises a bare FileNotFoundError() for a missing file: name it and the way out
        cfg = resolve_pretrained_cfg(
            variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay'))
        if (cfg.file and cfg.state_dict is None and cfg.source != 'local-dir'
                and not os.path.isfile(cfg.file)):
            raise missing_weights_error(
                cfg.file, 'timm.create_model("fer_convnet", pretrained=True, '
                'pretrained_cfg_overlay=dict(file="RUN/best.safetensors"))')
    return build_model_with_cfg(
        FerConvNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2), flatten_sequential=True),
        **kwargs,
    )


@register_model
def fer_convnet(pretrained: bool = False, **kwargs: Any) -> FerConvNet:
    """FER ConvNet (DeVries et al. 2014): 3 conv stages, 3072-unit hidden layer, 5.08 M params."""
    model_args = dict(hidden_dim=3072, drop_rate=0.5)
    return _create_fer_convnet('fer_convnet', pretrained=pretrained, **dict(model_args, **kwargs))

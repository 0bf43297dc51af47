"""A timm classifier plus an auxiliary label-map head, trained together and shipped apart.

:class:`MultiTaskModel` wraps any timm classification model (the *backbone*) and a
:class:`~mtl_heads.heads.LabelMapHead`. One backbone pass feeds both outputs; ``forward`` always
returns a dict ``{"logits": (B, num_classes), "label_maps": (B, K, H, W)}`` (no ``"label_maps"``
key for the ``label_maps=0`` baseline). :meth:`MultiTaskModel.deploy` hands back the plain timm
classifier, so the auxiliary task costs nothing at test time (DeVries et al. 2014).

Which head a backbone gets by default (``head=None``):

1. the backbone class's ``default_label_map_head`` attribute, when it declares one
   (``fer_convnet`` declares ``"linear"``, the paper's head);
2. otherwise ``"linear"`` if the backbone has no ``forward_intermediates`` (or no
   ``feature_info``) to feed a decoder;
3. otherwise ``"spatial"``.
"""

import difflib
from collections.abc import Callable, Sequence
from typing import Any

import timm
import torch
from torch import nn

from mtl_heads.heads import (
    HEAD_KINDS,
    LabelMapHead,
    LinearLabelMapHead,
    SpatialLabelMapHead,
    _to_2tuple,
)

__all__ = ["MultiTaskModel", "create_model", "default_head_kind"]

_PREFIX = "backbone."


def _backbone_name(backbone: nn.Module) -> str:
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    return cfg.get("architecture") or type(backbone).__name__


def _feature_info_list(backbone: nn.Module) -> list[dict[str, Any]] | None:
    info = getattr(backbone, "feature_info", None)
    if info is None:
        return None
    # features_only models carry a FeatureInfo object, classifiers a plain list of dicts
    info = getattr(info, "info", info)
    info = list(info)
    return info if info and all(isinstance(i, dict) and "num_chs" in i for i in info) else None


def default_head_kind(backbone: nn.Module) -> str:
    """The label-map head ``create_model(..., head=None)`` picks for ``backbone``.

    ``type(backbone).default_label_map_head`` when the class declares it; else ``"linear"`` when the
    backbone lacks ``forward_intermediates`` or ``feature_info`` (nothing to decode); else
    ``"spatial"``.

    Examples:
        >>> default_head_kind(timm.create_model("test_resnet"))
        'spatial'
    """
    declared = getattr(type(backbone), "default_label_map_head", None)
    if declared is not None:
        if declared not in HEAD_KINDS:
            raise ValueError(
                f"{type(backbone).__name__}.default_label_map_head is {declared!r}; expected "
                f"one of {HEAD_KINDS}"
            )
        return declared
    if not hasattr(backbone, "forward_intermediates") or _feature_info_list(backbone) is None:
        return "linear"
    return "spatial"


def _default_indices(info: list[dict[str, Any]]) -> list[int]:
    reductions = [int(i["reduction"]) for i in info]
    if len(set(reductions)) > 1:
        # hierarchical backbone: the deepest map of each resolution
        deepest = {r: idx for idx, r in enumerate(reductions)}
        return sorted(deepest.values())
    # isotropic backbone (ViT): every block has the same grid; take up to 4 evenly spaced blocks
    # ending at the last one, as dense-prediction heads on ViTs do (DPT)
    n = len(reductions)
    k = min(4, n)
    return sorted({round((j + 1) * n / k) - 1 for j in range(k)})


def _prefix_pattern(pattern: str) -> str:
    # timm matchers are anchored alternations such as r"^cls_token|pos_embed|patch_embed":
    # group the alternatives so that the prefix applies to each of them
    body = pattern.removeprefix("^").replace("|^", "|")
    return "^" + _PREFIX.replace(".", r"\.") + "(?:" + body + ")"


class MultiTaskModel(nn.Module):
    """A timm classifier with an auxiliary label-map head; one backbone pass feeds both.

    Args:
        backbone: a timm classification model (full timm model contract: ``forward_head``,
            ``get_classifier``; the spatial head also needs ``forward_intermediates`` and
            ``feature_info``).
        label_maps: number of label maps K; ``0`` builds the baseline (no head, no extra
            parameters, same ``forward`` dict without ``"label_maps"``).
        head: ``None`` (see :func:`default_head_kind`), ``"linear"``, ``"spatial"``, or a dict of
            head options with a ``"kind"`` key: ``dict(kind="spatial", channels=64, indices=[...])``
            (``indices``: which ``forward_intermediates`` maps the decoder reads; default: the
            deepest map of each resolution, or 4 evenly spaced blocks for ViTs) or
            ``dict(kind="linear")``.
        img_size: (H, W) or an int; the linear head's output size (default: the backbone's
            ``pretrained_cfg["input_size"]``). The spatial head follows the input size instead.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``{"logits": (B, num_classes), "label_maps": (B, K, H, W)}`` (label-map logits,
          pre-sigmoid).

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> backbone = timm.create_model("test_resnet", num_classes=7, in_chans=1)
        >>> model = MultiTaskModel(backbone, label_maps=3).eval()
        >>> out = model(torch.randn(2, 1, 48, 48))
        >>> out["logits"].shape, out["label_maps"].shape
        (torch.Size([2, 7]), torch.Size([2, 3, 48, 48]))
        >>> model.head_kind
        'spatial'
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        label_maps: int = 3,
        head: str | dict[str, Any] | None = None,
        img_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(
                f"backbone must be a timm model (nn.Module), got {type(backbone).__name__}"
            )
        if isinstance(label_maps, bool) or not isinstance(label_maps, int) or label_maps < 0:
            raise ValueError(
                f"label_maps must be an int >= 0 (0 = baseline without head), got {label_maps!r}"
            )
        for attr in ("forward_head", "get_classifier"):
            if not hasattr(backbone, attr):
                raise TypeError(
                    f"{_backbone_name(backbone)} lacks {attr}(): MultiTaskModel needs a timm "
                    "classification model (created with timm.create_model)"
                )
        self.backbone = backbone
        self.label_maps = label_maps
        self.head_kind: str | None = None
        self.label_map_head: LabelMapHead | None = None
        self.intermediate_indices: list[int] | None = None
        if label_maps == 0:
            if head is not None:
                raise ValueError(f"head={head!r} given with label_maps=0 (baseline has no head)")
            return

        options = self._parse_head(head)
        kind = options.pop("kind")
        name = _backbone_name(backbone)
        if kind == "linear":
            if options:
                raise ValueError(f"unknown options for the linear head: {sorted(options)}")
            classifier = backbone.get_classifier()
            if not isinstance(classifier, nn.Module):
                raise ValueError(
                    f"{name}.get_classifier() returned {type(classifier).__name__}, not one module "
                    "(a distilled model with two classifiers?): the linear head reads the input of "
                    "a single classifier; use head='spatial'"
                )
            if isinstance(classifier, nn.Linear):
                in_features = classifier.in_features
            else:
                in_features = getattr(backbone, "head_hidden_size", None) or getattr(
                    backbone, "num_features", None
                )
            if not in_features:
                raise ValueError(f"cannot tell the pre-logits width of {name}; use head='spatial'")
            if img_size is None:
                cfg = getattr(backbone, "pretrained_cfg", None) or {}
                if "input_size" not in cfg:
                    raise ValueError(
                        f"{name} has no pretrained_cfg['input_size']: pass img_size= for the "
                        "linear head"
                    )
                img_size = cfg["input_size"][-2:]
            self.label_map_head = LinearLabelMapHead(
                int(in_features), label_maps, _to_2tuple(img_size, "img_size")
            )
        else:
            info = _feature_info_list(backbone)
            if not hasattr(backbone, "forward_intermediates") or info is None:
                missing = (
                    "forward_intermediates"
                    if not hasattr(backbone, "forward_intermediates")
                    else "feature_info"
                )
                raise ValueError(f"{name} has no {missing} for the spatial head; use head='linear'")
            indices = options.pop("indices", None)
            channels = options.pop("channels", 64)
            if options:
                raise ValueError(f"unknown options for the spatial head: {sorted(options)}")
            if indices is None:
                indices = _default_indices(info)
            indices = [int(i) for i in indices]
            if not indices or any(i < 0 or i >= len(info) for i in indices):
                raise ValueError(
                    f"spatial head indices {indices} out of range: {name} has {len(info)} "
                    f"feature maps (0..{len(info) - 1})"
                )
            self.intermediate_indices = indices
            self.label_map_head = SpatialLabelMapHead(
                [int(info[i]["num_chs"]) for i in indices], label_maps, channels=channels
            )
        self.head_kind = kind

    def _parse_head(self, head: str | dict[str, Any] | None) -> dict[str, Any]:
        if head is None:
            return {"kind": default_head_kind(self.backbone)}
        if isinstance(head, str):
            head = {"kind": head}
        if not isinstance(head, dict):
            raise TypeError(
                f"head must be None, 'linear', 'spatial' or a dict, got {type(head).__name__}"
            )
        options = dict(head)
        kind = options.get("kind", default_head_kind(self.backbone))
        if kind not in HEAD_KINDS:
            raise ValueError(f"unknown label-map head kind {kind!r}; expected one of {HEAD_KINDS}")
        options["kind"] = kind
        return options

    @property
    def num_classes(self) -> int:
        return self.backbone.num_classes

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return getattr(self.backbone, "pretrained_cfg", {})

    @property
    def default_cfg(self) -> dict[str, Any]:
        return self.pretrained_cfg

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class logits and label-map logits from one backbone pass.

        Args:
            x: images ``(B, C, H, W)``.

        Returns:
            ``{"logits": (B, num_classes), "label_maps": (B, K, H, W)}``; no ``"label_maps"`` key
            when the model was built with ``label_maps=0``.
        """
        head = self.label_map_head
        if head is None:
            return {"logits": self.backbone(x)}
        size = tuple(x.shape[-2:])
        if isinstance(head, SpatialLabelMapHead):
            final, inters = self.backbone.forward_intermediates(
                x, indices=self.intermediate_indices, intermediates_only=False
            )
            return {"logits": self.backbone.forward_head(final), "label_maps": head(inters, size)}

        if size != head.img_size:
            h, w = head.img_size
            raise ValueError(
                f"input is {size[0]}x{size[1]} but the linear label-map head was built for "
                f"{h}x{w}; "
                "pass img_size= matching the input to create_model, or use head='spatial'"
            )
        # The classifier's input is the pre-logits vector exactly as the backbone's own head
        # produces it (after its dropout, as in the paper where dropout precedes both outputs):
        # the same operations as backbone(x), so the logits equal deploy()'s bit for bit.
        pre_logits = self.backbone.forward_head(
            self.backbone.forward_features(x), pre_logits=True
        )
        logits = self.backbone.get_classifier()(pre_logits)
        return {"logits": logits, "label_maps": head(pre_logits, size)}

    def deploy(self) -> nn.Module:
        """The plain timm classifier with the label-map head discarded.

        Returns the wrapped backbone itself (not a copy): it shares parameters with this model, so
        further training of the multi-task model changes it too (``copy.deepcopy`` it for a
        snapshot). Its ``state_dict`` is an ordinary timm checkpoint of the backbone's architecture.

        Examples:
            >>> model = create_model("test_resnet", num_classes=7, in_chans=1).eval()
            >>> x = torch.randn(2, 1, 48, 48)
            >>> torch.equal(model.deploy()(x), model(x)["logits"])
            True
        """
        return self.backbone

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if not hasattr(self.backbone, "set_grad_checkpointing"):
            raise AttributeError(f"{_backbone_name(self.backbone)} has no set_grad_checkpointing")
        self.backbone.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """The backbone's no-weight-decay names, prefixed (timm's optimizer factory reads this)."""
        names = self.backbone.no_weight_decay() if hasattr(self.backbone, "no_weight_decay") else ()
        return {_PREFIX + n for n in names}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any] | Callable[[str], Any]:
        """The backbone's parameter groups (layer-wise LR decay); the head joins the last one."""
        if not hasattr(self.backbone, "group_matcher"):
            raise AttributeError(f"{_backbone_name(self.backbone)} has no group_matcher")
        matcher = self.backbone.group_matcher(coarse=coarse)
        if callable(matcher) and not isinstance(matcher, dict):

            def _match(name: str) -> Any:
                if name.startswith(_PREFIX):
                    return matcher(name[len(_PREFIX) :])
                return (float("inf"),)

            return _match
        out: dict[str, Any] = {}
        for group, spec in matcher.items():
            if spec is None or isinstance(spec, str):
                out[group] = spec if spec is None else _prefix_pattern(spec)
            else:
                out[group] = [(_prefix_pattern(p), suffix) for p, suffix in spec]
        return out


def create_model(
    backbone: str | nn.Module,
    *,
    num_classes: int,
    in_chans: int | None = None,
    img_size: int | Sequence[int] | None = None,
    label_maps: int = 3,
    head: str | dict[str, Any] | None = None,
    pretrained: bool = False,
    **backbone_kwargs: Any,
) -> MultiTaskModel:
    """A :class:`MultiTaskModel` over a timm backbone given by name or as a model.

    Args:
        backbone: a timm model name (``"resnet18"``, ``"fer_convnet"``, tags allowed) or an existing
            timm model (then ``in_chans``, ``pretrained`` and ``backbone_kwargs`` must stay unset;
            its classifier is reset when ``num_classes`` differs).
        num_classes: number of classes of the classifier.
        in_chans: input channels; ``None`` keeps the backbone's default.
        img_size: input (H, W) or an int. Passed to backbones that take it (ViTs, Swin: they fix
            their position embeddings/windows to it); always used for the linear head's output
            size. ``None``: the backbone's ``pretrained_cfg["input_size"]``.
        label_maps: number of label maps K; ``0`` builds the baseline with the same API.
        head: ``None`` (default rule, see :func:`default_head_kind`), ``"linear"``, ``"spatial"``
            or a dict of head options (see :class:`MultiTaskModel`).
        pretrained: load the backbone's pretrained weights (timm's own sources).
        **backbone_kwargs: passed on to ``timm.create_model`` (e.g. ``drop_rate``, ``patch_size``).

    Returns:
        The multi-task model.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> model = create_model("test_vit", num_classes=7, in_chans=1, img_size=42, patch_size=6)
        >>> out = model(torch.randn(2, 1, 42, 42))
        >>> {k: tuple(v.shape) for k, v in out.items()}
        {'logits': (2, 7), 'label_maps': (2, 3, 42, 42)}
        >>> create_model("resnet_18", num_classes=7)
        Traceback (most recent call last):
        ...
        ValueError: unknown timm model 'resnet_18'; close matches: ['resnet18', ...]
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(backbone, str):
        # make sure our own models (fer_convnet) are registered before looking the name up
        import mtl_heads.models  # noqa: F401

        if not timm.is_model(backbone):
            close = difflib.get_close_matches(backbone, timm.list_models(), n=5, cutoff=0.6)
            hint = f"close matches: {close}" if close else "see timm.list_models()"
            raise ValueError(f"unknown timm model {backbone!r}; {hint}")
        kwargs = dict(
            num_classes=num_classes, in_chans=in_chans, pretrained=pretrained, **backbone_kwargs
        )
        if img_size is not None:
            try:
                model = timm.create_model(backbone, img_size=img_size, **kwargs)
            except TypeError as err:
                # CNNs do not take img_size (any input size works): use it for the head only
                if "img_size" not in str(err):
                    raise
                model = timm.create_model(backbone, **kwargs)
        else:
            model = timm.create_model(backbone, **kwargs)
    elif isinstance(backbone, nn.Module):
        named = {"in_chans": in_chans is not None, "pretrained": pretrained}
        given = sorted([n for n, v in named.items() if v] + list(backbone_kwargs))
        if given:
            raise ValueError(
                f"{given} apply only when backbone is a model name; got an existing "
                f"{_backbone_name(backbone)} model"
            )
        model = backbone
        if getattr(model, "num_classes", None) != num_classes:
            if not hasattr(model, "reset_classifier"):
                raise ValueError(
                    f"{_backbone_name(model)} has {getattr(model, 'num_classes', '?')} classes "
                    "and no "
                    f"reset_classifier() to make it {num_classes}"
                )
            model.reset_classifier(num_classes)
    else:
        raise TypeError(
            f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}"
        )
    return MultiTaskModel(model, label_maps=label_maps, head=head, img_size=img_size)

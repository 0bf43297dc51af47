"""A timm classifier plus an auxiliary label-map head, trained together and shipped apart.

:class:`MultiTaskModel` wraps any timm classification model (the *backbone*) and a
:class:`~mtl_heads.heads.LabelMapHead`. One backbone pass feeds both outputs; ``forward`` always
returns a dict ``{"logits": (B, num_classes), "label_maps": (B, K, H, W)}`` (no ``"label_maps"``
key for the ``num_label_maps=0`` baseline). :meth:`MultiTaskModel.deploy` hands back the plain timm
classifier, so the auxiliary task costs nothing at test time (DeVries et al. 2014).

Which head kind a backbone gets by default (``head=None``, :func:`default_head_kind`):

1. the backbone class's ``default_head_kind`` attribute, when it declares one
   (``fer_convnet`` declares ``"linear"``, the paper's head);
2. otherwise ``"linear"`` if the backbone has no ``forward_intermediates`` (or no
   ``feature_info``) to feed a decoder;
3. otherwise ``"spatial"``.
"""

import difflib
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import SpaceToDepth
from torch import nn

from mtl_heads._deprecation import renamed_kwargs, warn_renamed
from mtl_heads.heads import (
    HEAD_KINDS,
    LabelMapHead,
    LinearLabelMapHead,
    SpatialLabelMapHead,
    _to_2tuple,
)
from mtl_heads.models.input_resize import ResizedClassifier, _prefix_group_matcher

__all__ = ["MultiTaskModel", "create_model", "default_head_kind"]

_PREFIX = "backbone."


def _timm_model(backbone: nn.Module) -> nn.Module:
    """The timm model itself: a :class:`ResizedClassifier` keeps the contract's methods even where
    its model lacks them (they raise when called), so capabilities are read from the model."""
    return backbone.model if isinstance(backbone, ResizedClassifier) else backbone


def _backbone_name(backbone: nn.Module) -> str:
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    return cfg.get("architecture") or type(_timm_model(backbone)).__name__


def _feature_info_list(backbone: nn.Module) -> list[dict[str, Any]] | None:
    info = getattr(backbone, "feature_info", None)
    if info is None:
        return None
    # features_only models carry a FeatureInfo object, classifiers a plain list of dicts
    info = getattr(info, "info", info)
    info = list(info)
    return info if info and all(isinstance(i, dict) and "num_chs" in i for i in info) else None


def default_head_kind(backbone: nn.Module) -> str:
    """The label-map head kind ``create_model(..., head=None)`` picks for ``backbone``.

    The backbone class's ``default_head_kind`` attribute when it declares one (a model written
    for this package: ``FerConvNet.default_head_kind = "linear"``); else ``"linear"`` when the
    backbone lacks ``forward_intermediates`` or ``feature_info`` (nothing to decode); else
    ``"spatial"``. The attribute's old name ``default_label_map_head`` is read too, with a
    ``DeprecationWarning``.

    Examples:
        >>> default_head_kind(timm.create_model("test_resnet"))
        'spatial'
    """
    model = _timm_model(backbone)
    cls = type(model)
    attr = "default_head_kind"
    declared = getattr(cls, attr, None)
    if declared is None and getattr(cls, "default_label_map_head", None) is not None:
        declared, attr = cls.default_label_map_head, "default_label_map_head"
        warn_renamed(f"{cls.__name__}.default_label_map_head", "default_head_kind", stacklevel=3)
    if declared is not None:
        if declared not in HEAD_KINDS:
            raise ValueError(
                f"{cls.__name__}.{attr} is {declared!r}; expected one of {HEAD_KINDS}"
            )
        return declared
    if not hasattr(model, "forward_intermediates") or _feature_info_list(backbone) is None:
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


def _family(backbone: nn.Module) -> str:
    # the timm module that registers the model is its family ("byoanet", "vision_transformer")
    name = _backbone_name(backbone)
    module = (
        timm.models.model_entrypoint(name).__module__
        if timm.is_model(name)
        else type(_timm_model(backbone)).__module__
    )
    return module.rsplit(".", 1)[-1]


def _input_channels(backbone: nn.Module) -> int:
    """The image channels the backbone takes: its ``in_chans`` (most timm models keep it), else
    its first convolution's input channels, divided by the pixels a space-to-depth stem
    (tresnet) folds into channels before it."""
    in_chans = getattr(_timm_model(backbone), "in_chans", None)
    if isinstance(in_chans, int) and in_chans > 0:
        return in_chans
    folded = 1
    for module in backbone.modules():
        if isinstance(module, SpaceToDepth):
            folded = module.bs * module.bs
        if isinstance(module, nn.Conv2d):
            return module.in_channels // folded
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    return int(cfg.get("input_size", (3,))[0])


def _probe_input(backbone: nn.Module, size: tuple[int, int], noise: bool = False) -> torch.Tensor:
    # zeros, or noise from a generator of its own: a probe must not move the caller's stream
    weight = next(backbone.parameters(), None)
    kwargs = {} if weight is None else {"device": weight.device, "dtype": weight.dtype}
    shape = (1, _input_channels(backbone), *size)
    if not noise:
        return torch.zeros(shape, **kwargs)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(**kwargs)


def _probe(run: Callable[[], Any], module: nn.Module) -> Exception | None:
    """Run ``run()`` once in eval mode without gradients; the exception it raised, if any."""
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            run()
    except Exception as err:  # noqa: BLE001 (any failure deep in timm means "does not fit")
        return err
    finally:
        module.train(training)
    return None


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding, relative to the scale of ``b`` (freshly built trunks can
    pool to ~1e-4): a norm layer at init between two (running var 1, eps 1e-5) changes a
    vector by ~5e-6 relative, rounding of the same float32 operations by ~1e-7 at most. (A
    model built in half precision or on a non-deterministic device could blur the two; models
    are built in float32 on the CPU by default.)"""
    return a.shape == b.shape and bool((a - b).abs().max() <= 1e-6 * b.abs().max())


def _linear_head_gap(backbone: nn.Module, img_size: tuple[int, int]) -> tuple[str | None, bool]:
    """Why ``get_classifier()`` does not read the pre-logits vector at ``img_size`` (or None),
    and whether it takes that vector as a ``(B, D, 1, 1)`` map (a 1x1-conv classifier).

    One probe forward at batch 1 records what the classifier receives in the backbone's own
    forward and what ``forward_head(..., pre_logits=True)`` returns; the linear head needs both
    to be the same pooled ``(B, D)`` vector, value for value (a family that normalises the
    pooled vector inside its head, between the two, would train a classifier on one vector and
    deploy it on another), and the backbone's logits must be the classifier's output on it
    alone. A forward that fails at this size is not a gap of the head (``create_model`` handles
    sizes) and returns ``(None, False)``.
    """
    classifier = backbone.get_classifier()
    seen: list[Any] = []
    pre: list[Any] = []
    logits: list[Any] = []
    own: list[torch.Tensor] = []

    def record(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append(args[0] if args else next(iter(kwargs.values()), None))

    def run() -> None:
        handle = classifier.register_forward_pre_hook(record, with_kwargs=True)
        try:
            x = _probe_input(backbone, img_size, noise=True)  # zeros can pool to zeros
            logits.append(backbone(x))
        finally:
            handle.remove()
        pre.append(backbone.forward_head(backbone.forward_features(x), pre_logits=True))
        # the classifier alone on the pre-logits vector (in the same eval / no-grad probe),
        # where it takes a vector of that size at all
        inp, out = (seen[0] if len(seen) == 1 else None), pre[0]
        if (isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor)
                and inp.shape[0] == out.shape[0] and inp[0].numel() == out[0].numel()
                and (inp.ndim == 2 or inp.shape[2:] == (1, 1))):
            own.append(classifier(out.reshape(inp.shape)).flatten(1))

    if _probe(run, backbone) is not None:
        return None, False
    size = f"{img_size[0]}x{img_size[1]}"
    name = type(classifier).__name__
    if not isinstance(pre[0], torch.Tensor) or not all(isinstance(t, torch.Tensor) for t in seen):
        return (
            f"its classifier ({name}) or forward_head(pre_logits=True) at {size} works on "
            f"{type(pre[0]).__name__} values, not one pooled (B, D) tensor"
        ), False
    flat = [t.flatten(1) if t.ndim == 4 and t.shape[2:] == (1, 1) else t for t in seen]
    p = pre[0].flatten(1) if pre[0].ndim == 4 and pre[0].shape[2:] == (1, 1) else pre[0]
    if len(flat) == 1 and flat[0].ndim == 2 and flat[0].shape == p.shape:
        if not _close(flat[0], p):
            return (
                f"its classifier ({name}) receives a {tuple(p.shape)} vector other than the one "
                f"forward_head(pre_logits=True) returns at {size} (the family transforms the "
                "pooled vector inside its head, e.g. a norm, before the classifier)"
            ), False
        if not isinstance(logits[0], torch.Tensor):
            return f"its forward returns {type(logits[0]).__name__}, not one logits tensor", False
        if not _close(own[0], logits[0]):
            return (
                f"its logits at {size} are not its classifier's ({name}) output on the "
                "pre-logits vector alone (the family adds another term, e.g. volo's auxiliary "
                "token head)"
            ), False
        return None, seen[0].ndim == 4
    got = ", ".join(str(tuple(t.shape)) for t in seen) or (
        "no input (it is never called as one module)")
    return (
        f"its classifier ({name}) receives {got} and forward_head(pre_logits=True) returns "
        f"{tuple(pre[0].shape)} at {size}, not one pooled (B, D) vector (the family pools inside "
        "its classifier, or not at all)"
    ), False


class MultiTaskModel(nn.Module):
    """A timm classifier with an auxiliary label-map head; one backbone pass feeds both.

    Args:
        backbone: a timm classification model (full timm model contract: ``forward_head``,
            ``get_classifier``; the spatial head also needs ``forward_intermediates`` and
            ``feature_info``), or one behind an input resize
            (:class:`~mtl_heads.models.ResizedClassifier`).
        num_label_maps: number of label maps K; ``0`` builds the baseline (no head, no extra
            parameters, same ``forward`` dict without ``"label_maps"``). ``label_maps=`` is its
            deprecated alias.
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
        >>> model = MultiTaskModel(backbone, num_label_maps=3).eval()
        >>> out = model(torch.randn(2, 1, 48, 48))
        >>> out["logits"].shape, out["label_maps"].shape
        (torch.Size([2, 7]), torch.Size([2, 3, 48, 48]))
        >>> model.head_kind
        'spatial'
    """

    @renamed_kwargs(label_maps="num_label_maps")
    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_label_maps: int = 3,
        head: str | dict[str, Any] | None = None,
        img_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(
                f"backbone must be a timm model (nn.Module), got {type(backbone).__name__}"
            )
        timm_model = _timm_model(backbone)
        if (
            isinstance(num_label_maps, bool)
            or not isinstance(num_label_maps, int)
            or num_label_maps < 0
        ):
            raise ValueError(
                "num_label_maps must be an int >= 0 (0 = baseline without head), got "
                f"{num_label_maps!r}"
            )
        for attr in ("forward_head", "get_classifier"):
            if not hasattr(timm_model, attr):
                raise TypeError(
                    f"{_backbone_name(backbone)} lacks {attr}(): MultiTaskModel needs a timm "
                    "classification model (created with timm.create_model)"
                )
        self.backbone = backbone
        self.num_label_maps = num_label_maps
        self.head_kind: str | None = None
        self.label_map_head: LabelMapHead | None = None
        self.intermediate_indices: list[int] | None = None
        self._classifier_takes_map = False
        if num_label_maps == 0:
            if head is not None:
                raise ValueError(
                    f"head={head!r} given with num_label_maps=0 (baseline has no head)"
                )
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
            img_size = _to_2tuple(img_size, "img_size")
            gap, self._classifier_takes_map = _linear_head_gap(backbone, img_size)
            if gap is not None:
                raise ValueError(
                    f"{name} cannot feed the linear label-map head: {gap}; use head='spatial'"
                )
            self.label_map_head = LinearLabelMapHead(int(in_features), num_label_maps, img_size)
        else:
            info = _feature_info_list(backbone)
            if not hasattr(timm_model, "forward_intermediates") or info is None:
                missing = (
                    "forward_intermediates"
                    if not hasattr(timm_model, "forward_intermediates")
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
                [int(info[i]["num_chs"]) for i in indices], num_label_maps, channels=channels
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
    def label_maps(self) -> int:
        """Deprecated: :attr:`num_label_maps`."""
        warn_renamed("MultiTaskModel.label_maps", "num_label_maps", stacklevel=3)
        return self.num_label_maps

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
            when the model was built with ``num_label_maps=0``.
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
        classifier = self.backbone.get_classifier()
        if self._classifier_takes_map:  # a 1x1-conv classifier (dpn): (B, D, 1, 1) in
            logits = classifier(pre_logits.reshape(*pre_logits.shape[:2], 1, 1)).flatten(1)
        else:
            logits = classifier(pre_logits)
        return {"logits": logits, "label_maps": head(pre_logits, size)}

    def deploy(self) -> nn.Module:
        """The plain timm classifier with the label-map head discarded.

        Returns the wrapped backbone itself (not a copy): it shares parameters with this model, so
        further training of the multi-task model changes it too (``copy.deepcopy`` it for a
        snapshot). Its ``state_dict`` is an ordinary timm checkpoint of the backbone's
        architecture. A model built with ``resize_input=True`` returns its
        :class:`~mtl_heads.models.ResizedClassifier` (the resize, then the timm model): its
        ``.model.state_dict()`` is the timm checkpoint, and it loads one as it is.

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
        return _prefix_group_matcher(self.backbone.group_matcher(coarse=coarse), _PREFIX)


def _create_backbone(
    name: str, img_size: int | Sequence[int] | None, kwargs: dict[str, Any]
) -> tuple[nn.Module, bool]:
    """``timm.create_model(name, img_size=..., **kwargs)``; whether the model took ``img_size``."""
    if img_size is None:
        return timm.create_model(name, **kwargs), False
    try:
        return timm.create_model(name, img_size=img_size, **kwargs), True
    except TypeError as err:
        # CNNs do not take img_size (any input size works): use it for the head only
        if "img_size" not in str(err):
            raise
    return timm.create_model(name, **kwargs), False


def _head_kind(backbone: nn.Module, head: str | dict[str, Any] | None) -> str:
    if isinstance(head, str):
        return head
    if isinstance(head, dict) and "kind" in head:
        return head["kind"]
    return default_head_kind(backbone)


def _runs_at(
    backbone: nn.Module,
    size: tuple[int, int],
    head: str | dict[str, Any] | None,
    num_label_maps: int,
) -> Exception | None:
    """Whether one forward at ``size`` works, through the path the label-map head will use."""
    if num_label_maps and _head_kind(backbone, head) == "spatial":
        model: nn.Module = MultiTaskModel(backbone, num_label_maps=num_label_maps, head=head)
    else:
        model = backbone
    return _probe(lambda: model(_probe_input(backbone, size)), model)


def _candidate_sides(size: tuple[int, int], default_side: int) -> list[int]:
    # steps of 8 px up to 128, 32 up to 256, 64 beyond: a dozen probes up to the default size
    limit = max(default_side, 2 * max(size))
    sides, side = [], (max(size) // 8 + 1) * 8
    while side <= limit:
        sides.append(side)
        side += 8 if side < 128 else 32 if side < 256 else 64
    return sorted(set(sides) | ({default_side} if default_side > max(size) else set()))


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}{where}: {lines[0][:200] if lines else '(no message)'}"


_BUILD_ERRORS = (RuntimeError, ValueError, AssertionError, IndexError, KeyError, ZeroDivisionError)


def _fit_input_size(
    build: Callable[[tuple[int, int] | None], tuple[nn.Module, bool]],
    size: tuple[int, int],
    *,
    name: str,
    num_label_maps: int,
    head: str | dict[str, Any] | None,
    resize_input: bool,
) -> MultiTaskModel:
    """The multi-task model for ``size`` inputs: native, resized on request, or refused.

    One probe forward at batch 1 checks the model at the user's size. When it fails (or timm
    refuses to build the model at that size), probes at growing square sizes find the smallest one
    that works; the model then either resizes its inputs to it (``resize_input=True``) or is
    refused with a message naming the family, that size and the option.
    """
    try:
        backbone, took_size = build(size)
    except _BUILD_ERRORS as build_err:
        # timm itself refuses the size (windows or patches that do not divide it, ...)
        backbone, took_size, err = None, True, build_err
    else:
        model = MultiTaskModel(backbone, num_label_maps=num_label_maps, head=head, img_size=size)
        err = _probe(lambda: model(_probe_input(backbone, size)), model)
        if err is None:
            return model

    if backbone is None:
        try:
            backbone = build(None)[0]
        except _BUILD_ERRORS as any_size_err:
            # not a size problem: timm refuses these arguments (e.g. in_chans) at any size
            raise ValueError(
                f"timm cannot build {name} with these arguments at any size: {_short(any_size_err)}"
            ) from any_size_err
    reference = backbone
    name, family = _backbone_name(reference), _family(reference)
    cfg = getattr(reference, "pretrained_cfg", None) or {}
    default_side = max(cfg.get("input_size", (0, 224, 224))[-2:])
    fits = None
    for side in _candidate_sides(size, default_side):
        try:
            candidate = build((side, side))[0] if took_size else reference
        except _BUILD_ERRORS:
            continue  # timm refuses this size too (twins: patches that do not divide it)
        if _runs_at(candidate, (side, side), head, num_label_maps) is None:
            fits = side, candidate
            break
    h, w = size
    if fits is None:
        raise ValueError(
            f"{name} ({family} family) does not run on {h}x{w} inputs nor at any size up to "
            f"{max(default_side, 2 * max(size))} px, its default {default_side} px included, so "
            f"the input size is not the cause (the other arguments, e.g. in_chans, may be): "
            f"{_short(err)}"
        )
    side, candidate = fits
    if not resize_input:
        raise ValueError(
            f"{name} ({family} family) does not run on {h}x{w} inputs ({_short(err)}); the "
            f"smallest square input it runs is {side}x{side}. Pass resize_input=True to "
            f"create_model to resize inputs to {side}x{side} inside the model (about "
            f"{side * side / (h * w):.1f}x the compute of the {h}x{w} input), or feed larger images"
        )
    model = MultiTaskModel(
        ResizedClassifier(candidate, (side, side)),
        num_label_maps=num_label_maps,
        head=head,
        img_size=size,
    )
    err = _probe(lambda: model(_probe_input(candidate, size)), model)
    if err is not None:
        raise RuntimeError(f"{name} resized to {side}x{side} still fails: {_short(err)}")
    return model


@renamed_kwargs(label_maps="num_label_maps")
def create_model(
    backbone: str | nn.Module,
    *,
    num_classes: int,
    in_chans: int | None = None,
    img_size: int | Sequence[int] | None = None,
    num_label_maps: int = 3,
    head: str | dict[str, Any] | None = None,
    pretrained: bool = False,
    resize_input: bool = False,
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
            size. The model is checked at this size with one forward pass at batch 1 (eval mode,
            zeros: the random stream does not move); a family that cannot run at it is refused
            with a ``ValueError`` naming the smallest square size it runs at, unless
            ``resize_input`` is set. ``None``: the backbone's ``pretrained_cfg["input_size"]``,
            unchecked.
        num_label_maps: number of label maps K; ``0`` builds the baseline with the same API.
            ``label_maps=`` is its deprecated alias.
        head: ``None`` (default rule, see :func:`default_head_kind`), ``"linear"``, ``"spatial"``
            or a dict of head options (see :class:`MultiTaskModel`).
        pretrained: load the backbone's pretrained weights (timm's own sources).
        resize_input: for a family that cannot run at ``img_size``, resize every input (bilinear)
            to the smallest square size it runs at: the backbone becomes a
            :class:`~mtl_heads.models.ResizedClassifier` (an
            :class:`~mtl_heads.models.InputResize` in front of the timm model; ``deploy()``
            returns it). Costs the compute of the larger input; label maps still come out at
            ``img_size``. Models that fit are left untouched.
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
        >>> create_model("inception_v3", num_classes=7, in_chans=1, img_size=48)
        Traceback (most recent call last):
        ...
        ValueError: inception_v3 ... does not run on 48x48 ...80x80...resize_input=True...
        >>> model = create_model("inception_v3", num_classes=7, in_chans=1, img_size=48,
        ...                      resize_input=True)
        >>> model.backbone.resize.size, model(torch.randn(2, 1, 48, 48))["label_maps"].shape
        ((80, 80), torch.Size([2, 3, 48, 48]))
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

        def build(size: int | Sequence[int] | None) -> tuple[nn.Module, bool]:
            return _create_backbone(backbone, size, kwargs)

        if img_size is None:
            model = build(None)[0]
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
        if img_size is not None:
            existing = model

            def build(size: int | Sequence[int] | None) -> tuple[nn.Module, bool]:
                return existing, False
    else:
        raise TypeError(
            f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}"
        )
    if img_size is None:
        if resize_input:
            raise ValueError("resize_input=True needs img_size= (the size of your inputs)")
        return MultiTaskModel(model, num_label_maps=num_label_maps, head=head)
    return _fit_input_size(
        build,
        _to_2tuple(img_size, "img_size"),
        name=backbone if isinstance(backbone, str) else _backbone_name(backbone),
        num_label_maps=num_label_maps,
        head=head,
        resize_input=resize_input,
    )

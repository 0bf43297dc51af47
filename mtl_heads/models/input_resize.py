"""An input-resize layer in front of a timm model, for families that cannot run at small inputs.

Some timm families do not run at FER2013's 48 x 48 px (inception_v3's valid-padded stem leaves a
map smaller than its next kernel). ``mtl_heads.create_model(..., resize_input=True)`` puts an
:class:`InputResize` in front of such a model: :class:`ResizedClassifier` holds the two and keeps
timm's model contract, so it stands wherever the timm model stood (the backbone of a
:class:`~mtl_heads.MultiTaskModel`, what ``deploy()`` returns, timm's optimizer factory) and
``torch.save``, ``copy.deepcopy`` and ``torch.fx`` treat it as any other module.
"""

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mtl_heads._utils import size_pair

__all__ = ["InputResize", "ResizedClassifier"]

_MODEL = "model."


@torch.fx.wrap
def _resize(
    x: torch.Tensor, size: tuple[int, int], mode: str, align_corners: bool | None
) -> torch.Tensor:
    # a leaf of FX graphs (torch.fx.wrap): the size check below is Python control flow on the
    # input's shape, which symbolic tracing cannot follow
    if x.shape[-2] == size[0] and x.shape[-1] == size[1]:
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=align_corners)


class InputResize(nn.Module):
    """Resize images to a fixed size (bilinear by default); inputs already that size pass as is.

    Args:
        size: output (H, W), or one int for a square.
        mode: ``F.interpolate``'s mode (``"bilinear"``, ``"bicubic"``, ``"nearest"``, ...).
        align_corners: passed to ``F.interpolate`` (``False`` by default for the linear modes,
            ``None`` for ``"nearest"``, which does not take it).

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``(B, C, *size)``.

    Examples:
        >>> resize = InputResize(80)
        >>> resize(torch.rand(2, 1, 48, 48)).shape
        torch.Size([2, 1, 80, 80])
        >>> x = torch.rand(2, 1, 80, 80)
        >>> resize(x) is x
        True
    """

    def __init__(
        self, size: int | Sequence[int], mode: str = "bilinear", align_corners: bool | None = None
    ) -> None:
        super().__init__()
        self.size = size_pair(size)
        self.mode = mode
        if align_corners is None and mode in ("linear", "bilinear", "bicubic", "trilinear"):
            align_corners = False
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _resize(x, self.size, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        return f"size={self.size}, mode={self.mode!r}, align_corners={self.align_corners}"


def _prefix_pattern(pattern: str, prefix: str) -> str:
    # timm matchers are anchored alternations such as r"^cls_token|pos_embed|patch_embed":
    # group the alternatives so that the prefix applies to each of them
    body = pattern.removeprefix("^").replace("|^", "|")
    return "^" + prefix.replace(".", r"\.") + "(?:" + body + ")"


def _prefix_group_matcher(
    matcher: dict[str, Any] | Any, prefix: str, rest: tuple[float, ...] = (float("inf"),)
) -> dict[str, Any] | Any:
    """A timm ``group_matcher`` of a submodule, for the module that holds it under ``prefix``.

    Dict matchers get their patterns prefixed; a callable matcher reads the name without the
    prefix and puts names outside the submodule in the group ``rest``.
    """
    if callable(matcher) and not isinstance(matcher, dict):

        def _match(name: str) -> Any:
            if name.startswith(prefix):
                return matcher(name[len(prefix) :])
            return rest

        return _match
    out: dict[str, Any] = {}
    for group, spec in matcher.items():
        if spec is None or isinstance(spec, str):
            out[group] = spec if spec is None else _prefix_pattern(spec, prefix)
        else:
            out[group] = [(_prefix_pattern(p, prefix), suffix) for p, suffix in spec]
    return out


class ResizedClassifier(nn.Module):
    """A timm classifier behind an :class:`InputResize`: every input is resized first.

    Keeps timm's model contract: ``forward``, ``forward_features`` and ``forward_intermediates``
    resize their input, the rest (``forward_head``, ``get_classifier``, ``reset_classifier``,
    ``num_classes``, ``num_features``, ``feature_info``, ``pretrained_cfg``, ...) is the timm
    model's; ``no_weight_decay`` and ``group_matcher`` name the parameters as this module does
    (``model.``-prefixed), for timm's optimizer factory. A method the timm model lacks raises an
    ``AttributeError`` naming it.

    The state dict is the timm model's under ``model.``; :meth:`load_state_dict` also takes the
    timm model's own state dict (keys without ``model.``), which is what a model resized before
    this class existed saved (``backbone.<timm key>`` in a :class:`~mtl_heads.MultiTaskModel`).
    ``classifier.model.state_dict()`` is the plain timm checkpoint.

    Args:
        model: the timm classifier.
        size: the (H, W) it runs at, or one int for a square.
        mode: the interpolation mode (see :class:`InputResize`).

    Examples:
        >>> import timm
        >>> _ = torch.manual_seed(0)
        >>> net = ResizedClassifier(timm.create_model("test_resnet", num_classes=7), 64).eval()
        >>> x = torch.randn(2, 3, 24, 24)
        >>> net(x).shape, net.num_classes, net.resize.size
        (torch.Size([2, 7]), 7, (64, 64))
        >>> torch.equal(net(x), net.model(F.interpolate(x, size=64, mode="bilinear")))
        True
        >>> plain = timm.create_model("test_resnet", num_classes=7)
        >>> net.load_state_dict(plain.state_dict())  # a plain timm state dict loads as well
        <All keys matched successfully>
    """

    # TorchScript compiles properties unless told not to; these read Python-only timm attributes
    __jit_unused_properties__ = [
        "num_classes", "num_features", "head_hidden_size", "pretrained_cfg", "default_cfg",
        "feature_info",
    ]

    def __init__(self, model: nn.Module, size: int | Sequence[int], mode: str = "bilinear") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a timm model (nn.Module), got {type(model).__name__}")
        if isinstance(model, ResizedClassifier):
            raise ValueError(
                f"model already resizes its inputs to {model.resize.size}; pass model.model to "
                "resize to another size"
            )
        self.resize = InputResize(size, mode)
        self.model = model

    def _model_method(self, name: str) -> Any:
        method = getattr(self.model, name, None)
        if method is None:
            raise AttributeError(f"{type(self.model).__name__} has no {name}()")
        return method

    # the timm attributes, read from the model each time (reset_classifier changes num_classes)
    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def num_features(self) -> int:
        return self.model.num_features

    @property
    def head_hidden_size(self) -> int:
        return getattr(self.model, "head_hidden_size", self.model.num_features)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return getattr(self.model, "pretrained_cfg", {})

    @property
    def default_cfg(self) -> dict[str, Any]:
        return self.pretrained_cfg

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """The timm model's ``feature_info``, module paths as seen from this module."""
        info = getattr(self.model, "feature_info", None)
        if info is None:
            raise AttributeError(f"{type(self.model).__name__} has no feature_info")
        info = getattr(info, "info", info)  # a features_only model's FeatureInfo
        return [
            dict(i, module=_MODEL + i["module"]) if isinstance(i.get("module"), str) else dict(i)
            for i in info
        ]

    def __getattr__(self, name: str) -> Any:
        # The resize used to live in the backbone's class, with its size in `input_resize`; kept
        # one release. Looked up here, not as a property, so that tools walking the attributes
        # (TorchScript's compiler) do not trigger the warning.
        if name == "input_resize":
            warnings.warn(
                "ResizedClassifier.input_resize is deprecated and goes in the next release; "
                "read .resize.size instead",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.resize.size
        return super().__getattr__(name)

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(self.resize(x))

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        # signatures differ by family (hiera: forward_features(x, mask=None, ...)): pass the rest on
        return self._model_method("forward_features")(self.resize(x), *args, **kwargs)

    def forward_intermediates(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self._model_method("forward_intermediates")(self.resize(x), *args, **kwargs)

    def forward_head(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return self._model_method("forward_head")(x, *args, **kwargs)

    def prune_intermediate_layers(self, *args: Any, **kwargs: Any) -> Any:
        return self._model_method("prune_intermediate_layers")(*args, **kwargs)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self._model_method("get_classifier")()

    def reset_classifier(self, num_classes: int, *args: Any, **kwargs: Any) -> None:
        self._model_method("reset_classifier")(num_classes, *args, **kwargs)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self._model_method("set_grad_checkpointing")(enable)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        names = self.model.no_weight_decay() if hasattr(self.model, "no_weight_decay") else ()
        return {_MODEL + n for n in names}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any] | Any:
        return _prefix_group_matcher(self._model_method("group_matcher")(coarse=coarse), _MODEL)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Keys of the timm model's own state dict (no "model." level) move under "model.", as
        # timm's layers rename legacy keys on load (FrozenBatchNormAct2d). A key is the model's
        # own when the model has it and it is not already "model." + one of the model's keys
        # (a timm model may have a child called "model" itself).
        own = self.model.state_dict(keep_vars=True)
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix) :]
            if rest.startswith(_MODEL) and rest[len(_MODEL) :] in own:
                continue
            if rest in own:
                state_dict[prefix + _MODEL + rest] = state_dict.pop(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

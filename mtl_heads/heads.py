"""Label-map heads: predict K dense label-map logits at the input's resolution.

One class per form, both :class:`LabelMapHead` subclasses (so ``init_prior`` and ``isinstance``
checks work alike):

* :class:`LinearLabelMapHead` -- the paper's head (DeVries et al. 2014): one fully connected layer
  from the backbone's pre-logits vector to ``K * H * W`` logistic units
  (3072 -> 3 x 42 x 42 = 5,292). The output size is fixed when the head is built.
* :class:`SpatialLabelMapHead` -- a light FPN-style decoder over intermediate NCHW feature maps
  (what timm's ``forward_intermediates`` returns for CNNs and ViTs alike), upsampled bilinearly to
  any input size given at forward time, so 42 x 42 or 48 x 48 inputs work although they are not
  multiples of the backbone's stride.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._deprecation import renamed_kwargs, warn_renamed

__all__ = ["HEAD_KINDS", "LabelMapHead", "LinearLabelMapHead", "SpatialLabelMapHead"]

# the head kinds: ``LabelMapHead.kind``, the ``kind`` key of ``create_model(head=dict(...))``
HEAD_KINDS = ("linear", "spatial")


def _to_2tuple(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name} must be an int or an (H, W) pair of positive ints, got {size}")
    return size  # type: ignore[return-value]


def _check_num_label_maps(num_label_maps: int) -> int:
    n = num_label_maps
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_label_maps must be a positive int, got {num_label_maps!r}")
    return num_label_maps


def _check_prior(prior: torch.Tensor, k: int, img_size: tuple[int, int] | None) -> torch.Tensor:
    """``prior`` as float64 probabilities, after checking its shape against the head."""
    if not isinstance(prior, torch.Tensor):
        raise TypeError(f"prior must be a tensor, got {type(prior).__name__}")
    per_pixel = prior.ndim == 3 and prior.shape[0] == k
    if img_size is not None:
        per_pixel = per_pixel and tuple(prior.shape[1:]) == img_size
    if not (per_pixel or tuple(prior.shape) == (k,)):
        hw = "H, W" if img_size is None else ", ".join(map(str, img_size))
        raise ValueError(
            f"prior must be (K,) = ({k},) or (K, H, W) = ({k}, {hw}), got {tuple(prior.shape)}"
        )
    if torch.isnan(prior).any() or ((prior < 0) | (prior > 1)).any():
        raise ValueError(
            f"prior must hold probabilities in [0, 1], got range "
            f"[{prior.min().item():.4g}, {prior.max().item():.4g}]"
        )
    return prior.detach().double()


class LabelMapHead(nn.Module):
    """Base class of the label-map heads: ``num_label_maps`` logit maps (pre-sigmoid) per image.

    Subclasses set :attr:`num_label_maps` and :attr:`kind` (one of :data:`HEAD_KINDS`) and
    implement ``forward`` and ``init_prior``; :class:`~mtl_heads.models.MultiTaskModel` picks one
    by ``head=``.
    """

    kind: str
    num_label_maps: int

    @property
    def label_maps(self) -> int:
        """Deprecated: :attr:`num_label_maps`."""
        warn_renamed(f"{type(self).__name__}.label_maps", "num_label_maps", stacklevel=3)
        return self.num_label_maps

    @torch.no_grad()
    def init_prior(self, prior: torch.Tensor, eps: float = 1e-3) -> "LabelMapHead":
        """Start from the data's pixel prior: set the output bias to ``logit(prior)``.

        With the default initialisation every unit starts at p = 0.5 (loss ln 2), and each of the
        linear head's K*H*W units gets 1/(K*H*W) of the per-image gradient, so at the classifier's
        learning rate it takes thousands of steps just to learn that most pixels are background.
        Starting from the prior (the mean target map, :func:`mtl_heads.metrics.label_map_prior`;
        RetinaNet's "prior probability" bias initialisation applied per pixel) leaves the head
        only the face-specific part to learn.

        Args:
            prior: mean target map ``(K, H, W)`` in [0, 1] (the linear head uses it per pixel; it
                must match ``img_size``), or ``(K,)`` per-map foreground rates. The spatial head's
                bias is one scalar per map, so it takes the per-map mean of a ``(K, H, W)`` prior.
            eps: the prior is clamped to ``[eps, 1 - eps]`` so that no logit is infinite.

        Returns:
            The head itself.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement init_prior")


class LinearLabelMapHead(LabelMapHead):
    """The paper's head: one linear layer from the pre-logits vector to ``K x H x W`` logits.

    Args:
        in_features: width D of the pre-logits vector.
        num_label_maps: number of label maps K (3 in the paper: two eyebrows and the mouth);
            ``label_maps=`` is its deprecated alias.
        img_size: (H, W) (or one int) of the maps it predicts; inputs of another size raise at
            forward (a linear map has one output unit per pixel, so it cannot resize itself:
            build a new head, or use :class:`SpatialLabelMapHead`).

    Shape:
        - Input: ``(B, D)`` (``(B, D, 1, 1)`` is flattened).
        - Output: ``(B, K, H, W)``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> head = LinearLabelMapHead(3072, num_label_maps=3, img_size=42)
        >>> head.fc.out_features  # the paper's 5,292 logistic units
        5292
        >>> head(torch.randn(2, 3072)).shape
        torch.Size([2, 3, 42, 42])
        >>> prior = torch.full((3, 42, 42), 0.1)
        >>> round(torch.sigmoid(head.init_prior(prior).fc.bias).mean().item(), 4)
        0.1
        >>> head.init_prior(torch.full((3, 5, 5), 0.1))
        Traceback (most recent call last):
          ...
        ValueError: prior must be (K,) = (3,) or (K, H, W) = (3, 42, 42), got (3, 5, 5)
    """

    kind = "linear"

    @renamed_kwargs(label_maps="num_label_maps")
    def __init__(
        self, in_features: int, num_label_maps: int, img_size: int | Sequence[int]
    ) -> None:
        super().__init__()
        self.num_label_maps = _check_num_label_maps(num_label_maps)
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"in_features must be a positive int, got {in_features!r}")
        self.in_features = in_features
        self.img_size = _to_2tuple(img_size, "img_size")
        h, w = self.img_size
        self.fc = nn.Linear(self.in_features, num_label_maps * h * w)

    @torch.no_grad()
    def init_prior(self, prior: torch.Tensor, eps: float = 1e-3) -> "LinearLabelMapHead":
        p = _check_prior(prior, self.num_label_maps, self.img_size).clamp(eps, 1 - eps)
        if p.ndim == 1:
            p = p[:, None, None].expand(self.num_label_maps, *self.img_size)
        self.fc.bias.copy_(torch.logit(p).reshape(-1))
        return self

    init_prior.__doc__ = LabelMapHead.init_prior.__doc__

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        """Label-map logits from the pre-logits vector.

        Args:
            x: the pre-logits vector ``(B, D)``.
            size: (H, W) of the input image; checked against ``img_size`` when given.

        Returns:
            ``(B, K, H, W)`` logits.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"the linear label-map head takes a (B, D) tensor, got {type(x).__name__}"
            )
        if x.ndim == 4 and x.shape[2:] == (1, 1):
            x = x.flatten(1)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"the linear label-map head expects a (B, {self.in_features}) pre-logits vector, "
                f"got {tuple(x.shape)}"
            )
        h, w = self.img_size
        if size is not None and tuple(size) != (h, w):
            raise ValueError(
                f"the linear label-map head was built for {h}x{w} inputs but got "
                f"{size[0]}x{size[1]}; "
                "build the model with img_size matching the input, or use head='spatial' which "
                "follows the input size"
            )
        return self.fc(x).view(x.shape[0], self.num_label_maps, h, w)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_label_maps={self.num_label_maps}, "
            f"img_size={self.img_size}"
        )


class SpatialLabelMapHead(LabelMapHead):
    """A light FPN-style decoder over feature maps, upsampled to the input size.

    Args:
        in_channels: channel count of each feature map it will receive, in order.
        num_label_maps: number of label maps K; ``label_maps=`` is its deprecated alias.
        channels: width of the decoder (lateral 1x1 convs, 3x3 fusion conv).

    Shape:
        - Input: a sequence of ``(B, C_i, H_i, W_i)`` maps (any sizes) and ``size=(H, W)``.
        - Output: ``(B, K, H, W)``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> head = SpatialLabelMapHead([16, 32, 64], num_label_maps=3, channels=32)
        >>> sizes = [(16, 24), (32, 12), (64, 2)]  # (channels, side): strides 2, 4, 32 at 48 px
        >>> feats = [torch.randn(2, c, s, s) for c, s in sizes]
        >>> head(feats, size=(48, 48)).shape
        torch.Size([2, 3, 48, 48])
    """

    kind = "spatial"

    @renamed_kwargs(label_maps="num_label_maps")
    def __init__(
        self, in_channels: Sequence[int], num_label_maps: int, channels: int = 64
    ) -> None:
        super().__init__()
        self.num_label_maps = _check_num_label_maps(num_label_maps)
        if (
            isinstance(in_channels, int | str)
            or not in_channels
            or any(int(c) < 1 for c in in_channels)
        ):
            raise ValueError(
                f"in_channels must be a non-empty list of positive ints, got {in_channels!r}"
            )
        self.in_channels = [int(c) for c in in_channels]
        self.channels = int(channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, self.channels, 1) for c in self.in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(self.channels, self.channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(self.channels),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(self.channels, num_label_maps, 1)

    @torch.no_grad()
    def init_prior(self, prior: torch.Tensor, eps: float = 1e-3) -> "SpatialLabelMapHead":
        p = _check_prior(prior, self.num_label_maps, None).clamp(eps, 1 - eps)
        if p.ndim == 3:
            p = p.mean((1, 2))
        self.classifier.bias.copy_(torch.logit(p))
        return self

    init_prior.__doc__ = LabelMapHead.init_prior.__doc__

    def forward(
        self, feats: Sequence[torch.Tensor], size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Label-map logits from the feature maps.

        Args:
            feats: the feature maps, in the order of ``in_channels``.
            size: (H, W) of the output (the input image's size).

        Returns:
            ``(B, K, H, W)`` logits.
        """
        if isinstance(feats, torch.Tensor) or not isinstance(feats, list | tuple):
            raise TypeError(
                "the spatial label-map head takes a list of NCHW feature maps, got "
                f"{type(feats).__name__}"
            )
        if size is None:
            raise ValueError("the spatial label-map head needs size=(H, W) of the input")
        got = [tuple(f.shape) for f in feats]
        if len(feats) != len(self.in_channels) or any(
            f.ndim != 4 or f.shape[1] != c for f, c in zip(feats, self.in_channels, strict=False)
        ):
            raise ValueError(
                f"the spatial label-map head expects {len(self.in_channels)} NCHW maps with "
                "channels "
                f"{self.in_channels}, got shapes {got}"
            )
        # FPN-style fusion at the finest map: at 42/48 px a stride-32 map is only 1-2 pixels wide,
        # so the detail has to come from the early, high-resolution stages.
        target = max((f.shape[-2:] for f in feats), key=lambda s: s[0] * s[1])
        fused = None
        for f, lateral in zip(feats, self.lateral, strict=True):
            y = lateral(f)
            if y.shape[-2:] != target:
                y = F.interpolate(y, size=target, mode="bilinear", align_corners=False)
            fused = y if fused is None else fused + y
        out = self.classifier(self.fuse(fused))
        return F.interpolate(out, size=tuple(size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_label_maps={self.num_label_maps}"

"""Label-map heads: predict K dense label-map logits at the input's resolution.

Two forms share one class, :class:`LabelMapHead`:

* ``"linear"`` -- the paper's head (DeVries et al. 2014): one fully connected layer from the
  backbone's pre-logits vector to ``K * H * W`` logistic units (3072 -> 3 x 42 x 42 = 5,292).
  The output size is fixed when the head is built.
* ``"spatial"`` -- a light FPN-style decoder over intermediate NCHW feature maps (what timm's
  ``forward_intermediates`` returns for CNNs and ViTs alike), upsampled bilinearly to any input
  size given at forward time, so 42 x 42 or 48 x 48 inputs work although they are not multiples
  of the backbone's stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LabelMapHead"]

HEAD_KINDS = ("linear", "spatial")


def _to_2tuple(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name} must be an int or an (H, W) pair of positive ints, got {size}")
    return size  # type: ignore[return-value]


class LabelMapHead(nn.Module):
    """Predicts ``num_maps`` label-map logits (pre-sigmoid) at the input's resolution.

    Build it with ``LabelMapHead.linear(...)`` / ``LabelMapHead.spatial(...)`` or directly with
    ``kind=``; the keyword arguments of the other form must be left unset.

    Args:
        num_maps: number of label maps K (3 in the paper: two eyebrows and the mouth).
        kind: ``"linear"`` or ``"spatial"``.
        in_features: linear form only: width D of the pre-logits vector.
        img_size: linear form only: (H, W) (or one int) of the maps it predicts; inputs of another
            size raise at forward (a linear map has one output unit per pixel, so it cannot resize
            itself: build a new head, or use the spatial form).
        in_channels: spatial form only: channel count of each feature map it will receive,
            in order.
        channels: spatial form only: width of the decoder (lateral 1x1 convs, 3x3 fusion conv).

    Shape:
        - linear: input ``(B, D)`` (``(B, D, 1, 1)`` is flattened) -> ``(B, K, H, W)``.
        - spatial: input a sequence of ``(B, C_i, H_i, W_i)`` maps (any sizes) and ``size=(H, W)``
          -> ``(B, K, H, W)``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> head = LabelMapHead.linear(3072, num_maps=3, img_size=42)
        >>> head.fc.out_features  # the paper's 5,292 logistic units
        5292
        >>> head(torch.randn(2, 3072)).shape
        torch.Size([2, 3, 42, 42])
        >>> head = LabelMapHead.spatial([16, 32, 64], num_maps=3, channels=32)
        >>> sizes = [(16, 24), (32, 12), (64, 2)]  # (channels, side): strides 2, 4, 32 at 48 px
        >>> feats = [torch.randn(2, c, s, s) for c, s in sizes]
        >>> head(feats, size=(48, 48)).shape
        torch.Size([2, 3, 48, 48])
    """

    def __init__(
        self,
        num_maps: int,
        *,
        kind: str = "linear",
        in_features: int | None = None,
        img_size: int | Sequence[int] | None = None,
        in_channels: Sequence[int] | None = None,
        channels: int = 64,
    ) -> None:
        super().__init__()
        if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 1:
            raise ValueError(f"num_maps must be a positive int, got {num_maps!r}")
        if kind not in HEAD_KINDS:
            raise ValueError(f"unknown label-map head kind {kind!r}; expected one of {HEAD_KINDS}")
        self.kind = kind
        self.num_maps = num_maps
        if kind == "linear":
            if in_channels is not None:
                raise ValueError(
                    "in_channels belongs to the spatial head; the linear head takes in_features"
                )
            if in_features is None or img_size is None:
                raise ValueError(
                    "the linear head needs in_features (pre-logits width) and img_size (output "
                    "H, W), "
                    f"got in_features={in_features!r}, img_size={img_size!r}"
                )
            if in_features < 1:
                raise ValueError(f"in_features must be positive, got {in_features}")
            self.in_features = int(in_features)
            self.img_size = _to_2tuple(img_size, "img_size")
            h, w = self.img_size
            self.fc = nn.Linear(self.in_features, num_maps * h * w)
        else:
            if in_features is not None or img_size is not None:
                raise ValueError(
                    "in_features/img_size belong to the linear head; the spatial head takes "
                    "in_channels and gets the output size at forward"
                )
            if not in_channels or any(int(c) < 1 for c in in_channels):
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
            self.classifier = nn.Conv2d(self.channels, num_maps, 1)

    @classmethod
    def linear(cls, in_features: int, num_maps: int, img_size: int | Sequence[int]) -> LabelMapHead:
        """The paper's head: one linear layer from ``(B, in_features)`` to ``(B, K, H, W)``."""
        return cls(num_maps, kind="linear", in_features=in_features, img_size=img_size)

    @classmethod
    def spatial(cls, in_channels: Sequence[int], num_maps: int, channels: int = 64) -> LabelMapHead:
        """A decoder over maps with ``in_channels`` channels, upsampled to the input size."""
        return cls(num_maps, kind="spatial", in_channels=in_channels, channels=channels)

    @torch.no_grad()
    def init_prior(self, prior: torch.Tensor, eps: float = 1e-3) -> LabelMapHead:
        """Start from the data's pixel prior: set the output bias to ``logit(prior)``.

        With the default initialisation every unit starts at p = 0.5 (loss ln 2), and each of the
        linear head's K*H*W units gets 1/(K*H*W) of the per-image gradient, so at the classifier's
        learning rate it takes thousands of steps just to learn that most pixels are background.
        Starting from the prior (the mean target map, RetinaNet's "prior probability" bias
        initialisation applied per pixel) leaves the head only the face-specific part to learn.

        Args:
            prior: mean target map ``(K, H, W)`` in [0, 1] (the linear head uses it per pixel; it
                must match ``img_size``), or ``(K,)`` per-map foreground rates. The spatial head's
                bias is one scalar per map, so it takes the per-map mean of a ``(K, H, W)`` prior.
            eps: the prior is clamped to ``[eps, 1 - eps]`` so that no logit is infinite.

        Returns:
            The head itself.

        Examples:
            >>> head = LabelMapHead.linear(8, num_maps=3, img_size=4)
            >>> prior = torch.full((3, 4, 4), 0.1)
            >>> round(torch.sigmoid(head.init_prior(prior).fc.bias).mean().item(), 4)
            0.1
            >>> head.init_prior(torch.full((3, 5, 5), 0.1))
            Traceback (most recent call last):
              ...
            ValueError: prior must be (K,) = (3,) or (K, H, W) = (3, 4, 4), got (3, 5, 5)
        """
        if not isinstance(prior, torch.Tensor):
            raise TypeError(f"prior must be a tensor, got {type(prior).__name__}")
        k = self.num_maps
        per_pixel = prior.ndim == 3 and prior.shape[0] == k
        if self.kind == "linear":
            per_pixel = per_pixel and tuple(prior.shape[1:]) == self.img_size
        if not (per_pixel or tuple(prior.shape) == (k,)):
            hw = "H, W" if self.kind == "spatial" else ", ".join(map(str, self.img_size))
            raise ValueError(
                f"prior must be (K,) = ({k},) or (K, H, W) = ({k}, {hw}), got {tuple(prior.shape)}"
            )
        if torch.isnan(prior).any() or ((prior < 0) | (prior > 1)).any():
            raise ValueError(
                f"prior must hold probabilities in [0, 1], got range "
                f"[{prior.min().item():.4g}, {prior.max().item():.4g}]"
            )
        p = prior.detach().double().clamp(eps, 1 - eps)
        if self.kind == "linear":
            if p.ndim == 1:
                p = p[:, None, None].expand(k, *self.img_size)
            self.fc.bias.copy_(torch.logit(p).reshape(-1))
        else:
            if p.ndim == 3:
                p = p.mean((1, 2))
            self.classifier.bias.copy_(torch.logit(p))
        return self

    def forward(
        self, features: torch.Tensor | Sequence[torch.Tensor], size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Label-map logits.

        Args:
            features: linear form: the pre-logits vector ``(B, D)``; spatial form: the list of
                feature maps, in the order of ``in_channels``.
            size: (H, W) of the output. Required by the spatial form; the linear form checks it
                against its ``img_size`` when given.

        Returns:
            ``(B, K, H, W)`` logits.
        """
        if self.kind == "linear":
            return self._forward_linear(features, size)
        return self._forward_spatial(features, size)

    def _forward_linear(self, x: torch.Tensor, size: Sequence[int] | None) -> torch.Tensor:
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
        return self.fc(x).view(x.shape[0], self.num_maps, h, w)

    def _forward_spatial(
        self, feats: Sequence[torch.Tensor], size: Sequence[int] | None
    ) -> torch.Tensor:
        if isinstance(feats, torch.Tensor) or not isinstance(feats, (list, tuple)):
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
        if self.kind == "linear":
            return f"kind=linear, num_maps={self.num_maps}, img_size={self.img_size}"
        return f"kind=spatial, num_maps={self.num_maps}, in_channels={self.in_channels}"

"""The paper's input normalisations (DeVries et al. 2014, after Tang 2013), as modules.

Three steps, in this order:

1. :class:`PerImageNormalization` -- subtract each image's mean, scale its L2 norm to 150;
2. :class:`PerPixelStandardization` -- subtract each pixel's training-set mean, divide by its
   training-set standard deviation (fitted once, stored as plain tensors);
3. :class:`MinibatchNormalization` -- normalise by the minibatch's mean and standard deviation
   while training; at test time by running averages fixed in training (like BatchNorm), so a
   prediction never depends on the other images in its batch.

Steps 1-2 act at the stored size (48x48) where the per-pixel statistics were fitted, so they run
*before* the augmentation and the 42x42 crop carries standardised pixels; step 3 runs on what
the network sees, after the augmentation. :class:`PaperPreprocessing` holds all three: in training
call :meth:`PaperPreprocessing.standardize` before and :meth:`PaperPreprocessing.normalize_batch`
after the augmentation; its ``forward`` is the test-time pipeline (standardise, centre crop,
normalise with the fixed statistics), so ``nn.Sequential(preprocess.eval(), model.deploy())``
takes raw images.
"""

import math
import os
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn as nn

from ._utils import size_pair
from .augmentation import center_crop

__all__ = [
    "per_image_normalize",
    "PerImageNormalization",
    "PerPixelStandardization",
    "MinibatchNormalization",
    "PaperPreprocessing",
    "PREPROCESSING",
]

#: Named step sets of :class:`PaperPreprocessing` (``mtl-heads train --preprocessing``):
#: the paper's three steps, or per-pixel standardisation of raw pixel values alone.
PREPROCESSING: dict[str, dict[str, bool]] = {
    "paper": {"per_image": True, "minibatch": True},
    "standard": {"per_image": False, "minibatch": False},
}


def _tracing() -> bool:
    """Whether torch.export / torch.compile is tracing: checks that read buffer values are
    skipped then (they would be data-dependent branches; an exported graph is fitted anyway)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(images.shape)}")
    return images if images.is_floating_point() else images.float()


def per_image_normalize(images: torch.Tensor, norm: float = 150.0) -> torch.Tensor:
    """Subtract each image's mean and scale it to L2 norm ``norm`` (constant images become 0).

    Args:
        images: uint8 or float images.
        norm: the target L2 norm of each image (over all its channels and pixels).

    Shape:
        - images: :math:`(B, C, H, W)`
        - output: :math:`(B, C, H, W)`, float

    Returns:
        The normalised images (float32 for integer input).

    Examples:
        >>> x = per_image_normalize(torch.tensor([[[[0, 2], [4, 6]]]], dtype=torch.uint8), 10.0)
        >>> x
        tensor([[[[-6.7082, -2.2361],
                  [ 2.2361,  6.7082]]]])
        >>> float(x.norm())
        10.0
    """
    x = _check_images(images)
    x = x - x.mean(dim=(1, 2, 3), keepdim=True)
    length = x.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    # A constant image has no contrast to scale; leave it at zero instead of dividing by 0.
    return torch.where(length > 0, x * (norm / length.clamp_min(1e-12)), torch.zeros_like(x))


class PerImageNormalization(nn.Module):
    """Module form of :func:`per_image_normalize`.

    Args:
        norm: the target L2 norm of each image.

    Examples:
        >>> PerImageNormalization()(torch.rand(2, 1, 48, 48)).flatten(1).norm(dim=1)
        tensor([150.0000, 150.0000])
    """

    def __init__(self, norm: float = 150.0) -> None:
        super().__init__()
        if not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"norm must be > 0, got {norm}")
        self.norm = float(norm)

    def extra_repr(self) -> str:
        return f"norm={self.norm}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return per_image_normalize(images, self.norm)


class PerPixelStandardization(nn.Module):
    """Standardise every pixel with its mean and standard deviation over a training set.

    The statistics are population statistics (divide by ``N``) accumulated in float64, stored as
    ``mean`` and ``std`` buffers of shape (C, H, W); a standard deviation below ``eps`` (a pixel
    that never changes) is raised to ``eps``.

    Args:
        channels: image channels ``C``.
        size: image ``(H, W)`` or one int, the size the statistics are fitted at.
        eps: the smallest standard deviation used.

    Examples:
        >>> std = PerPixelStandardization(1, 2).fit(torch.tensor([[[[0.0, 1], [2, 3]]],
        ...                                                     [[[2.0, 1], [4, 7]]]]))
        >>> std.mean.squeeze(0), std.std.squeeze(0)
        (tensor([[1., 1.],
                [3., 5.]]), tensor([[1.0000e+00, 1.0000e-06],
                [1.0000e+00, 2.0000e+00]]))
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, channels: int = 1, size: int | tuple[int, int] = 48, eps: float = 1e-6
    ) -> None:
        super().__init__()
        h, w = size_pair(size)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(channels, h, w))
        self.register_buffer("std", torch.ones(channels, h, w))
        self.register_buffer("num_samples", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has run (or fitted statistics were loaded)."""
        return bool(self.num_samples > 0)

    @torch.no_grad()
    def fit(self, images: torch.Tensor | Iterable[torch.Tensor]) -> "PerPixelStandardization":
        """Fit the per-pixel statistics on a tensor or an iterable of batches (streamed).

        Args:
            images: (N, C, H, W) images, or an iterable of such batches, already through any
                earlier step (for the paper: :func:`per_image_normalize`).

        Returns:
            ``self``.
        """
        batches = [images] if isinstance(images, torch.Tensor) else images
        total = 0
        shift: torch.Tensor | None = None
        s1 = torch.zeros(self.mean.shape, dtype=torch.float64, device=self.mean.device)
        s2 = torch.zeros_like(s1)
        for i, batch in enumerate(batches):
            x = _check_images(batch, f"batch {i}")
            if x.shape[1:] != self.mean.shape:
                raise ValueError(
                    f"batch {i}: images must be (N, {', '.join(map(str, self.mean.shape))}), "
                    f"got shape {tuple(x.shape)}"
                )
            x = x.to(device=s1.device, dtype=torch.float64)
            # Shifted sums keep the variance accurate for large pixel means.
            if shift is None:
                shift = x[0].clone()
            d = x - shift
            s1 += d.sum(0)
            s2 += (d * d).sum(0)
            total += x.shape[0]
        if total == 0 or shift is None:
            raise ValueError("fit got no images")
        mean = s1 / total
        var = (s2 / total - mean * mean).clamp_min(0)
        self.mean.copy_(mean + shift)
        self.std.copy_(var.sqrt().clamp_min(self.eps))
        self.num_samples.fill_(total)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        if x.shape[1:] != self.mean.shape:
            raise ValueError(
                f"images must be (B, {', '.join(map(str, self.mean.shape))}) like the fitted "
                f"statistics (standardise before cropping), got shape {tuple(x.shape)}"
            )
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class MinibatchNormalization(nn.Module):
    """Normalise by one mean and standard deviation: the minibatch's in training, fixed in eval.

    In training mode the batch is normalised by its own mean and (biased) standard deviation over
    all its values, and running estimates are updated the way ``nn.BatchNorm2d`` does (unbiased
    variance; ``momentum=None`` gives the plain average over all training batches). In eval mode
    the running estimates are used, so each image's output depends on that image alone.

    Args:
        momentum: weight of the newest batch in the running estimates, or ``None`` for a
            cumulative average.
        eps: added to the variance.

    Examples:
        >>> norm = MinibatchNormalization()
        >>> y = norm(torch.randn(8, 1, 6, 6) * 3 + 2)
        >>> round(float(y.mean()), 4), round(float(y.std(unbiased=False)), 3)
        (0.0, 1.0)
        >>> _ = norm.eval()
        >>> torch.equal(norm(torch.ones(1, 1, 6, 6))[0], norm(torch.ones(4, 1, 6, 6))[0])
        True
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, momentum: float | None = None, eps: float = 1e-5) -> None:
        super().__init__()
        if momentum is not None and not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1] or None, got {momentum}")
        self.momentum = momentum
        self.eps = float(eps)
        self.register_buffer("running_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("running_var", torch.ones((), dtype=torch.float64))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}, eps={self.eps}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        if self.training:
            if x.numel() < 2:
                raise ValueError("a training minibatch needs at least 2 values to normalise")
            var, mean = torch.var_mean(x, correction=0)
            with torch.no_grad():
                n = x.numel()
                self.num_batches_tracked += 1
                tracked = float(self.num_batches_tracked)
                w = 1.0 / tracked if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach().double(), w)
                self.running_var.lerp_(var.detach().double() * n / (n - 1), w)
            return (x - mean) / torch.sqrt(var + self.eps)
        if not _tracing() and int(self.num_batches_tracked) == 0:
            raise RuntimeError(
                "MinibatchNormalization has no statistics fixed in training yet: run training "
                "batches through it in train mode (or load fitted statistics) before eval"
            )
        mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        return (x - mean) / torch.sqrt(var + self.eps)


class PaperPreprocessing(nn.Module):
    """The paper's whole preprocessing, fitted on a training set, savable as plain tensors.

    Training::

        pre = PaperPreprocessing().fit(train_images_uint8)     # per-pixel statistics, 48x48
        x = pre.standardize(batch_uint8)                       # 48x48, before augmentation
        x, maps = aug(x, masks=maps48)                         # -> 42x42
        x = pre.normalize_batch(x)                             # batch statistics, tracked
        ...
        pre.save("preprocess.safetensors")

    Test / deploy: ``pre.eval()(raw)`` runs standardise -> centre crop -> minibatch
    normalisation with the statistics fixed in training, so
    ``nn.Sequential(pre.eval(), model.deploy())`` takes raw images.

    Args:
        channels: image channels.
        size: the stored image size the statistics are fitted at.
        crop: the size the network sees (``None``: no crop).
        norm: target L2 norm of each image.
        momentum: running-average momentum of the minibatch step (``None``: plain average).
        per_image: the per-image step (subtract the image's mean, scale to ``norm``); ``False``
            leaves it out.
        minibatch: the minibatch step; ``False`` leaves it out. With both off what is left is
            the usual per-pixel standardisation of raw pixel values (``preprocessing="standard"``
            in ``mtl-heads train``, measured against the paper's in docs/results_study.md).

    Shape:
        - input: :math:`(B, C, H, W)` raw uint8 or float images at ``size``
        - output: :math:`(B, C, h, w)` float, ``crop`` sized

    Examples:
        >>> pre = PaperPreprocessing(size=8, crop=6).fit(torch.randint(0, 256, (20, 1, 8, 8)))
        >>> x = pre.standardize(torch.randint(0, 256, (4, 1, 8, 8)))[..., 1:7, 1:7]
        >>> x = pre.normalize_batch(x)  # train mode: batch statistics, tracked
        >>> pre.eval()(torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)).shape
        torch.Size([3, 1, 6, 6])
    """

    def __init__(
        self,
        channels: int = 1,
        size: int | tuple[int, int] = 48,
        crop: int | tuple[int, int] | None = 42,
        norm: float = 150.0,
        momentum: float | None = None,
        per_image: bool = True,
        minibatch: bool = True,
    ) -> None:
        super().__init__()
        self.per_image = PerImageNormalization(norm) if per_image else nn.Identity()
        self.per_pixel = PerPixelStandardization(channels, size)
        self.minibatch = MinibatchNormalization(momentum) if minibatch else nn.Identity()
        self.crop = crop
        self.norm, self.momentum = float(norm), momentum

    def extra_repr(self) -> str:
        return f"crop={self.crop}"

    @torch.no_grad()
    def fit(self, images: torch.Tensor | Iterable[torch.Tensor]) -> "PaperPreprocessing":
        """Fit the per-pixel statistics on raw training images (a tensor or batches).

        Returns:
            ``self``.
        """
        batches = [images] if isinstance(images, torch.Tensor) else images
        self.per_pixel.fit(self.per_image(b) for b in batches)
        return self

    def standardize(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image normalisation and per-pixel standardisation, at the stored size."""
        if not _tracing() and not self.per_pixel.fitted:
            raise RuntimeError("PaperPreprocessing is not fitted: call fit(train_images) first")
        return self.per_pixel(self.per_image(images))

    def normalize_batch(self, images: torch.Tensor) -> torch.Tensor:
        """The minibatch step (batch statistics in train mode, fixed ones in eval mode)."""
        return self.minibatch(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.standardize(images)
        if self.crop is not None:
            x = center_crop(x, self.crop)
        return self.minibatch(x)

    def _config(self) -> dict[str, torch.Tensor]:
        crop = self.crop if self.crop is not None else (0, 0)
        crop = (crop, crop) if isinstance(crop, int) else crop
        return {
            "config.norm": torch.tensor(self.norm, dtype=torch.float64),
            "config.crop": torch.tensor(list(crop), dtype=torch.long),
            "config.momentum": torch.tensor(
                -1.0 if self.momentum is None else self.momentum, dtype=torch.float64
            ),
            "config.steps": torch.tensor(
                [not isinstance(self.per_image, nn.Identity),
                 not isinstance(self.minibatch, nn.Identity)], dtype=torch.bool
            ),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Save statistics and settings as plain tensors.

        A ``.safetensors`` path is written with ``safetensors`` (install it); any other path with
        ``torch.save`` of a dict of tensors, which :meth:`load` reads with ``weights_only=True``.
        """
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        tensors.update(self._config())
        path = Path(path)
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, str(path))
        else:
            torch.save(tensors, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu"
    ) -> "PaperPreprocessing":
        """Load what :meth:`save` wrote (no pickle: safetensors, or ``weights_only=True``).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            KeyError: the file lacks one of the expected tensors (named in the message).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no preprocessing statistics at {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(path), device=str(map_location))
        else:
            tensors = torch.load(path, map_location=map_location, weights_only=True)
        missing = [
            k for k in ("per_pixel.mean", "config.norm", "config.crop", "config.momentum")
            if k not in tensors
        ]
        if missing:
            raise KeyError(f"{path}: not a PaperPreprocessing file, missing {missing}")
        mean = tensors["per_pixel.mean"]
        crop = tuple(int(c) for c in tensors["config.crop"].tolist())
        momentum = float(tensors["config.momentum"])
        # files written before the steps could be left out have both
        per_image, minibatch = tensors.get("config.steps", torch.ones(2, dtype=torch.bool)).tolist()
        module = cls(
            channels=mean.shape[0],
            size=tuple(mean.shape[1:]),
            crop=None if crop == (0, 0) else crop,
            norm=float(tensors["config.norm"]),
            momentum=None if momentum < 0 else momentum,
            per_image=bool(per_image),
            minibatch=bool(minibatch),
        )
        module.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("config.")})
        return module.to(map_location)

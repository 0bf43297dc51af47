"""A frozen copy of ``AlignedAugmentation`` as it was when the committed study results were made.

Copied verbatim (code, not docstrings) from ``mtl_heads/augmentation.py`` at commit aafcbc9, the
last commit before the augmentation became a package of Kornia transforms. The equivalence tests
(test_kornia_transforms.py) compare the package's paths with this copy bit for bit, so that a later
refactor of the package cannot silently change what the studies measured. Do not edit it.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from kornia.geometry.linalg import transform_points

from mtl_heads._utils import size_pair
from mtl_heads.landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D (B, C, H, W), got shape {tuple(images.shape)}")


def _check_crop(images: torch.Tensor, size: tuple[int, int]) -> None:
    h, w = images.shape[-2:]
    if size[0] > h or size[1] > w:
        raise ValueError(f"crop size {size} is larger than the images ({h}, {w})")


def _check_permutation(perm: Sequence[int] | None, what: str) -> tuple[int, ...] | None:
    if perm is None:
        return None
    perm = tuple(int(i) for i in perm)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"{what} must be a permutation of 0..{len(perm) - 1}, got {perm}")
    return perm



def _pixel_to_normalized(height: int, width: int) -> torch.Tensor:
    """Pixel -> [-1, 1] coordinates with ``align_corners=True`` (Kornia's convention)."""
    sx, sy = 2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)
    return torch.tensor([[sx, 0.0, -1.0], [0.0, sy, -1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _sampling_grid(
    matrix: torch.Tensor, src_size: tuple[int, int], dst_size: tuple[int, int], like: torch.Tensor
) -> torch.Tensor:
    """``grid_sample`` grid that realises the source -> output pixel ``matrix`` (B, 3, 3).

    The same warp as ``kornia.geometry.transform.warp_affine(..., align_corners=True)`` (tested),
    built with ``F.affine_grid``: on CPU, kornia 0.9 spends longer building its grid than
    sampling, and one grid here serves the image and the mask channels without stacking them.
    """
    theta = _pixel_to_normalized(*src_size) @ torch.linalg.inv(matrix)
    theta = theta @ torch.linalg.inv(_pixel_to_normalized(*dst_size))
    theta = theta[:, :2].to(device=like.device, dtype=like.dtype)
    return F.affine_grid(theta, [matrix.shape[0], 1, *dst_size], align_corners=True)


def _permute_rows(x: torch.Tensor, flip: torch.Tensor, perm: tuple[int, ...]) -> torch.Tensor:
    """Reorder dim 1 of ``x`` by ``perm`` on the samples where ``flip`` is true, in one gather."""
    b, n = x.shape[:2]
    base = torch.arange(n)
    index = torch.where(flip[:, None], torch.tensor(perm), base) + n * torch.arange(b)[:, None]
    flat = x.reshape(b * n, *x.shape[2:]).index_select(0, index.flatten().to(x.device))
    return flat.view(x.shape)


class AlignedAugmentation(nn.Module):
    """AlignedAugmentation at commit aafcbc9 (see the module docstring)."""

    def __init__(
        self,
        flip: bool = True,
        shift: int = 3,
        rotation: float = 45.0,
        zoom: float = 1.2,
        crop: int | Sequence[int] = 42,
        *,
        flip_index: Sequence[int] | None = FLIP_INDEX_68,
        mask_flip_channels: Sequence[int] | None = mirror_channels(PAPER_GROUPS),
        p_flip: float = 0.5,
        padding_mode: str = "zeros",
        generator: torch.Generator | None = None,
        same_on_batch: bool = False,
        p: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"shift must be a whole number of pixels >= 0, got {shift!r}")
        if not (math.isfinite(rotation) and rotation >= 0):
            raise ValueError(f"rotation must be >= 0 degrees, got {rotation}")
        if not (math.isfinite(zoom) and zoom >= 1.0):
            raise ValueError(f"zoom must be >= 1 (a factor in [1, zoom]), got {zoom}")
        for name, prob in (("p", p), ("p_flip", p_flip)):
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {prob}")
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(
                f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
            )
        self.flip = bool(flip)
        self.shift = shift
        self.rotation = float(rotation)
        self.zoom = float(zoom)
        self.crop = size_pair(crop, "crop")
        self.flip_index = _check_permutation(flip_index, "flip_index")
        self.mask_flip_channels = _check_permutation(mask_flip_channels, "mask_flip_channels")
        self.p_flip = float(p_flip)
        self.padding_mode = padding_mode
        self.generator = generator
        self.same_on_batch = bool(same_on_batch)
        self.p = float(p)
        self.last_params: dict[str, torch.Tensor] | None = None

    def extra_repr(self) -> str:
        return (
            f"flip={self.flip}, shift={self.shift}, rotation={self.rotation}, zoom={self.zoom}, "
            f"crop={self.crop}, same_on_batch={self.same_on_batch}, p={self.p}"
        )

    def generate_parameters(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Sample per-sample parameters on the CPU.

        Args:
            batch_size: the number of samples ``B``.
            generator: overrides the generator given at construction.

        Returns:
            ``{"flip": bool (B,), "angle": degrees (B,), "scale": (B,), "offset": int64 (B, 2)
            as (dx, dy)}``; samples skipped by ``p`` get no flip, 0, 1 and (0, 0).
        """
        gen = generator if generator is not None else self.generator
        n = 1 if self.same_on_batch else batch_size
        # Always draw every value so the random stream does not depend on which parts are enabled.
        apply = torch.rand(n, generator=gen) < self.p
        flip = (torch.rand(n, generator=gen) < self.p_flip) & apply & self.flip
        angle = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * self.rotation
        scale = 1 + torch.rand(n, generator=gen, dtype=torch.float64) * (self.zoom - 1)
        offset = torch.randint(-self.shift, self.shift + 1, (n, 2), generator=gen)
        params = {
            "flip": flip,
            "angle": torch.where(apply, angle, 0.0),
            "scale": torch.where(apply, scale, 1.0),
            "offset": torch.where(apply[:, None], offset, 0),
        }
        if self.same_on_batch:
            params = {k: v.expand(batch_size, *v.shape[1:]).clone() for k, v in params.items()}
        return params

    def compute_matrix(
        self, params: dict[str, torch.Tensor], image_size: tuple[int, int]
    ) -> torch.Tensor:
        """The source -> output pixel matrices (B, 3, 3) in float64 for the given parameters."""
        height, width = image_size
        b = params["flip"].shape[0]
        theta = torch.deg2rad(params["angle"].double())
        cos, sin = theta.cos() * params["scale"], theta.sin() * params["scale"]
        mirror = torch.where(params["flip"], -1.0, 1.0).double()
        a = torch.zeros(b, 2, 2, dtype=torch.float64)
        a[:, 0, 0], a[:, 0, 1] = cos * mirror, sin
        a[:, 1, 0], a[:, 1, 1] = -sin * mirror, cos
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        corner = torch.tensor(
            [(width - self.crop[1]) // 2, (height - self.crop[0]) // 2], dtype=torch.float64
        )
        t = centre - a @ centre - (corner + params["offset"].double())
        mat = torch.eye(3, dtype=torch.float64).repeat(b, 1, 1)
        mat[:, :2, :2], mat[:, :2, 2] = a, t
        return mat

    def _copy_crop(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Integer shift + mirror + crop by indexing: the exact pixels, no resampling."""
        b, c, height, width = x.shape
        h, w = self.crop
        dev = x.device
        off = params["offset"].to(dev)
        x0 = (width - w) // 2 + off[:, 0]
        y0 = (height - h) // 2 + off[:, 1]
        cols = x0[:, None] + torch.arange(w, device=dev)
        cols = torch.where(params["flip"].to(dev)[:, None], width - 1 - cols, cols)
        rows = y0[:, None] + torch.arange(h, device=dev)
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[
            :, None, :
        ]
        flat = rows.clamp(0, height - 1)[:, :, None] * width + cols.clamp(0, width - 1)[:, None, :]
        out = x.flatten(2).gather(2, flat.flatten(1)[:, None, :].expand(b, c, -1))
        out = out.view(b, c, h, w)
        if not bool(inside.all()):
            if self.padding_mode != "zeros":
                raise NotImplementedError(
                    "shift beyond the image border with an un-rotated crop only supports "
                    f"padding_mode='zeros', got {self.padding_mode!r}"
                )
            out = torch.where(inside[:, None], out, out.new_zeros(()))
        return out

    def forward(
        self,
        images: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        *,
        params: dict[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Augment a batch.

        Args:
            images: floating-point images.
            landmarks: optional (x, y) landmarks, NaN rows stay NaN.
            masks: optional label maps (or any per-pixel channels) resampled with the images in
                the same bilinear call; returned in the images' dtype.
            params: replay these parameters (e.g. an earlier :attr:`last_params`) instead of
                sampling.
            generator: overrides the generator given at construction for this call.

        Returns:
            ``images``; ``(images, landmarks)``; ``(images, masks)``; or
            ``(images, landmarks, masks)`` when both are given.
        """
        _check_images(images)
        if not images.is_floating_point():
            raise TypeError(
                f"images must be floating point, got {images.dtype} (convert with images.float(), "
                "or preprocess first)"
            )
        b, c, height, width = images.shape
        _check_crop(images, self.crop)
        if landmarks is not None:
            if not isinstance(landmarks, torch.Tensor):
                raise TypeError(f"landmarks must be a torch.Tensor, got {type(landmarks).__name__}")
            if landmarks.ndim != 3 or landmarks.shape[-1] != 2 or landmarks.shape[0] != b:
                raise ValueError(
                    f"landmarks must be (B, N, 2) with B = {b} (the images' batch), "
                    f"got shape {tuple(landmarks.shape)}"
                )
            if self.flip_index is not None and landmarks.shape[1] != len(self.flip_index):
                raise ValueError(
                    f"landmarks have N = {landmarks.shape[1]} points but flip_index has "
                    f"{len(self.flip_index)} entries; pass flip_index for your N (or None)"
                )
        k = 0
        if masks is not None:
            if not isinstance(masks, torch.Tensor):
                raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
            if masks.ndim != 4 or masks.shape[0] != b or masks.shape[-2:] != images.shape[-2:]:
                raise ValueError(
                    f"masks must be (B, K, H, W) = ({b}, K, {height}, {width}) like the images, "
                    f"got shape {tuple(masks.shape)}"
                )
            k = masks.shape[1]
            if self.mask_flip_channels is not None and k != len(self.mask_flip_channels):
                raise ValueError(
                    f"masks have {k} channels but mask_flip_channels "
                    f"{self.mask_flip_channels} permutes {len(self.mask_flip_channels)}; pass "
                    "mask_flip_channels for your channels (or None)"
                )

        if params is None:
            params = self.generate_parameters(b, generator)
        elif params["flip"].shape[0] != b:
            raise ValueError(f"params are for {params['flip'].shape[0]} samples, images have {b}")
        matrix = self.compute_matrix(params, (height, width))
        self.last_params = {**params, "matrix": matrix}

        flip = params["flip"]
        exact = bool((params["angle"] == 0).all() and (params["scale"] == 1).all())
        grid = None if exact else _sampling_grid(matrix, (height, width), self.crop, images)

        def warp(x: torch.Tensor) -> torch.Tensor:
            if grid is None:
                return self._copy_crop(x, params)
            return F.grid_sample(
                x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=True
            )

        results: list[torch.Tensor] = [warp(images)]
        if landmarks is not None:
            mat = matrix.to(device=landmarks.device, dtype=landmarks.dtype)
            lm = transform_points(mat, landmarks)
            if self.flip_index is not None and bool(flip.any()):
                lm = _permute_rows(lm, flip, self.flip_index)
            results.append(lm)
        if masks is not None:
            maps = warp(masks.to(images.dtype))
            if self.mask_flip_channels is not None and bool(flip.any()):
                maps = _permute_rows(maps, flip, self.mask_flip_channels)
            results.append(maps)
        return results[0] if len(results) == 1 else tuple(results)



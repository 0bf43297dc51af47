"""The project's first aligned augmentation (deprecated) and its first Kornia adapter (deprecated).

:class:`AlignedAugmentation` is the path the committed studies were trained with; it now shares
its warp and random stream with :class:`~mtl_heads.augmentation.RandomAffineCrop`, and
:func:`~mtl_heads.augmentation.paper_augmentation` gives the same pixels, maps and landmarks for
the same parameters (tested bit for bit). Both classes here stay for one release.
"""

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from kornia.constants import Resample
from kornia.geometry.linalg import transform_points

from .._utils import size_pair
from ..landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels
from ._warp import PADDING_MODES, aligned_matrix, check_crop, check_images, copy_crop, sampling_grid
from .affine_crop import RandomAffineCrop, check_settings, draw_parameters
from .mirror import check_permutation, permute_rows

__all__ = ["AlignedAugmentation", "RandomAlignedCrop"]


class AlignedAugmentation(nn.Module):
    """Random mirror, rotation, zoom and shifted crop, applied alike to images, landmarks and maps.

    Deprecated:
        Kept for one release; use :func:`~mtl_heads.augmentation.paper_augmentation` (a Kornia
        ``AugmentationSequential`` of :class:`~mtl_heads.augmentation.RandomAffineCrop`), which
        gives the same outputs for the same parameters, bit for bit. This class returns a tensor
        or a tuple depending on which keyword arguments are given, and hands its parameters out
        through :attr:`last_params`; the Kornia path returns one output per data key and takes
        parameters from :func:`~mtl_heads.augmentation.sample_parameters`.

    Per sample one affine matrix is built: an optional mirror, a rotation by an angle in
    ``[-rotation, rotation]`` degrees and a zoom by a factor in ``[1, zoom]``, all about the image
    centre, then a ``crop``-sized window taken at an integer offset of up to ``±shift`` px
    around the centre (the paper's "shift ±3 px, crop 48 -> 42" as one step). Images and mask
    channels are resampled on one grid built from it (bilinear, zeros outside,
    ``align_corners=True`` so pixel centres sit at integer coordinates: the same warp as
    :func:`kornia.geometry.transform.warp_affine`); landmarks are mapped through the same
    matrix. On mirrored samples the landmarks are re-indexed with ``flip_index`` and the mask
    channels with ``mask_flip_channels``, so channel/index "left" is always image-left.

    When no sample is rotated or zoomed (``rotation=0, zoom=1``: the TFD setting and "no
    transformations") the crop is an exact copy of pixels (an integer shift plus mirror), not a
    resampling; with ``flip=False, shift=0`` it equals :func:`center_crop` bit for bit.

    Randomness comes from a ``torch.Generator`` on the CPU (given here or per call; the global
    generator otherwise), so a seed reproduces a run on any device. The sampled parameters of the
    last call are kept in :attr:`last_params` and can be replayed with ``params=``.

    Args:
        flip: mirror each sample with probability ``p_flip``.
        shift: largest crop offset from the centre, in whole pixels.
        rotation: largest rotation in degrees.
        zoom: largest zoom factor (>= 1; 1 disables zoom).
        crop: output size ``(h, w)`` or one int.
        flip_index: landmark permutation applied on mirrored samples
            (``landmarks[:, flip_index]``); ``None`` keeps the order. Its length must equal ``N``.
        mask_flip_channels: mask channel permutation applied on mirrored samples; the default,
            ``mirror_channels(PAPER_GROUPS)`` = ``(1, 0, 2)``, swaps the paper's two brow maps
            (:func:`~mtl_heads.landmarks.mirror_channels` derives it for any groups). ``None``
            keeps the order.
        p_flip: probability of a mirror.
        padding_mode: what the warp reads outside the image: ``"zeros"``, ``"border"`` or
            ``"reflection"``.
        generator: default random generator (a CPU ``torch.Generator``).
        same_on_batch: one set of parameters for the whole batch.
        p: probability that a sample is augmented at all; the others get the plain centre crop.

    Shape:
        - images: :math:`(B, C, H, W)`, floating point
        - landmarks: :math:`(B, N, 2)`, (x, y) pixels
        - masks: :math:`(B, K, H, W)`
        - outputs: :math:`(B, C, h, w)`, :math:`(B, N, 2)`, :math:`(B, K, h, w)`

    Examples:
        >>> aug = AlignedAugmentation(generator=torch.Generator().manual_seed(0))
        >>> images, landmarks = torch.rand(4, 1, 48, 48), torch.rand(4, 68, 2) * 47
        >>> out, lm = aug(images, landmarks)
        >>> out.shape, lm.shape
        (torch.Size([4, 1, 42, 42]), torch.Size([4, 68, 2]))
        >>> out, maps = aug(images, masks=torch.rand(4, 3, 48, 48))
        >>> maps.shape
        torch.Size([4, 3, 42, 42])
        >>> aug(images).shape
        torch.Size([4, 1, 42, 42])
    """

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
        check_settings(rotation, zoom, shift, p=p, p_flip=p_flip)
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
            )
        self.flip = bool(flip)
        self.shift = shift
        self.rotation = float(rotation)
        self.zoom = float(zoom)
        self.crop = size_pair(crop, "crop")
        self.flip_index = check_permutation(flip_index, "flip_index")
        self.mask_flip_channels = check_permutation(mask_flip_channels, "mask_flip_channels")
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
        return draw_parameters(
            batch_size, flip=self.flip, p_flip=self.p_flip, rotation=self.rotation,
            zoom=self.zoom, shift=self.shift, p=self.p, same_on_batch=self.same_on_batch,
            generator=generator if generator is not None else self.generator,
        )

    def compute_matrix(
        self, params: dict[str, torch.Tensor], image_size: tuple[int, int]
    ) -> torch.Tensor:
        """The source -> output pixel matrices (B, 3, 3) in float64 for the given parameters."""
        return aligned_matrix(params, image_size, self.crop)

    def _copy_crop(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Integer shift + mirror + crop by indexing: the exact pixels, no resampling."""
        return copy_crop(x, params, self.crop, self.padding_mode)

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
        check_images(images)
        if not images.is_floating_point():
            raise TypeError(
                f"images must be floating point, got {images.dtype} (convert with images.float(), "
                "or preprocess first)"
            )
        b, c, height, width = images.shape
        check_crop(images, self.crop)
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
        grid = None if exact else sampling_grid(matrix, (height, width), self.crop, images)

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
                lm = permute_rows(lm, flip, self.flip_index)
            results.append(lm)
        if masks is not None:
            maps = warp(masks.to(images.dtype))
            if self.mask_flip_channels is not None and bool(flip.any()):
                maps = permute_rows(maps, flip, self.mask_flip_channels)
            results.append(maps)
        return results[0] if len(results) == 1 else tuple(results)




class RandomAlignedCrop(RandomAffineCrop):
    """Deprecated: :class:`~mtl_heads.augmentation.RandomAffineCrop` built from an
    :class:`AlignedAugmentation`.

    Deprecated:
        Kept for one release (a ``DeprecationWarning`` on construction); use
        ``RandomAffineCrop(...)`` or :func:`~mtl_heads.augmentation.paper_augmentation`. Unlike
        those, and as before, it resamples every mask bilinearly (an integer mask comes back with
        in-between values) and draws from ``aug.generator`` when it has one.

    Args:
        aug: the settings to take; ``None``: the paper's FER2013 setting.
        keepdim: Kornia's ``keepdim``.
    """

    def __init__(self, aug: AlignedAugmentation | None = None, keepdim: bool = False) -> None:
        warnings.warn(
            "RandomAlignedCrop is deprecated and goes in the next release; use "
            "mtl_heads.augmentation.RandomAffineCrop(...) or paper_augmentation()",
            DeprecationWarning,
            stacklevel=2,
        )
        aug = AlignedAugmentation() if aug is None else aug
        if not isinstance(aug, AlignedAugmentation):
            raise TypeError(f"aug must be an AlignedAugmentation, got {type(aug).__name__}")
        super().__init__(
            aug.crop, rotation=aug.rotation, zoom=aug.zoom, shift=aug.shift,
            p_flip=aug.p_flip if aug.flip else 0.0, flip_index=aug.flip_index,
            mask_flip_channels=aug.mask_flip_channels, padding_mode=aug.padding_mode,
            same_on_batch=aug.same_on_batch, p=aug.p, keepdim=keepdim,
        )
        self._param_generator.generator = aug.generator

    def apply_transform_mask(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # The adapter this alias replaces always resampled masks bilinearly.
        flags = {**flags, "resample": Resample.BILINEAR}
        return super().apply_transform_mask(input, params, flags, transform)

"""The paper's geometric augmentation as one Kornia transform: rotation, zoom and a shifted crop.

DeVries et al. (2014) train on 42x42 crops of the 48x48 faces, shifted by up to ±3 px, rotated
by up to ±45° and zoomed by up to 1.2, and mirrored. :class:`RandomAffineCrop` does all of it as
one warp per sample, so the pixels are resampled once; the mirror (``p_flip``) is folded into the
same matrix, with :class:`~mtl_heads.augmentation.RandomMirror`'s keypoint and channel swap.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from kornia.augmentation import GeometricAugmentationBase2D
from kornia.augmentation.random_generator import RandomGeneratorBase
from kornia.constants import Resample
from kornia.geometry.keypoints import Keypoints

from .._utils import size_pair
from ..landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels
from ._warp import (
    PADDING_MODES,
    aligned_matrix,
    check_crop,
    copy_crop,
    is_exact,
    sampling_grid,
)
from .mirror import (
    check_keypoints,
    check_mask_channels,
    check_permutation,
    inverse_permutation,
    mirror_keypoints,
    mirror_masks,
)

__all__ = ["AffineCropGenerator", "RandomAffineCrop"]


def draw_parameters(
    batch_size: int,
    *,
    flip: bool,
    p_flip: float,
    rotation: float,
    zoom: float,
    shift: int,
    p: float,
    same_on_batch: bool,
    generator: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """The paper augmentation's random stream: every value drawn, always, in this order.

    This is the stream the committed studies were trained with (``AlignedAugmentation`` at
    commit aafcbc9); the tests hold it to a frozen copy of that code, so do not reorder it.
    """
    n = 1 if same_on_batch else batch_size
    # Always draw every value so the random stream does not depend on which parts are enabled.
    apply = torch.rand(n, generator=generator) < p
    flipped = (torch.rand(n, generator=generator) < p_flip) & apply & flip
    angle = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * rotation
    scale = 1 + torch.rand(n, generator=generator, dtype=torch.float64) * (zoom - 1)
    offset = torch.randint(-shift, shift + 1, (n, 2), generator=generator)
    params = {
        "flip": flipped,
        "angle": torch.where(apply, angle, 0.0),
        "scale": torch.where(apply, scale, 1.0),
        "offset": torch.where(apply[:, None], offset, 0),
    }
    if same_on_batch:
        params = {k: v.expand(batch_size, *v.shape[1:]).clone() for k, v in params.items()}
    return params


def check_settings(rotation: float, zoom: float, shift: int, **probabilities: float) -> None:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise ValueError(f"shift must be a whole number of pixels >= 0, got {shift!r}")
    if not (math.isfinite(rotation) and rotation >= 0):
        raise ValueError(f"rotation must be >= 0 degrees, got {rotation}")
    if not (math.isfinite(zoom) and zoom >= 1.0):
        raise ValueError(f"zoom must be >= 1 (a factor in [1, zoom]), got {zoom}")
    for name, prob in probabilities.items():
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {prob}")


class AffineCropGenerator(RandomGeneratorBase):
    r"""Draw :class:`RandomAffineCrop`'s parameters: mirror, angle, zoom and crop offset.

    The draws are plain ``torch.rand`` / ``torch.randint`` calls on the CPU, from ``generator``
    when one is given (the global generator otherwise), whatever device the images are on, so a
    seed gives the same augmentation on any device.

    Args:
        rotation: largest rotation in degrees.
        zoom: largest zoom factor.
        shift: largest crop offset from the centre, in whole pixels.
        p_flip: probability of a mirror.
        p: probability that a sample is augmented at all.
    """

    def __init__(self, rotation: float, zoom: float, shift: int, p_flip: float, p: float) -> None:
        super().__init__()
        self.rotation, self.zoom, self.shift = float(rotation), float(zoom), shift
        self.p_flip, self.p = float(p_flip), float(p)
        # A default generator for this module alone: the deprecated RandomAlignedCrop keeps its
        # AlignedAugmentation's. Kornia's own transforms have none (kornia#4427).
        self.generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return (
            f"rotation={self.rotation}, zoom={self.zoom}, shift={self.shift}, "
            f"p_flip={self.p_flip}, p={self.p}"
        )

    def make_samplers(self, device: torch.device, dtype: torch.dtype) -> None:
        # Nothing to build: the draws are torch.rand calls on the CPU (see the class docstring).
        pass

    def forward(
        self,
        batch_shape: tuple[int, ...],
        same_on_batch: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw the parameters of a batch.

        Args:
            batch_shape: the batch's shape; ``batch_shape[0]`` is its size ``B``.
            same_on_batch: one draw for the whole batch.
            generator: the CPU generator to draw from (the global one when ``None``).

        Returns:
            ``{"flip": bool (B,), "angle": float64 degrees (B,), "scale": float64 (B,),
            "offset": int64 (B, 2) as (dx, dy)}``; samples skipped by ``p`` get no flip, 0, 1
            and (0, 0).
        """
        return draw_parameters(
            batch_shape[0], flip=self.p_flip > 0, p_flip=self.p_flip, rotation=self.rotation,
            zoom=self.zoom, shift=self.shift, p=self.p, same_on_batch=same_on_batch,
            generator=generator if generator is not None else self.generator,
        )


_DRAWN = ("flip", "angle", "scale", "offset")


def _same_draw(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _source_size(params: dict[str, torch.Tensor], input: torch.Tensor) -> tuple[int, int]:
    """The (H, W) the parameters were drawn for: the output's inverse needs the input's size."""
    shape = params.get("forward_input_shape")
    if isinstance(shape, torch.Tensor):
        return int(shape[-2]), int(shape[-1])
    return int(input.shape[-2]), int(input.shape[-1])


class RandomAffineCrop(GeometricAugmentationBase2D):
    r"""Rotate, zoom, optionally mirror, and crop at a random whole-pixel offset, in one warp.

    Per sample one matrix is built: a mirror with probability ``p_flip``, a rotation by an angle
    in ``[-rotation, rotation]`` degrees and a zoom by a factor in ``[1, zoom]``, all about the
    image centre, then a ``size`` window at an integer offset of up to ``±shift`` px around the
    centre (the paper's "shift ±3 px, crop 48 -> 42" is one step). Images and masks are
    resampled on one grid built from it (zeros outside, ``align_corners=True``: pixel centres at
    integer coordinates, as :func:`~kornia.geometry.transform.warp_affine`); keypoints go
    through the same matrix. On mirrored samples keypoints are re-indexed with ``flip_index``
    and mask channels with ``mask_flip_channels``, as :class:`RandomMirror` does.

    When no sample of a batch is rotated or zoomed the crop is an exact copy of pixels (an
    integer shift plus mirror), not a resampling.

    Masks follow Kornia's rule: the container's ``extra_args[DataKey.MASK]["resample"]``
    (nearest by default; ``transform_masks`` called directly: nearest unless told otherwise).
    :func:`~mtl_heads.augmentation.paper_augmentation` decides by dtype instead: floating
    (soft) label maps bilinear, integer and bool masks nearest.

    ``p`` is per sample, like Kornia's, but a skipped sample still gets the centre crop (all
    samples must leave with the same size): it is drawn with the other parameters, and Kornia's
    own gate stays at 1. The parameters are drawn by :class:`AffineCropGenerator`, always in the
    same order, from the global generator or, through
    :func:`~mtl_heads.augmentation.sample_parameters`, from a ``torch.Generator``.

    Args:
        size: output size ``(h, w)`` or one int.
        rotation: largest rotation in degrees.
        zoom: largest zoom factor (>= 1; 1 disables zoom).
        shift: largest crop offset from the centre, in whole pixels.
        p_flip: probability of a mirror (0 disables it).
        flip_index: keypoint permutation on mirrored samples (see :class:`RandomMirror`);
            ``None`` keeps the order.
        mask_flip_channels: mask channel permutation on mirrored samples; ``None`` keeps the
            order.
        resample: image interpolation, ``"bilinear"`` or ``"nearest"``.
        padding_mode: what the warp reads outside the image: ``"zeros"``, ``"border"`` or
            ``"reflection"``.
        same_on_batch: apply the same transformation across the batch.
        p: probability that a sample is augmented at all; the others get the centre crop.
        keepdim: whether to keep the output shape the same as input (True) or broadcast it to the
            batch form (False).

    Shape:
        - Input: :math:`(C, H, W)` or :math:`(B, C, H, W)`
        - Output: :math:`(B, C, h, w)`
        - keypoints: :math:`(B, N, 2)`; masks :math:`(B, K, H, W)` -> :math:`(B, K, h, w)`.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> aug = RandomAffineCrop(42, rotation=45.0, zoom=1.2, shift=3, p_flip=0.5)
        >>> out = aug(torch.rand(2, 1, 48, 48))
        >>> out.shape, sorted(aug._params)[:4]
        (torch.Size([2, 1, 42, 42]), ['angle', 'batch_prob', 'flip', 'forward_input_shape'])
        >>> aug.inverse(out).shape
        torch.Size([2, 1, 48, 48])
    """

    def __init__(
        self,
        size: int | Sequence[int] = 42,
        rotation: float = 45.0,
        zoom: float = 1.2,
        shift: int = 3,
        p_flip: float = 0.5,
        flip_index: Sequence[int] | None = FLIP_INDEX_68,
        mask_flip_channels: Sequence[int] | None = mirror_channels(PAPER_GROUPS),
        resample: str | Resample = "bilinear",
        padding_mode: str = "zeros",
        same_on_batch: bool = False,
        p: float = 1.0,
        keepdim: bool = False,
    ) -> None:
        check_settings(rotation, zoom, shift, p=p, p_flip=p_flip)
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}"
            )
        mode = Resample.get(resample)
        if mode not in (Resample.BILINEAR, Resample.NEAREST):
            raise ValueError(f"resample must be 'bilinear' or 'nearest', got {resample!r}")
        # Kornia's gate stays at 1: a skipped sample could not keep its size next to cropped ones
        # (kornia#4497), so ``p`` lives in the generator and skipped samples get the centre crop.
        super().__init__(p=1.0, same_on_batch=same_on_batch, keepdim=keepdim)
        self._param_generator = AffineCropGenerator(rotation, zoom, shift, p_flip, p)
        # (parameters, float64 matrix, sampling grid) of the last call; see _grid
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None
        self.flags = {
            "size": size_pair(size, "size"),
            "resample": mode,
            "padding_mode": padding_mode,
            "flip_index": check_permutation(flip_index, "flip_index"),
            "mask_flip_channels": check_permutation(mask_flip_channels, "mask_flip_channels"),
        }

    # apply_transform builds its warp from the parameters, not from Kornia's matrix: Kornia
    # computes the matrix only when it is read (for keypoints, masks, inverse, transform_matrix).
    _compute_matrix_lazily = True

    def __repr__(self) -> str:
        # Kornia's repr would add its own p=1.0 (the gate, see __init__) after the generator's p.
        flags = ", ".join(
            f"{k}={v.name.lower() if isinstance(v, Resample) else v}"
            for k, v in self.flags.items()
            if k not in ("flip_index", "mask_flip_channels")
        )
        return (
            f"{type(self).__name__}({self._param_generator}, same_on_batch={self.same_on_batch}, "
            f"{flags})"
        )

    def _matrix(
        self, params: dict[str, torch.Tensor], size: tuple[int, int], crop: tuple[int, int]
    ) -> torch.Tensor:
        """The float64 matrices of ``params``, kept for the other keys of the same call."""
        drawn = tuple(params[k] for k in _DRAWN)
        cached = self._cache
        if cached is not None and cached[0][:2] == (size, crop) and _same_draw(cached[0][2], drawn):
            return cached[1]
        matrix = aligned_matrix(params, size, crop)
        # copies: a caller may edit the parameters in place before replaying them
        self._cache = ((size, crop, tuple(t.clone() for t in drawn)), matrix, None)
        return matrix

    def _grid(
        self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
    ) -> torch.Tensor:
        """The sampling grid of ``params`` for ``input``'s size, dtype and device.

        Kornia warps the masks of a call after its image, in another call with the same
        parameters; building the grid costs more than sampling 1 channel on a CPU, so it is kept
        (one grid served the image and the maps in the studies' path too).
        """
        size, crop = (int(input.shape[-2]), int(input.shape[-1])), flags["size"]
        matrix = self._matrix(params, size, crop)
        key, _, grid = self._cache
        if grid is None or grid.dtype != input.dtype or grid.device != input.device:
            grid = sampling_grid(matrix, size, crop, input)
            self._cache = (key, matrix, grid)
        return grid

    def compute_transformation(
        self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
    ) -> torch.Tensor:
        matrix = self._matrix(params, _source_size(params, input), flags["size"])
        return matrix.to(device=input.device, dtype=input.dtype)

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_crop(input, flags["size"])
        if is_exact(params):
            return copy_crop(input, params, flags["size"], flags["padding_mode"])
        # Kornia's ``transform`` is in the input's dtype; the warp is built from the float64
        # matrix of the parameters, as in the studies, so the pixels do not depend on it.
        return F.grid_sample(
            input, self._grid(input, params, flags), mode=flags["resample"].name.lower(),
            padding_mode=flags["padding_mode"], align_corners=True,
        )

    def apply_transform_mask(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_mask_channels(input, flags["mask_flip_channels"])
        out = self.apply_transform(input, params, flags, transform)
        return mirror_masks(out, params["flip"], flags["mask_flip_channels"])

    def apply_transform_keypoint(
        self,
        input: Keypoints,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> Keypoints:
        check_keypoints(input.data, flags["flip_index"])
        if "forward_input_shape" in params:
            # The float64 matrix cast to the points' dtype, as the studies' path did.
            size = _source_size(params, input.data)
            matrix = self._matrix(params, size, flags["size"]).to(input.data)
        elif transform is not None:
            matrix = transform.to(input.data)
        else:
            raise ValueError(
                "the parameters hold no 'forward_input_shape' and no matrix was given: draw them "
                "with forward_parameters(shape) or sample_parameters(aug, shape, generator)"
            )
        out = input.transform_keypoints(matrix)
        return mirror_keypoints(out, params["flip"], flags["flip_index"])

    def inverse_transform(
        self,
        input: torch.Tensor,
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        if size is None:
            raise ValueError(
                "inverse() needs the input size the parameters were drawn for "
                "('forward_input_shape' in params); replay parameters from forward_parameters or "
                "sample_parameters"
            )
        if not isinstance(transform, torch.Tensor):
            raise TypeError(f"Expected the `transform` be a torch.Tensor. Got {type(transform)}.")
        # ``transform`` is the inverse (crop -> source) matrix; the grid wants source -> output.
        grid = sampling_grid(transform.double().cpu(), tuple(input.shape[-2:]), size, input)
        return F.grid_sample(
            input, grid, mode=flags["resample"].name.lower(), padding_mode="zeros",
            align_corners=True,
        )

    def inverse_masks(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        params = self._params if params is None else params
        perm = (flags or self.flags)["mask_flip_channels"]
        check_mask_channels(input, perm)
        out = super().inverse_masks(input, params, flags, transform, **kwargs)
        return mirror_masks(out, params["flip"], inverse_permutation(perm))

    def inverse_keypoints(
        self,
        input: Keypoints,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Keypoints:
        params = self._params if params is None else params
        perm = (flags or self.flags)["flip_index"]
        out = super().inverse_keypoints(input, params, flags, transform, **kwargs)
        return mirror_keypoints(out, params["flip"], inverse_permutation(perm))

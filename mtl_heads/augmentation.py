"""Aligned, mirror-aware augmentation for images, landmarks and label maps, and test-time views.

:class:`AlignedAugmentation` is the paper's training augmentation (random mirror, rotation, zoom,
shift, crop 48 -> 42) as one affine matrix per sample: the image and any mask channels are
resampled bilinearly on one sampling grid (the warp of
:func:`kornia.geometry.transform.warp_affine`), landmarks go through the same matrix with
:func:`kornia.geometry.linalg.transform_points`, and on mirrored
samples the landmark indices and mask channels are permuted so that "left" keeps meaning
image-left.

:func:`center_crop`, :func:`ten_crop_views` and :func:`predict_ten_crop` are the paper's test-time
side: a centre crop, or 4 corner crops + the centre crop, each also mirrored, softmax averaged.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from kornia.augmentation import GeometricAugmentationBase2D
from kornia.geometry.keypoints import Keypoints
from kornia.geometry.linalg import transform_points

from ._utils import size_pair
from .landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels

__all__ = [
    "AlignedAugmentation",
    "RandomAlignedCrop",
    "center_crop",
    "ten_crop_views",
    "predict_ten_crop",
]


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


def center_crop(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Crop the centre of a batch of images (slicing: values are copied exactly).

    The crop starts at ``((H - h) // 2, (W - w) // 2)``; for 48 -> 42 that is ``(3, 3)``.

    Args:
        images: a batch of images of any dtype.
        size: crop ``(h, w)`` or one int.

    Shape:
        - images: :math:`(B, C, H, W)`
        - output: :math:`(B, C, h, w)`

    Returns:
        A view of ``images``.

    Examples:
        >>> center_crop(torch.arange(16.0).view(1, 1, 4, 4), 2)
        tensor([[[[ 5.,  6.],
                  [ 9., 10.]]]])
    """
    _check_images(images)
    h, w = size_pair(size, "size")
    _check_crop(images, (h, w))
    top, left = (images.shape[-2] - h) // 2, (images.shape[-1] - w) // 2
    return images[..., top : top + h, left : left + w]


def ten_crop_views(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """The paper's 10 test views: 4 corner crops and the centre crop, each also mirrored.

    The order follows ``torchvision.transforms.v2.functional.ten_crop``: top-left, top-right,
    bottom-left, bottom-right, centre of the image, then the same five crops of the mirrored
    image (so view 5 is the mirror of view 1).

    Args:
        images: a batch of images of any dtype.
        size: crop ``(h, w)`` or one int.

    Shape:
        - images: :math:`(B, C, H, W)`
        - output: :math:`(10, B, C, h, w)`

    Returns:
        The views stacked along a new first dimension.

    Examples:
        >>> views = ten_crop_views(torch.rand(2, 1, 48, 48), 42)
        >>> views.shape
        torch.Size([10, 2, 1, 42, 42])
    """
    _check_images(images)
    h, w = size_pair(size, "size")
    _check_crop(images, (h, w))
    height, width = images.shape[-2:]
    views = []
    for src in (images, images.flip(-1)):
        views += [
            src[..., :h, :w],
            src[..., :h, width - w :],
            src[..., height - h :, :w],
            src[..., height - h :, width - w :],
            center_crop(src, (h, w)),
        ]
    return torch.stack(views)


def _logits(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict) and "logits" in output:
        return output["logits"]
    raise TypeError(
        "model must return a tensor of logits or a dict with a 'logits' entry, "
        f"got {type(output).__name__}"
        + (f" with keys {sorted(output)}" if isinstance(output, dict) else "")
    )


def predict_ten_crop(
    model: nn.Module | Any, images: torch.Tensor, size: int | Sequence[int]
) -> torch.Tensor:
    """Class probabilities averaged over the 10 views of :func:`ten_crop_views`.

    All 10 × B views go through ``model`` in one call; put the model in eval mode (and wrap the
    call in ``torch.inference_mode()``) yourself.

    Args:
        model: any classifier: a timm model or ``MultiTaskModel.deploy()`` returning logits, or a
            ``MultiTaskModel`` returning a dict with ``"logits"``.
        images: preprocessed images at the stored size (e.g. 48×48).
        size: the size the model was trained on (e.g. 42).

    Shape:
        - images: :math:`(B, C, H, W)`
        - output: :math:`(B, K)`, K classes

    Returns:
        The mean over views of ``softmax(logits)``.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(42 * 42, 7))
        >>> probs = predict_ten_crop(model, torch.rand(3, 1, 48, 48), 42)
        >>> probs.shape, bool(torch.allclose(probs.sum(1), torch.ones(3)))
        (torch.Size([3, 7]), True)
    """
    views = ten_crop_views(images, size)
    n, b = views.shape[:2]
    logits = _logits(model(views.flatten(0, 1)))
    if logits.ndim != 2 or logits.shape[0] != n * b:
        raise ValueError(
            f"model returned logits of shape {tuple(logits.shape)} for {n * b} views; "
            "expected (views, num_classes)"
        )
    return logits.softmax(dim=-1).view(n, b, -1).mean(dim=0)


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
    """Random mirror, rotation, zoom and shifted crop, applied alike to images, landmarks and maps.

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


class RandomAlignedCrop(GeometricAugmentationBase2D):
    """:class:`AlignedAugmentation` as a Kornia augmentation, for ``AugmentationSequential``.

    The same per-sample matrix, the same random stream and the same outputs as the wrapped
    :class:`AlignedAugmentation`, so it composes with Kornia's own transforms (a colour jitter
    before or after it) and Kornia's ``data_keys=["input", "mask", "keypoints"]`` get the
    mirror-aware behaviour: on mirrored samples the keypoints are re-indexed with ``flip_index``
    and the mask channels with ``mask_flip_channels``. Masks are resampled bilinearly with the
    image (Kornia 0.9 resamples masks nearest, kornia#4419), so soft label maps stay soft.
    The output is the crop size (48 -> 42), as Kornia's ``RandomCrop`` changes the size too.

    Args:
        aug: the augmentation to wrap; ``None`` builds the paper's FER2013 setting.
        keepdim: Kornia's ``keepdim``.

    Examples:
        >>> import kornia.augmentation as K
        >>> _ = torch.manual_seed(0)
        >>> seq = K.AugmentationSequential(
        ...     K.ColorJiggle(0.2, 0.2, p=1.0), RandomAlignedCrop(),
        ...     data_keys=["input", "mask", "keypoints"])
        >>> images, maps = torch.rand(2, 1, 48, 48), torch.rand(2, 3, 48, 48)
        >>> out, out_maps, out_lm = seq(images, maps, torch.rand(2, 68, 2) * 47)
        >>> out.shape, out_maps.shape, out_lm.shape
        (torch.Size([2, 1, 42, 42]), torch.Size([2, 3, 42, 42]), torch.Size([2, 68, 2]))
    """

    def __init__(self, aug: AlignedAugmentation | None = None, keepdim: bool = False) -> None:
        # Probabilities live in the wrapped augmentation (p, p_flip): Kornia applies it to every
        # sample, and samples it does not augment get its centre crop.
        super().__init__(p=1.0, same_on_batch=False, keepdim=keepdim)
        self.aug = AlignedAugmentation() if aug is None else aug
        if not isinstance(self.aug, AlignedAugmentation):
            raise TypeError(f"aug must be an AlignedAugmentation, got {type(self.aug).__name__}")

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        return self.aug.generate_parameters(batch_shape[0])

    def compute_transformation(
        self, input: torch.Tensor, params: dict[str, torch.Tensor], flags: dict[str, Any]
    ) -> torch.Tensor:
        mat = self.aug.compute_matrix(params, tuple(input.shape[-2:]))
        return mat.to(device=input.device, dtype=input.dtype)

    def _aligned(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: params[k] for k in ("flip", "angle", "scale", "offset")}

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.aug(input, params=self._aligned(params))

    def apply_transform_mask(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        maps = self.aug(input.float(), params=self._aligned(params))
        perm = self.aug.mask_flip_channels
        if perm is not None and maps.shape[1] != len(perm):
            raise ValueError(
                f"masks have {maps.shape[1]} channels but mask_flip_channels {perm} permutes "
                f"{len(perm)}; build the AlignedAugmentation with mask_flip_channels for yours"
            )
        flip = params["flip"].to(maps.device)
        if perm is not None and bool(flip.any()):
            maps = _permute_rows(maps, flip, perm)
        return maps.to(input.dtype)

    def apply_transform_keypoint(
        self,
        input: Keypoints,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> Keypoints:
        out = super().apply_transform_keypoint(input, params, flags, transform)
        index = self.aug.flip_index
        flip = params["flip"].to(out.data.device)
        if index is not None and bool(flip.any()):
            if out.data.shape[-2] != len(index):
                raise ValueError(
                    f"keypoints have N = {out.data.shape[-2]} points but flip_index has "
                    f"{len(index)} entries; build the AlignedAugmentation with flip_index for yours"
                )
            out = Keypoints(_permute_rows(out.data, flip, index), False)
        return out

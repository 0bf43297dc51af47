"""A horizontal flip that keeps "left" meaning image-left: keypoint indices and mask channels swap.

A plain mirror moves the subject's right brow to the image-left side, but keypoint index 17-21 and
label-map channel 0 would still say "left brow" about the brow now on the right: after Kornia's
``RandomHorizontalFlip`` the left-brow target lies image-right on half the faces. Pose libraries
carry a flip index for the same reason (mmpose ``flip_indices``, ultralytics ``flip_idx``).
"""

from collections.abc import Sequence
from typing import Any

import torch
from kornia.augmentation import RandomHorizontalFlip
from kornia.geometry.keypoints import Keypoints
from kornia.geometry.transform import hflip

from ..landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels

__all__ = ["RandomMirror"]


def check_permutation(perm: Sequence[int] | None, what: str) -> tuple[int, ...] | None:
    if perm is None:
        return None
    perm = tuple(int(i) for i in perm)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"{what} must be a permutation of 0..{len(perm) - 1}, got {perm}")
    return perm


def inverse_permutation(perm: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if perm is None:
        return None
    inv = [0] * len(perm)
    for i, j in enumerate(perm):
        inv[j] = i
    return tuple(inv)


def permute_rows(x: torch.Tensor, flip: torch.Tensor, perm: tuple[int, ...]) -> torch.Tensor:
    """Reorder dim 1 of ``x`` by ``perm`` on the samples where ``flip`` is true, in one gather."""
    b, n = x.shape[:2]
    base = torch.arange(n)
    flip = flip.cpu()
    index = torch.where(flip[:, None], torch.tensor(perm), base) + n * torch.arange(b)[:, None]
    flat = x.reshape(b * n, *x.shape[2:]).index_select(0, index.flatten().to(x.device))
    return flat.view(x.shape)


def check_keypoints(points: torch.Tensor, flip_index: tuple[int, ...] | None) -> None:
    if flip_index is not None and points.shape[-2] != len(flip_index):
        raise ValueError(
            f"keypoints have N = {points.shape[-2]} points but flip_index has {len(flip_index)} "
            "entries; pass flip_index for your N (or None)"
        )


def check_mask_channels(masks: torch.Tensor, perm: tuple[int, ...] | None) -> None:
    if perm is not None and masks.shape[1] != len(perm):
        raise ValueError(
            f"masks have {masks.shape[1]} channels but mask_flip_channels {perm} permutes "
            f"{len(perm)}; pass mask_flip_channels for your channels (or None for masks whose "
            "channels have no side, e.g. one channel of class labels)"
        )


def mirror_keypoints(
    points: Keypoints, flip: torch.Tensor | None, perm: tuple[int, ...] | None
) -> Keypoints:
    """Re-index the keypoints of the mirrored samples (``flip``; ``None``: all) with ``perm``."""
    check_keypoints(points.data, perm)
    if perm is None:
        return points
    if flip is None:
        index = torch.tensor(perm, device=points.data.device)
        return Keypoints(points.data.index_select(-2, index), False)
    if not bool(flip.any()):
        return points
    return Keypoints(permute_rows(points.data, flip, perm), False)


def mirror_masks(
    masks: torch.Tensor, flip: torch.Tensor | None, perm: tuple[int, ...] | None
) -> torch.Tensor:
    """Swap the mask channels (dim 1) of the mirrored samples (``flip``; ``None``: all)."""
    check_mask_channels(masks, perm)
    if perm is None:
        return masks
    if flip is None:
        return masks.index_select(1, torch.tensor(perm, device=masks.device))
    if not bool(flip.any()):
        return masks
    return permute_rows(masks, flip, perm)


class RandomMirror(RandomHorizontalFlip):
    r"""Flip horizontally with probability ``p``; on flipped samples swap left and right labels.

    Pixels move exactly as with Kornia's :class:`~kornia.augmentation.RandomHorizontalFlip`
    (``x -> W - 1 - x``, no resampling; it is one, so it goes wherever that one goes). On the
    flipped samples, keypoints are then re-indexed with ``flip_index`` (output point ``i`` is the
    flipped input point ``flip_index[i]``) and mask channels with ``mask_flip_channels``, so that
    index 17-21 and channel 0 still mean the image-left brow.

    Args:
        flip_index: keypoint permutation on flipped samples; the default is the 68-point one
            (:data:`~mtl_heads.landmarks.FLIP_INDEX_68`). Any keypoint set with left/right pairs
            has one (e.g. COCO's 17 body keypoints: ``(0, 2, 1, 4, 3, 6, 5, ...)``); ``None``
            keeps the order.
        mask_flip_channels: mask channel permutation on flipped samples; the default,
            ``mirror_channels(PAPER_GROUPS)`` = ``(1, 0, 2)``, swaps the paper's two brow maps.
            ``None`` keeps the order (masks whose channels have no side, e.g. class labels).
        same_on_batch: apply the same transformation across the batch.
        p: probability of flipping each sample.
        keepdim: whether to keep the output shape the same as input (True) or broadcast it to the
            batch form (False).

    Shape:
        - Input: :math:`(C, H, W)` or :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`
        - keypoints: :math:`(B, N, 2)`, ``N = len(flip_index)``; masks :math:`(B, K, H, W)`,
          ``K = len(mask_flip_channels)``.

    Examples:
        >>> import kornia.augmentation as K
        >>> _ = torch.manual_seed(0)
        >>> points = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [2.0, 1.0]]])  # left, right, nose
        >>> seq = K.AugmentationSequential(
        ...     RandomMirror(flip_index=(1, 0, 2), mask_flip_channels=None, p=1.0),
        ...     data_keys=["input", "keypoints"])
        >>> image, flipped = seq(torch.rand(1, 1, 4, 5), points)
        >>> flipped  # point 0 is still the image-left one
        tensor([[[1., 0.],
                 [3., 0.],
                 [2., 1.]]])
        >>> seq.inverse(image, flipped)[1].equal(points)
        True
    """

    def __init__(
        self,
        flip_index: Sequence[int] | None = FLIP_INDEX_68,
        mask_flip_channels: Sequence[int] | None = mirror_channels(PAPER_GROUPS),
        same_on_batch: bool = False,
        p: float = 0.5,
        keepdim: bool = False,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        super().__init__(p=p, same_on_batch=same_on_batch, keepdim=keepdim)
        self.flags = {
            "flip_index": check_permutation(flip_index, "flip_index"),
            "mask_flip_channels": check_permutation(mask_flip_channels, "mask_flip_channels"),
        }

    # Kornia blends each handler's output for every sample with the input by the per-sample gate,
    # so the handlers permute every sample and the blend keeps the permutation on flipped ones.

    def apply_transform_mask(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return mirror_masks(hflip(input), None, flags["mask_flip_channels"])

    def apply_transform_keypoint(
        self,
        input: Keypoints,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> Keypoints:
        if transform is None:
            transform = self.transform_matrix
        # transform_keypoints, not Kornia's in-place transform_keypoints_: the base class blends
        # the result with ``input``, which must still hold the untransformed points.
        out = input.transform_keypoints(transform.to(input.data))
        return mirror_keypoints(out, None, flags["flip_index"])

    def inverse_masks(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        params = self._params if params is None else params
        out = super().inverse_masks(input, params, flags, transform, **kwargs)
        perm = (flags or self.flags)["mask_flip_channels"]
        return mirror_masks(out, self._gate(params), inverse_permutation(perm))

    def inverse_keypoints(
        self,
        input: Keypoints,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Keypoints:
        params = self._params if params is None else params
        out = super().inverse_keypoints(input, params, flags, transform, **kwargs)
        perm = (flags or self.flags)["flip_index"]
        return mirror_keypoints(out, self._gate(params), inverse_permutation(perm))


"""The paper's test-time side: a centre crop, or 10 views (4 corners + centre, each mirrored).

DeVries et al. (2014) average the softmax of the 10 views at test time, as Krizhevsky et al. did.
"""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from .._utils import size_pair
from ._warp import check_crop, check_images

__all__ = ["center_crop", "ten_crop_views", "predict_ten_crop"]


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
    check_images(images)
    h, w = size_pair(size, "size")
    check_crop(images, (h, w))
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
    check_images(images)
    h, w = size_pair(size, "size")
    check_crop(images, (h, w))
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


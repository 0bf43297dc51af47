"""The paper's warp, shared by the Kornia transforms and :class:`AlignedAugmentation` (not public).

One source -> output pixel matrix per sample (mirror, rotation and zoom about the image centre,
then a crop window at a whole-pixel offset), realised either by ``F.grid_sample`` on a grid from
``F.affine_grid`` or, when no sample is rotated or zoomed, by copying pixels. These are the
functions the committed studies ran (``AlignedAugmentation`` at commit aafcbc9); the tests compare
them with a frozen copy of that code bit for bit, so change them only with the studies in mind.
"""

from typing import Any

import torch
import torch.nn.functional as F

PADDING_MODES = ("zeros", "border", "reflection")


def check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D (B, C, H, W), got shape {tuple(images.shape)}")


def check_crop(images: torch.Tensor, size: tuple[int, int]) -> None:
    h, w = images.shape[-2:]
    if size[0] > h or size[1] > w:
        raise ValueError(f"crop size {size} is larger than the images ({h}, {w})")


def _pixel_to_normalized(height: int, width: int) -> torch.Tensor:
    """Pixel -> [-1, 1] coordinates with ``align_corners=True`` (Kornia's convention)."""
    sx, sy = 2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)
    return torch.tensor([[sx, 0.0, -1.0], [0.0, sy, -1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def sampling_grid(
    matrix: torch.Tensor, src_size: tuple[int, int], dst_size: tuple[int, int], like: torch.Tensor
) -> torch.Tensor:
    """``grid_sample`` grid that realises the source -> output pixel ``matrix`` (B, 3, 3).

    The same warp as ``kornia.geometry.transform.warp_affine(..., align_corners=True)`` (tested),
    built with ``F.affine_grid``: on CPU, kornia 0.9 spends longer building its grid than
    sampling, and one grid serves the image and the mask channels.
    """
    theta = _pixel_to_normalized(*src_size) @ torch.linalg.inv(matrix)
    theta = theta @ torch.linalg.inv(_pixel_to_normalized(*dst_size))
    theta = theta[:, :2].to(device=like.device, dtype=like.dtype)
    return F.affine_grid(theta, [matrix.shape[0], 1, *dst_size], align_corners=True)


def aligned_matrix(
    params: dict[str, torch.Tensor], image_size: tuple[int, int], crop: tuple[int, int]
) -> torch.Tensor:
    """The source -> output pixel matrices (B, 3, 3), float64, of ``flip/angle/scale/offset``."""
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
        [(width - crop[1]) // 2, (height - crop[0]) // 2], dtype=torch.float64
    )
    t = centre - a @ centre - (corner + params["offset"].double())
    mat = torch.eye(3, dtype=torch.float64).repeat(b, 1, 1)
    mat[:, :2, :2], mat[:, :2, 2] = a, t
    return mat


def is_exact(params: dict[str, torch.Tensor]) -> bool:
    """No sample rotated or zoomed: the crop is a copy of pixels (:func:`copy_crop`)."""
    return bool((params["angle"] == 0).all() and (params["scale"] == 1).all())


def copy_crop(
    x: torch.Tensor,
    params: dict[str, torch.Tensor],
    crop: tuple[int, int],
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Integer shift + mirror + crop by indexing: the exact pixels, no resampling."""
    b, c, height, width = x.shape
    h, w = crop
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
        if padding_mode != "zeros":
            raise NotImplementedError(
                "shift beyond the image border with an un-rotated crop only supports "
                f"padding_mode='zeros', got {padding_mode!r}"
            )
        out = torch.where(inside[:, None], out, out.new_zeros(()))
    return out


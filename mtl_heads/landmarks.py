"""68-point facial landmark tables and anti-aliased label maps drawn from landmarks.

The label maps are the auxiliary targets of DeVries et al. (2014), Fig. 2: one map per landmark
group (the paper: image-left brow, image-right brow, mouth), the size of the image, 1 inside the
feature and 0 outside. They are drawn in batched torch on the landmarks' device, so they can be
drawn after augmentation from the augmented landmarks, or once per image and warped with it.

Coordinates follow Kornia: (x, y) in pixels, pixel centres at integer positions, so pixel
``(i, j)`` covers ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]`` and a horizontal flip maps
``x -> W - 1 - x``.
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ._utils import size_pair

__all__ = [
    "JAW",
    "LEFT_BROW",
    "RIGHT_BROW",
    "NOSE",
    "LEFT_EYE",
    "RIGHT_EYE",
    "OUTER_LIP",
    "INNER_LIP",
    "MIRROR_PAIRS",
    "FLIP_INDEX_68",
    "LabelMapGroup",
    "PAPER_GROUPS",
    "FACE_GROUPS",
    "flip_index_from_pairs",
    "landmarks_to_heatmaps",
    "mirror_channels",
    "landmarks_to_label_maps",
]

# iBUG / Multi-PIE 68-point layout, 0-based. "Left"/"right" are image-left/image-right, i.e. the
# subject's right/left: after a horizontal flip the two swap, hence MIRROR_PAIRS.
JAW = tuple(range(0, 17))
LEFT_BROW = tuple(range(17, 22))
RIGHT_BROW = tuple(range(22, 27))
NOSE = tuple(range(27, 36))
LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))
OUTER_LIP = tuple(range(48, 60))
INNER_LIP = tuple(range(60, 68))

MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    # jaw
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9),
    # brows
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),
    # nostrils
    (31, 35), (32, 34),
    # eyes
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
    # outer lip
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),
    # inner lip
    (60, 64), (61, 63), (65, 67),
)  # fmt: skip
"""Index pairs that swap under a horizontal flip; every other index maps to itself."""


def flip_index_from_pairs(pairs: Sequence[tuple[int, int]], num_points: int) -> tuple[int, ...]:
    """Build the index permutation that a horizontal flip applies to a landmark set.

    Args:
        pairs: index pairs ``(i, j)`` that swap places; indices not in any pair map to themselves.
        num_points: the number of landmarks ``N``.

    Returns:
        A tuple ``perm`` of length ``N`` such that ``flipped_landmarks = landmarks[:, perm]``.

    Raises:
        ValueError: an index is out of range or appears in more than one pair.

    Examples:
        >>> flip_index_from_pairs([(0, 2)], 4)
        (2, 1, 0, 3)
    """
    perm = list(range(num_points))
    seen: set[int] = set()
    for i, j in pairs:
        for k in (i, j):
            if not 0 <= k < num_points:
                raise ValueError(f"mirror pair ({i}, {j}): index {k} outside 0..{num_points - 1}")
            if k in seen:
                raise ValueError(f"mirror pair ({i}, {j}): index {k} appears in more than one pair")
            seen.add(k)
        perm[i], perm[j] = j, i
    return tuple(perm)


FLIP_INDEX_68: tuple[int, ...] = flip_index_from_pairs(MIRROR_PAIRS, 68)
"""``landmarks[:, FLIP_INDEX_68]`` relabels a mirrored 68-point set (an involution on 0..67)."""


@dataclass(frozen=True)
class LabelMapGroup:
    """One label map: which landmarks it is drawn from, and how.

    Args:
        name: a name for the map (used in figures and error messages).
        indices: landmark indices, in drawing order along the outline or stroke.
        kind: ``"polygon"`` fills the closed outline through the points (even-odd rule);
            ``"polyline"`` draws the open stroke through them.
        thickness: stroke width in output pixels. A polyline covers every point within
            ``thickness / 2`` of its segments (a single index draws a disc); for a polygon a
            positive thickness adds that stroke around the outline, so a collapsed outline
            (a closed eye) still draws a line, and ``0`` is a pure fill.

    Examples:
        >>> LabelMapGroup("left_eye", range(36, 42), "polygon", thickness=1.0).indices
        (36, 37, 38, 39, 40, 41)
    """

    name: str
    indices: tuple[int, ...]
    kind: Literal["polygon", "polyline"] = "polyline"
    thickness: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
        if len(self.indices) == 0:
            raise ValueError(f"label map group {self.name!r}: indices is empty")
        if min(self.indices) < 0:
            raise ValueError(f"label map group {self.name!r}: negative index {min(self.indices)}")
        if self.kind not in ("polygon", "polyline"):
            raise ValueError(
                f"label map group {self.name!r}: kind must be 'polygon' or 'polyline', "
                f"got {self.kind!r}"
            )
        if not math.isfinite(self.thickness) or self.thickness < 0:
            raise ValueError(
                f"label map group {self.name!r}: thickness must be finite and >= 0, "
                f"got {self.thickness}"
            )
        if self.kind == "polyline" and self.thickness == 0:
            raise ValueError(f"label map group {self.name!r}: a polyline needs thickness > 0")
        if self.kind == "polygon" and len(self.indices) < 3 and self.thickness == 0:
            raise ValueError(
                f"label map group {self.name!r}: a polygon needs >= 3 points or thickness > 0"
            )


# Brow thickness: FER2013 brows are 2-4 px thick at 48x48; 3 px matches the paper's Fig. 2.
PAPER_GROUPS: tuple[LabelMapGroup, ...] = (
    LabelMapGroup("left_brow", LEFT_BROW, "polyline", thickness=3.0),
    LabelMapGroup("right_brow", RIGHT_BROW, "polyline", thickness=3.0),
    LabelMapGroup("mouth", OUTER_LIP, "polygon", thickness=0.0),
)
"""The paper's maps: image-left brow 17-21, image-right brow 22-26, mouth (outer lip, filled)."""

FACE_GROUPS: tuple[LabelMapGroup, ...] = PAPER_GROUPS + (
    LabelMapGroup("left_eye", LEFT_EYE, "polygon", thickness=1.0),
    LabelMapGroup("right_eye", RIGHT_EYE, "polygon", thickness=1.0),
    LabelMapGroup("nose", NOSE[:4] + (33,), "polyline", thickness=2.0),
    LabelMapGroup("jaw", JAW, "polyline", thickness=2.0),
)
"""The paper's maps, eyes (filled), nose ridge, jaw; mirror channels ``(1, 0, 2, 4, 3, 5, 6)``."""


def mirror_channels(
    groups: Sequence[LabelMapGroup], flip_index: Sequence[int] = FLIP_INDEX_68
) -> tuple[int, ...]:
    """The label-map channel permutation of a horizontal flip, derived from the groups.

    A mirrored face draws group ``k``'s map from the points ``flip_index[i]`` for ``i`` in its
    indices, which is the point set of some group ``m`` (the brows swap, the mouth maps to itself):
    channel ``k`` of a mirrored sample must be read from channel ``m``.

    Args:
        groups: the label maps, in channel order.
        flip_index: the landmark permutation of a flip (:data:`FLIP_INDEX_68` for 68 points).

    Returns:
        ``perm`` with ``maps[:, perm]`` the channel order after a flip (an involution).

    Raises:
        ValueError: a group whose mirror image is none of the groups (give its mirror group
            too, or draw it from a symmetric point set).

    Examples:
        >>> mirror_channels(PAPER_GROUPS)
        (1, 0, 2)
        >>> mirror_channels(FACE_GROUPS)
        (1, 0, 2, 4, 3, 5, 6)
    """
    sets = [frozenset(g.indices) for g in groups]
    perm = []
    for k, group in enumerate(groups):
        if max(group.indices) >= len(flip_index):
            raise ValueError(
                f"label map group {group.name!r} uses index {max(group.indices)} but flip_index "
                f"has {len(flip_index)} points"
            )
        mirrored = frozenset(int(flip_index[i]) for i in group.indices)
        match = [m for m, s in enumerate(sets) if s == mirrored]
        if not match:
            raise ValueError(
                f"label map group {group.name!r} (channel {k}): its mirror image "
                f"{sorted(mirrored)} is not the point set of any group; add that group or "
                "use a symmetric one"
            )
        perm.append(match[0])
    return tuple(perm)


def _segment_distance2(
    px: torch.Tensor, py: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """Squared distance of grid points (B, h, w) to segments a->b given as (B, 2)."""
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]
    dx, dy = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
    len2 = (dx * dx + dy * dy).clamp_min(1e-12)  # a degenerate segment is a point
    t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0)
    ex, ey = px - ax - t * dx, py - ay - t * dy
    return ex * ex + ey * ey


def _draw_group(
    pts: torch.Tensor,
    group: LabelMapGroup,
    height: int,
    width: int,
    samples: int,
    thickness_scale: torch.Tensor,
) -> torch.Tensor:
    """Coverage (B, H, W) of one group, computed inside one window that holds it in every sample."""
    batch, dtype, device = pts.shape[0], pts.dtype, pts.device
    half = (group.thickness / 2.0) * thickness_scale  # (B,)
    # Window: the group's bounding box (plus stroke and a pixel of margin) clipped to the image;
    # one window size for the whole batch keeps the computation a dense batched tensor op.
    lo = pts.amin(dim=1) - half[:, None] - 1.0
    hi = pts.amax(dim=1) + half[:, None] + 1.0
    x0 = lo[:, 0].floor().clamp(0, width - 1).long()
    y0 = lo[:, 1].floor().clamp(0, height - 1).long()
    x1 = hi[:, 0].ceil().clamp(0, width - 1).long()
    y1 = hi[:, 1].ceil().clamp(0, height - 1).long()
    win_w = int((x1 - x0).max().item()) + 1
    win_h = int((y1 - y0).max().item()) + 1
    x0 = torch.minimum(x0, torch.full_like(x0, width - win_w))
    y0 = torch.minimum(y0, torch.full_like(y0, height - win_h))

    # Sub-sample positions: `samples` x `samples` per pixel, centred in the pixel's square.
    sub = (torch.arange(samples, device=device, dtype=dtype) + 0.5) / samples - 0.5
    cols = x0[:, None].to(dtype) + torch.arange(win_w, device=device, dtype=dtype)[None, :]
    rows = y0[:, None].to(dtype) + torch.arange(win_h, device=device, dtype=dtype)[None, :]
    sx = (cols[:, :, None] + sub).reshape(batch, 1, win_w * samples)  # (B, 1, w*s)
    sy = (rows[:, :, None] + sub).reshape(batch, win_h * samples, 1)  # (B, h*s, 1)

    inside = torch.zeros(batch, win_h * samples, win_w * samples, dtype=torch.bool, device=device)
    n = pts.shape[1]
    if group.kind == "polygon" and n >= 3:
        # Even-odd rule: count crossings of a ray towards +x with each edge.
        for k in range(n):
            a, b = pts[:, k], pts[:, (k + 1) % n]
            ay, by = a[:, 1, None, None], b[:, 1, None, None]
            ax, bx = a[:, 0, None, None], b[:, 0, None, None]
            spans = (ay > sy) != (by > sy)
            x_cross = ax + (bx - ax) * (sy - ay) / torch.where(by == ay, 1.0, by - ay)
            # Rows the edge does not span get -inf: one comparison on the full grid per edge.
            x_cross = torch.where(spans, x_cross, float("-inf"))
            inside ^= sx < x_cross
    if group.kind == "polyline" or group.thickness > 0:
        closed = group.kind == "polygon" and n >= 3
        seg_ends = [(k, k + 1) for k in range(n - 1)] + ([(n - 1, 0)] if closed else [])
        if not seg_ends:
            seg_ends = [(0, 0)]
        lim2 = (half * half)[:, None, None]
        for i, j in seg_ends:
            inside |= _segment_distance2(sx, sy, pts[:, i], pts[:, j]) <= lim2

    cover = inside.to(dtype).reshape(batch, win_h, samples, win_w, samples).mean(dim=(2, 4))
    out = torch.zeros(batch, height, width, dtype=dtype, device=device)
    b_idx = torch.arange(batch, device=device)[:, None, None]
    r_idx = (y0[:, None] + torch.arange(win_h, device=device))[:, :, None]
    c_idx = (x0[:, None] + torch.arange(win_w, device=device))[:, None, :]
    out[b_idx, r_idx, c_idx] = cover
    return out


def _drawable(
    landmarks: torch.Tensor, used: Sequence[int], valid: torch.Tensor | None, caller: str
) -> torch.Tensor:
    """Which samples get maps: ``valid`` (if given) and finite in every ``used`` landmark.

    NaN rows not already marked invalid are counted in a ``UserWarning`` naming ``caller``.
    """
    batch = landmarks.shape[0]
    finite = torch.isfinite(landmarks[:, list(used)]).all(dim=(1, 2))
    if valid is None:
        keep, surprise = finite, int((~finite).sum())
    else:
        valid = torch.as_tensor(valid, device=landmarks.device)
        if valid.shape != (batch,):
            raise ValueError(f"valid must have shape ({batch},), got {tuple(valid.shape)}")
        keep = finite & valid.bool()
        surprise = int((~finite & valid.bool()).sum())
    if surprise:
        warnings.warn(
            f"{caller}: {surprise} of {batch} samples have NaN/inf landmarks "
            "and are drawn as empty maps (mark them with valid=False to silence this)",
            stacklevel=3,
        )
    return keep


@torch.no_grad()
def landmarks_to_label_maps(
    landmarks: torch.Tensor,
    size: int | Sequence[int],
    groups: Sequence[LabelMapGroup] = PAPER_GROUPS,
    valid: torch.Tensor | None = None,
    *,
    samples: int = 4,
    thickness_scale: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Draw anti-aliased label maps (one per group) from batched landmarks.

    Each pixel's value is the fraction of its ``samples x samples`` sub-samples that fall inside
    the group's shape (supersampling), so sub-pixel landmark positions move the maps and every
    value is a multiple of ``1 / samples**2`` in [0, 1]. Polylines cover points within
    ``thickness / 2`` of a segment; polygons are filled with the even-odd rule. The work is done
    in a per-group window around the landmarks, batched, on the landmarks' device.

    Samples with ``valid == False``, and samples with a NaN or inf in any landmark the groups
    use, get all-zero maps. NaN samples are treated as invalid rather than rejected because NaN
    rows are how missing detections are stored; those not already marked invalid by ``valid``
    are counted in a ``UserWarning``.

    Args:
        landmarks: (x, y) pixel coordinates, pixel centres at integers. Any number of points
            ``N`` works as long as ``N > max(index)`` over the groups (68 for the paper's).
        size: output ``(height, width)`` or one int for a square map.
        groups: the maps to draw, in channel order.
        valid: optional bool mask; ``False`` marks samples without landmarks.
        samples: sub-samples per pixel side (anti-aliasing quality; 1 gives binary maps).
        thickness_scale: multiplies every group's thickness, one float or a (B,) tensor; pass
            the zoom factor of an augmentation so strokes scale with the face.

    Shape:
        - landmarks: :math:`(B, N, 2)`
        - valid: :math:`(B,)`
        - output: :math:`(B, K, H, W)`, ``K = len(groups)``

    Returns:
        Float maps in [0, 1] with the landmarks' dtype (float32 for integer landmarks).

    Examples:
        >>> lm = torch.zeros(1, 68, 2)
        >>> lm[0, 17:22] = torch.tensor([[10.0, 12], [13, 10], [16, 9], [19, 10], [21, 12]])
        >>> lm[0, 22:27] = torch.tensor([[26.0, 12], [28, 10], [31, 9], [34, 10], [37, 12]])
        >>> t = torch.linspace(0, 2 * torch.pi, 13)[:-1]
        >>> lm[0, 48:60] = torch.stack([23.5 - 8 * t.cos(), 36 + 4 * t.sin()], dim=1)
        >>> maps = landmarks_to_label_maps(lm, 48)
        >>> maps.shape
        torch.Size([1, 3, 48, 48])
        >>> bool(maps[0, 0, 10, 16] == 1.0), bool(maps[0, 0, 40, 40] == 0.0)
        (True, True)
    """
    if not isinstance(landmarks, torch.Tensor):
        raise TypeError(f"landmarks must be a torch.Tensor, got {type(landmarks).__name__}")
    groups = tuple(groups)
    if not groups:
        raise ValueError("groups is empty: give at least one LabelMapGroup")
    for g in groups:
        if not isinstance(g, LabelMapGroup):
            raise TypeError(f"groups must hold LabelMapGroup objects, got {type(g).__name__}")
    needed = max(max(g.indices) for g in groups) + 1
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2 or landmarks.shape[1] < needed:
        culprit = max(groups, key=lambda g: max(g.indices))
        raise ValueError(
            f"landmarks must be (B, N, 2) with N >= {needed} (group {culprit.name!r} uses index "
            f"{needed - 1}); got shape {tuple(landmarks.shape)}"
        )
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    height, width = size_pair(size)
    batch = landmarks.shape[0]
    dtype = landmarks.dtype if landmarks.is_floating_point() else torch.float32
    device = landmarks.device
    landmarks = landmarks.to(dtype)

    used = sorted({i for g in groups for i in g.indices})
    keep = _drawable(landmarks, used, valid, "landmarks_to_label_maps")

    if isinstance(thickness_scale, torch.Tensor):
        scale = thickness_scale.to(device=device, dtype=dtype).expand(batch)
    else:
        scale = torch.full((batch,), float(thickness_scale), device=device, dtype=dtype)
    if not torch.isfinite(scale).all() or (scale < 0).any():
        raise ValueError("thickness_scale must be finite and >= 0")

    maps = landmarks.new_zeros(batch, len(groups), height, width)
    if batch == 0 or not bool(keep.any()):
        return maps
    idx = keep.nonzero().squeeze(1)
    clean = landmarks[idx]
    for k, g in enumerate(groups):
        pts = clean[:, list(g.indices)]
        maps[idx, k] = _draw_group(pts, g, height, width, samples, scale[idx])
    return maps


@torch.no_grad()
def landmarks_to_heatmaps(
    landmarks: torch.Tensor,
    size: int | Sequence[int],
    sigma: float = 1.5,
    groups: Sequence[LabelMapGroup] | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gaussian heatmaps, one per landmark or one per group, from batched sub-pixel landmarks.

    Each landmark ``(x, y)`` gives ``exp(-((j - x)^2 + (i - y)^2) / (2 sigma^2))`` at pixel
    ``(i, j)`` (peak 1 at the landmark, pixel centres at integers as in
    :func:`landmarks_to_label_maps`); a group's map is the pixel-wise maximum over its landmarks.
    A soft target for the ``"mse"`` and ``"focal"`` map losses. Mirroring is handled where the
    landmarks are re-indexed (:class:`~mtl_heads.augmentation.AlignedAugmentation` with
    ``flip_index``): heatmaps drawn from flipped, re-indexed landmarks are already the flipped
    heatmaps with their channels (68 points, or left/right groups) swapped.

    Samples with ``valid == False`` or with NaN/inf in a used landmark get all-zero maps (NaN
    rows not already marked invalid are counted in a ``UserWarning``, as in
    :func:`landmarks_to_label_maps`).

    Args:
        landmarks: ``(B, N, 2)`` (x, y) pixel coordinates.
        size: output ``(height, width)`` or one int.
        sigma: Gaussian standard deviation in pixels, > 0.
        groups: ``None`` for one channel per landmark (``N`` channels); otherwise one channel
            per :class:`LabelMapGroup`, the maximum over its ``indices``.
        valid: optional ``(B,)`` bool; ``False`` marks samples without landmarks.

    Shape:
        - output: :math:`(B, N, H, W)` or :math:`(B, K, H, W)`

    Returns:
        Float heatmaps in [0, 1].

    Examples:
        >>> lm = torch.tensor([[[2.0, 1.0], [0.5, 3.0]]])
        >>> h = landmarks_to_heatmaps(lm, (4, 5), sigma=1.0)
        >>> h.shape, float(h[0, 0, 1, 2])
        (torch.Size([1, 2, 4, 5]), 1.0)
        >>> group = LabelMapGroup("both", (0, 1))
        >>> landmarks_to_heatmaps(lm, (4, 5), sigma=1.0, groups=[group]).shape
        torch.Size([1, 1, 4, 5])
        >>> landmarks_to_heatmaps(lm, 4, sigma=0.0)
        Traceback (most recent call last):
          ...
        ValueError: sigma must be a finite number > 0, got 0.0
    """
    if not isinstance(landmarks, torch.Tensor):
        raise TypeError(f"landmarks must be a torch.Tensor, got {type(landmarks).__name__}")
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must be (B, N, 2), got shape {tuple(landmarks.shape)}")
    height, width = size_pair(size)
    batch, n = landmarks.shape[:2]
    if groups is not None:
        groups = tuple(groups)
        if not groups:
            raise ValueError("groups is empty: give at least one LabelMapGroup, or None")
        needed = max(max(g.indices) for g in groups) + 1
        if n < needed:
            raise ValueError(
                f"landmarks must have N >= {needed} points for these groups, got {n}"
            )
        used = sorted({i for g in groups for i in g.indices})
    else:
        used = list(range(n))
    dtype = landmarks.dtype if landmarks.is_floating_point() else torch.float32
    device = landmarks.device
    pts = landmarks.to(dtype)
    keep = _drawable(pts, used, valid, "landmarks_to_heatmaps")
    pts = torch.where(keep[:, None, None], pts, torch.zeros((), dtype=dtype, device=device))
    xs = torch.arange(width, dtype=dtype, device=device)
    ys = torch.arange(height, dtype=dtype, device=device)
    # separable Gaussian: (B, N, H, 1) * (B, N, 1, W)
    gx = torch.exp(-((xs - pts[..., 0, None]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ys - pts[..., 1, None]) ** 2) / (2 * sigma**2))
    heat = gy[..., :, None] * gx[..., None, :]
    if groups is not None:
        heat = torch.stack([heat[:, list(g.indices)].amax(dim=1) for g in groups], dim=1)
    return heat * keep[:, None, None, None].to(dtype)

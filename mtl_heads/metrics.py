"""Metrics of the auxiliary label-map task, each reported beside a face-blind prior's score.

A head that predicts the same map for every face (the training set's mean map, the *prior*)
already scores something: the mouth sits in roughly the same place in every FER2013 crop.
A label-map head only localises brows and mouth where it beats that prior, so
:class:`LabelMapMetrics` scores the prior on the same images with the same metrics:

- **IoU** at :math:`p > 1/2` against the target map thresholded at 1/2, pooled over the
  images (total intersection over total union, per map);
- **soft IoU**, :math:`\\sum p t / \\sum (p + t - p t)` pooled the same way, which rewards a
  confident correct map and needs no threshold;
- **NME**, the distance between the predicted map's soft-argmax (the expectation of the pixel
  positions under the spatial softmax of the logits) and the target map's centroid, divided by
  the inter-ocular distance (outer eye corners, landmarks 36 and 45, as 300-W reports it),
  averaged over the images.
"""

import copy
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "LabelMapMetrics",
    "inter_ocular_distance",
    "label_map_prior",
    "map_centroids",
    "soft_argmax",
]


def label_map_prior(maps: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """The mean map ``(K, H, W)`` of a set of target maps: the face-blind predictor.

    Args:
        maps: ``(B, K, H, W)`` target maps of the valid training images, or an iterable of such
            chunks (summed chunk by chunk, so a large training set need not fit at once: pass a
            generator that draws each chunk).

    Returns:
        The pixel-wise mean ``(K, H, W)`` in [0, 1]; the input of
        :meth:`~mtl_heads.heads.LabelMapHead.init_prior` and of :class:`LabelMapMetrics`.

    Examples:
        >>> maps = torch.zeros(4, 1, 2, 2)
        >>> maps[:3, 0, 0, 0] = 1.0
        >>> label_map_prior(maps)[0].tolist()
        [[0.75, 0.0], [0.0, 0.0]]
    """
    total, count = None, 0
    for c in [maps] if isinstance(maps, torch.Tensor) else maps:  # one chunk in memory at a time
        if c.ndim != 4:
            raise ValueError("maps must be (B, K, H, W) or a non-empty sequence of such chunks")
        part = c.sum(0, dtype=torch.float64)
        total = part if total is None else total + part
        count += c.shape[0]
    if total is None:
        raise ValueError("maps must be (B, K, H, W) or a non-empty sequence of such chunks")
    if count == 0:
        raise ValueError("label_map_prior: no maps given (no valid training image?)")
    return (total / count).float()


def inter_ocular_distance(landmarks: torch.Tensor) -> torch.Tensor:
    """Distance between the outer eye corners (68-point indices 36 and 45), ``(B,)``.

    Examples:
        >>> lm = torch.zeros(1, 68, 2)
        >>> lm[0, 45, 0] = 20.0
        >>> inter_ocular_distance(lm)
        tensor([20.])
    """
    if landmarks.ndim != 3 or landmarks.shape[1] < 46 or landmarks.shape[2] != 2:
        raise ValueError(
            f"landmarks must be (B, 68, 2) (indices 36 and 45 are read), got "
            f"{tuple(landmarks.shape)}"
        )
    return (landmarks[:, 45] - landmarks[:, 36]).norm(dim=1)


def _grid(h: int, w: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(h, dtype=like.dtype, device=like.device)
    xs = torch.arange(w, dtype=like.dtype, device=like.device)
    return xs, ys


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) pixel position under each map's spatial softmax, ``(B, K, 2)``.

    Examples:
        >>> logits = torch.full((1, 1, 5, 5), -50.0)
        >>> logits[0, 0, 1, 3] = 50.0
        >>> soft_argmax(logits)
        tensor([[[3., 1.]]])
    """
    b, k, h, w = logits.shape
    prob = torch.softmax(logits.float().flatten(2), dim=2).view(b, k, h, w)
    xs, ys = _grid(h, w, prob)
    return torch.stack([(prob.sum(2) * xs).sum(2), (prob.sum(3) * ys).sum(2)], dim=2)


def map_centroids(maps: torch.Tensor) -> torch.Tensor:
    """Centroid (x, y) of each map's mass, ``(B, K, 2)``; NaN for an empty map.

    Examples:
        >>> maps = torch.zeros(1, 1, 4, 4)
        >>> maps[0, 0, 2, 1:3] = 1.0
        >>> map_centroids(maps)
        tensor([[[1.5000, 2.0000]]])
    """
    b, k, h, w = maps.shape
    m = maps.float()
    mass = m.sum((2, 3))
    xs, ys = _grid(h, w, m)
    cx = (m.sum(2) * xs).sum(2) / mass
    cy = (m.sum(3) * ys).sum(2) / mass
    return torch.stack([cx, cy], dim=2)


class LabelMapMetrics:
    """Accumulates IoU, soft IoU and NME of predicted label maps, and of a face-blind prior.

    Args:
        names: one name per map, in channel order (e.g. ``[g.name for g in PAPER_GROUPS]``).
        prior: optional ``(K, H, W)`` mean training map (:func:`label_map_prior`); when given,
            :meth:`compute` also reports the prior's scores under ``"prior"``.
        threshold: probability above which a pixel counts as foreground for the IoU (the
            target maps are thresholded at the same value).

    Examples:
        >>> target = torch.zeros(2, 1, 8, 8)
        >>> target[:, 0, 2:4, 2:4] = 1.0
        >>> logits = (target * 2 - 1) * 10  # a perfect prediction
        >>> m = LabelMapMetrics(["mouth"], prior=target.mean(0) * 0.4)
        >>> m.update(logits, target, landmarks=None)
        >>> res = m.compute()
        >>> res["iou"]["mouth"], res["prior"]["iou"]["mouth"]
        (1.0, 0.0)
        >>> round(res["nme"]["mouth"], 3)  # no landmarks: normalised by the image diagonal
        0.0
    """

    def __init__(
        self, names: Sequence[str], prior: torch.Tensor | None = None, threshold: float = 0.5
    ) -> None:
        self.names = [str(n) for n in names]
        if not self.names:
            raise ValueError("names is empty: give one name per label map")
        if prior is not None and (prior.ndim != 3 or prior.shape[0] != len(self.names)):
            raise ValueError(
                f"prior must be (K, H, W) with K = {len(self.names)} maps, got "
                f"{tuple(prior.shape)}"
            )
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.threshold = float(threshold)
        self.prior_logits = None
        if prior is not None:
            p = prior.detach().cpu().double().clamp(1e-4, 1 - 1e-4)
            self.prior_logits = torch.logit(p).float()
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        k = len(self.names)
        self._sums = {
            key: torch.zeros(k, dtype=torch.float64)
            for src in ("model", "prior")
            for key in (f"{src}_inter", f"{src}_union", f"{src}_soft_inter", f"{src}_soft_union",
                        f"{src}_nme")
        }
        self._count = torch.zeros(k, dtype=torch.float64)

    @torch.no_grad()
    def update(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        valid: torch.Tensor | None = None,
        landmarks: torch.Tensor | None = None,
    ) -> None:
        """Add a batch.

        Args:
            logits: ``(B, K, H, W)`` predicted label-map logits.
            target: ``(B, K, H, W)`` target maps in [0, 1].
            valid: ``(B,)`` bool, images whose maps count (default all).
            landmarks: ``(B, 68, 2)`` landmarks in the maps' pixel coordinates, for the
                inter-ocular normalisation of the NME; ``None`` normalises by the image diagonal.
        """
        k = len(self.names)
        if logits.ndim != 4 or logits.shape[1] != k:
            raise ValueError(
                f"logits must be (B, {k}, H, W) for the {k} maps {self.names}, got "
                f"{tuple(logits.shape)}"
            )
        if target.shape != logits.shape:
            raise ValueError(
                f"target must have the logits' shape {tuple(logits.shape)}, got "
                f"{tuple(target.shape)}"
            )
        b, _, h, w = logits.shape
        keep = torch.ones(b, dtype=torch.bool) if valid is None else valid.detach().cpu().bool()
        if keep.shape != (b,):
            raise ValueError(f"valid must be ({b},), got {tuple(keep.shape)}")
        if not bool(keep.any()):
            return
        logits = logits.detach().float().cpu()[keep]
        target = target.detach().float().cpu()[keep]
        # empty targets (a feature cropped away) have no centroid: left out of the NME
        has_mass = target.sum((2, 3)) > 0
        if landmarks is None:
            norm = torch.full((int(keep.sum()),), float(h * h + w * w) ** 0.5)
        else:
            norm = inter_ocular_distance(landmarks.detach().float().cpu()[keep]).clamp_min(1e-6)
        centre = map_centroids(target)
        sources = {"model": logits}
        if self.prior_logits is not None:
            if tuple(self.prior_logits.shape[1:]) != (h, w):
                raise ValueError(
                    f"the prior is {tuple(self.prior_logits.shape[1:])} but the maps are {(h, w)}"
                )
            sources["prior"] = self.prior_logits[None].expand_as(logits)
        hard_t = target > self.threshold
        for src, lg in sources.items():
            p = torch.sigmoid(lg)
            hit = p > self.threshold
            s = self._sums
            s[f"{src}_inter"] += (hit & hard_t).sum((0, 2, 3)).double()
            s[f"{src}_union"] += (hit | hard_t).sum((0, 2, 3)).double()
            s[f"{src}_soft_inter"] += (p * target).sum((0, 2, 3)).double()
            s[f"{src}_soft_union"] += (p + target - p * target).sum((0, 2, 3)).double()
            err = (soft_argmax(lg) - centre).norm(dim=2) / norm[:, None]
            s[f"{src}_nme"] += torch.where(has_mass, err, 0.0).sum(0).double()
        self._count += has_mass.sum(0).double()

    def merged(self, other: "LabelMapMetrics") -> "LabelMapMetrics":
        """A new accumulator holding this one's sums plus ``other``'s: the scores of the two
        sets of images together (e.g. a test set scored from its parts), without re-running them.

        Args:
            other: an accumulator over the same map names (and the same prior, if any).

        Returns:
            A new :class:`LabelMapMetrics`; neither input changes.

        Examples:
            >>> full = torch.zeros(1, 1, 4, 4)
            >>> full[..., 1:3, 1:3] = 1.0
            >>> a, b = LabelMapMetrics(["mouth"]), LabelMapMetrics(["mouth"])
            >>> a.update(full * 20 - 10, full)  # a perfect map
            >>> b.update(-10 * torch.ones(1, 1, 4, 4), full)  # an empty one
            >>> a.merged(b).compute()["iou"]["mouth"]
            0.5
        """
        if other.names != self.names or other.threshold != self.threshold:
            raise ValueError(
                f"cannot merge metrics of maps {other.names} (threshold {other.threshold}) into "
                f"{self.names} (threshold {self.threshold})"
            )
        if (self.prior_logits is None) != (other.prior_logits is None) or (
            self.prior_logits is not None
            and other.prior_logits is not None
            and not torch.equal(self.prior_logits, other.prior_logits)
        ):
            raise ValueError("cannot merge metrics measured against different priors")
        out = copy.copy(self)
        out._sums = {k: v + other._sums[k] for k, v in self._sums.items()}
        out._count = self._count + other._count
        return out

    def compute(self) -> dict:
        """Scores so far: ``{"iou", "soft_iou", "nme"}`` per map name, their ``*_mean`` over the
        maps, and the same under ``"prior"`` when a prior was given."""

        def block(src: str) -> dict:
            s = self._sums
            out = {
                "iou": (s[f"{src}_inter"] / s[f"{src}_union"].clamp_min(1)).tolist(),
                "soft_iou": (s[f"{src}_soft_inter"] / s[f"{src}_soft_union"].clamp_min(1e-12))
                .tolist(),
                "nme": (s[f"{src}_nme"] / self._count.clamp_min(1)).tolist(),
            }
            res: dict = {}
            for key, vals in out.items():
                res[key] = dict(zip(self.names, vals, strict=True))
                res[f"{key}_mean"] = sum(vals) / len(vals)
            return res

        result = block("model")
        if self.prior_logits is not None:
            result["prior"] = block("prior")
        return result

r"""The masked multi-task loss of DeVries et al. 2014, Eq. (1)-(3), as a function and a module.

.. math::

    C = C_e + \lambda\, C_l, \qquad
    C_l = \frac{1}{B} \sum_{n=1}^{B} v_n \cdot \frac{1}{K H W} \sum_{k,i,j}
          \mathrm{BCE}\big(\sigma(\hat y_{nkij}), y_{nkij}\big)

where :math:`C_e` is the cross-entropy of the class logits (mean over the samples that have a
label), :math:`v_n \in \{0, 1\}` marks the samples whose label maps are valid
(``targets["label_maps_valid"]``; in the paper, the landmark detector found a face), and the
label-map term is divided by the batch size :math:`B`, not by the
number of valid samples (the paper's normalisation; ``label_map_reduction="valid"`` divides by
:math:`\sum_n v_n` instead).

The per-image map term is chosen by name (``map_loss=``); every form is masked by :math:`v_n`
in the same way:

- ``"paper_eq2"`` (default): the equation above, BCE averaged over all :math:`K H W` units.
- ``"paper_text"``: the paper's text, "the sum over the per-pixel cross-entropy errors for each
  output map": BCE summed over each map's pixels, averaged over the :math:`K` maps, i.e.
  :math:`H W` times ``"paper_eq2"`` (1,764 at 42 x 42). Which of the two the authors ran is not
  known; at the same :math:`\lambda` they differ only by that factor.
- ``"balanced_bce"``: BCE with the foreground up-weighted by ``pos_weight = (1 - f) / f``, where
  ``f`` is each map's foreground fraction in the batch's valid maps, averaged over the units.
- ``"dice"``: soft Dice per map, :math:`1 - (2\sum p t + 1) / (\sum p + \sum t + 1)`, averaged
  over the maps (:math:`p = \sigma(\hat y)`); scale-free, so small maps (brows) count as much
  as large ones.
- ``"bce_dice"``: ``"paper_eq2"`` plus ``"dice"``.
- ``"mse"``: :math:`(p - t)^2` averaged over the units, for soft targets (Gaussian heatmaps).
- ``"focal"``: the quality focal loss of soft targets (Li et al. 2020),
  :math:`|t - p|^{2}\,\mathrm{BCE}(p, t)` summed over each map's pixels and divided by the map's
  target mass :math:`\max(\sum t, 1)`, averaged over the maps.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MAP_LOSSES", "MaskedMultiTaskLoss", "label_map_loss", "masked_multitask_loss"]

IGNORE_INDEX = -100
# The maps' validity v_n. A face data set's items say whether landmarks were found
# ("landmarks_valid"); its maps are drawn from those landmarks, so they are valid exactly where
# the landmarks are, and a face batch feeds the loss as it is, under its own key.
_VALID_KEYS = ("label_maps_valid", "landmarks_valid")
_REDUCTIONS = ("batch", "valid")
MAP_LOSSES = ("paper_eq2", "paper_text", "balanced_bce", "dice", "bce_dice", "mse", "focal")
_WEIGHTINGS = ("fixed", "uncertainty")


def _check_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    b, c = logits.shape
    if labels.ndim == 1:
        if labels.shape[0] != b:
            raise ValueError(
                f"targets['label'] has {labels.shape[0]} entries but the batch has {b}"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise TypeError(
                f"targets['label'] of shape (B,) must hold integer class ids, got {labels.dtype}"
            )
        bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= c))
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"targets['label'][{i}] = {int(labels[i])} is not a class id in [0, {c}) "
                f"nor {IGNORE_INDEX} (missing)"
            )
    elif labels.ndim == 2:
        if tuple(labels.shape) != (b, c):
            raise ValueError(
                f"soft targets['label'] must be (B, C) = {(b, c)} like the logits, got "
                f"{tuple(labels.shape)}"
            )
        if not labels.dtype.is_floating_point:
            raise TypeError(
                f"soft targets['label'] (B, C) must be float probabilities, got {labels.dtype}"
            )
        if torch.isnan(labels).any():
            i = int(torch.isnan(labels).any(1).nonzero()[0, 0])
            raise ValueError(f"targets['label'] row {i} contains NaN")
        if ((labels < 0) | (labels > 1)).any():
            raise ValueError(
                f"soft targets['label'] must lie in [0, 1], got range "
                f"[{labels.min().item():.4g}, {labels.max().item():.4g}]"
            )
    else:
        raise ValueError(
            "targets['label'] must be (B,) class ids or (B, C) probabilities, got shape "
            f"{tuple(labels.shape)}"
        )


def _check_label_maps(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, valid_key: str
) -> None:
    if target.ndim != 4:
        raise ValueError(
            f"targets['label_maps'] must be (B, K, H, W), got shape {tuple(target.shape)}"
        )
    if target.shape[0] != pred.shape[0]:
        raise ValueError(
            f"targets['label_maps'] has {target.shape[0]} samples but the batch has {pred.shape[0]}"
        )
    if target.shape[1] != pred.shape[1]:
        raise ValueError(
            f"targets['label_maps'] has K={target.shape[1]} maps but the model predicts "
            f"K={pred.shape[1]}"
        )
    if target.shape[2:] != pred.shape[2:]:
        raise ValueError(
            f"targets['label_maps'] are {target.shape[2]}x{target.shape[3]} but the predicted "
            "label maps "
            f"are {pred.shape[2]}x{pred.shape[3]} (draw the maps at the model's input size)"
        )
    if valid.ndim != 1 or valid.shape[0] != pred.shape[0]:
        raise ValueError(
            f"targets[{valid_key!r}] must be (B,) = ({pred.shape[0]},), got {tuple(valid.shape)}"
        )
    if valid.dtype != torch.bool:
        if valid.is_floating_point() and torch.isnan(valid).any():
            raise ValueError(f"targets[{valid_key!r}] contains NaN; expected bool or 0/1")
        if ((valid != 0) & (valid != 1)).any():
            i = int(((valid != 0) & (valid != 1)).nonzero()[0, 0])
            raise ValueError(
                f"targets[{valid_key!r}] must be bool (or 0/1), got {valid[i].item()} at "
                f"index {i}"
            )
    checked = target[valid.bool()]
    if checked.numel():
        if not checked.is_floating_point():
            raise TypeError(f"targets['label_maps'] must be float in [0, 1], got {target.dtype}")
        nan = torch.isnan(checked)
        if nan.any():
            i = int(valid.bool().nonzero()[nan.flatten(1).any(1).nonzero()[0, 0], 0])
            raise ValueError(
                f"targets['label_maps'][{i}] contains NaN although {valid_key}[{i}] is True"
            )
        if ((checked < 0) | (checked > 1)).any():
            raise ValueError(
                f"targets['label_maps'] must lie in [0, 1], got range "
                f"[{checked.min().item():.4g}, {checked.max().item():.4g}]"
            )


def _cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None, label_smoothing: float
) -> torch.Tensor:
    if labels.ndim == 2:
        return F.cross_entropy(
            logits, labels.to(logits.dtype), weight=weight, label_smoothing=label_smoothing
        )
    per_sample = F.cross_entropy(
        logits,
        labels,
        weight=weight,
        ignore_index=IGNORE_INDEX,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    present = labels != IGNORE_INDEX
    # torch's mean reduction divides by the summed weights of the present labels: 0/0 = NaN when a
    # batch has none, so divide by 1 then (the summed per-sample losses are all zero)
    if weight is None:
        denom = present.sum().to(per_sample.dtype)
    else:
        denom = (weight[labels.clamp_min(0)] * present).sum()
    return per_sample.sum() / torch.where(denom > 0, denom, torch.ones_like(denom))


def _dice(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inter = (prob * target).sum((2, 3))
    return 1.0 - (2.0 * inter + 1.0) / (prob.sum((2, 3)) + target.sum((2, 3)) + 1.0)


def label_map_loss(pred: torch.Tensor, target: torch.Tensor, map_loss: str = "paper_eq2",
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    r"""Per-image label-map loss ``(B,)`` of one of the forms in :data:`MAP_LOSSES`.

    The building block of :func:`masked_multitask_loss` (which masks and averages it); see the
    module docstring for each form's formula.

    Args:
        pred: ``(B, K, H, W)`` label-map logits (pre-sigmoid).
        target: ``(B, K, H, W)`` targets in [0, 1] (binary or soft maps, or heatmaps).
        map_loss: the form's name.
        valid: ``(B,)`` bool; only ``"balanced_bce"`` reads it, to take the foreground fraction
            over the valid maps (default: all).

    Returns:
        ``(B,)`` per-image losses.

    Examples:
        >>> pred = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere
        >>> target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
        >>> label_map_loss(pred, target)  # ln 2 per unit, averaged
        tensor([0.6931])
        >>> label_map_loss(pred, target, "paper_text")  # summed over the 4 pixels
        tensor([2.7726])
        >>> label_map_loss(pred, target, "dice")  # 1 - (2 * 0.5 + 1) / (2 + 1 + 1)
        tensor([0.5000])
    """
    if map_loss not in MAP_LOSSES:
        raise ValueError(f"map_loss must be one of {MAP_LOSSES}, got {map_loss!r}")
    if map_loss in ("paper_eq2", "paper_text", "bce_dice"):
        bce = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        if map_loss == "paper_text":
            return bce.sum((2, 3)).mean(1)
        per_sample = bce.flatten(1).mean(1)
        if map_loss == "bce_dice":
            per_sample = per_sample + _dice(torch.sigmoid(pred), target).mean(1)
        return per_sample
    if map_loss == "balanced_bce":
        keep = torch.ones(pred.shape[0], dtype=torch.bool, device=pred.device)
        if valid is not None:
            keep = valid.bool()
        # foreground fraction of each map over the valid images; clamped so that a map with no
        # foreground in the batch does not get an infinite weight
        frac = (target * keep[:, None, None, None]).sum((0, 2, 3)) / (
            keep.sum().clamp_min(1) * target.shape[2] * target.shape[3]
        )
        frac = frac.clamp(1e-3, 0.5)
        pos_weight = ((1 - frac) / frac)[:, None, None]
        bce = F.binary_cross_entropy_with_logits(
            pred, target, pos_weight=pos_weight.detach(), reduction="none"
        )
        return bce.flatten(1).mean(1)
    prob = torch.sigmoid(pred)
    if map_loss == "dice":
        return _dice(prob, target).mean(1)
    if map_loss == "mse":
        return (prob - target).pow(2).flatten(1).mean(1)
    # focal: quality focal loss, normalised by each map's target mass
    bce = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    focal = (target - prob).abs().pow(2) * bce
    return (focal.sum((2, 3)) / target.sum((2, 3)).clamp_min(1.0)).mean(1)


def masked_multitask_loss(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    *,
    lam: float = 1.0,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | Sequence[float] | None = None,
    label_map_reduction: str = "batch",
    map_loss: str = "paper_eq2",
    log_vars: torch.Tensor | None = None,
    validate: bool = True,
    return_terms: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The paper's loss, Eq. (1)-(3): cross-entropy plus the masked label-map BCE.

    ``C = CE(logits, labels) + lam * (1/B) * sum_n v_n * mean_{k,i,j} BCE(label_maps_n, target_n)``.

    Args:
        outputs: the model's dict: ``"logits"`` ``(B, C)`` and, for multi-task models,
            ``"label_maps"`` ``(B, K, H, W)`` logits. Without ``"label_maps"`` (the baseline) the
            loss is the CE term alone and the target maps are ignored.
        targets: ``"label"``: ``(B,)`` int class ids (``-100`` = missing, skipped) or ``(B, C)``
            class probabilities (FER+ soft labels); ``"label_maps"``: ``(B, K, H, W)`` floats in
            [0, 1] (required when the outputs have label maps); ``"label_maps_valid"``: ``(B,)``
            bool (or 0/1), which samples' maps count, default all. Maps of invalid samples are
            ignored entirely (they may hold anything, NaN included). A face batch's
            ``"landmarks_valid"`` (the data sets' item key) is read as the maps' validity when
            ``"label_maps_valid"`` is absent, so the batch feeds the loss as it is.
        lam: weight lambda of the label-map term (1 in the paper, which found it "not sensitive").
        label_smoothing: passed to the CE term (``F.cross_entropy``), for hard and soft labels.
        class_weight: ``(C,)`` class weights passed to the CE term. With hard labels the CE is
            divided by the summed weights of the labelled samples (torch's weighted mean).
        label_map_reduction: ``"batch"`` divides the label-map term by the batch size B (the
            paper's 1/B, so batches with few valid maps contribute less); ``"valid"`` divides by
            the number of valid samples.
        map_loss: the per-image label-map loss, one of :data:`MAP_LOSSES` (see the module
            docstring): ``"paper_eq2"`` (default, the equation above), ``"paper_text"``,
            ``"balanced_bce"``, ``"dice"``, ``"bce_dice"``, ``"mse"``, ``"focal"``.
        log_vars: ``(2,)`` learnable log-variances ``s = log sigma^2`` of (CE, label maps) for
            uncertainty weighting (Kendall et al. 2018): ``C = exp(-s_e) C_e + s_e / 2 +
            exp(-s_l) C_l + s_l / 2``; the label-map part is dropped (zero gradient) in a batch
            without valid maps. ``None``: fixed weighting with ``lam``.
        validate: check shapes, dtypes and ranges of the targets (a few device syncs); turn off
            only for speed once the data pipeline is trusted.
        return_terms: also return a dict of detached terms for logging: ``"loss"``, ``"ce"``,
            ``"label_maps"`` (the unweighted C_l), ``"num_valid"`` and, with ``log_vars``,
            ``"log_var_ce"``, ``"log_var_label_maps"``.

    Returns:
        The scalar loss, or ``(loss, terms)`` with ``return_terms=True``.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> outputs = {"logits": torch.randn(4, 7), "label_maps": torch.randn(4, 3, 42, 42)}
        >>> targets = {
        ...     "label": torch.tensor([0, 3, -100, 6]),
        ...     "label_maps": torch.rand(4, 3, 42, 42).round(),
        ...     "label_maps_valid": torch.tensor([True, False, True, True]),
        ... }
        >>> loss, terms = masked_multitask_loss(outputs, targets, return_terms=True)
        >>> loss
        tensor(2.7987)
        >>> terms["ce"], terms["label_maps"], terms["num_valid"]
        (tensor(2.1980), tensor(0.6007), tensor(3))
    """
    if label_map_reduction not in _REDUCTIONS:
        raise ValueError(
            f"label_map_reduction must be one of {_REDUCTIONS}, got {label_map_reduction!r}"
        )
    if map_loss not in MAP_LOSSES:
        raise ValueError(f"map_loss must be one of {MAP_LOSSES}, got {map_loss!r}")
    if not isinstance(outputs, Mapping) or "logits" not in outputs:
        raise TypeError("outputs must be the model's dict with a 'logits' entry")
    if not isinstance(targets, Mapping) or "label" not in targets:
        raise TypeError("targets must be a dict with a 'label' entry")
    logits = outputs["logits"]
    if logits.ndim != 2:
        raise ValueError(f"outputs['logits'] must be (B, C), got shape {tuple(logits.shape)}")
    labels = targets["label"]
    weight = None
    if class_weight is not None:
        weight = torch.as_tensor(class_weight, dtype=logits.dtype, device=logits.device)
        if weight.shape != (logits.shape[1],):
            raise ValueError(
                f"class_weight must have shape ({logits.shape[1]},), got {tuple(weight.shape)}"
            )
    if validate:
        _check_labels(logits, labels)
    ce = _cross_entropy(logits, labels, weight, label_smoothing)

    terms: dict[str, torch.Tensor] = {"ce": ce.detach()}
    pred = outputs.get("label_maps")
    if pred is None:
        loss = ce
        if log_vars is not None:
            loss = torch.exp(-log_vars[0]) * ce + 0.5 * log_vars[0] + 0.0 * log_vars[1]
    else:
        if "label_maps" not in targets:
            raise ValueError(
                "outputs have 'label_maps' but targets do not: pass targets['label_maps'] (with "
                "label_maps_valid all False where no maps exist), or build the model with "
                "num_label_maps=0"
            )
        target = targets["label_maps"]
        b = pred.shape[0]
        valid_key = next((k for k in _VALID_KEYS if targets.get(k) is not None), _VALID_KEYS[0])
        valid = targets.get(valid_key)
        if valid is None:
            valid = torch.ones(b, dtype=torch.bool, device=pred.device)
        if logits.shape[0] != b:
            raise ValueError(
                f"outputs['label_maps'] has {b} samples but outputs['logits'] has {logits.shape[0]}"
            )
        valid = torch.as_tensor(valid, device=pred.device)
        target = torch.as_tensor(target, device=pred.device)
        if validate:
            _check_label_maps(pred, target, valid, valid_key)
        valid = valid.bool()
        # Invalid samples' maps are replaced before the BCE so that NaN/garbage there cannot reach
        # the gradient; their per-sample loss is then masked out (v_n = 0, Eq. 3).
        target = torch.where(
            valid[:, None, None, None],
            target.to(pred.dtype),
            torch.zeros((), dtype=pred.dtype, device=pred.device),
        )
        per_sample = label_map_loss(pred, target, map_loss, valid)
        per_sample = torch.where(valid, per_sample, torch.zeros_like(per_sample))
        num_valid = valid.sum()
        if label_map_reduction == "batch":
            lm = per_sample.sum() / b
        else:
            lm = per_sample.sum() / num_valid.clamp_min(1).to(per_sample.dtype)
        if log_vars is None:
            loss = ce + lam * lm
        else:
            has_valid = (num_valid > 0).to(lm.dtype)
            loss = (
                torch.exp(-log_vars[0]) * ce
                + 0.5 * log_vars[0]
                + has_valid * (torch.exp(-log_vars[1]) * lm + 0.5 * log_vars[1])
            )
        terms["label_maps"] = lm.detach()
        terms["num_valid"] = num_valid.detach()
    if not return_terms:
        return loss
    terms["loss"] = loss.detach()
    if log_vars is not None:
        terms["log_var_ce"] = log_vars[0].detach()
        terms["log_var_label_maps"] = log_vars[1].detach()
    return loss, terms


class MaskedMultiTaskLoss(nn.Module):
    r"""Module form of :func:`masked_multitask_loss` (the paper's Eq. (1)-(3)).

    ``forward`` returns the scalar loss; the detached terms of the last call are kept in
    :attr:`last_terms` (``"loss"``, ``"ce"``, ``"label_maps"``, ``"num_valid"``, and the
    log-variances with uncertainty weighting) for logging.

    With ``weighting="uncertainty"`` the loss owns two learnable log-variances ``log_vars``
    (Kendall et al. 2018) that replace ``lam``. They are parameters of the *loss*, so hand them to
    the optimizer too, e.g. ``timm.optim.create_optimizer_v2(nn.ModuleList([model, loss_fn]),
    "sgd", lr=0.01)``.

    Args:
        lam: weight of the label-map term (fixed weighting only).
        weighting: ``"fixed"`` (``C_e + lam * C_l``) or ``"uncertainty"``.
        label_smoothing: passed to the CE term.
        class_weight: ``(C,)`` class weights for the CE term (a buffer: moves with ``.to()``).
        label_map_reduction: ``"batch"`` (the paper's 1/B) or ``"valid"`` (1/number of valid maps).
        map_loss: the per-image label-map loss, one of :data:`MAP_LOSSES` (default
            ``"paper_eq2"``, the paper's Eq. 2).
        validate: check the targets (see :func:`masked_multitask_loss`).

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> loss_fn = MaskedMultiTaskLoss(lam=1.0, label_smoothing=0.1)
        >>> outputs = {"logits": torch.randn(2, 7, requires_grad=True),
        ...            "label_maps": torch.randn(2, 3, 8, 8, requires_grad=True)}
        >>> targets = {"label": torch.tensor([1, 2]), "label_maps": torch.zeros(2, 3, 8, 8),
        ...            "label_maps_valid": torch.tensor([True, False])}
        >>> loss = loss_fn(outputs, targets)
        >>> loss.backward()
        >>> sorted(loss_fn.last_terms)
        ['ce', 'label_maps', 'loss', 'num_valid']
    """

    def __init__(
        self,
        lam: float = 1.0,
        *,
        weighting: str = "fixed",
        label_smoothing: float = 0.0,
        class_weight: torch.Tensor | Sequence[float] | None = None,
        label_map_reduction: str = "batch",
        map_loss: str = "paper_eq2",
        validate: bool = True,
    ) -> None:
        super().__init__()
        if weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
        if weighting == "uncertainty" and lam != 1.0:
            raise ValueError(
                "lam is replaced by the learned log-variances with weighting='uncertainty'; "
                "leave it at 1.0"
            )
        if label_map_reduction not in _REDUCTIONS:
            raise ValueError(
                f"label_map_reduction must be one of {_REDUCTIONS}, got {label_map_reduction!r}"
            )
        if map_loss not in MAP_LOSSES:
            raise ValueError(f"map_loss must be one of {MAP_LOSSES}, got {map_loss!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.lam = float(lam)
        self.weighting = weighting
        self.label_smoothing = float(label_smoothing)
        self.label_map_reduction = label_map_reduction
        self.map_loss = map_loss
        self.validate = validate
        self.register_buffer(
            "class_weight",
            None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32),
        )
        self.log_vars = nn.Parameter(torch.zeros(2)) if weighting == "uncertainty" else None
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, Any]
    ) -> torch.Tensor:
        """The scalar loss; see :func:`masked_multitask_loss` for the arguments."""
        loss, self.last_terms = masked_multitask_loss(
            outputs,
            targets,
            lam=self.lam,
            label_smoothing=self.label_smoothing,
            class_weight=self.class_weight,
            label_map_reduction=self.label_map_reduction,
            map_loss=self.map_loss,
            log_vars=self.log_vars,
            validate=self.validate,
            return_terms=True,
        )
        return loss

    def extra_repr(self) -> str:
        return (
            f"lam={self.lam}, weighting={self.weighting!r}, "
            f"label_smoothing={self.label_smoothing}, "
            f"label_map_reduction={self.label_map_reduction!r}, map_loss={self.map_loss!r}"
        )

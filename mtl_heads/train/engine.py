"""One epoch of training and one pass of evaluation, in the shape of timm's ``train.py``.

A training step reads straight down::

    rows of the epoch's batch -> PaperPreprocessing.standardize (48 x 48)
    -> aligned augmentation (images with their label maps or landmarks, 48 -> 42)
    -> PaperPreprocessing.normalize_batch -> MultiTaskModel -> MaskedMultiTaskLoss -> SGD step

:func:`train_one_epoch` advances a :class:`TrainState` (the loop's position, history and best
epoch; what a checkpoint stores) and returns the epoch's :class:`EpochSums`; :func:`validate`
scores a split (accuracy, 10-crop accuracy, confusion, label-map IoU / NME).
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from kornia.augmentation import AugmentationSequential

from ..augmentation import (
    center_crop,
    sample_parameters,
    select_parameters,
    ten_crop_views,
    zoom_of,
)
from ..landmarks import PAPER_GROUPS, landmarks_to_label_maps
from ..metrics import LabelMapMetrics
from ..preprocessing import PaperPreprocessing
from .checkpoint import CHECKPOINT
from .data import MAP_LEVELS, Data, Split, crop_offset, epoch_batches
from .distributed import STREAM_AUGMENT, STREAM_DROPOUT, Dist, derive_seed, generator
from .options import TrainingError
from .precision import autocast

__all__ = [
    "EpochSums",
    "EvalSums",
    "TrainState",
    "evaluate",
    "evaluate_tests",
    "summarize",
    "train_one_epoch",
    "validate",
]

# ten_crop_views: 4 corner crops, the centre crop, then the same five of the mirrored image.
TEN_VIEWS, CENTRE_VIEW = 10, 4


@dataclass
class EpochSums:
    """What an epoch of training adds up (sums over samples; ``time`` in seconds)."""

    loss: float = 0.0
    ce: float = 0.0
    label_maps: float = 0.0
    correct: int = 0
    samples: int = 0
    valid_maps: int = 0
    time: float = 0.0


@dataclass
class TrainState:
    """Where the loop stands: what a checkpoint stores besides the tensors.

    ``epoch`` and ``step`` are the next step to run (``step`` within ``epoch``); ``accum`` holds
    the sums of the epoch's finished steps when a checkpoint falls inside an epoch.
    """

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    accum: EpochSums | None = None
    best_acc: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    args: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in a checkpoint's metadata."""
        out = asdict(self)
        out["accum"] = None if self.accum is None else asdict(self.accum)
        return out

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "TrainState":
        """The state of a checkpoint's metadata (``to_dict``'s form)."""
        saved = dict(saved)
        accum = saved.pop("accum", None)
        return cls(**saved, accum=None if accum is None else EpochSums(**accum))


def train_one_epoch(
    epoch: int,
    model: nn.Module,
    train_set: Split,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    args: argparse.Namespace,
    *,
    pre: PaperPreprocessing,
    aug: AugmentationSequential,
    state: TrainState,
    ctx: Dist | None = None,
    precision: str = "float32",
    lr_scheduler: Any = None,
    checkpoint: Callable[[int, int, EpochSums], None] | None = None,
    bar: Any = None,
) -> EpochSums:
    """Train ``model`` (DDP-wrapped when distributed) for one epoch, from ``state.step`` on.

    Every random draw is seeded from ``(args.seed, stream, epoch, step)``, so a step gives the
    same update however the run got there (uninterrupted, resumed, or on several processes).

    Args:
        epoch: the epoch, from 0.
        model: the model being trained (``MultiTaskModel``, or its DDP wrapper).
        train_set: the training split, on the device (``label_maps`` pre-drawn or ``None``).
        optimizer: the optimizer (timm's ``create_optimizer_v2``).
        loss_fn: :class:`~mtl_heads.losses.MaskedMultiTaskLoss`.
        args: the run's options (:func:`~mtl_heads.train.options.build_parser`).
        pre: the fitted preprocessing.
        aug: the training augmentation (:func:`~mtl_heads.augmentation.paper_augmentation`).
        state: the loop's state; ``global_step`` advances, ``step``/``accum`` are consumed.
        ctx: the process's place in a torchrun launch (one process when ``None``).
        precision: ``"float32"`` or ``"bfloat16"`` (autocast of the forward pass).
        lr_scheduler: a timm scheduler, stepped per update.
        checkpoint: ``checkpoint(epoch, step, sums)``, called every ``--checkpoint-every`` steps.
        bar: a tqdm bar to advance, or ``None``.

    Returns:
        The epoch's :class:`EpochSums` (including the steps before a resume).

    Raises:
        TrainingError: the loss is not finite.
    """
    ctx = ctx or Dist()
    device = train_set.images.device
    batches = epoch_batches(len(train_set), args, epoch)
    accum = state.accum or EpochSums()
    start_step = state.step
    state.accum, state.step = None, 0
    with_maps = args.label_maps > 0  # draw label maps (the baseline never needs them)
    model.train()
    pre.train()
    tic = time.perf_counter()
    if bar is not None:
        bar.update(start_step)
    for step in range(start_step, len(batches)):
        rows_global = batches[step]
        # Augmentation parameters are drawn for the global batch and sliced, so each sample is
        # augmented the same way whatever the number of processes.
        params = sample_parameters(aug, (len(rows_global), *train_set.images.shape[1:]),
                                   generator(args.seed, STREAM_AUGMENT, epoch, step))
        params = select_parameters(params, slice(ctx.rank, None, ctx.world))
        rows = rows_global[ctx.rank::ctx.world].to(device)
        # The batch carries the keys the loss reads.
        batch: dict[str, torch.Tensor] = {"label": train_set.labels[rows]}

        x = pre.standardize(train_set.images[rows].float())
        if with_maps and train_set.label_maps is not None:
            masks = train_set.label_maps[rows].float() / MAP_LEVELS
            x, batch["label_maps"] = aug(x, masks, data_keys=["input", "mask"], params=params)
            batch["landmarks_valid"] = train_set.valid[rows]
        elif with_maps:
            x, landmarks = aug(x, train_set.landmarks[rows], data_keys=["input", "keypoints"],
                               params=params)
            batch["landmarks_valid"] = train_set.valid[rows]
            batch["label_maps"] = landmarks_to_label_maps(
                landmarks, args.crop, valid=batch["landmarks_valid"],
                thickness_scale=zoom_of(params).to(device=device, dtype=landmarks.dtype))
        else:
            x = aug(x, data_keys=["input"], params=params)
        x = pre.normalize_batch(x)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        torch.manual_seed(derive_seed(args.seed, STREAM_DROPOUT, epoch, step, ctx.rank))
        with autocast(precision, device):
            outputs = model(x)
        outputs = {k: v.float() for k, v in outputs.items()}
        loss = loss_fn(outputs, batch)
        # DDP averages gradients over processes; weigh each by its share of the global batch so
        # the update equals the single-process one for uneven shards too.
        n_local = len(rows)
        (loss * (n_local * ctx.world / len(rows_global))).backward()

        terms = loss_fn.last_terms
        stats = torch.stack([
            loss.detach().double() * n_local,
            terms["ce"].double() * n_local,
            terms.get("label_maps", torch.zeros((), device=device)).double() * n_local,
            (outputs["logits"].argmax(1) == batch["label"]).sum().double(),
            torch.tensor(float(n_local), dtype=torch.float64, device=device),
            terms.get("num_valid", torch.zeros((), device=device)).double(),
            (~torch.isfinite(loss.detach())).double(),
        ])
        ctx.all_sum(stats)
        if stats[6] > 0:
            out = Path(args.output)
            raise TrainingError(
                f"loss is not finite at epoch {epoch + 1}, step {step + 1} (global step "
                f"{state.global_step + 1}): lower --lr or check the data. The last good "
                f"checkpoint is kept in {out / CHECKPOINT}"
                + ("" if (out / CHECKPOINT).exists() else " (none written yet)"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        if lr_scheduler is not None:
            lr_scheduler.step_update(state.global_step)
        s = stats.tolist()
        accum.loss += s[0]
        accum.ce += s[1]
        accum.label_maps += s[2]
        accum.correct += int(s[3])
        accum.samples += int(s[4])
        accum.valid_maps += int(s[5])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{accum.loss / accum.samples:.3f}",
                            acc=f"{accum.correct / accum.samples:.3f}")
        last = step + 1 == len(batches)
        if (checkpoint is not None and args.checkpoint_every
                and state.global_step % args.checkpoint_every == 0 and not last):
            accum.time += time.perf_counter() - tic
            tic = time.perf_counter()
            checkpoint(epoch, step + 1, accum)
        if args.stop_after_steps and state.global_step >= args.stop_after_steps:
            if ctx.main:
                print(f"stopping after {state.global_step} steps (--stop-after-steps), "
                      "as if killed; resume with --resume")
            sys.stdout.flush()
            os._exit(0)
    accum.time += time.perf_counter() - tic
    return accum


@dataclass
class EvalSums:
    """What one evaluation pass accumulates: enough to score a split, and to score a union of
    splits by adding its parts' sums (confusion matrices and metric sums add up)."""

    confusion: torch.Tensor  # int64 (classes * classes,)
    loss_sum: float
    confusion_tta: torch.Tensor | None = None
    maps: LabelMapMetrics | None = None

    def __add__(self, other: "EvalSums") -> "EvalSums":
        if (self.confusion_tta is None) != (other.confusion_tta is None) or (
                (self.maps is None) != (other.maps is None)):
            raise ValueError("cannot add evaluations made with different options")
        maps = None
        if self.maps is not None and other.maps is not None:
            maps = self.maps.merged(other.maps)
        tta = (None if self.confusion_tta is None or other.confusion_tta is None
               else self.confusion_tta + other.confusion_tta)
        return EvalSums(self.confusion + other.confusion, self.loss_sum + other.loss_sum, tta,
                        maps)


@torch.inference_mode()
def evaluate(model: nn.Module, pre: PaperPreprocessing, split: Split, args: argparse.Namespace,
             num_classes: int, ctx: Dist | None = None, tta: bool = False,
             prior: torch.Tensor | None = None, precision: str = "float32") -> EvalSums:
    """One pass over ``split``: every image goes through the network once per view.

    The centre crop goes through the multi-task model only when the label-map metrics are asked
    for (a multi-task model on data with landmarks); otherwise only the deployed classifier runs.
    With ``tta`` the 10 views of a batch go through the deployed classifier in one forward of
    ``10 * B`` images (``B = --eval-batch-size // 10``, so each forward holds about
    ``--eval-batch-size`` images), and the centre-crop logits are the centre view's."""
    ctx = ctx or Dist()
    was_training = model.training
    model.eval()
    pre.eval()
    device = split.images.device
    rows = torch.arange(len(split), device=device)[ctx.rank::ctx.world]
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    confusion_tta = torch.zeros_like(confusion)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    with_maps = args.label_maps > 0 and split.landmarks is not None
    maps_metrics = LabelMapMetrics([g.name for g in PAPER_GROUPS], prior=prior)
    offset = crop_offset(args)
    classifier = model.deploy()  # the shipped network: no label-map head

    def net(x: torch.Tensor, maps: bool) -> dict[str, torch.Tensor]:
        x = pre.normalize_batch(x)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(precision, x.device):
            if not maps:
                return {"logits": classifier(x).float()}
            return {k: v.float() for k, v in model(x).items()}

    batch = max(1, args.eval_batch_size // TEN_VIEWS) if tta else args.eval_batch_size
    for idx in torch.split(rows, batch):
        labels = split.labels[idx]
        keep = labels >= 0
        x = pre.standardize(split.images[idx].float())
        out = net(center_crop(x, args.crop), maps=True) if with_maps else None
        if tta:
            views = ten_crop_views(x, args.crop)
            logits = net(views.flatten(0, 1), maps=False)["logits"].view(*views.shape[:2], -1)
            probs = logits.softmax(dim=-1).mean(dim=0)
            confusion_tta += torch.bincount((labels * num_classes + probs.argmax(1))[keep],
                                            minlength=num_classes**2)
            if out is None:
                out = {"logits": logits[CENTRE_VIEW]}
        if out is None:
            out = net(center_crop(x, args.crop), maps=False)
        loss_sum += nn.functional.cross_entropy(
            out["logits"][keep], labels[keep], reduction="sum").double()
        pred = out["logits"].argmax(1)
        confusion += torch.bincount((labels * num_classes + pred)[keep],
                                    minlength=num_classes**2)
        if with_maps:
            valid = split.valid[idx]
            landmarks = split.landmarks[idx] - offset
            target = landmarks_to_label_maps(landmarks, args.crop, valid=valid)
            maps_metrics.update(out["label_maps"], target, valid, landmarks)

    for t in (confusion, confusion_tta, loss_sum):
        ctx.all_sum(t)
    if ctx.enabled:
        for t in (*maps_metrics._sums.values(), maps_metrics._count):
            ctx.all_sum(t)
    model.train(was_training)
    pre.train(was_training)
    return EvalSums(confusion.cpu(), float(loss_sum), confusion_tta.cpu() if tta else None,
                    maps_metrics if with_maps else None)


def summarize(sums: EvalSums, num_classes: int) -> dict[str, Any]:
    """Accuracy, per-class accuracy, confusion matrix, CE loss (and 10-crop accuracy, label-map
    IoU, soft IoU and NME, with the training prior's beside them, when measured)."""

    def summary(conf: torch.Tensor) -> dict[str, Any]:
        m = conf.view(num_classes, num_classes)
        total = int(m.sum())
        per_class = (m.diag().double() / m.sum(1).clamp_min(1).double()).tolist()
        return {"acc": float(m.diag().sum()) / max(total, 1), "per_class_acc": per_class,
                "confusion": m.tolist()}

    n = int(sums.confusion.sum())
    result: dict[str, Any] = {"n": n, **summary(sums.confusion),
                              "loss": sums.loss_sum / max(n, 1)}
    if sums.confusion_tta is not None:
        s = summary(sums.confusion_tta)
        result.update(acc_tta=s["acc"], per_class_acc_tta=s["per_class_acc"],
                      confusion_tta=s["confusion"])
    if sums.maps is not None:
        res = sums.maps.compute()
        result.update(iou=res["iou"], iou_mean=res["iou_mean"], soft_iou=res["soft_iou"],
                      soft_iou_mean=res["soft_iou_mean"], nme=res["nme"], nme_mean=res["nme_mean"])
        if "prior" in res:
            p = res["prior"]
            result.update(iou_prior=p["iou"], iou_prior_mean=p["iou_mean"],
                          soft_iou_prior=p["soft_iou"], nme_prior=p["nme"],
                          nme_prior_mean=p["nme_mean"])
    return result


def validate(model: nn.Module, pre: PaperPreprocessing, split: Split, args: argparse.Namespace,
             num_classes: int, ctx: Dist | None = None, tta: bool = False,
             prior: torch.Tensor | None = None, precision: str = "float32") -> dict[str, Any]:
    """Accuracy (centre crop, optionally 10-crop TTA with the deployed classifier), per-class
    accuracy, confusion matrix, CE loss and, for multi-task models on data with landmarks, the
    label-map IoU, soft IoU and NME (:class:`mtl_heads.metrics.LabelMapMetrics`).

    With ``prior`` (the mean training map, :func:`mtl_heads.metrics.label_map_prior`) the same
    metrics of that one fixed map (``iou_prior``, ...): what a predictor that ignores the face
    scores. A head is only localising brows and mouth where it beats this."""
    return summarize(evaluate(model, pre, split, args, num_classes, ctx, tta=tta, prior=prior,
                              precision=precision), num_classes)


def evaluate_tests(model: nn.Module, pre: PaperPreprocessing, data: Data,
                   args: argparse.Namespace, device: torch.device, ctx: Dist | None = None,
                   prior: torch.Tensor | None = None,
                   precision: str = "float32") -> dict[str, dict[str, Any]]:
    """Every test split scored, each image's forward passes done once: a union split (FER2013's
    ``test`` = PublicTest + PrivateTest) is scored from its parts' sums, never re-run."""
    sums: dict[str, EvalSums] = {}
    for name, split in data.tests.items():
        if name not in data.unions:
            sums[name] = evaluate(model, pre, split.to(device), args, len(data.classes), ctx,
                                  tta=args.tta, prior=prior, precision=precision)
    for name, parts in data.unions.items():
        total = sums[parts[0]]
        for part in parts[1:]:
            total = total + sums[part]
        sums[name] = total
    return {name: summarize(sums[name], len(data.classes)) for name in data.tests}

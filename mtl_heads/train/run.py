"""A whole training run: ``mtl-heads train`` (``mtl_heads.train.main``).

:func:`train` builds the run from its options (data on the device, fitted preprocessing, model,
loss, timm optimizer and scheduler), runs :func:`~mtl_heads.train.engine.train_one_epoch` and
:func:`~mtl_heads.train.engine.validate` per epoch with checkpoints, scores the selected weights
on every test split and writes the run folder::

    args.json  metrics.jsonl  metrics.csv  last.safetensors  best.safetensors
    preprocessing.safetensors  deploy.safetensors (the plain timm classifier)  final.json

Every random stream is derived from ``(seed, epoch, step)``, so a run killed at any step and
resumed with ``--resume`` ends with the same weights and metrics as an uninterrupted one.
"""

import argparse
import contextlib
import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from kornia.augmentation import AugmentationSequential
from timm.optim import create_optimizer_v2, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2

from ..augmentation import paper_augmentation
from ..landmarks import FLIP_INDEX_68, PAPER_GROUPS, landmarks_to_label_maps, mirror_channels
from ..losses import MaskedMultiTaskLoss
from ..metrics import label_map_prior
from ..models import create_model
from ..preprocessing import PREPROCESSING, PaperPreprocessing
from .checkpoint import BEST, CHECKPOINT, load_checkpoint, save_checkpoint
from .data import Data, Split, crop_offset, epoch_batches, load_data, predraw_label_maps
from .distributed import STREAM_INIT, Dist, derive_seed, setup_distributed
from .engine import EpochSums, TrainState, evaluate_tests, train_one_epoch, validate
from .options import TrainingError, build_parser, check_args
from .precision import native_bf16, resolve_precision

__all__ = [
    "Run",
    "build_augmentation",
    "build_model",
    "build_run",
    "build_scheduler",
    "epoch_record",
    "main",
    "param_groups",
    "train",
    "training_prior",
    "write_metrics",
]


def build_augmentation(args: argparse.Namespace) -> AugmentationSequential:
    """The training augmentation of ``--augment`` (the paper's mirror / shift / rotation / zoom,
    cropped to ``--crop``; :func:`~mtl_heads.augmentation.paper_augmentation`), mirror-aware for
    the 68 landmarks and the paper's maps."""
    settings = {
        "none": dict(flip=False, shift=0, rotation=0.0, zoom=1.0),
        "crop": dict(flip=False, shift=3, rotation=0.0, zoom=1.0),
        "flip-shift": dict(flip=True, shift=3, rotation=0.0, zoom=1.0),
        "full": dict(flip=True, shift=3, rotation=45.0, zoom=1.2),
    }[args.augment]
    return paper_augmentation(**settings, crop=args.crop, flip_index=FLIP_INDEX_68,
                              mask_flip_channels=mirror_channels(PAPER_GROUPS))


def build_model(args: argparse.Namespace, in_chans: int, num_classes: int) -> nn.Module:
    """The run's model, its initial weights seeded from ``(seed, STREAM_INIT)``."""
    kwargs: dict[str, Any] = {}
    if args.drop_rate is not None:
        kwargs["drop_rate"] = args.drop_rate
    torch.manual_seed(derive_seed(args.seed, STREAM_INIT))
    return create_model(args.backbone, num_classes=num_classes, in_chans=in_chans,
                                  img_size=args.crop, num_label_maps=args.label_maps,
                                  head=args.head if args.label_maps else None,
                                  **kwargs)


def training_prior(split: Split, args: argparse.Namespace) -> torch.Tensor:
    """Mean centre-crop label map ``(K, crop, crop)`` of the training images with landmarks."""
    rows = split.valid.nonzero().flatten()
    if len(rows) == 0:
        raise ValueError("--head-init prior: no training image has landmarks")
    landmarks = split.landmarks - crop_offset(args)
    return label_map_prior(landmarks_to_label_maps(landmarks[idx], args.crop)
                           for idx in torch.split(rows, 4096))


def param_groups(model: nn.Module, loss_fn: nn.Module, weight_decay: float,
                 head_lr_scale: float) -> list[dict[str, Any]]:
    """timm's weight-decay groups (no decay on biases, 1-D parameters and the names in
    ``model.no_weight_decay()``), each split off a learning-rate scale (``lr_scale``, applied by
    timm's schedulers) for the label-map head."""
    head = model.label_map_head
    head_ids = set() if head is None else {id(p) for p in head.parameters()}
    groups = []
    for module, no_decay in ((model, model.no_weight_decay()), (loss_fn, ())):
        for group in param_groups_weight_decay(module, weight_decay,
                                               no_weight_decay_list=no_decay):
            for in_head in (False, True):
                params = [p for p in group["params"] if (id(p) in head_ids) == in_head]
                if params:
                    groups.append({**group, "params": params,
                                   "lr_scale": head_lr_scale if in_head else 1.0})
    return groups


def build_scheduler(args: argparse.Namespace, optimizer: torch.optim.Optimizer,
                    steps_per_epoch: int) -> Any:
    """timm's scheduler of ``--sched``, stepped per update (``None`` for ``--sched none``)."""
    if args.sched == "none":
        return None
    kwargs: dict[str, Any] = dict(
        sched=args.sched, num_epochs=args.epochs, decay_rate=args.decay_rate, min_lr=args.min_lr,
        warmup_epochs=args.warmup_epochs, step_on_epochs=False, updates_per_epoch=steps_per_epoch,
    )
    if args.decay_epochs is not None:
        kwargs["decay_epochs"] = args.decay_epochs
    if args.decay_milestones:
        kwargs["decay_milestones"] = args.decay_milestones
    scheduler, _ = create_scheduler_v2(optimizer, **kwargs)
    return scheduler


@dataclass
class Run:
    """Everything a run trains and scores with, built from its options by :func:`build_run`."""

    data: Data
    train_set: Split  # on the device, label maps pre-drawn for --label-map-source predrawn
    val_set: Split | None
    pre: PaperPreprocessing  # fitted on the training images
    aug: AugmentationSequential
    model: nn.Module
    loss_fn: MaskedMultiTaskLoss
    optimizer: torch.optim.Optimizer
    scheduler: Any
    prior: torch.Tensor | None  # the mean training label map (what a face-blind head draws)
    steps_per_epoch: int


def build_run(args: argparse.Namespace, device: torch.device, world: int = 1) -> Run:
    """Load the data and build the preprocessing, augmentation, model, loss, optimizer and
    scheduler of a run, in the order that fixes its random streams (the model's initial
    weights are seeded from ``(seed, STREAM_INIT)``; the rest is deterministic)."""
    # data set -> whole tensors on the device
    data = load_data(args)
    if args.label_maps and data.train.landmarks is None:
        raise ValueError(f"--label-maps {args.label_maps}: {args.data} has no landmarks")
    if args.batch_size > len(data.train):
        raise ValueError(f"--batch-size {args.batch_size} is larger than the training set "
                         f"({len(data.train)} images)")
    if args.batch_size < world:
        raise ValueError(f"--batch-size {args.batch_size} is smaller than the number of "
                         f"processes ({world})")
    train_set = data.train.to(device)
    if args.label_maps and args.label_map_source == "predrawn":
        train_set.label_maps = predraw_label_maps(train_set)
    val_set = None if data.val is None else data.val.to(device)
    num_classes = len(data.classes)
    in_chans = train_set.images.shape[1]
    if train_set.images.shape[-1] != args.image_size:
        raise ValueError(f"--image-size {args.image_size} but the images are "
                         f"{tuple(train_set.images.shape[-2:])}")

    # preprocessing fitted on the training images (deterministic: refitted identically on resume)
    pre = PaperPreprocessing(channels=in_chans, size=args.image_size, crop=args.crop,
                             **PREPROCESSING[args.preprocessing]).to(device)
    pre.fit(torch.split(train_set.images, 4096))
    aug = build_augmentation(args)
    model = build_model(args, in_chans, num_classes).to(device)
    prior = training_prior(train_set, args) if args.label_maps else None
    if args.head_init == "prior" and prior is not None:
        model.label_map_head.init_prior(prior)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = MaskedMultiTaskLoss(
        args.lam, weighting=args.weighting, label_smoothing=args.label_smoothing,
        map_loss=args.map_loss, validate=False,
    ).to(device)
    optimizer = create_optimizer_v2(
        param_groups(model, loss_fn, args.weight_decay, args.head_lr_scale), opt=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, momentum=args.momentum)
    steps_per_epoch = len(epoch_batches(len(train_set), args, 0))
    lr_scheduler = build_scheduler(args, optimizer, steps_per_epoch)
    if lr_scheduler is None:  # timm's schedulers apply lr_scale themselves
        for group in optimizer.param_groups:
            group["lr"] = args.lr * group["lr_scale"]
    return Run(data, train_set, val_set, pre, aug, model, loss_fn, optimizer, lr_scheduler,
               prior, steps_per_epoch)


def epoch_record(epoch: int, sums: EpochSums, optimizer: torch.optim.Optimizer,
                 args: argparse.Namespace) -> dict[str, Any]:
    """The ``metrics.jsonl`` record of a finished epoch's training sums."""
    n = max(sums.samples, 1)
    return {
        "epoch": epoch + 1,
        "lr": optimizer.param_groups[0]["lr"],
        "train_loss": sums.loss / n,
        "train_ce": sums.ce / n,
        "train_label_maps": sums.label_maps / n if args.label_maps else None,
        "train_acc": sums.correct / n,
        "train_valid_maps": sums.valid_maps if args.label_maps else None,
        "samples": sums.samples,
        "epoch_time": sums.time,
        "samples_per_s": sums.samples / max(sums.time, 1e-9),
    }


def write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` and ``metrics.csv``: one record per finished epoch."""
    with open(out / "metrics.jsonl", "w") as f:
        for rec in history:
            f.write(json.dumps(rec) + "\n")
    flat = [{k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in r.items()}
            for r in history]
    fields: list[str] = []
    for r in flat:
        fields += [k for k in r if k not in fields]
    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(flat)


def progress(total: int, desc: str, disable: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional
        disable = True
    if disable:
        return contextlib.nullcontext(None)
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train one run as ``args`` say and return its ``final.json`` (also written to
    ``args.output`` with the metrics, checkpoints, preprocessing and deployed classifier).

    Raises:
        TrainingError: the loss stopped being finite.
        FileNotFoundError, ValueError: options that cannot make a run (named in the message).
    """
    check_args(args)
    ctx, device = setup_distributed(args.device)
    threads = torch.get_num_threads()
    try:
        return _train(args, ctx, device)
    finally:
        torch.set_num_threads(threads)  # --workers must not outlive an in-process call
        if ctx.enabled:
            dist.destroy_process_group()


def _train(args: argparse.Namespace, ctx: Dist, device: torch.device) -> dict[str, Any]:
    if args.workers:
        torch.set_num_threads(args.workers)
    out = Path(args.output)
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    ctx.barrier()
    log = print if ctx.main else (lambda *a, **k: None)

    precision, note = resolve_precision(args.precision, device)
    if note:
        log(f"note: {note}")
    run = build_run(args, device, world=ctx.world)
    data, train_set, val_set, pre, aug = run.data, run.train_set, run.val_set, run.pre, run.aug
    model, loss_fn, optimizer, lr_scheduler = run.model, run.loss_fn, run.optimizer, run.scheduler
    prior, steps_per_epoch, num_classes = run.prior, run.steps_per_epoch, len(data.classes)
    train_model = model
    if ctx.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    state = TrainState()
    if args.resume is not None:
        path = out / CHECKPOINT if args.resume == "auto" else Path(args.resume)
        if args.resume == "auto" and not path.is_file():
            log(f"--resume: no checkpoint in {out} yet, starting from scratch")
        else:
            saved = load_checkpoint(path, model, pre, loss_fn, optimizer, args)
            state = TrainState.from_dict(saved)
            log(f"resumed from {path} at epoch {state.epoch} step {state.step}")
    state.args = vars(args)
    if ctx.main:
        (out / "args.json").write_text(json.dumps(vars(args), indent=2))
    log(f"data: {data.description}: train {len(train_set)}, val "
        f"{0 if val_set is None else len(val_set)}, "
        + ", ".join(f"{k} {len(v)}" for k, v in data.tests.items()))
    log(f"model: {args.backbone}, label maps {args.label_maps}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, device {device}, "
        f"{ctx.world} process(es), {precision}")

    def checkpoint(epoch: int, step: int, accum: EpochSums | None) -> None:
        # Rank 0's minibatch statistics are the run's (each process tracks its own shard).
        if ctx.enabled:
            for buf in pre.minibatch.buffers():
                dist.broadcast(buf, 0)
        state.epoch, state.step, state.accum = epoch, step, accum
        if ctx.main:
            save_checkpoint(out / CHECKPOINT, model, pre, loss_fn, optimizer, state.to_dict())
        ctx.barrier()

    disable_bar = args.quiet or not sys.stderr.isatty() or not ctx.main
    for epoch in range(state.epoch, args.epochs):
        with progress(steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}", disable_bar) as bar:
            sums = train_one_epoch(epoch, train_model, train_set, optimizer, loss_fn, args,
                                   pre=pre, aug=aug, state=state, ctx=ctx, precision=precision,
                                   lr_scheduler=lr_scheduler, checkpoint=checkpoint, bar=bar)
        record = epoch_record(epoch, sums, optimizer, args)
        if ctx.enabled:
            for buf in pre.minibatch.buffers():
                dist.broadcast(buf, 0)
        stop = False
        if val_set is not None:
            v = validate(model, pre, val_set, args, num_classes, ctx, precision=precision)
            record.update(val_acc=v["acc"], val_loss=v["loss"],
                          val_per_class_acc=v["per_class_acc"])
            if "iou" in v:
                record.update(val_iou=v["iou"], val_iou_mean=v["iou_mean"],
                              val_soft_iou=v["soft_iou"], val_nme=v["nme"],
                              val_nme_mean=v["nme_mean"])
            if state.best_acc is None or v["acc"] > state.best_acc:
                state.best_acc, state.best_epoch, state.bad_epochs = v["acc"], epoch + 1, 0
                if ctx.main:
                    save_checkpoint(out / BEST, model, pre, loss_fn, None,
                                    {"epoch": epoch + 1, "val_acc": v["acc"]})
            else:
                state.bad_epochs += 1
            stop = bool(args.early_stop) and state.bad_epochs >= args.early_stop
        state.history.append(record)
        if ctx.main:
            write_metrics(out, state.history)
            msg = (f"epoch {epoch + 1}/{args.epochs}: loss {record['train_loss']:.4f} train acc "
                   f"{record['train_acc']:.4f}")
            if val_set is not None:
                msg += f" val acc {record['val_acc']:.4f}"
                if "val_iou_mean" in record:
                    ious = "/".join(f"{x:.2f}" for x in record["val_iou"].values())
                    msg += f" val IoU {ious} NME {record['val_nme_mean']:.3f}"
            msg += f" ({record['epoch_time']:.1f} s, {record['samples_per_s']:.0f} samples/s)"
            log(msg)
        checkpoint(epoch + 1, 0, None)
        if stop:
            log(f"early stop: no better validation accuracy for {args.early_stop} epochs")
            break

    # final evaluation on the selected weights (best validation epoch, else the last)
    final: dict[str, Any] = {"data": data.description, "classes": data.classes,
                             "world_size": ctx.world, "device": str(device),
                             "epochs_run": len(state.history),
                             "samples_seen": sum(r["samples"] for r in state.history),
                             "train_time_s": sum(r["epoch_time"] for r in state.history),
                             "precision": precision, "native_bf16": native_bf16(device)}
    if val_set is not None and (out / BEST).is_file():
        ctx.barrier()
        load_checkpoint(out / BEST, model, pre, loss_fn, None)
        final["selected"] = {"by": "best validation accuracy", "epoch": state.best_epoch}
    else:
        final["selected"] = {"by": "last epoch", "epoch": len(state.history)}
    tic = time.perf_counter()
    if val_set is not None:
        final["val"] = validate(model, pre, val_set, args, num_classes, ctx,
                                tta=args.tta and args.tta_val, prior=prior, precision=precision)
    final["test"] = evaluate_tests(model, pre, data, args, device, ctx, prior=prior,
                                   precision=precision)
    final["eval_time_s"] = time.perf_counter() - tic
    if ctx.main:
        pre.save(out / "preprocessing.safetensors")
        from safetensors.torch import save_file

        # The shipped classifier: the plain timm model, head discarded (no inference cost).
        save_file({k: v.detach().cpu().contiguous()
                   for k, v in model.deploy().state_dict().items()},
                  str(out / "deploy.safetensors"))
        (out / "final.json").write_text(json.dumps(final, indent=2))
        for name, res in [("val", final.get("val"))] + list(final["test"].items()):
            if res is None:
                continue
            line = f"{name}: accuracy {res['acc']:.4f}"
            if "acc_tta" in res:
                line += f", 10-crop {res['acc_tta']:.4f}"
            if "iou_mean" in res:
                ious = "/".join(f"{x:.3f}" for x in res["iou"].values())
                prior_ious = "/".join(f"{x:.3f}" for x in res["iou_prior"].values())
                line += (f", label-map IoU {'/'.join(res['iou'])} {ious} (the training prior "
                         f"alone: {prior_ious}), NME {res['nme_mean']:.3f} (prior "
                         f"{res['nme_prior_mean']:.3f})")
            log(line + f" ({res['n']} images)")
        log(f"outputs written to {out.resolve()}")
    return final


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``mtl-heads train``: train one run; exit status 0, 2 for bad options or data, 3 when the
    loss stops being finite (the study runner records such a run as failed)."""
    parser = build_parser()
    if prog is not None:
        parser.prog = prog
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        train(args)
    except TrainingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

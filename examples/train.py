"""Train an expression classifier, with or without the auxiliary label-map task.

The training loop of mtl-heads, in the shape of timm's ``train.py``: ``train_one_epoch`` and
``validate`` built from the library's parts. A batch reads straight down:

    data set (uint8 images, labels, 68 landmarks, valid flags), held whole on the device
    -> a batch of indices -> PaperPreprocessing.standardize (48x48)
    -> AlignedAugmentation (images and landmarks, 48 -> 42) -> PaperPreprocessing.normalize_batch
    -> landmarks_to_label_maps at the crop size -> MultiTaskModel -> MaskedMultiTaskLoss -> SGD

Examples::

    python examples/train.py --data synthetic --label-maps 3 --epochs 5 --output runs/demo-mt
    python examples/train.py --data fer2013.csv --landmarks fer2013_landmarks.npz \\
        --label-maps 3 --augment none --epochs 30 --output runs/fer-mt
    torchrun --nproc_per_node 2 examples/train.py --data synthetic --epochs 2 --output runs/ddp

Every random stream (epoch order, augmentation, dropout) is derived from ``(seed, epoch, step)``,
so a run killed at any step and resumed with ``--resume`` ends with the same weights and metrics
as an uninterrupted one. See docs/training.md for all options; examples/minimal_loop.py shows the
same parts in a plain DataLoader loop.
"""

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from timm.optim import create_optimizer_v2, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2
from timm.utils.distributed import init_distributed_device_so

# Run from a clone without installing: make the checkout's package importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mtl_heads  # noqa: E402
from mtl_heads.augmentation import (  # noqa: E402
    AlignedAugmentation,
    center_crop,
    ten_crop_views,
)
from mtl_heads.checkpoint import METADATA_KEY, read_checkpoint  # noqa: E402
from mtl_heads.datasets import SPLIT_OPTIONS, FaceDataset, load_splits, source_kind  # noqa: E402
from mtl_heads.landmarks import (  # noqa: E402
    FLIP_INDEX_68,
    PAPER_GROUPS,
    landmarks_to_label_maps,
    mirror_channels,
)
from mtl_heads.losses import MAP_LOSSES  # noqa: E402
from mtl_heads.metrics import LabelMapMetrics, label_map_prior  # noqa: E402
from mtl_heads.preprocessing import PREPROCESSING, PaperPreprocessing  # noqa: E402

CHECKPOINT = "last.safetensors"
BEST = "best.safetensors"
# ten_crop_views: 4 corner crops, the centre crop, then the same five of the mirrored image.
TEN_VIEWS, CENTRE_VIEW = 10, 4
# Sub-samples of a pre-drawn label-map pixel (landmarks_to_label_maps' default 4 x 4).
MAP_LEVELS = 16
# Random streams, combined with (seed, epoch, step[, rank]) into independent seeds.
STREAM_INIT, STREAM_ORDER, STREAM_AUGMENT, STREAM_DROPOUT = 0, 1, 2, 3
# Options that may change when a run is resumed (everything else must match the checkpoint).
RESUMABLE = {"resume", "output", "quiet", "device", "workers", "stop_after_steps",
             "checkpoint_every", "epochs", "early_stop", "tta", "tta_val", "channels_last"}


class TrainingError(RuntimeError):
    """A run stopped for a reason the user must see (NaN loss, ...)."""


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train an expression classifier with an optional auxiliary label-map task.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True,
                   help="'synthetic', a fer2013.csv, a Kaggle FER2013 image folder "
                        "(train/ and test/), any root/<class>/<image> folder, or a TFD .mat")
    d.add_argument("--landmarks", default=None,
                   help="landmark file (.npz from `mtl-heads annotate`) made for --data")
    d.add_argument("--ferplus", default=None,
                   help="fer2013new.csv: FER+'s 8-class labels for --data fer2013.csv; images "
                        "FER+ leaves out are dropped from every split")
    d.add_argument("--ferplus-mode", default="majority",
                   choices=["majority", "probability", "crossentropy", "multi_target"],
                   help="FER+ label rule (mtl_heads.datasets.ferplus_labels); this loop trains "
                        "on class ids, i.e. 'majority'")
    d.add_argument("--test-data", default=None,
                   help="a class-folder test set for --data given as a plain image folder")
    d.add_argument("--test-landmarks", default=None, help="landmark file for --test-data")
    d.add_argument("--fold", type=int, default=0, help="TFD fold (0-4)")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="validation slice held out of the training split (pixel-identical "
                        "duplicates stay on one side); TFD uses its own valid split instead")
    d.add_argument("--split-seed", type=int, default=0,
                   help="seed of the validation slice and of --train-subset (fixed across "
                        "training seeds so that seeds are compared on the same split)")
    d.add_argument("--train-subset", type=float, default=1.0,
                   help="train on this fraction of the training split (data-efficiency curve)")
    d.add_argument("--synthetic-train", type=int, default=3000,
                   help="SyntheticFaces: number of training+validation faces")
    d.add_argument("--synthetic-test", type=int, default=1000, help="SyntheticFaces: test faces")
    d.add_argument("--synthetic-invalid", type=float, default=0.0,
                   help="SyntheticFaces: fraction of faces reported without landmarks")
    d.add_argument("--image-size", type=int, default=48,
                   help="stored image size (image folders are resized to it)")
    d.add_argument("--crop", type=int, default=42, help="the size the network sees")

    m = p.add_argument_group("model")
    m.add_argument("--backbone", default="fer_convnet", help="any timm model name")
    m.add_argument("--head", default=None, choices=[None, "linear", "spatial"],
                   help="label-map head (default: linear for fer_convnet, else by rule); ignored "
                        "with --label-maps 0, so a baseline/multi-task pair shares one command")
    m.add_argument("--label-maps", type=int, default=3, choices=[0, 3],
                   help="0: baseline, 3: the paper's brow/brow/mouth maps")
    m.add_argument("--label-map-source", default="predrawn", choices=["predrawn", "landmarks"],
                   help="predrawn: each training image's maps are drawn once at load time (uint8 "
                        "coverage at the stored size) and cropped/warped with the image, as the "
                        "paper did; landmarks: drawn every step from the augmented landmarks "
                        "(equal targets for integer crops and mirroring; multi-task steps "
                        "~1.2x slower with --augment full, docs/results.md)")
    m.add_argument("--lambda", dest="lam", type=float, default=1.0,
                   help="weight of the label-map loss")
    m.add_argument("--map-loss", default="paper_eq2", choices=MAP_LOSSES,
                   help="label-map loss (mtl_heads.losses): paper_eq2 (the paper's Eq. 2, BCE "
                        "averaged over K*H*W units), paper_text (its text: BCE summed over each "
                        "map's pixels), balanced_bce, dice, bce_dice, mse, focal")
    m.add_argument("--weighting", default="fixed", choices=["fixed", "uncertainty"],
                   help="fixed lambda, or learned uncertainty weighting (Kendall et al. 2018)")
    m.add_argument("--head-lr-scale", type=float, default=1.0,
                   help="learning-rate multiplier of the label-map head. The paper's loss averages "
                        "the BCE over all K*H*W units, so each unit of the linear head gets "
                        "1/(K*H*W) of a classifier unit's gradient")
    m.add_argument("--head-init", default="default", choices=["default", "prior"],
                   help="prior: start the label-map head's bias at logit(mean training map), so "
                        "it starts from the background/foreground prior instead of p = 0.5")
    m.add_argument("--drop-rate", type=float, default=0.5, help="dropout before the classifier")
    m.add_argument("--label-smoothing", type=float, default=0.0)
    m.add_argument("--preprocessing", default="paper", choices=sorted(PREPROCESSING),
                   help="paper: per-image norm, per-pixel standardisation, minibatch "
                        "normalisation; standard: per-pixel standardisation of raw pixels only")

    t = p.add_argument_group("training")
    t.add_argument("--augment", default="none", choices=["none", "crop", "flip-shift", "full"],
                   help="none: centre crop; crop: a random crop (shift 3 px, no mirror); "
                        "flip-shift: mirror + shift 3 px (TFD); full: + rotation 45 deg and "
                        "zoom 1.2 (FER2013)")
    t.add_argument("--variants-per-epoch", type=int, default=1,
                   help="augmented copies of each image per epoch (the paper: 4 FER, 5 TFD)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128,
                   help="global batch size (split across torchrun processes)")
    t.add_argument("--eval-batch-size", type=int, default=512)
    t.add_argument("--optimizer", default="sgd", help="timm optimizer name (create_optimizer_v2)")
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--sched", default="cosine",
                   help="timm scheduler name (create_scheduler_v2: cosine, step, multistep, "
                        "...) or 'none'")
    t.add_argument("--warmup-epochs", type=int, default=0)
    t.add_argument("--decay-epochs", type=float, default=None, help="step scheduler period")
    t.add_argument("--decay-milestones", type=int, nargs="*", default=None,
                   help="multistep scheduler epochs")
    t.add_argument("--decay-rate", type=float, default=0.1)
    t.add_argument("--min-lr", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--early-stop", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better validation accuracy (0: off)")
    t.add_argument("--tta", action="store_true",
                   help="also report the test splits' 10-crop test-time-augmentation accuracy "
                        "at the end (validation, which selects the epoch, stays centre crop)")
    t.add_argument("--tta-val", action="store_true",
                   help="with --tta, score the validation split with 10 crops too (TFD's "
                        "Table II reports its valid fold)")

    r = p.add_argument_group("run")
    r.add_argument("--output", required=True, help="output folder (metrics, checkpoints)")
    r.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from OUTPUT/last.safetensors (or the given checkpoint)")
    r.add_argument("--checkpoint-every", type=int, default=200,
                   help="also checkpoint every N steps within an epoch (0: epoch ends only)")
    r.add_argument("--stop-after-steps", type=int, default=0,
                   help="stop abruptly after this many steps, as if killed (for resume tests)")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    r.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    r.add_argument("--channels-last", action="store_true",
                   help="channels_last memory format (faster convolutions with oneDNN on CPU "
                        "and cuDNN on CUDA; benchmarks/memory_format.py)")
    r.add_argument("--workers", type=int, default=0,
                   help="CPU threads for torch (0: torch's default). The data set is held on the "
                        "device, so there are no loader processes")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p

# ----------------------------------------------------------------------------------------------
# Seeds, distributed helpers
# ----------------------------------------------------------------------------------------------

def legacy_options(saved: dict[str, Any]) -> dict[str, Any]:
    """The options a run's saved args lack because it predates them, as that run used them.

    Runs before ``--label-map-source`` drew the maps from the augmented landmarks; that gives the
    pre-drawn maps' targets exactly unless the augmentation rotates or zooms
    (``--augment full``), so only those runs count as ``landmarks``."""
    out: dict[str, Any] = {}
    if "label_map_source" not in saved:
        out["label_map_source"] = "landmarks" if saved.get("augment") == "full" else "predrawn"
    return out


def saved_options(saved: dict[str, Any]) -> dict[str, Any]:
    """Every option of a run from its saved args: an option they lack predates them and ran with
    its default then (``legacy_options`` where that default has changed since)."""
    defaults = vars(build_parser().parse_args(["--data", "-", "--output", "-"]))
    return {**defaults, **legacy_options(saved), **saved}


def derive_seed(*keys: int) -> int:
    """An independent 63-bit seed for a tuple of integers (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def generator(*keys: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*keys))


@dataclass
class Dist:
    """The process's place in a torchrun launch (timm's ``init_distributed_device_so``)."""

    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed(device_arg: str | None) -> tuple[Dist, torch.device]:
    if device_arg is None:
        device_arg = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device_arg).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device_arg}: CUDA is not available on this machine")
    info = init_distributed_device_so(device_arg)
    return Dist(info["global_rank"], info["world_size"]), torch.device(info["device"])


# ----------------------------------------------------------------------------------------------
# Data: the splits of mtl_heads.datasets.load_splits, held as whole tensors on the device
# ----------------------------------------------------------------------------------------------

@dataclass
class Split:
    """One split held as whole tensors (on the device once moved)."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    landmarks: torch.Tensor | None = None  # float32 (N, 68, 2)
    valid: torch.Tensor | None = None  # bool (N,)
    # uint8 (N, K, H, W): label maps drawn once at the stored size, in 1 / MAP_LEVELS steps
    label_maps: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_dataset(cls, ds: FaceDataset) -> "Split":
        images = torch.from_numpy(np.ascontiguousarray(ds.images))
        images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
        labels = np.asarray(ds.labels)
        if labels.ndim != 1:
            raise ValueError(f"{ds!r}: soft labels are not supported by this example; use hard "
                             "class ids")
        landmarks = valid = None
        if ds.landmarks is not None:
            landmarks = torch.from_numpy(np.ascontiguousarray(ds.landmarks, np.float32))
            valid = torch.from_numpy(np.ascontiguousarray(ds.landmarks_valid))
        return cls(images, torch.from_numpy(labels.astype(np.int64)), landmarks, valid)

    def to(self, device: torch.device) -> "Split":
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Split(move(self.images), move(self.labels), move(self.landmarks), move(self.valid),
                     move(self.label_maps))


@dataclass
class Data:
    train: Split
    val: Split | None
    tests: dict[str, Split]
    classes: list[str]
    description: str
    unions: dict[str, tuple[str, ...]]  # a test split that is other test splits end to end


def find_unions(tests: dict[str, Split]) -> dict[str, tuple[str, ...]]:
    """The test splits that are the other test splits concatenated (FER2013's ``test`` is
    ``PublicTest`` then ``PrivateTest``), checked row by row so that they can be scored from
    their parts."""
    unions: dict[str, tuple[str, ...]] = {}
    for name, split in tests.items():
        parts = tuple(k for k in tests if k != name and len(tests[k]) < len(split))
        if len(parts) < 2 or sum(len(tests[k]) for k in parts) != len(split):
            continue

        def cat(field: str, parts: tuple[str, ...] = parts) -> torch.Tensor | None:
            values = [getattr(tests[k], field) for k in parts]
            return None if any(v is None for v in values) else torch.cat(values)

        same = all(
            (getattr(split, f) is None and cat(f) is None)
            or (getattr(split, f) is not None and cat(f) is not None
                and torch.equal(torch.nan_to_num(getattr(split, f)), torch.nan_to_num(cat(f))))
            for f in ("images", "labels", "landmarks", "valid"))
        if same:
            unions[name] = parts
    return unions


def load_data(args: argparse.Namespace) -> Data:
    splits = load_splits(args.data, args.landmarks,
                         **{k: getattr(args, k) for k in SPLIT_OPTIONS})
    tests = {name: Split.from_dataset(ds) for name, ds in splits.tests.items()}
    return Data(Split.from_dataset(splits.train),
                None if splits.val is None else Split.from_dataset(splits.val),
                tests, splits.classes, splits.description, find_unions(tests))


def predraw_label_maps(split: Split, chunk: int = 2048) -> torch.Tensor:
    """Each image's label maps drawn once at the stored size, as uint8 sub-sample counts.

    ``landmarks_to_label_maps`` with ``samples = 4`` gives coverages in steps of 1/16, so
    ``round(coverage * MAP_LEVELS)`` stores them exactly in a byte (48x48x3 bytes an image)."""
    size = tuple(split.images.shape[-2:])
    return torch.cat([
        (landmarks_to_label_maps(split.landmarks[idx], size, valid=split.valid[idx])
         * MAP_LEVELS).round().to(torch.uint8)
        for idx in torch.split(torch.arange(len(split), device=split.images.device), chunk)])


def crop_offset(args: argparse.Namespace) -> int:
    """Where the centre crop starts: landmarks of the stored image minus this are crop pixels."""
    return (args.image_size - args.crop) // 2


def epoch_batches(n: int, args: argparse.Namespace, epoch: int) -> list[torch.Tensor]:
    """The epoch's global batches of row indices: every (row, variant) exactly once.

    ``ceil(n * V / B)`` batches of near-equal size (they differ by at most one), so that no
    tiny last batch upsets the minibatch normalisation or leaves a process without samples.
    """
    total = n * args.variants_per_epoch
    order = torch.randperm(total, generator=generator(args.seed, STREAM_ORDER, epoch)) % n
    return list(torch.tensor_split(order, math.ceil(total / args.batch_size)))


# ----------------------------------------------------------------------------------------------
# Model, augmentation, optimisation
# ----------------------------------------------------------------------------------------------

def build_augmentation(args: argparse.Namespace) -> AlignedAugmentation:
    settings = {
        "none": dict(flip=False, shift=0, rotation=0.0, zoom=1.0),
        "crop": dict(flip=False, shift=3, rotation=0.0, zoom=1.0),
        "flip-shift": dict(flip=True, shift=3, rotation=0.0, zoom=1.0),
        "full": dict(flip=True, shift=3, rotation=45.0, zoom=1.2),
    }[args.augment]
    return AlignedAugmentation(**settings, crop=args.crop, flip_index=FLIP_INDEX_68,
                               mask_flip_channels=mirror_channels(PAPER_GROUPS))


def build_model(args: argparse.Namespace, in_chans: int, num_classes: int) -> nn.Module:
    kwargs: dict[str, Any] = {}
    if args.drop_rate is not None:
        kwargs["drop_rate"] = args.drop_rate
    torch.manual_seed(derive_seed(args.seed, STREAM_INIT))
    return mtl_heads.create_model(args.backbone, num_classes=num_classes, in_chans=in_chans,
                                  img_size=args.crop, label_maps=args.label_maps,
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


def autocast(args: argparse.Namespace, device: torch.device) -> contextlib.AbstractContextManager:
    if not args.amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


# ----------------------------------------------------------------------------------------------
# Checkpoints: safetensors tensors + JSON metadata; the optimizer state flattened to tensors.
# ----------------------------------------------------------------------------------------------

def save_checkpoint(path: Path, model: nn.Module, pre: nn.Module, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer | None, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("model.", model), ("pre.", pre), ("loss.", loss_fn)):
        for k, v in module.state_dict().items():
            tensors[prefix + k] = v.detach().cpu().contiguous()
    meta: dict[str, Any] = {"state": state}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for k, v in pstate.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[k] = v
        meta["optim_groups"] = sd["param_groups"]
        meta["optim_scalars"] = scalars
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    os.replace(tmp, path)  # atomic: a kill during the write keeps the previous checkpoint


def load_checkpoint(path: Path, model: nn.Module, pre: nn.Module, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer | None,
                    args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Load a checkpoint into the run's objects; with ``args``, first refuse one made with other
    (non-resumable) options, naming them, before any tensor is loaded."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    tensors, meta = read_checkpoint(path)
    if args is not None:
        saved = saved_options(meta["state"]["args"])
        changed = {k: (saved.get(k), v) for k, v in vars(args).items()
                   if k not in RESUMABLE and saved.get(k) != v}
        if changed:
            raise ValueError(f"--resume {path}: the run was started with other options "
                             f"(saved, now): {changed}")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(part("model."))
    pre.load_state_dict(part("pre."))
    loss_fn.load_state_dict(part("loss."))
    if optimizer is not None and "optim_groups" in meta:
        state: dict[int, dict[str, Any]] = {}
        for k, v in part("optim.").items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        for pid, extra in meta["optim_scalars"].items():
            state.setdefault(int(pid), {}).update(extra)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optim_groups"]})
    return meta["state"]


# ----------------------------------------------------------------------------------------------
# One epoch of training, one pass of evaluation
# ----------------------------------------------------------------------------------------------

def train_one_epoch(
    epoch: int,
    model: nn.Module,
    train_set: Split,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    args: argparse.Namespace,
    *,
    pre: PaperPreprocessing,
    aug: AlignedAugmentation,
    ctx: Dist,
    state: dict[str, Any],
    lr_scheduler: Any = None,
    checkpoint: Any = None,
    bar: Any = None,
) -> dict[str, Any]:
    """Train ``model`` (DDP-wrapped when distributed) for one epoch, from ``state["step"]`` on.

    Returns the epoch's sums (``loss``, ``ce``, ``label_maps``, ``correct``, ``samples``,
    ``valid_maps``, ``time``); ``checkpoint(epoch, step, sums)`` is called every
    ``--checkpoint-every`` steps.
    """
    device = train_set.images.device
    batches = epoch_batches(len(train_set), args, epoch)
    accum = state["accum"] or {"loss": 0.0, "ce": 0.0, "label_maps": 0.0, "correct": 0,
                               "samples": 0, "valid_maps": 0, "time": 0.0}
    start_step = state["step"]
    state["accum"], state["step"] = None, 0
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
        params = aug.generate_parameters(
            len(rows_global), generator(args.seed, STREAM_AUGMENT, epoch, step))
        params = {k: v[ctx.rank::ctx.world] for k, v in params.items()}
        rows = rows_global[ctx.rank::ctx.world].to(device)
        # The batch carries the keys the loss reads.
        batch: dict[str, torch.Tensor] = {"label": train_set.labels[rows]}

        x = pre.standardize(train_set.images[rows].float())
        if with_maps and train_set.label_maps is not None:
            masks = train_set.label_maps[rows].float() / MAP_LEVELS
            x, batch["label_maps"] = aug(x, masks=masks, params=params)
            batch["landmarks_valid"] = train_set.valid[rows]
        elif with_maps:
            x, landmarks = aug(x, train_set.landmarks[rows], params=params)
            batch["landmarks_valid"] = train_set.valid[rows]
            batch["label_maps"] = landmarks_to_label_maps(
                landmarks, args.crop, valid=batch["landmarks_valid"],
                thickness_scale=params["scale"].to(device=device, dtype=landmarks.dtype))
        else:
            x = aug(x, params=params)
        x = pre.normalize_batch(x)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)

        torch.manual_seed(derive_seed(args.seed, STREAM_DROPOUT, epoch, step, ctx.rank))
        with autocast(args, device):
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
                f"{state['global_step'] + 1}): lower --lr or check the data. The last good "
                f"checkpoint is kept in {out / CHECKPOINT}"
                + ("" if (out / CHECKPOINT).exists() else " (none written yet)"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["global_step"] += 1
        if lr_scheduler is not None:
            lr_scheduler.step_update(state["global_step"])
        s = stats.tolist()
        accum["loss"] += s[0]
        accum["ce"] += s[1]
        accum["label_maps"] += s[2]
        accum["correct"] += int(s[3])
        accum["samples"] += int(s[4])
        accum["valid_maps"] += int(s[5])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{accum['loss'] / accum['samples']:.3f}",
                            acc=f"{accum['correct'] / accum['samples']:.3f}")
        last = step + 1 == len(batches)
        if (checkpoint is not None and args.checkpoint_every
                and state["global_step"] % args.checkpoint_every == 0 and not last):
            accum["time"] += time.perf_counter() - tic
            tic = time.perf_counter()
            checkpoint(epoch, step + 1, accum)
        if args.stop_after_steps and state["global_step"] >= args.stop_after_steps:
            if ctx.main:
                print(f"stopping after {state['global_step']} steps (--stop-after-steps), "
                      "as if killed; resume with --resume")
            sys.stdout.flush()
            os._exit(0)
    accum["time"] += time.perf_counter() - tic
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
             num_classes: int, ctx: Dist, tta: bool = False,
             prior: torch.Tensor | None = None) -> EvalSums:
    """One pass over ``split``: every image goes through the network once per view.

    The centre crop goes through the multi-task model only when the label-map metrics are asked
    for (a multi-task model on data with landmarks); otherwise only the deployed classifier runs.
    With ``tta`` the 10 views of a batch go through the deployed classifier in one forward of
    ``10 * B`` images (``B = --eval-batch-size // 10``, so each forward holds about
    ``--eval-batch-size`` images), and the centre-crop logits are the centre view's."""
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
        with autocast(args, x.device):
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
             num_classes: int, ctx: Dist, tta: bool = False,
             prior: torch.Tensor | None = None) -> dict[str, Any]:
    """Accuracy (centre crop, optionally 10-crop TTA with the deployed classifier), per-class
    accuracy, confusion matrix, CE loss and, for multi-task models on data with landmarks, the
    label-map IoU, soft IoU and NME (:class:`mtl_heads.metrics.LabelMapMetrics`).

    With ``prior`` (the mean training map, :func:`mtl_heads.metrics.label_map_prior`) the same
    metrics of that one fixed map (``iou_prior``, ...): what a predictor that ignores the face
    scores. A head is only localising brows and mouth where it beats this."""
    return summarize(evaluate(model, pre, split, args, num_classes, ctx, tta=tta, prior=prior),
                     num_classes)


def evaluate_tests(model: nn.Module, pre: PaperPreprocessing, data: "Data",
                   args: argparse.Namespace, device: torch.device, ctx: Dist,
                   prior: torch.Tensor | None = None) -> dict[str, dict[str, Any]]:
    """Every test split scored, each image's forward passes done once: a union split (FER2013's
    ``test`` = PublicTest + PrivateTest) is scored from its parts' sums, never re-run."""
    sums: dict[str, EvalSums] = {}
    for name, split in data.tests.items():
        if name not in data.unions:
            sums[name] = evaluate(model, pre, split.to(device), args, len(data.classes), ctx,
                                  tta=args.tta, prior=prior)
    for name, parts in data.unions.items():
        total = sums[parts[0]]
        for part in parts[1:]:
            total = total + sums[part]
        sums[name] = total
    return {name: summarize(sums[name], len(data.classes)) for name in data.tests}


# ----------------------------------------------------------------------------------------------
# Logging
# ----------------------------------------------------------------------------------------------

def write_metrics(out: Path, history: list[dict[str, Any]]) -> None:
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


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def check_args(args: argparse.Namespace) -> None:
    try:  # a missing data path is the first thing to report
        source_kind(args.data)
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"--data {err}") from None
    for path, flag in ((args.landmarks, "--landmarks"), (args.test_landmarks, "--test-landmarks"),
                       (args.ferplus, "--ferplus")):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag} {path}: no such file")
    if args.ferplus is not None and source_kind(args.data) != "fer2013":
        raise ValueError(f"--ferplus labels FER2013 rows; --data {args.data} is not a fer2013.csv")
    import timm

    if not timm.is_model(args.backbone):
        import difflib

        close = difflib.get_close_matches(args.backbone, timm.list_models(), n=5, cutoff=0.6)
        raise ValueError(f"--backbone {args.backbone!r}: unknown timm model"
                         + (f"; close matches: {close}" if close else ""))
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1 or args.eval_batch_size < 1:
        raise ValueError("--batch-size and --eval-batch-size must be >= 1")
    if args.variants_per_epoch < 1:
        raise ValueError(f"--variants-per-epoch must be >= 1, got {args.variants_per_epoch}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if not 0.0 < args.train_subset <= 1.0:
        raise ValueError(f"--train-subset must be in (0, 1], got {args.train_subset}")
    if args.crop > args.image_size:
        raise ValueError(f"--crop {args.crop} is larger than --image-size {args.image_size}")
    if args.label_maps and args.data != "synthetic" and args.landmarks is None:
        raise ValueError(
            f"--label-maps {args.label_maps} needs landmarks: pass --landmarks FILE (make one with "
            f"`python -m mtl_heads annotate {args.data}`), or train the baseline with "
            "--label-maps 0"
        )


def train(args: argparse.Namespace) -> dict[str, Any]:
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

    # data set -> whole tensors on the device
    data = load_data(args)
    if args.label_maps and data.train.landmarks is None:
        raise ValueError(f"--label-maps {args.label_maps}: {args.data} has no landmarks")
    if args.batch_size > len(data.train):
        raise ValueError(f"--batch-size {args.batch_size} is larger than the training set "
                         f"({len(data.train)} images)")
    if args.batch_size < ctx.world:
        raise ValueError(f"--batch-size {args.batch_size} is smaller than the number of "
                         f"processes ({ctx.world})")
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
    loss_fn = mtl_heads.MaskedMultiTaskLoss(
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
    train_model = model
    if ctx.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    state: dict[str, Any] = {"epoch": 0, "step": 0, "global_step": 0, "history": [],
                             "accum": None, "best_acc": None, "best_epoch": None, "bad_epochs": 0}
    if args.resume is not None:
        path = out / CHECKPOINT if args.resume == "auto" else Path(args.resume)
        if args.resume == "auto" and not path.is_file():
            log(f"--resume: no checkpoint in {out} yet, starting from scratch")
        else:
            state = load_checkpoint(path, model, pre, loss_fn, optimizer, args)
            log(f"resumed from {path} at epoch {state['epoch']} step {state['step']}")
    state["args"] = vars(args)
    if ctx.main:
        (out / "args.json").write_text(json.dumps(vars(args), indent=2))
    log(f"data: {data.description}: train {len(train_set)}, val "
        f"{0 if val_set is None else len(val_set)}, "
        + ", ".join(f"{k} {len(v)}" for k, v in data.tests.items()))
    log(f"model: {args.backbone}, label maps {args.label_maps}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, device {device}, "
        f"{ctx.world} process(es)")

    def checkpoint(epoch: int, step: int, accum: Any) -> None:
        # Rank 0's minibatch statistics are the run's (each process tracks its own shard).
        if ctx.enabled:
            for buf in pre.minibatch.buffers():
                dist.broadcast(buf, 0)
        state.update(epoch=epoch, step=step, accum=accum)
        if ctx.main:
            save_checkpoint(out / CHECKPOINT, model, pre, loss_fn, optimizer, state)
        ctx.barrier()

    disable_bar = args.quiet or not sys.stderr.isatty() or not ctx.main
    for epoch in range(state["epoch"], args.epochs):
        with progress(steps_per_epoch, f"epoch {epoch + 1}/{args.epochs}", disable_bar) as bar:
            sums = train_one_epoch(epoch, train_model, train_set, optimizer, loss_fn, args,
                                   pre=pre, aug=aug, ctx=ctx, state=state,
                                   lr_scheduler=lr_scheduler, checkpoint=checkpoint, bar=bar)
        n = max(sums["samples"], 1)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": sums["loss"] / n,
            "train_ce": sums["ce"] / n,
            "train_label_maps": sums["label_maps"] / n if args.label_maps else None,
            "train_acc": sums["correct"] / n,
            "train_valid_maps": sums["valid_maps"] if args.label_maps else None,
            "samples": sums["samples"],
            "epoch_time": sums["time"],
            "samples_per_s": sums["samples"] / max(sums["time"], 1e-9),
        }
        if ctx.enabled:
            for buf in pre.minibatch.buffers():
                dist.broadcast(buf, 0)
        stop = False
        if val_set is not None:
            v = validate(model, pre, val_set, args, num_classes, ctx)
            record.update(val_acc=v["acc"], val_loss=v["loss"],
                          val_per_class_acc=v["per_class_acc"])
            if "iou" in v:
                record.update(val_iou=v["iou"], val_iou_mean=v["iou_mean"],
                              val_soft_iou=v["soft_iou"], val_nme=v["nme"],
                              val_nme_mean=v["nme_mean"])
            if state["best_acc"] is None or v["acc"] > state["best_acc"]:
                state.update(best_acc=v["acc"], best_epoch=epoch + 1, bad_epochs=0)
                if ctx.main:
                    save_checkpoint(out / BEST, model, pre, loss_fn, None,
                                    {"epoch": epoch + 1, "val_acc": v["acc"]})
            else:
                state["bad_epochs"] += 1
            stop = bool(args.early_stop) and state["bad_epochs"] >= args.early_stop
        state["history"].append(record)
        if ctx.main:
            write_metrics(out, state["history"])
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
                             "epochs_run": len(state["history"]),
                             "samples_seen": sum(r["samples"] for r in state["history"]),
                             "train_time_s": sum(r["epoch_time"] for r in state["history"])}
    if val_set is not None and (out / BEST).is_file():
        ctx.barrier()
        load_checkpoint(out / BEST, model, pre, loss_fn, None)
        final["selected"] = {"by": "best validation accuracy", "epoch": state["best_epoch"]}
    else:
        final["selected"] = {"by": "last epoch", "epoch": len(state["history"])}
    tic = time.perf_counter()
    if val_set is not None:
        final["val"] = validate(model, pre, val_set, args, num_classes, ctx,
                                tta=args.tta and args.tta_val, prior=prior)
    final["test"] = evaluate_tests(model, pre, data, args, device, ctx, prior=prior)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except TrainingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

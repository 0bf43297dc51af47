"""The options of a training run: one definition, their checks, and older runs' saved options.

``build_parser`` is the one place the options and their defaults are defined: ``mtl-heads
train``, ``examples/train.py``, the study runner and the tools all parse with it.
``saved_options`` reads the options of a run made by an older version (an option its ``args.json``
lacks ran with its default then, or with what :func:`legacy_options` says).
"""

import argparse
from pathlib import Path
from typing import Any

from ..losses import MAP_LOSSES
from ..preprocessing import PREPROCESSING

__all__ = [
    "PRECISIONS",
    "RESUMABLE",
    "TrainingError",
    "build_parser",
    "check_args",
    "legacy_options",
    "parse_args",
    "saved_options",
]

PRECISIONS = ("float32", "bfloat16", "auto")
# Options that may change when a run is resumed (everything else must match the checkpoint).
RESUMABLE = frozenset({"resume", "output", "quiet", "device", "workers", "stop_after_steps",
                       "checkpoint_every", "epochs", "early_stop", "tta", "tta_val",
                       "channels_last"})


class TrainingError(RuntimeError):
    """A run stopped for a reason the user must see (a loss that is not finite, ...)."""


def build_parser() -> argparse.ArgumentParser:
    """The options of ``mtl-heads train`` (and ``examples/train.py``), with their defaults."""
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
    r.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="float32; bfloat16 autocast (losses and metrics stay float32); auto: "
                        "bfloat16 where the device computes it natively (CUDA with bf16 support, a "
                        "CPU with avx512_bf16 or amx_bf16), else float32 with a note")
    r.add_argument("--amp", dest="precision", action="store_const", const="bfloat16",
                   help="the same as --precision bfloat16")
    r.add_argument("--channels-last", action="store_true",
                   help="channels_last memory format (faster convolutions with oneDNN on CPU "
                        "and cuDNN on CUDA; benchmarks/memory_format.py)")
    r.add_argument("--workers", type=int, default=0,
                   help="CPU threads for torch (0: torch's default). The data set is held on the "
                        "device, so there are no loader processes")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``build_parser().parse_args(argv)``.

    Examples:
        >>> args = parse_args(["--data", "synthetic", "--output", "runs/x", "--amp"])
        >>> args.precision, args.epochs, args.label_maps
        ('bfloat16', 10, 3)
    """
    return build_parser().parse_args(argv)


def legacy_options(saved: dict[str, Any]) -> dict[str, Any]:
    """The options a run's saved args lack because it predates them, as that run used them.

    Runs before ``--label-map-source`` drew the maps from the augmented landmarks; that gives the
    pre-drawn maps' targets exactly unless the augmentation rotates or zooms
    (``--augment full``), so only those runs count as ``landmarks``. Runs before ``--precision``
    saved ``amp`` (bfloat16 autocast when true).

    Examples:
        >>> legacy_options({"augment": "full", "amp": True})
        {'label_map_source': 'landmarks', 'precision': 'bfloat16'}
    """
    out: dict[str, Any] = {}
    if "label_map_source" not in saved:
        out["label_map_source"] = "landmarks" if saved.get("augment") == "full" else "predrawn"
    if "precision" not in saved:
        out["precision"] = "bfloat16" if saved.get("amp") else "float32"
    return out


def saved_options(saved: dict[str, Any]) -> dict[str, Any]:
    """Every option of a run from its saved args: an option they lack predates them and ran with
    its default then (:func:`legacy_options` where that default has changed since).

    Examples:
        >>> saved_options({"data": "synthetic", "output": "runs/x", "amp": False})["precision"]
        'float32'
    """
    defaults = vars(build_parser().parse_args(["--data", "-", "--output", "-"]))
    return {**defaults, **legacy_options(saved), **saved}


def check_args(args: argparse.Namespace) -> None:
    """Refuse options that cannot make a run, naming the option and what it needs.

    Raises:
        FileNotFoundError: a data or landmark path that does not exist.
        ValueError: an option out of its range, an unknown backbone, maps without landmarks.
    """
    from ..datasets import source_kind

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
            f"`mtl-heads annotate {args.data}`), or train the baseline with --label-maps 0"
        )

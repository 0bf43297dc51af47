"""Label-map IoU of the training prior alone: the face-blind reference for a head's IoU.

Usage::

    python scripts/sweeps/label_map_prior_iou.py --data fer2013.csv \
        --landmarks fer2013_landmarks.npz [--train-subset 0.25] [any other mtl-heads train option]

Splits the data exactly as ``mtl-heads train`` does with the same options
(:func:`mtl_heads.datasets.load_splits`), draws the mean centre-crop label map of the training
images with landmarks (:func:`mtl_heads.metrics.label_map_prior`), thresholds it at 0.5 and
prints its per-map IoU on the validation and test splits. ``mtl-heads train`` reports the same
number (``iou_prior`` in ``final.json``) for the runs it makes; this script gives it for runs made
before it did, without training anything.
"""

import sys

import torch

from mtl_heads.datasets import SPLIT_OPTIONS, FaceDataset, load_splits
from mtl_heads.landmarks import PAPER_GROUPS, landmarks_to_label_maps
from mtl_heads.metrics import LabelMapMetrics, label_map_prior
from mtl_heads.train import build_parser


def tensors(ds: FaceDataset, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The data set's landmarks in centre-crop pixels, and its valid flags."""
    return torch.from_numpy(ds.landmarks).float() - offset, torch.from_numpy(ds.landmarks_valid)


def main(argv: list[str] | None = None) -> int:
    # The engine's own parser: the split is the one `mtl-heads train` makes with these options
    # (the options that are not about the data do not matter here).
    args = build_parser().parse_args([*(argv if argv is not None else sys.argv[1:]),
                                      "--output", "-"])
    splits = load_splits(args.data, args.landmarks,
                         **{k: getattr(args, k) for k in SPLIT_OPTIONS})
    if splits.train.landmarks is None:
        raise SystemExit(f"{args.data}: no landmarks (pass --landmarks)")
    offset = (args.image_size - args.crop) // 2
    landmarks, valid = tensors(splits.train, offset)
    prior = label_map_prior(landmarks_to_label_maps(landmarks[idx], args.crop)
                            for idx in torch.split(valid.nonzero().flatten(), 4096))
    print(f"{splits.description}: prior from {int(valid.sum())} training maps, foreground per "
          f"map {[round(v, 4) for v in prior.mean((1, 2)).tolist()]}")
    named = ([("val", splits.val)] if splits.val is not None else []) + list(splits.tests.items())
    for name, ds in named:
        landmarks, valid = tensors(ds, offset)
        metrics = LabelMapMetrics([g.name for g in PAPER_GROUPS], prior=prior)
        for idx in torch.split(torch.arange(len(ds)), 4096):
            target = landmarks_to_label_maps(landmarks[idx], args.crop, valid=valid[idx])
            metrics.update(torch.zeros_like(target), target, valid[idx], landmarks[idx])
        res = metrics.compute()["prior"]
        per_map = ", ".join(f"{k} {v:.3f}" for k, v in res["iou"].items())
        print(f"{name}: prior IoU mean {res['iou_mean']:.3f} ({per_map}; NME mean "
              f"{res['nme_mean']:.3f}; {len(ds)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

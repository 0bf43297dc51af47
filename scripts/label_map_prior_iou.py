"""Label-map IoU of the training prior alone: the face-blind reference for a head's IoU.

Usage::

    python scripts/label_map_prior_iou.py --data fer2013.csv --landmarks fer2013_landmarks.npz \
        [--train-subset 0.25] [any other examples/train.py data option]

Splits the data exactly as ``examples/train.py`` does with the same options, draws the mean
centre-crop label map of the training images with landmarks, thresholds it at 0.5 and prints its
per-map IoU on the validation and test splits. ``examples/train.py`` reports the same number
(``iou_prior`` in ``final.json``) for the runs it makes; this script gives it for runs made
before it did, without training anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))  # examples/train.py: data split, model, evaluation

import train  # noqa: E402


class PriorModel(nn.Module):
    """Predicts the same label maps, logit(prior), for every face."""

    def __init__(self, prior: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("logit", torch.logit(prior.clamp(1e-3, 1 - 1e-3)))
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        return {"logits": x.new_zeros(b, self.num_classes),
                "label_maps": self.logit.expand(b, *self.logit.shape)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = train.build_parser().parse_args([*argv, "--output", "-", "--label-maps", "3"])
    train.check_args(args)
    data = train.load_data(args)
    if data.train.landmarks is None:
        raise SystemExit(f"{args.data}: no landmarks (pass --landmarks)")
    pre = train.PaperPreprocessing(channels=data.train.images.shape[1], size=args.image_size,
                                   crop=args.crop)
    pre.fit(torch.split(data.train.images, 4096))
    # evaluation needs the minibatch statistics of training; one batch fixes them
    pre.normalize_batch(train.center_crop(pre.standardize(data.train.images[:128].float()),
                                          args.crop))
    prior = train.label_map_prior(data.train, args)
    model = PriorModel(prior, len(data.classes))
    splits = ([("val", data.val)] if data.val is not None else []) + list(data.tests.items())
    print(f"{data.description}: prior from {int(data.train.valid.sum())} training maps, "
          f"foreground per map {[round(v, 4) for v in prior.mean((1, 2)).tolist()]}")
    for name, split in splits:
        res = train.evaluate(model, pre, split, args, len(data.classes), train.Dist(), prior=prior)
        per_map = ", ".join(f"{k} {v:.3f}" for k, v in res["iou_prior"].items())
        print(f"{name}: prior IoU mean {res['iou_prior_mean']:.3f} ({per_map}; {res['n']} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

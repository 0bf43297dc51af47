"""How much of the shared trunk's gradient comes from the label-map loss.

Usage::

    python scripts/sweeps/gradient_share.py RUN_DIR [--weights init|best|last] [--batches 8]

``RUN_DIR`` is a ``mtl-heads train`` output folder of a multi-task run (its ``args.json``
rebuilds the data split, preprocessing and model). For a few training batches (centre crop, no
augmentation) it prints the norms of the trunk gradients of the two loss terms, ``CE`` and
``lambda * C_l``, their ratio and their cosine: the auxiliary task can only shape the shared
layers in proportion to the second. ``init`` uses the run's initial weights (same seed), before
any training.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from mtl_heads import MaskedMultiTaskLoss
from mtl_heads.augmentation import center_crop
from mtl_heads.landmarks import landmarks_to_label_maps
from mtl_heads.preprocessing import PREPROCESSING, PaperPreprocessing
from mtl_heads.train import (
    BEST,
    CHECKPOINT,
    build_model,
    load_checkpoint,
    load_data,
    parse_args,
    saved_options,
)
from mtl_heads.train.data import crop_offset
from mtl_heads.train.run import training_prior

CHECKPOINTS = {"best": BEST, "last": CHECKPOINT}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--weights", default="best", choices=["init", "best", "last"])
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--save", action="store_true",
                   help="also write RUN/gradient_share_<weights>.json (read by "
                        "mtl-heads study collect)")
    opts = p.parse_args(argv)
    args_file = opts.run / "args.json"
    if not args_file.is_file():
        raise SystemExit(f"{opts.run}: no args.json (not a mtl-heads train output folder)")
    # The run's options as it ran them (an option its args.json predates ran with its default).
    args = parse_args(["--data", "-", "--output", str(opts.run)])
    vars(args).update(saved_options(json.loads(args_file.read_text())))
    if not args.label_maps:
        raise SystemExit(f"{opts.run} is a baseline run (--label-maps 0): no label-map loss")
    if args.weighting != "fixed":
        raise SystemExit(f"{opts.run} used --weighting {args.weighting}; this script splits the "
                         "loss as CE + lambda * C_l, i.e. --weighting fixed only")

    data = load_data(args)
    train = data.train
    images, labels, landmarks, valid = train.images, train.labels, train.landmarks, train.valid
    offset = crop_offset(args)
    pre = PaperPreprocessing(channels=images.shape[1], size=args.image_size, crop=args.crop,
                             **PREPROCESSING[args.preprocessing])
    pre.fit(torch.split(images, 4096))
    model = build_model(args, images.shape[1], len(data.classes))  # the run's initial weights
    if args.head_init == "prior":
        model.label_map_head.init_prior(training_prior(train, args))
    loss_fn = MaskedMultiTaskLoss(args.lam, weighting=args.weighting, map_loss=args.map_loss)
    if opts.weights != "init":
        path = opts.run / CHECKPOINTS[opts.weights]
        if not path.is_file():
            raise SystemExit(f"{path}: no such checkpoint")
        load_checkpoint(path, model, pre, loss_fn, None)
    model.train()
    pre.train()
    heads = {id(q) for m in (model.label_map_head, model.backbone.get_classifier())
             for q in m.parameters()}
    trunk = [q for q in model.parameters() if id(q) not in heads]

    rows_all = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    norms = []
    for rows in torch.split(rows_all, args.batch_size)[: opts.batches]:
        x = center_crop(pre.standardize(images[rows].float()), args.crop)
        batch = {"label": labels[rows], "landmarks_valid": valid[rows],
                 "label_maps": landmarks_to_label_maps(landmarks[rows] - offset, args.crop,
                                                       valid=valid[rows])}
        out = model(pre.normalize_batch(x))
        ce = F.cross_entropy(out["logits"], batch["label"])
        maps = loss_fn(out, batch) - ce  # lambda * C_l (fixed weighting)
        g_ce = torch.cat([g.flatten() for g in torch.autograd.grad(ce, trunk, retain_graph=True)])
        g_maps = torch.cat([g.flatten() for g in torch.autograd.grad(maps, trunk)])
        norms.append(torch.stack([g_ce.norm(), g_maps.norm(),
                                  F.cosine_similarity(g_ce, g_maps, dim=0)]))
    ce_norm, maps_norm, cos = torch.stack(norms).mean(0).tolist()
    print(f"{opts.run} ({opts.weights} weights, lambda {args.lam}, {len(norms)} batches of "
          f"{args.batch_size}): trunk gradient norm CE {ce_norm:.4g}, label maps {maps_norm:.4g}, "
          f"ratio maps/CE {maps_norm / ce_norm:.4f}, cosine {cos:+.3f}")
    if opts.save:
        (opts.run / f"gradient_share_{opts.weights}.json").write_text(json.dumps(
            {"weights": opts.weights, "batches": len(norms), "ce_norm": ce_norm,
             "maps_norm": maps_norm, "ratio": maps_norm / ce_norm, "cosine": cos}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

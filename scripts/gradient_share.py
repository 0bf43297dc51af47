"""How much of the shared trunk's gradient comes from the label-map loss.

Usage::

    python scripts/gradient_share.py RUN_DIR [--weights init|best|last] [--batches 8]

``RUN_DIR`` is an ``examples/train.py`` output folder of a multi-task run (its ``args.json``
rebuilds the data split, preprocessing and model). For a few training batches (centre crop, no
augmentation) it prints the norms of the trunk gradients of the two loss terms, ``CE`` and
``lambda * C_l``, their ratio and their cosine: the auxiliary task can only shape the shared
layers in proportion to the second. ``init`` uses the run's initial weights (same seed), before
any training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))  # examples/train.py: data split, model, evaluation

import train  # noqa: E402

import mtl_heads  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--weights", default="best", choices=["init", "best", "last"])
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--save", action="store_true",
                   help="also write RUN/gradient_share_<weights>.json (read by "
                        "examples/compare.py collect)")
    opts = p.parse_args(argv)
    args_file = opts.run / "args.json"
    if not args_file.is_file():
        raise SystemExit(f"{opts.run}: no args.json (not an examples/train.py output folder)")
    defaults = vars(train.build_parser().parse_args(["--data", "-", "--output", "-"]))
    args = argparse.Namespace(**{**defaults, **json.loads(args_file.read_text())})
    if not args.label_maps:
        raise SystemExit(f"{opts.run} is a baseline run (--label-maps 0): no label-map loss")
    if args.weighting != "fixed":
        raise SystemExit(f"{opts.run} used --weighting {args.weighting}; this script splits the "
                         "loss as CE + lambda * C_l, i.e. --weighting fixed only")

    data = train.load_data(args)
    pre = train.PaperPreprocessing(channels=data.train.images.shape[1], size=args.image_size,
                                   crop=args.crop)
    pre.fit(torch.split(data.train.images, 4096))
    model = train.build_model(args, data.train.images.shape[1], len(data.classes))
    if args.head_init == "prior":
        model.label_map_head.init_prior(train.label_map_prior(data.train, args))
    loss_fn = mtl_heads.MaskedMultiTaskLoss(args.lam, weighting=args.weighting,
                                            map_loss=args.map_loss)
    if opts.weights != "init":
        path = opts.run / {"best": train.BEST, "last": train.CHECKPOINT}[opts.weights]
        train.load_checkpoint(path, model, pre, loss_fn, None)
    model.train()
    pre.train()
    heads = {id(q) for m in (model.label_map_head, model.backbone.get_classifier())
             for q in m.parameters()}
    trunk = [q for q in model.parameters() if id(q) not in heads]

    offset = (args.image_size - args.crop) // 2
    rows_all = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    norms = []
    for rows in torch.split(rows_all, args.batch_size)[: opts.batches]:
        x = train.center_crop(pre.standardize(data.train.images[rows].float()), args.crop)
        valid = data.train.valid[rows]
        targets = {"labels": data.train.labels[rows], "label_map_valid": valid,
                   "label_maps": train.landmarks_to_label_maps(
                       data.train.landmarks[rows] - offset, args.crop, valid=valid)}
        out = model(pre.normalize_batch(x))
        ce = F.cross_entropy(out["logits"], targets["labels"])
        maps = loss_fn(out, targets) - ce  # lambda * C_l (fixed weighting)
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

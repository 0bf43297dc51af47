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

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import mtl_heads
from mtl_heads.augmentation import center_crop
from mtl_heads.datasets import SPLIT_OPTIONS, load_splits
from mtl_heads.landmarks import landmarks_to_label_maps
from mtl_heads.metrics import label_map_prior
from mtl_heads.preprocessing import PaperPreprocessing

CHECKPOINTS = {"best": "best.safetensors", "last": "last.safetensors"}
# The run's defaults for options added after it was made (examples/train.py's parser).
DEFAULTS: dict[str, Any] = dict(
    test_data=None, test_landmarks=None, fold=0, val_fraction=0.1, split_seed=0, train_subset=1.0,
    synthetic_train=3000, synthetic_test=1000, synthetic_invalid=0.0, image_size=48, crop=42,
    backbone="fer_convnet", head=None, lam=1.0, weighting="fixed", head_init="default",
    drop_rate=0.5, batch_size=128, seed=0, landmarks=None, map_loss="paper_eq2", ferplus=None,
    ferplus_mode="majority",
)


def init_seed(seed: int) -> int:
    """examples/train.py's seed of the initial weights (stream 0 of SeedSequence([seed, 0]))."""
    state = np.random.SeedSequence([seed, 0]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def load_weights(path: Path, model: torch.nn.Module, pre: torch.nn.Module) -> None:
    """The ``model.`` and ``pre.`` tensors of an examples/train.py checkpoint."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise SystemExit(f"{path}: no such checkpoint")
    tensors = load_file(str(path))
    for prefix, module in (("model.", model), ("pre.", pre)):
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)})


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
    args = argparse.Namespace(**{**DEFAULTS, **json.loads(args_file.read_text())})
    if not args.label_maps:
        raise SystemExit(f"{opts.run} is a baseline run (--label-maps 0): no label-map loss")
    if args.weighting != "fixed":
        raise SystemExit(f"{opts.run} used --weighting {args.weighting}; this script splits the "
                         "loss as CE + lambda * C_l, i.e. --weighting fixed only")

    splits = load_splits(args.data, args.landmarks,
                         **{k: getattr(args, k) for k in SPLIT_OPTIONS})
    train = splits.train
    images = torch.from_numpy(train.images)
    images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
    landmarks = torch.from_numpy(train.landmarks).float()
    valid = torch.from_numpy(train.landmarks_valid)
    labels = torch.from_numpy(np.asarray(train.labels, np.int64))
    offset = (args.image_size - args.crop) // 2
    pre = PaperPreprocessing(channels=images.shape[1], size=args.image_size, crop=args.crop)
    pre.fit(torch.split(images, 4096))
    torch.manual_seed(init_seed(args.seed))
    model = mtl_heads.create_model(
        args.backbone, num_classes=len(splits.classes), in_chans=images.shape[1],
        img_size=args.crop, label_maps=args.label_maps, head=args.head,
        **({} if args.drop_rate is None else {"drop_rate": args.drop_rate}))
    if args.head_init == "prior":
        model.label_map_head.init_prior(label_map_prior(
            landmarks_to_label_maps(landmarks[idx] - offset, args.crop)
            for idx in torch.split(valid.nonzero().flatten(), 4096)))
    loss_fn = mtl_heads.MaskedMultiTaskLoss(args.lam, weighting=args.weighting,
                                            map_loss=args.map_loss)
    if opts.weights != "init":
        load_weights(opts.run / CHECKPOINTS[opts.weights], model, pre)
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

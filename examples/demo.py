"""The embedded-default demo: baseline vs multi-task on SyntheticFaces, no download, ~2 CPU minutes.

SyntheticFaces draws faces whose expression lives only in the geometry of the brows and the
mouth, so the paper's brow/mouth label maps describe exactly what the classifier has to see.
Both runs use the paper's network (``fer_convnet``), the same data, seed, initial trunk weights
and budget; the multi-task run adds the auxiliary head that learns its task on this budget: the
spatial (FPN-style) label-map head trained with BCE + soft Dice (docs/concepts.md, "Choosing the
auxiliary loss")::

    python examples/demo.py                  # writes runs/demo/{baseline,multitask}
    python examples/demo.py --epochs 10      # longer, closer to convergence
    python examples/demo.py --paper-head     # the paper's linear head and Eq. 2 loss instead

It prints both test accuracies, each label map's IoU beside the face-blind prior's, writes a
Fig. 3-style grid of test faces with their predicted maps (``label_maps.png``) and says where the
metrics, checkpoints and the shipped (``deploy()``-ed) classifiers were written. Any option of
``mtl-heads train`` can follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from mtl_heads.datasets import SyntheticFaces
from mtl_heads.study.figures import label_map_grid
from mtl_heads.train import parse_args, train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="runs/demo", help="output folder")
    p.add_argument("--train-size", type=int, default=2000,
                   help="SyntheticFaces for training (10 %% of them held out for validation)")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--paper-head", action="store_true",
                   help="the paper's linear head and Eq. 2 loss (which barely learns the maps at "
                        "this budget) instead of the spatial head with BCE + Dice")
    p.add_argument("extra", nargs="*", help="options passed on to mtl-heads train (after --)")
    args = p.parse_args(argv)

    common = ["--data", "synthetic", "--synthetic-train", str(args.train_size),
              "--synthetic-test", str(args.test_size), "--epochs", str(args.epochs),
              "--batch-size", "32", "--lr", "0.05", "--augment", "flip-shift",
              "--seed", str(args.seed), "--checkpoint-every", "0", "--tta", *args.extra]
    head = (["--head", "linear", "--map-loss", "paper_eq2"] if args.paper_head
            else ["--head", "spatial", "--map-loss", "bce_dice"])
    results = {}
    for name, maps in (("baseline", ["--label-maps", "0"]), ("multitask", ["--label-maps", "3",
                                                                          *head])):
        out = Path(args.output) / name
        print(f"== {name}: fer_convnet, {' '.join(maps)} -> {out}", flush=True)
        tic = time.perf_counter()
        final = train(parse_args([*common, *maps, "--output", str(out)]))
        results[name] = {"test": final["test"]["test"], "seconds": time.perf_counter() - tic}

    print("\n== SyntheticFaces test set "
          f"({results['baseline']['test']['n']} faces, {args.epochs} epochs)")
    for name, r in results.items():
        t = r["test"]
        line = (f"{name:>9}: accuracy {t['acc']:.2%} (10-crop {t['acc_tta']:.2%})")
        print(line + f"  [{r['seconds']:.0f} s]")
    t = results["multitask"]["test"]
    print("label maps on the test faces (IoU at p > 0.5; the face-blind prior, the mean "
          "training map, in brackets):")
    for k in t["iou"]:
        print(f"  {k:>10}: IoU {t['iou'][k]:.2f} ({t['iou_prior'][k]:.2f}), "
              f"NME {t['nme'][k]:.3f} ({t['nme_prior'][k]:.3f})")
    gain = results["multitask"]["test"]["acc"] - results["baseline"]["test"]["acc"]
    print(f"multi-task - baseline: {gain * 100:+.1f} points (one seed; see docs/results.md)")
    test = SyntheticFaces(args.test_size, 48, seed=1)  # the engine's SyntheticFaces test faces
    grid = label_map_grid(Path(args.output) / "multitask",
                          torch.from_numpy(test.images)[:, None],
                          torch.from_numpy(test.landmarks.astype("float32")),
                          torch.from_numpy(test.landmarks_valid),
                          Path(args.output) / "label_maps.png")
    if grid is not None:
        print(f"predicted label maps of 12 test faces: {grid}")
    summary = Path(args.output) / "summary.json"
    summary.write_text(json.dumps(results, indent=2))
    print(f"outputs written to {Path(args.output).resolve()} (summary.json, baseline/, "
          "multitask/: metrics.jsonl, final.json, deploy.safetensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

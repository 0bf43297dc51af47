"""The embedded-default demo: baseline vs multi-task on SyntheticFaces, no download, ~2 CPU minutes.

SyntheticFaces draws faces whose expression lives only in the geometry of the brows and the
mouth, so the paper's brow/mouth label maps describe exactly what the classifier has to see.
Both runs use the paper's network (``fer_convnet``), the same data, seed, initial trunk weights
and budget; they differ in ``--label-maps`` only::

    python examples/demo.py                  # writes runs/demo/{baseline,multitask}
    python examples/demo.py --epochs 10      # longer, closer to convergence

It prints both test accuracies and where the metrics, checkpoints and the shipped
(``deploy()``-ed) classifiers were written. Any option of examples/train.py can follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import build_parser, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="runs/demo", help="output folder")
    p.add_argument("--train-size", type=int, default=2000,
                   help="SyntheticFaces for training (10 %% of them held out for validation)")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("extra", nargs="*", help="options passed on to examples/train.py (after --)")
    args = p.parse_args(argv)

    common = ["--data", "synthetic", "--synthetic-train", str(args.train_size),
              "--synthetic-test", str(args.test_size), "--epochs", str(args.epochs),
              "--batch-size", "32", "--lr", "0.05", "--augment", "flip-shift",
              "--seed", str(args.seed), "--checkpoint-every", "0", "--tta", *args.extra]
    results = {}
    for name, maps in (("baseline", "0"), ("multitask", "3")):
        out = Path(args.output) / name
        print(f"== {name}: fer_convnet, --label-maps {maps} -> {out}", flush=True)
        tic = time.perf_counter()
        final = train(build_parser().parse_args([*common, "--label-maps", maps,
                                                 "--output", str(out)]))
        results[name] = {"test": final["test"]["test"], "seconds": time.perf_counter() - tic}

    print("\n== SyntheticFaces test set "
          f"({results['baseline']['test']['n']} faces, {args.epochs} epochs)")
    for name, r in results.items():
        t = r["test"]
        line = (f"{name:>9}: accuracy {t['acc']:.2%} (10-crop {t['acc_tta']:.2%})")
        if "iou_mean" in t:
            line += f", label-map IoU {t['iou_mean']:.2f}"
        print(line + f"  [{r['seconds']:.0f} s]")
    gain = results["multitask"]["test"]["acc"] - results["baseline"]["test"]["acc"]
    print(f"multi-task - baseline: {gain * 100:+.1f} points (one seed; see docs/results.md)")
    summary = Path(args.output) / "summary.json"
    summary.write_text(json.dumps(results, indent=2))
    print(f"outputs written to {Path(args.output).resolve()} (summary.json, baseline/, "
          "multitask/: metrics.jsonl, final.json, deploy.safetensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

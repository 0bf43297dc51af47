"""Table II of DeVries et al. (2014) on the Toronto Face Database: baseline vs multi-task, 5 folds.

Each of the 5 official folds trains three models (the baseline, the paper's multi-task network
and the auxiliary variant that learns its maps) on its train split, selects the epoch on its
valid split and reports valid and test accuracy; augmentation is the paper's TFD setting
(mirror + shift, 5 variants per image per epoch).

    python examples/tfd.py --data TFD_48x48.mat --landmarks tfd_landmarks.npz --epochs 30

Without ``--landmarks`` the .mat is annotated first (``mtl-heads annotate``). TFD is not
public; the script is tested end to end on a generated file of the same layout. Writes
``table.md``, ``results.json`` and ``curves.png`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mtl_heads.study.figures import plot_curves
from mtl_heads.study.runs import ARM_NAMES, ARMS, ensure_landmarks, format_mean_std, run_training

PAPER = {  # Table II: mean ± std over the 5 folds (%), as reported
    "valid": {"baseline": "85.72 ± 1.28", "paper": "87.80 ± 1.16"},
    "test": {"baseline": "84.14 ± 1.86", "paper": "85.13 ± 1.84"},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="TFD_48x48.mat")
    p.add_argument("--landmarks", default=None, help="its landmark file (annotated if missing)")
    p.add_argument("--output", default="runs/tfd")
    p.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--variants", type=int, default=5, help="variants per image per epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone", default="fer_convnet")
    p.add_argument("--models", nargs="+", choices=list(ARMS), default=list(ARMS),
                   help="the baseline, the paper's multi-task network, the learned aux variant")
    p.add_argument("--no-tta", action="store_true", help="skip the 10-crop evaluation")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("train_args", nargs="*", help="options for mtl-heads train (after --)")
    args = p.parse_args(argv)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    landmarks = args.landmarks or str(ensure_landmarks(args.data, out / "landmarks.npz"))
    tta = not args.no_tta
    key = "acc_tta" if tta else "acc"
    base = ["--data", args.data, "--landmarks", landmarks, "--backbone", args.backbone,
            "--epochs", str(args.epochs), "--augment", "flip-shift",
            "--variants-per-epoch", str(args.variants), "--seed", str(args.seed),
            *(["--tta", "--tta-val"] if tta else [])]
    acc: dict[str, dict[str, list[float]]] = {s: {m: [] for m in args.models} for s in PAPER}
    dirs = {}
    for fold in args.folds:
        for model in args.models:
            run = out / args.backbone / f"fold{fold}" / model
            dirs[f"{model} fold {fold}"] = run
            final = run_training(run, [*base, "--fold", str(fold), *ARMS[model],
                                       *args.train_args], quiet=args.quiet)
            acc["valid"][model].append(final["val"][key])
            acc["test"][model].append(final["test"]["test"][key])

    lines = [f"# TFD, {args.backbone}, folds {args.folds}, {args.epochs} epochs, mirror + shift "
             f"({args.variants} variants)", "",
             f"Accuracy (%), {'10-crop' if tta else 'centre crop'}, mean ± std over folds.", "",
             "| | " + " | ".join(ARM_NAMES[m] for m in args.models)
             + " | paper baseline (reported) | paper multi-task (reported) |",
             "|---" * (len(args.models) + 3) + "|"]
    for split in PAPER:
        lines.append(f"| {split} | " + " | ".join(format_mean_std(acc[split][m])
                                                   for m in args.models)
                     + f" | {PAPER[split]['baseline']} | {PAPER[split]['paper']} |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"tta": tta, "accuracy": acc, "runs": {k: str(v) for k, v in dirs.items()}}, indent=2))
    plot_curves(dirs, out / "curves.png", "TFD")
    print(text)
    print(f"outputs written to {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

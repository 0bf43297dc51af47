"""Table II of DeVries et al. (2014) on the Toronto Face Database: baseline vs multi-task, 5 folds.

Each of the 5 official folds trains on its train split, selects the epoch on its valid split and
reports valid and test accuracy; augmentation is the paper's TFD setting (mirror + shift, 5
variants per image per epoch).

    python examples/tfd.py --data TFD_48x48.mat --landmarks tfd_landmarks.npz --epochs 30

Without ``--landmarks`` the .mat is annotated first (``python -m mtl_heads annotate``). TFD is not
public; the script is tested end to end on a generated file of the same layout. Writes
``table.md``, ``results.json`` and ``curves.png`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiment import annotate, fmt, plot_curves, run_training  # noqa: E402

PAPER = {  # Table II: mean ± std over the 5 folds (%)
    "valid": {"baseline": "85.72 ± 1.28", "multitask": "87.80 ± 1.16"},
    "test": {"baseline": "84.14 ± 1.86", "multitask": "85.13 ± 1.84"},
}
MODELS = {"baseline": "0", "multitask": "3"}


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
    p.add_argument("--head", default=None, choices=[None, "linear", "spatial"])
    p.add_argument("--no-tta", action="store_true", help="skip the 10-crop evaluation")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("train_args", nargs="*", help="options for examples/train.py (after --)")
    args = p.parse_args(argv)

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    landmarks = args.landmarks or str(annotate(args.data, out / "landmarks.npz"))
    tta = not args.no_tta
    key = "acc_tta" if tta else "acc"
    base = ["--data", args.data, "--landmarks", landmarks, "--backbone", args.backbone,
            "--epochs", str(args.epochs), "--augment", "flip-shift",
            "--variants-per-epoch", str(args.variants), "--seed", str(args.seed),
            *(["--head", args.head] if args.head else []), *(["--tta", "--tta-val"] if tta else [])]
    acc: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODELS} for s in PAPER}
    dirs = {}
    for fold in args.folds:
        for model, maps in MODELS.items():
            run = out / args.backbone / f"fold{fold}" / model
            dirs[f"{model} fold {fold}"] = run
            final = run_training(run, [*base, "--fold", str(fold), "--label-maps", maps,
                                       *args.train_args], quiet=args.quiet)
            acc["valid"][model].append(final["val"][key])
            acc["test"][model].append(final["test"]["test"][key])

    lines = [f"# TFD, {args.backbone}, folds {args.folds}, {args.epochs} epochs, mirror + shift "
             f"({args.variants} variants)", "",
             f"Accuracy (%), {'10-crop' if tta else 'centre crop'}, mean ± std over folds.", "",
             "| | baseline | multi-task | paper baseline | paper multi-task |",
             "|---|---|---|---|---|"]
    for split in PAPER:
        lines.append(f"| {split} | {fmt(acc[split]['baseline'])} | "
                     f"{fmt(acc[split]['multitask'])} | {PAPER[split]['baseline']} | "
                     f"{PAPER[split]['multitask']} |")
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

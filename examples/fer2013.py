"""Table I of DeVries et al. (2014) on FER2013: baseline vs multi-task, without and with transforms.

Every cell trains three models with the package's engine (``mtl-heads train``): the baseline, the
paper's multi-task network (linear label-map head, Eq. 2's loss, lambda 1) and the auxiliary
variant that learns its maps (spatial head, BCE + Dice, lambda 3; docs/results.md). Model
selection (best epoch) on a validation slice
held out of Training (pixel-identical duplicates kept on one side), never on a test split.
PublicTest and PrivateTest are reported separately, and their union as the paper's test set
where the file holds both. Accuracies are 10-crop (the paper's test protocol) and centre crop.

    python examples/fer2013.py --data fer2013.csv --landmarks fer2013_landmarks.npz \\
        --seeds 0 1 2 3 4 5 6 7 --epochs 30 --output runs/table1
    # one row only, the cheapest (no transformations):
    python examples/fer2013.py --data fer2013.csv --landmarks lm.npz --cells none
    # data-efficiency curve (10/25/50/100 % of Training, no transformations):
    python examples/fer2013.py --data fer2013.csv --landmarks lm.npz --data-efficiency
    # another backbone, any `mtl-heads train` option after --:
    python examples/fer2013.py --data fer2013.csv --landmarks lm.npz --backbone resnet18 \\
        --head spatial -- --lr 0.05

Without ``--landmarks`` the data is annotated first (``mtl-heads annotate``).
Writes ``table.md``, ``results.json``, ``curves_<cell>.png`` and ``label_maps.png`` (a Fig. 3-style
grid of predicted maps over test faces) into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mtl_heads.datasets import FER2013
from mtl_heads.study import mean_std
from mtl_heads.study.figures import dataset_label_map_grid, plot_curves
from mtl_heads.study.runs import ARM_NAMES, ARMS, ensure_landmarks, format_mean_std, run_training

PAPER = {  # Table I, 8 runs each: mean ± std test accuracy (%), as reported
    "none": {"baseline": "63.71 ± 0.63", "paper": "66.83 ± 0.66"},
    "transforms": {"baseline": "66.39 ± 0.58", "paper": "67.21 ± 0.70"},
}
CELLS = {
    "none": ["--augment", "none", "--variants-per-epoch", "1"],
    "transforms": ["--augment", "full"],
}
CELL_NAMES = {"none": "no transformations", "transforms": "transformations"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="fer2013.csv or the Kaggle image folder")
    p.add_argument("--landmarks", default=None, help="its landmark file (annotated if missing)")
    p.add_argument("--output", default="runs/fer2013")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--variants", type=int, default=4,
                   help="augmented variants per image per epoch in the transforms cell (paper: 4)")
    p.add_argument("--backbone", default="fer_convnet")
    p.add_argument("--models", nargs="+", choices=list(ARMS), default=list(ARMS))
    p.add_argument("--data-efficiency", action="store_true",
                   help="instead of Table I: baseline vs multi-task on fractions of Training "
                        "(no transformations)")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    p.add_argument("--no-tta", action="store_true", help="skip the 10-crop evaluation")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("train_args", nargs="*", help="options for mtl-heads train (after --)")
    return p.parse_args(argv)


def accuracies(final: dict[str, Any], tta: bool) -> dict[str, float]:
    key = "acc_tta" if tta else "acc"
    return {split: res[key] for split, res in final["test"].items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    landmarks = args.landmarks
    if landmarks is None:
        landmarks = str(ensure_landmarks(args.data, out / "landmarks.npz"))
    base = ["--data", args.data, "--landmarks", landmarks, "--backbone", args.backbone,
            "--epochs", str(args.epochs)]
    if not args.no_tta:
        base += ["--tta"]
    tta = not args.no_tta
    root = out / args.backbone

    # (cell, model, seed) -> final.json
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    dirs: dict[tuple[str, str, int], Path] = {}
    if args.data_efficiency:
        cells = {f"{f:g}": ["--augment", "none", "--train-subset", str(f)]
                 for f in args.fractions}
        names = {k: f"{float(k):.0%} of Training" for k in cells}
        sub = root / "efficiency"
    else:
        cells = {c: CELLS[c] + (["--variants-per-epoch", str(args.variants)]
                                if c == "transforms" else []) for c in args.cells}
        names = {c: CELL_NAMES[c] for c in cells}
        sub = root
    for cell, cell_args in cells.items():
        for seed in args.seeds:
            for model in args.models:
                run = sub / cell / f"{model}_s{seed}"
                dirs[cell, model, seed] = run
                runs[cell, model, seed] = run_training(
                    run, [*base, *cell_args, *ARMS[model], "--seed", str(seed),
                          *args.train_args], quiet=args.quiet)

    splits = list(next(iter(runs.values()))["test"])
    lines = [f"# FER2013, {args.backbone}, {args.epochs} epochs, seeds {args.seeds}",
             "",
             f"Test accuracy (%), {'10-crop' if tta else 'centre crop'}, mean ± std over seeds; "
             "model selected on a validation slice of Training.", ""]
    table: dict[str, Any] = {}
    for split in splits:
        label = "PublicTest + PrivateTest (the paper's test set)" if split == "test" else split
        others = [m for m in args.models if m != "baseline"]
        header = " | ".join(ARM_NAMES[m] for m in args.models)
        gain_header = "".join(f" | {m} − baseline (paired mean)" for m in others
                              if "baseline" in args.models)
        lines += [f"## {label}", "", f"| | {header}{gain_header} |",
                  "|---" * (1 + len(args.models) + (len(others) if "baseline" in args.models
                                                    else 0)) + "|"]
        for cell in cells:
            acc = {m: [accuracies(runs[cell, m, s], tta)[split] for s in args.seeds]
                   for m in args.models}
            row = [format_mean_std(acc[m]) for m in args.models]
            if "baseline" in acc:
                for m in others:
                    gains = [b - a for a, b in zip(acc["baseline"], acc[m], strict=True)]
                    acc[f"{m}_gain"] = gains
                    row.append(f"{100 * sum(gains) / len(gains):+.2f}")
            table.setdefault(split, {})[cell] = acc
            lines.append(f"| {names[cell]} | " + " | ".join(row) + " |")
        lines.append("")
    if not args.data_efficiency:
        lines += ["## The paper (Table I, 8 runs, PublicTest + PrivateTest), as reported", "",
                  "| | baseline | multi-task |", "|---|---|---|"]
        lines += [f"| {CELL_NAMES[c]} | {PAPER[c]['baseline']} | {PAPER[c]['paper']} |"
                  for c in PAPER]
        lines.append("")
    centre = {f"{c}/{m}/s{s}": {split: r["acc"] for split, r in runs[c, m, s]["test"].items()}
              for (c, m, s) in runs}
    iou = {f"{c}/{m}/s{s}": runs[c, m, s].get("val", {}).get("iou")
           for c in cells for m in args.models if m != "baseline" for s in args.seeds}
    lines += ["Label-map IoU at p > 0.5 on the validation slice (multi-task runs): "
              + ", ".join(f"{k}: {v['left_brow']:.2f}/{v['right_brow']:.2f}/{v['mouth']:.2f}"
                          for k, v in iou.items() if v), ""]
    text = "\n".join(lines)
    (out / ("efficiency.md" if args.data_efficiency else "table.md")).write_text(text)
    (out / ("efficiency.json" if args.data_efficiency else "results.json")).write_text(
        json.dumps({"tta": tta, "table": table, "centre_crop": centre, "val_iou": iou,
                    "runs": {f"{c}/{m}/s{s}": str(d) for (c, m, s), d in dirs.items()}},
                   indent=2))
    print(text)

    for cell in cells:
        plot_curves({f"{m} s{s}": dirs[cell, m, s] for m in args.models for s in args.seeds},
                    out / f"curves_{cell}.png", f"FER2013, {names[cell]}")
    if args.data_efficiency:
        plot_cell_efficiency(table, [float(c) for c in cells], list(cells), args.models,
                        out / "efficiency.png", splits[0])
    mapped = [m for m in args.models if m != "baseline"]
    if mapped:  # the predicted maps of the last multi-task model, on PublicTest faces
        test = FER2013(args.data, split="PublicTest", landmarks=landmarks)
        dataset_label_map_grid(dirs[next(iter(cells)), mapped[-1], args.seeds[0]], test,
                               out / "label_maps.png")
    print(f"outputs written to {out.resolve()}")
    return 0


def plot_cell_efficiency(table: dict[str, Any], fractions: list[float], cells: list[str],
                    models: list[str], path: Path, split: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    percent = [100 * f for f in fractions]
    for model in models:
        stats = [mean_std([100 * a for a in table[split][c][model]]) for c in cells]
        ax.errorbar(percent, [m for m, _ in stats], yerr=[s for _, s in stats], fmt="o-",
                    capsize=3, label=ARM_NAMES[model])
    ax.set_xlabel("% of Training used")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_xscale("log")
    ax.set_xticks(percent, [f"{p:g}" for p in percent])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

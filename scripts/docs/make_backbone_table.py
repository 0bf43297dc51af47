"""Render docs/backbones.md from the backbone sweep's summary (results/sweeps/backbone_sweep.json).

Usage:
    python scripts/docs/make_backbone_table.py          # rewrite docs/backbones.md
    python scripts/docs/make_backbone_table.py --check  # exit 1 if the committed page is stale

The summary comes from ``python scripts/sweeps/backbone_sweep.py --out DIR`` then
``python scripts/sweeps/backbone_sweep.py --out DIR --summary results/sweeps/backbone_sweep.json``.
"""

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PAGE = ROOT / "docs" / "backbones.md"
SUMMARY = ROOT / "results" / "sweeps" / "backbone_sweep.json"

HEADER = """# Supported backbones

Every timm model family, tried as a new user with FER2013 images would: the smallest registered
model of each timm {timm} model module (by parameter count, from scratch), plus `fer_convnet`,
through

```python
mtl_heads.create_model(name, num_classes=7, in_chans=1, img_size=48, num_label_maps=3, head=head)
```

at 48 px (FER2013, TFD) and 42 px (the paper's crops), with both head forms. Each run checks
forward and backward at batch {batch}, the output shapes, `deploy()` logits equal to the
multi-task model's (`torch.equal`, eval mode), and records whether two Adam steps (lr 1e-4) on a
fixed batch lower the loss (cells marked *loss rose* when not: deep nets from scratch may rise
for their first steps; it is not counted as a failure). A model that `create_model` refuses with
the hint `resize_input=True` is built again with it (see [Small inputs](#small-inputs)).

This page is generated: `python scripts/sweeps/backbone_sweep.py --out DIR` (resumable, one process
per family, one thread each; {coverage}), then
`python scripts/sweeps/backbone_sweep.py --out DIR --summary results/sweeps/backbone_sweep.json`
and `python scripts/docs/make_backbone_table.py`. `tests/models/test_backbone_sweep.py` reruns a
fixed sample of {n_ci} families and fails when they no longer match this page (`pytest --runslow
tests/models/test_backbone_sweep.py`: 30 tests, 192 s on this CPU beside two training runs).

## Summary

| | spatial head | linear head |
|---|---:|---:|
{counts}

*Native*: `create_model` runs the model at the input's size (passing `img_size` to the families
that take it). *Resized*: the family cannot run at that size; with `resize_input=True` the model
resizes its input to the smallest size it runs (column *runs at*). *Refused*: `create_model` raises
a `ValueError` at build time naming the reason and the fix (listed below the table). *Failed*: a
failure after the build (none should be left; listed below when there are). *Timeout* (the
family's process ran past the sweep's time limit) and *not run* (the sweep has not reached the
family yet) say nothing about the family: resume the sweep to fill them in.
"""

SMALL_INPUTS = """
## Small inputs

`create_model(..., img_size=48)` checks the model at the size you give with one forward pass at
batch 1. When the family cannot run at that size (a kernel larger than the map it meets, windows or
halo blocks that must divide the feature map, valid-padded stems), it finds the smallest square
size that works and refuses, naming it:

```text
ValueError: inception_v3 (inception_v3 family) does not run on 48x48 inputs (RuntimeError at
conv.py: ... Kernel size can't be greater than actual input size); the smallest square input it
runs is 80x80. Pass resize_input=True to create_model to resize inputs to 80x80 inside the model
(about 2.8x the compute of the 48x48 input), or feed larger images
```

With `resize_input=True` the backbone is a `ResizedClassifier`: an `InputResize` layer
(bilinear) in front of the timm model, applied in `forward`, `forward_features` and
`forward_intermediates`. The label maps still come out at the input's size. `deploy()` returns the
`ResizedClassifier`, the resize then the unchanged timm model, with timm's model contract:
`deployed.model.state_dict()` is an ordinary timm checkpoint and `deployed.load_state_dict` takes
one; it pickles (`torch.save` of the whole model), deep-copies and traces with `torch.fx` like
any module. The cost is the compute of the larger input (the *fwd+bwd ms* column is measured at
the size the model runs at). Without `img_size`, no check is made and the backbone's default
input size is assumed.

## The linear head's gaps

The linear head reads the pre-logits vector: the input of `get_classifier()`. Families whose
classifier pools inside itself (or does not pool) hand it a feature map instead; `create_model`
finds this with the same probe forward and refuses at build time:

```text
ValueError: sequencer2d_s cannot feed the linear label-map head: its classifier (ClassifierHead)
receives (1, 3, 3, 384) and forward_head(pre_logits=True) returns (1, 384) at 48x48, not one
pooled (B, D) vector (the family pools inside its classifier, or not at all); use head='spatial'
```

The same probe (a noise image, so that the pooled vector is not zero) also compares the values:
a family whose head transforms the pooled vector before the classifier (efficientvit_msra:
`BatchNorm1d` then the `Linear` that `get_classifier()` returns) would train the classifier on
one vector and deploy it on another, and is refused too. A 1×1-convolution classifier (dpn)
receives the pooled vector as a `(B, D, 1, 1)` map, which the linear head hands it the same way.
"""


def _ms(row: dict) -> str:
    return f"{row['fwd_bwd_ms']:,.0f}" if row.get("fwd_bwd_ms") is not None else "–"


def _status(row: dict) -> str:
    if row["status"] != "works":
        return row["status"]
    return "resized" if "resized" in row.get("adapted", "") else "native"


def _cell(row: dict | None) -> str:
    if row is None:
        return "not run"
    status = _status(row)
    if status in ("native", "resized"):
        rose = "" if row.get("loss_decreased", True) else ", *loss rose*"
        return f"{status}, {_ms(row)} ms, {row['head_params']:,}{rose}"
    return f"**{status}**"


def _coverage(summary: dict, fams: list[str]) -> str:
    run = {r["family"] for r in summary["rows"]}
    minutes = f"{summary['sweep_seconds'] / 60:.0f} min of family processes"
    if run >= set(fams):
        return f"{minutes} for all {len(fams)} families on the project's shared 2-core CPU"
    return (
        f"so far {len(run)} of the {len(fams)} families, {minutes} on the project's shared "
        "2-core CPU; the others are marked *not run*"
    )


def render(summary: dict | None = None) -> str:
    summary = summary or json.loads(SUMMARY.read_text())
    by = {(r["family"], r["size"], r["head"]): r for r in summary["rows"]}
    fams = sorted(set(summary["families"]) | {r["family"] for r in summary["rows"]})
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for fam in fams:
        for size in (48, 42):
            for head in ("spatial", "linear"):
                row = by.get((fam, size, head))
                counts[size, head][_status(row) if row else "not run"] += 1
    count_rows = []
    for size in (48, 42):
        statuses = ["native", "resized", "refused", "failed"]
        statuses += [
            extra
            for extra in ("timeout", "out of memory", "not run")
            if any(counts[size, h][extra] for h in ("spatial", "linear"))
        ]
        for status in statuses:
            cells = [str(counts[size, head][status]) for head in ("spatial", "linear")]
            count_rows.append(f"| {status} at {size} px | " + " | ".join(cells) + " |")
    text = HEADER.format(
        timm=summary["timm"],
        batch=summary["batch"],
        coverage=_coverage(summary, fams),
        n_ci=len(summary["ci_families"]),
        counts="\n".join(count_rows),
    )
    lines = [
        "",
        "## Every family",
        "",
        "Cells: status, forward + backward ms at batch 8 (one thread, on a machine shared with "
        "other jobs: indicative, not a benchmark), label-map head "
        "parameters. *Trunk* counts the backbone (the deployed classifier) at 48 px. *Peak MB*: "
        "the sweep process's peak resident memory over the family's four runs (importing torch, "
        "timm and mtl_heads alone takes 724 MB).",
        "",
        "| family | model | trunk params | adapted at 48 px | runs at | spatial, 48 px "
        "| linear, 48 px | spatial, 42 px | linear, 42 px | peak MB |",
        "|---|---|---:|---|---:|---|---|---|---|---:|",
    ]
    notes = []
    for fam in fams:
        rows = {(s, h): by.get((fam, s, h)) for s in (48, 42) for h in ("spatial", "linear")}
        ref = rows[48, "spatial"] or next((r for r in rows.values() if r), {})
        model = ref.get("model")
        trunk = next(
            (f"{r['trunk_params']:,}" for r in rows.values() if r and "trunk_params" in r), "–"
        )
        adapted = ref.get("adapted") or "–"
        runs_at = ref.get("runs_at", "–")
        ci = " (CI)" if fam in summary["ci_families"] else ""
        cells = " | ".join(_cell(rows[s, h]) for s in (48, 42) for h in ("spatial", "linear"))
        peak = max((r.get("peak_mb", 0) for r in rows.values() if r), default=0)
        peak_text = f"{peak:,}" if peak else "–"
        name = f"`{model}`" if model else "–"
        lines.append(
            f"| {fam}{ci} | {name} | {trunk} | {adapted} | {runs_at} | {cells} | {peak_text} |"
        )
        for (size, head), row in rows.items():
            if row and row["status"] != "works" and row.get("message"):
                message = " ".join(row["message"].split())
                notes.append(
                    f"- **{fam}** (`{model}`, {head}, {size} px, {row['status']}): {message}"
                )
    lines += ["", "## Refusals and failures", ""]
    lines += notes or ["None."]
    return text + "\n".join(lines) + "\n" + SMALL_INPUTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/backbones.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run python scripts/docs/make_backbone_table.py",
                  file=sys.stderr)
            return 1
        print(f"{PAGE} is up to date")
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

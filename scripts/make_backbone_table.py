"""Render docs/backbones.md from the tested backbone matrix (mtl_heads/models/_backbone_matrix.py).

Usage:
    python scripts/make_backbone_table.py          # rewrite docs/backbones.md
    python scripts/make_backbone_table.py --check  # exit 1 if the committed page is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtl_heads import create_model  # noqa: E402
from mtl_heads.models._backbone_matrix import BACKBONE_MATRIX  # noqa: E402

PAGE = ROOT / "docs" / "backbones.md"

HEADER = """# Supported backbones

Every row is run by `tests/test_multitask.py::test_backbone_matrix` with
`mtl_heads.create_model(name, num_classes=7, in_chans=1, label_maps=3, **kwargs)`,
`pretrained=False` and the default head: forward, backward, output shapes, and `deploy()`
logits identical to the multi-task model's (`torch.equal`, eval mode). The list lives in
`mtl_heads/models/_backbone_matrix.py`; this page is generated from it by
`python scripts/make_backbone_table.py` (a test fails when the page is stale).

*Maps read* are the `forward_intermediates` maps the spatial head decodes (side length at
48 x 48 input); *head params* count the label-map head at 48 x 48.
"""

FOOTER = """
## Families without `forward_intermediates`

The spatial head needs the backbone's `forward_intermediates` and `feature_info`. Older timm
releases lacked `forward_intermediates` for densenet, vgg, inception_v3, dla, dpn, hrnet, nfnet,
cspnet and xception; in timm 1.0.31 every family has it (checked by building `densenet121`,
`vgg11`, `inception_v3`, `dla34`, `dpn48b`, `hrnet_w18_small`, `nfnet_l0`, `cspresnet50` and
`xception41`; `tests/test_multitask.py::test_densenet_both_heads` runs a small densenet with both
heads).
For a backbone without them (an older timm, or your own model following the timm classifier
contract), the default rule picks the **linear** head, which only needs `get_classifier()`: it
reads the classifier's input (the pre-logits vector) during the ordinary forward pass. Asking
for `head="spatial"` there raises `ValueError: <name> has no forward_intermediates for the spatial
head; use head='linear'`
(`tests/test_multitask.py::test_backbone_without_forward_intermediates`).

Models whose `get_classifier()` returns two classifiers (distilled DeiT) cannot feed the linear
head (`ValueError ... use head='spatial'`); their default spatial head works.
"""


def _kwargs_text(case) -> str:
    parts = [f"`{k}={v!r}`" for k, v in case.kwargs.items()]
    if case.pass_img_size:
        parts.insert(0, "`img_size=<size>`")
    return ", ".join(parts) if parts else "–"


def render() -> str:
    rows = [
        "| family | model | kwargs | sizes | default head | maps read (side at 48 px) "
        "| backbone params | head params | note |",
        "|---|---|---|---|---|---|---:|---:|---|",
    ]
    torch.manual_seed(0)
    for case in BACKBONE_MATRIX:
        model = create_model(case.name, **case.create_kwargs(48)).eval()
        backbone_params = sum(p.numel() for p in model.backbone.parameters())
        head_params = sum(p.numel() for p in model.label_map_head.parameters())
        if model.head_kind == "spatial":
            with torch.no_grad():
                _, maps = model.backbone.forward_intermediates(
                    torch.zeros(1, 1, 48, 48),
                    indices=model.intermediate_indices,
                    intermediates_only=False,
                )
            read = ", ".join(f"{m.shape[1]}ch@{m.shape[-1]}" for m in maps)
        else:
            read = f"pre-logits vector ({model.label_map_head.in_features})"
        sizes = " / ".join(str(s) for s in case.sizes)
        rows.append(
            f"| {case.family} | `{case.name}` | {_kwargs_text(case)} | {sizes} | {model.head_kind} "
            f"| {read} | {backbone_params:,} | {head_params:,} | {case.note or '–'} |"
        )
    return HEADER + "\n" + "\n".join(rows) + "\n" + FOOTER


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/backbones.md is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run python scripts/make_backbone_table.py", file=sys.stderr)
            return 1
        print(f"{PAGE} is up to date")
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

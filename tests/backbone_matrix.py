"""Hand-picked backbone configurations run by tests/models/test_multitask.py (backbone matrix).

Each entry is run at each of its sizes: forward, backward, output shapes, ``deploy()`` logits
identical. They complement the sweep over every timm family
(``scripts/sweeps/backbone_sweep.py``) with kwargs a user would pick for small inputs (ViT patch
6, Swin patch 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackboneCase:
    """One tested backbone.

    Args:
        family: timm model family.
        name: timm model name.
        sizes: square input sizes it is tested at.
        kwargs: extra ``create_model`` keyword arguments (beyond ``num_classes=7, in_chans=1,
            num_label_maps=3``); ``img_size`` is added per size when ``pass_img_size`` is set.
        pass_img_size: the backbone fixes its input size at construction (ViT, Swin).
        note: why the kwargs are what they are.
        slow: run only with ``--runslow``.
    """

    family: str
    name: str
    sizes: tuple[int, ...] = (48, 42)
    kwargs: dict[str, Any] = field(default_factory=dict)
    pass_img_size: bool = False
    note: str = ""
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.family}-{self.name}"

    def create_kwargs(self, size: int) -> dict[str, Any]:
        kwargs = dict(num_classes=7, in_chans=1, num_label_maps=3, **self.kwargs)
        if self.pass_img_size:
            kwargs["img_size"] = size
        return kwargs


BACKBONE_MATRIX: tuple[BackboneCase, ...] = (
    BackboneCase(
        "fer_convnet",
        "fer_convnet",
        pass_img_size=True,
        note="the paper's network; 42 and 48 px both end in 64x5x5 maps",
    ),
    BackboneCase("resnet", "test_resnet"),
    BackboneCase("efficientnet", "test_efficientnet"),
    BackboneCase("mobilenetv3", "mobilenetv3_small_050"),
    BackboneCase("convnext", "test_convnext", note="stride-4 stem: finest map 12x12 at 48 px"),
    BackboneCase("regnet", "regnetx_002"),
    BackboneCase(
        "vit",
        "test_vit",
        kwargs=dict(patch_size=6),
        pass_img_size=True,
        note="patch 6 divides both 42 and 48 (7x7 / 8x8 tokens)",
    ),
    BackboneCase(
        "deit",
        "deit_tiny_patch16_224",
        kwargs=dict(patch_size=6, depth=4),
        pass_img_size=True,
        note="patch 6 divides 42 and 48; depth cut to 4 blocks to keep the test fast",
    ),
    BackboneCase(
        "swin",
        "swin_tiny_patch4_window7_224",
        kwargs=dict(
            patch_size=3, window_size=7, embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8)
        ),
        pass_img_size=True,
        note="patch 3 divides 42 and 48 (14x14 / 16x16 tokens; timm pads windows and odd "
        "merges); width/depth shrunk to keep the test fast",
    ),
)

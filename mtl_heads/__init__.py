"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``); nothing else happens at import.
"""

from __future__ import annotations

__version__ = "0.1.0"

from mtl_heads.heads import LabelMapHead
from mtl_heads.losses import MaskedMultiTaskLoss, masked_multitask_loss
from mtl_heads.models import MultiTaskModel, create_model

__all__ = [
    "LabelMapHead",
    "MaskedMultiTaskLoss",
    "MultiTaskModel",
    "create_model",
    "masked_multitask_loss",
]

"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``); nothing else happens at import.
"""

from __future__ import annotations

from . import models  # noqa: F401  (registers fer_convnet in timm)
from .heads import LabelMapHead
from .losses import MaskedMultiTaskLoss, masked_multitask_loss
from .models import MultiTaskModel, create_model

__version__ = "0.1.0"

from .augmentation import AlignedAugmentation  # noqa: E402
from .landmarks import PAPER_GROUPS, LabelMapGroup, landmarks_to_label_maps  # noqa: E402

__all__ = [
    "AlignedAugmentation",
    "LabelMapGroup",
    "LabelMapHead",
    "MaskedMultiTaskLoss",
    "MultiTaskModel",
    "PAPER_GROUPS",
    "create_model",
    "landmarks_to_label_maps",
    "masked_multitask_loss",
]

"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``); nothing else happens at import.
Data sets and the landmark annotator live in :mod:`mtl_heads.datasets` and
:mod:`mtl_heads.annotate` (imported on demand: they need the ``data`` / ``landmarks`` extras).
"""

from __future__ import annotations

from . import models  # noqa: F401  (registers fer_convnet in timm)
from .augmentation import AlignedAugmentation
from .heads import LabelMapHead
from .landmarks import PAPER_GROUPS, LabelMapGroup, landmarks_to_label_maps
from .losses import MaskedMultiTaskLoss, masked_multitask_loss
from .models import MultiTaskModel, create_model

__version__ = "0.1.0"

__all__ = [
    "PAPER_GROUPS",
    "AlignedAugmentation",
    "LabelMapGroup",
    "LabelMapHead",
    "MaskedMultiTaskLoss",
    "MultiTaskModel",
    "create_model",
    "landmarks_to_label_maps",
    "masked_multitask_loss",
]

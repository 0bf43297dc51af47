"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``); nothing else happens at import.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .augmentation import AlignedAugmentation
from .landmarks import PAPER_GROUPS, LabelMapGroup, landmarks_to_label_maps

__all__ = ["AlignedAugmentation", "LabelMapGroup", "PAPER_GROUPS", "landmarks_to_label_maps"]

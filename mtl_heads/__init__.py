"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``) and makes its sub-packages
reachable (``mtl_heads.datasets``, ``mtl_heads.preprocessing``, ``mtl_heads.metrics``, ...), as
``import torchvision`` does for ``torchvision.datasets``. Nothing is read or downloaded at import;
optional dependencies (scipy, Pillow, dlib) are imported by the functions that need them.
"""

from . import (  # noqa: F401  (models registers fer_convnet in timm)
    augmentation,
    datasets,
    heads,
    landmarks,
    losses,
    metrics,
    models,
    preprocessing,
)
from .augmentation import AlignedAugmentation
from .heads import LabelMapHead, LinearLabelMapHead, SpatialLabelMapHead
from .landmarks import PAPER_GROUPS, LabelMapGroup, landmarks_to_label_maps, mirror_channels
from .losses import MaskedMultiTaskLoss, masked_multitask_loss
from .models import MultiTaskModel, create_model
from .preprocessing import PaperPreprocessing

__version__ = "0.1.0"

__all__ = [
    "PAPER_GROUPS",
    "AlignedAugmentation",
    "LabelMapGroup",
    "LabelMapHead",
    "LinearLabelMapHead",
    "MaskedMultiTaskLoss",
    "MultiTaskModel",
    "PaperPreprocessing",
    "SpatialLabelMapHead",
    "create_model",
    "landmarks_to_label_maps",
    "masked_multitask_loss",
    "mirror_channels",
]

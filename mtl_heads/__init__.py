"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``) and makes its sub-packages
reachable (``mtl_heads.datasets``, ``mtl_heads.preprocessing``, ``mtl_heads.metrics``, ...), as
``import torchvision`` does for ``torchvision.datasets``. Nothing is read or downloaded at import;
optional dependencies (scipy, Pillow, dlib) are imported by the functions that need them.

The names a user calls are importable from here: the model (``create_model``, ``MultiTaskModel``,
``default_head_kind``, ``InputResize``, ``ResizedClassifier``), the heads (``LabelMapHead``,
``LinearLabelMapHead``, ``SpatialLabelMapHead``), the loss (``masked_multitask_loss`` and
``MaskedMultiTaskLoss``, ``label_map_loss``), the metrics (``LabelMapMetrics``,
``label_map_prior``), the label maps (``landmarks_to_label_maps``, ``LabelMapGroup``,
``PAPER_GROUPS``, ``mirror_channels``), augmentation and preprocessing (``RandomMirror``,
``RandomAffineCrop``, ``paper_augmentation``, ``PaperPreprocessing``; ``AlignedAugmentation`` is
deprecated) and trained runs (``load_trained``, ``TrainedModel``). The statistics of paired-seed
studies are in :mod:`mtl_heads.study`.
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
from .augmentation import AlignedAugmentation, RandomAffineCrop, RandomMirror, paper_augmentation
from .checkpoint import TrainedModel, load_trained
from .heads import LabelMapHead, LinearLabelMapHead, SpatialLabelMapHead
from .landmarks import PAPER_GROUPS, LabelMapGroup, landmarks_to_label_maps, mirror_channels
from .losses import MaskedMultiTaskLoss, label_map_loss, masked_multitask_loss
from .metrics import LabelMapMetrics, label_map_prior
from .models import (
    InputResize,
    MultiTaskModel,
    ResizedClassifier,
    create_model,
    default_head_kind,
)
from .preprocessing import PaperPreprocessing

__version__ = "0.1.0"

__all__ = [
    "PAPER_GROUPS",
    "AlignedAugmentation",
    "InputResize",
    "LabelMapGroup",
    "LabelMapHead",
    "LabelMapMetrics",
    "LinearLabelMapHead",
    "MaskedMultiTaskLoss",
    "MultiTaskModel",
    "PaperPreprocessing",
    "RandomAffineCrop",
    "RandomMirror",
    "ResizedClassifier",
    "SpatialLabelMapHead",
    "TrainedModel",
    "create_model",
    "default_head_kind",
    "label_map_loss",
    "label_map_prior",
    "landmarks_to_label_maps",
    "load_trained",
    "masked_multitask_loss",
    "mirror_channels",
    "paper_augmentation",
]

"""Models: the paper's convnet (registered in timm) and the multi-task wrapper."""

from . import fer_convnet  # noqa: F401  (registers the timm model)
from .fer_convnet import FerConvNet
from .multitask import MultiTaskModel, create_model, default_head_kind

__all__ = ["FerConvNet", "MultiTaskModel", "create_model", "default_head_kind"]

"""Models: the paper's convnet (registered in timm), the multi-task wrapper, the input resize."""

from . import fer_convnet  # noqa: F401  (registers the timm model)
from .fer_convnet import FerConvNet
from .input_resize import InputResize, ResizedClassifier
from .multitask import MultiTaskModel, create_model, default_head_kind

__all__ = [
    "FerConvNet",
    "InputResize",
    "MultiTaskModel",
    "ResizedClassifier",
    "create_model",
    "default_head_kind",
]

"""Models: the paper's convnet (registered in timm) and the multi-task wrapper."""

from __future__ import annotations

from mtl_heads.models.multitask import MultiTaskModel, create_model, default_head_kind

__all__ = ["MultiTaskModel", "create_model", "default_head_kind"]

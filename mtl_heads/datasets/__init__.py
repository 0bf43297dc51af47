"""Data sets that follow the package's item contract (image, label, landmarks, landmarks_valid)."""
from __future__ import annotations

from mtl_heads.datasets.synthetic import SYNTHETIC_CLASSES, SyntheticFaces

__all__ = ["SyntheticFaces", "SYNTHETIC_CLASSES"]

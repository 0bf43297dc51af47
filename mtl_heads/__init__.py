"""mtl-heads: auxiliary label-map heads and masked multi-task losses for any timm backbone.

Importing the package registers its timm models (``fer_convnet``); nothing else happens at import.
"""

from __future__ import annotations

from . import models  # noqa: F401  (registers fer_convnet in timm)

__version__ = "0.1.0"

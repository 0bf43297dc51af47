"""``python -m mtl_heads annotate ...``: the ``mtl-heads`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

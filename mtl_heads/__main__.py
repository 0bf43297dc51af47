"""``python -m mtl_heads annotate ...``: the ``mtl-heads`` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

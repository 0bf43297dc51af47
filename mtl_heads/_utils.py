"""Small helpers shared by the package's modules (not public API)."""

import operator
from collections.abc import Sequence


def size_pair(size: int | Sequence[int], what: str = "size") -> tuple[int, int]:
    """``(height, width)`` from one int or a pair of positive ints, else a ValueError naming
    ``what``.

    Examples:
        >>> size_pair(42), size_pair((48, 40))
        ((42, 42), (48, 40))
    """
    pair: tuple[int, ...] = ()
    if not isinstance(size, bool):
        try:  # operator.index: Python and NumPy integers, not floats or bools
            pair = (operator.index(size),) * 2
        except TypeError:
            try:
                pair = tuple(operator.index(s) for s in size if not isinstance(s, bool))
                pair = pair if len(pair) == len(size) else ()
            except TypeError:
                pair = ()
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or (height, width) ints, got {size!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(f"{what} must be positive, got {pair}")
    return pair  # type: ignore[return-value]

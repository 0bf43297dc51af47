"""Small helpers shared by the package's modules (not public API)."""

from collections.abc import Sequence


def size_pair(size: int | Sequence[int], what: str = "size") -> tuple[int, int]:
    """``(height, width)`` from one int or a pair of positive ints, else a ValueError naming
    ``what``.

    Examples:
        >>> size_pair(42), size_pair((48, 40))
        ((42, 42), (48, 40))
    """
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in pair):
        raise ValueError(f"{what} must be an int or (height, width) ints, got {size!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(f"{what} must be positive, got {pair}")
    return pair

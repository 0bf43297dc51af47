"""Renamed keyword arguments and attributes, kept one release under their old names (not public)."""

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """A ``DeprecationWarning`` saying that ``old`` is now spelled ``new``."""
    warnings.warn(
        f"{old} is deprecated and goes in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept old keyword names (``old="new"``) with a ``DeprecationWarning`` naming the new one.

    The decorated signature shows the new names only; passing an old and its new name together
    is a ``TypeError``, as passing one argument twice is.

    Examples:
        >>> @renamed_kwargs(label_maps="num_label_maps")
        ... def build(*, num_label_maps: int = 3) -> int:
        ...     return num_label_maps
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     build(label_maps=5)
        5
        >>> print(caught[0].message)
        build(label_maps=...) is deprecated and goes in the next release; use num_label_maps=...
    """

    def decorate(func: F) -> F:
        name = func.__qualname__.removesuffix(".__init__")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{name}() got both {old}= (the deprecated name) and {new}=; pass "
                            f"{new}= only"
                        )
                    warn_renamed(f"{name}({old}=...)", f"{new}=...")
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate

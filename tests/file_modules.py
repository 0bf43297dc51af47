"""Examples and scripts as the tests see them: run with ``runpy`` from their files; the tests
never put them on ``sys.path`` or in ``sys.modules`` (they are not part of the installed
package). Examples and scripts import only the package, so a file loaded here calls the same
package objects the tests patch."""

import functools
import runpy
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class FileModule:
    """Attribute access to the globals a file's code runs in: reading ``m.f`` gives the file's
    ``f``, and ``monkeypatch.setattr(m, "g", ...)`` replaces the ``g`` its functions call."""

    def __init__(self, namespace: dict) -> None:
        object.__setattr__(self, "__dict__", namespace)

    def __repr__(self) -> str:
        return f"<file module {self.__dict__.get('__file__')}>"


@functools.cache
def load(relative: str) -> FileModule:
    """The file ``ROOT / relative`` (e.g. ``"examples/train.py"``) run once as a module named
    after its stem."""
    path = ROOT / relative
    result = runpy.run_path(str(path), run_name=path.stem)
    # run_path returns a copy of the globals; the file's functions hold the live dict
    live = next((v.__globals__ for v in result.values()
                 if isinstance(v, types.FunctionType) and v.__module__ == path.stem), None)
    if live is None:
        raise ValueError(f"{path} defines no function: nothing holds its live globals")
    return FileModule(live)

"""examples/minimal_loop.py runs as documented (in-process, through its ``main``)."""

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_minimal_loop_trains_and_deploys(capsys) -> None:
    path = ROOT / "examples" / "minimal_loop.py"
    main = runpy.run_path(str(path), run_name="minimal_loop")["main"]
    acc = main(epochs=1)
    assert 0.0 <= acc <= 1.0
    assert capsys.readouterr().out.startswith("epoch 1: loss ")

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The real FER2013 copy lives beside the checkout; it is never part of the project.
SHARED_DATA = Path(
    os.environ.get("MTL_HEADS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
FER2013_NPZ = SHARED_DATA / "fer2013.npz"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def fer2013_npz() -> Path:
    """Path of the real FER2013 copy, or skip the test when it is not beside the checkout."""
    if not FER2013_NPZ.is_file():
        pytest.skip(f"real FER2013 copy not found at {FER2013_NPZ} (set MTL_HEADS_SHARED_DATA)")
    return FER2013_NPZ


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", default=False,
        help="also run tests marked slow or realdata (CI does)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow/realdata test: run with --runslow")
    for item in items:
        if "slow" in item.keywords or "realdata" in item.keywords:
            item.add_marker(skip)

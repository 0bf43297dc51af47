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


@pytest.fixture
def frontal_faces():
    """``frontal_faces(n, seed)``: (n, 68, 2) float32 frontal, centred 48x48 faces
    (SyntheticFaces' landmarks without rotation, shifted by at most 1.5 px; image-left brow at
    17-21), so that the paper's augmentation keeps the brows and mouth inside the 42 px crop."""
    from mtl_heads.datasets import synthetic_landmarks

    def faces(n: int, seed: int) -> torch.Tensor:
        return torch.from_numpy(synthetic_landmarks(n, seed=seed, rotation=0.0, scale=(0.85, 1.0),
                                                    shift=1.5)[0])

    return faces

"""The tiny paired study the study tests share: two arms, two seeds, 120 synthetic faces, 1 epoch.

It is run once per session, in-process (``mtl-heads study run --jobs 1``); tests that change its
results copy them first.
"""

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtl_heads.study.cli import main

TINY = ["--data", "synthetic", "--synthetic-train", "120", "--synthetic-test", "48",
        "--batch-size", "32", "--eval-batch-size", "64", "--epochs", "1", "--lr", "0.05", "--tta"]
STUDY = {
    "name": "tiny",
    "description": "two arms, two seeds",
    "options": TINY,
    "arms": {"baseline": ["--label-maps", "0"], "multitask": ["--label-maps", "3"]},
    "blocks": [{"name": "main", "arms": ["baseline", "multitask"], "seeds": [0, 1],
                "fractions": [1.0]}],
}


def study_spec(**change: Any) -> dict[str, Any]:
    """A fresh copy of the tiny study file's content, with top-level keys replaced."""
    return {**copy.deepcopy(STUDY), **copy.deepcopy(change)}


@dataclass(frozen=True)
class TinyStudy:
    """The finished tiny study: its folder (tiny.json, runs/, results/) and its `run` argv."""

    root: Path
    argv: list[str]

    @property
    def results(self) -> Path:
        return self.root / "results"

    def summary(self, arm: str, seed: int) -> dict[str, Any]:
        return json.loads((self.results / "tiny" / "1" / arm / f"s{seed}.json").read_text())


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> TinyStudy:
    root = tmp_path_factory.mktemp("study")
    (root / "tiny.json").write_text(json.dumps(STUDY))
    argv = ["run", str(root / "tiny.json"), "--jobs", "1", "--output", str(root / "runs"),
            "--results", str(root / "results")]
    assert main(argv) == 0
    return TinyStudy(root, argv)


@pytest.fixture
def spec_factory():
    """``spec_factory(**change)``: the tiny study file's content with top-level keys replaced."""
    return study_spec

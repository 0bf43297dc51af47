"""The generated backbone table (docs/backbones.md) against the code.

The fast tests check the committed page against the committed sweep summary and the claims the
page makes; the slow ones rerun a fixed sample of families through ``create_model`` and compare
each run with its row (status, adaptation, size it runs at, parameter counts).
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sweep = _script("backbone_sweep")
table = _script("make_backbone_table")
SUMMARY = __import__("json").loads(table.SUMMARY.read_text())
ROWS = {(r["family"], r["size"], r["head"]): r for r in SUMMARY["rows"]}


def test_table_is_up_to_date() -> None:
    assert table.PAGE.read_text() == table.render(), (
        "docs/backbones.md is stale: run python scripts/make_backbone_table.py"
    )


def test_summary_covers_every_family() -> None:
    families = {r["family"] for r in SUMMARY["rows"]}
    assert families == set(sweep.families())
    for family in families:
        assert {(s, h) for f, s, h in ROWS if f == family} == {
            (s, h) for s in sweep.SIZES for h in sweep.HEADS
        }, family


def test_what_the_page_claims() -> None:
    timm_families = {r["family"] for r in SUMMARY["rows"]} - {"fer_convnet"}
    works = {f for f in timm_families if ROWS[f, 48, "spatial"]["status"] == "works"}
    assert len(works) >= 95, sorted(timm_families - works)
    # the rest, and every linear-head run, works or is refused at build time: nothing fails later
    failed = sorted(k for k, r in ROWS.items() if r["status"] == "failed")
    assert not failed, failed
    for key, row in ROWS.items():
        if row["status"] == "refused":
            assert row["message"], key


CI = [
    pytest.param(family, head, marks=pytest.mark.slow, id=f"{family}-{head}")
    for family in sweep.CI_FAMILIES
    for head in sweep.HEADS
]
COMPARED = ("model", "status", "adapted", "runs_at", "trunk_params", "head_params", "deploy_equal")


@pytest.mark.parametrize("family,head", CI)
def test_sampled_family_matches_table(family: str, head: str) -> None:
    row = ROWS[family, 48, head]
    got = sweep.check(row["model"], 48, head, family=family, timing=False)
    assert {k: got.get(k) for k in COMPARED} == {k: row.get(k) for k in COMPARED}
    if row["status"] == "refused":
        assert got["message"] == row["message"]

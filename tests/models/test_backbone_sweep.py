"""The generated backbone table (docs/backbones.md) against the code.

The fast tests check the committed page against the committed sweep summary and the claims the
page makes; the slow ones rerun a fixed sample of families through ``create_model`` and compare
each run with its row (status, adaptation, size it runs at, parameter counts).
"""

import pytest
from file_modules import load

sweep = load("scripts/sweeps/backbone_sweep.py")
table = load("scripts/docs/make_backbone_table.py")
SUMMARY = __import__("json").loads(table.SUMMARY.read_text())
ROWS = {(r["family"], r["size"], r["head"]): r for r in SUMMARY["rows"]}


def test_table_is_up_to_date() -> None:
    assert table.PAGE.read_text() == table.render(), (
        "docs/backbones.md is stale: run python scripts/docs/make_backbone_table.py"
    )


def test_every_family_run_has_all_its_rows() -> None:
    families = {r["family"] for r in SUMMARY["rows"]}
    assert families <= set(sweep.families())
    assert set(sweep.CI_FAMILIES) <= families, "the CI sample must be in the summary"
    for family in families:
        assert {(s, h) for f, s, h in ROWS if f == family} == {
            (s, h) for s in sweep.SIZES for h in sweep.HEADS
        }, family


def test_nothing_fails_after_the_build() -> None:
    # every run works or is refused at build time with a message; a run the sweep's machine
    # could not hold (out of memory) or finish (timeout) says nothing either way and is named
    failed = sorted(k for k, r in ROWS.items() if r["status"] == "failed")
    assert not failed, failed
    assert {r["status"] for r in ROWS.values()} <= {"works", "refused", "out of memory",
                                                    "timeout"}
    for key, row in ROWS.items():
        if row["status"] != "works":
            assert row["message"], key


def test_at_least_95_of_98_timm_families_work_at_48_px() -> None:
    timm_families = set(sweep.families()) - {"fer_convnet"}
    run = {f for f in timm_families if (f, 48, "spatial") in ROWS}
    if run != timm_families:
        pytest.skip(
            f"the committed sweep covers {len(run)} of {len(timm_families)} timm families: "
            "resume scripts/sweeps/backbone_sweep.py to check the claim"
        )
    works = {f for f in run if ROWS[f, 48, "spatial"]["status"] == "works"}
    assert len(works) >= 95, sorted(timm_families - works)


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

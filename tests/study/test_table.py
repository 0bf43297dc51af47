"""mtl_heads.study.table: a study's table entry (the paper's Table I) beside our runs and peers."""

import json
import shutil
from pathlib import Path

import pytest

from mtl_heads.study.report import render
from mtl_heads.study.stats import compare_paired, mean_std

PEER = {"name": "a peer model", "split": "test", "n": 48, "accuracy": 0.5,
        "classes": ["neutral", "angry", "disgust", "fear", "happy", "sad", "surprise"],
        "per_class_acc": [0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "views": "single view", "package_version": "1.2"}


def table_study(tiny_study, spec_factory, tmp_path: Path, peer: dict | None = None) -> Path:
    """The tiny study's results with a table: row 'plain' from its runs, row 'planned' from a
    block that has not run; the peer file written when given."""
    results = tmp_path / "results"
    shutil.copytree(tiny_study.results, results)
    spec = spec_factory()
    spec["blocks"].append({"name": "later", "arms": ["baseline", "multitask"], "seeds": [5, 6],
                           "fractions": [0.5]})
    spec["table"] = {
        "title": "Table I: tiny", "metric": "test 10-crop", "columns": ["baseline", "multi-task"],
        "rows": [
            {"name": "plain", "cells": [
                {"block": "main", "arm": "baseline", "fraction": 1.0,
                 "reported": {"mean": 63.71, "std": 0.63}},
                {"block": "main", "arm": "multitask", "fraction": 1.0,
                 "reported": {"mean": 66.83, "std": 0.66}}]},
            {"name": "planned", "cells": [
                {"block": "later", "arm": "baseline", "fraction": 0.5},
                {"block": "later", "arm": "multitask", "fraction": 0.5,
                 "reported": {"mean": 67.21}}]}],
        "reported_by": "DeVries et al. 2014, Table I",
        "peers": [{"name": "the peer", "file": "peers/peer.json"}],
        "notes": ["The paper's test set is not ours."],
    }
    (results / "tiny" / "study.json").write_text(json.dumps(spec))
    if peer is not None:
        (results / "peers").mkdir()
        (results / "peers" / "peer.json").write_text(json.dumps(peer))
    return results


def section(page: str) -> str:
    return page[page.index("### Table I: tiny"):page.index("two arms, two seeds")]


def test_table_cells_are_the_summaries_numbers(tiny_study, spec_factory, tmp_path) -> None:
    results = table_study(tiny_study, spec_factory, tmp_path)
    page, block = render(results, tmp_path / "img")
    table = section(page)
    assert page.index("### Table I: tiny") < page.index("two arms, two seeds")  # at the top
    acc = {arm: [100 * tiny_study.summary(arm, s)["final"]["test"]["test"]["acc_tta"]
                 for s in (0, 1)] for arm in ("baseline", "multitask")}
    m0, s0 = mean_std(acc["baseline"])
    m1, s1 = mean_std(acc["multitask"])
    c = compare_paired(acc["baseline"], acc["multitask"])
    assert "| plain, reported | 63.71 ± 0.63 | 66.83 ± 0.66 | +3.12 (of the means) |" in table
    assert (f"| plain, ours (`main`, 100% of Training) | {m0:.2f} ± {s0:.2f} (n = 2; "
            f"{m0 - 63.71:+.2f} vs reported) | {m1:.2f} ± {s1:.2f} (n = 2; {m1 - 66.83:+.2f} vs "
            f"reported) | {c.mean_diff:+.2f} [{c.ci_low:+.2f}, {c.ci_high:+.2f}], "
            f"p = {c.pvalue:.3g} (2 pairs) |") in table
    assert "| planned, reported | – | 67.21 | – |" in table
    assert ("| planned, ours (`later`, 50% of Training) | not yet run | not yet run | – |"
            in table)
    assert ("| peer: the peer | not measured (no `peers/peer.json` in the results folder) | | |"
            in table)
    assert "- The paper's test set is not ours." in table
    assert "*reported*: DeVries et al. 2014, Table I, not measured here" in table
    # the README block carries the table (and its note) before the comparisons
    assert block.startswith("**Table I: tiny** (tiny; test 10-crop accuracy in %")
    assert "| planned, ours (`later`, 50% of Training) | not yet run |" in block
    assert "The paper's test set is not ours." in block


def test_a_measured_peer_has_its_row_and_per_class_line(tiny_study, spec_factory,
                                                        tmp_path) -> None:
    results = table_study(tiny_study, spec_factory, tmp_path, peer=PEER)
    table = section(render(results, tmp_path / "img")[0])
    assert ("| peer: a peer model 1.2 | 50.00: one model, 48 faces, single view | | |"
            in table)
    classes = tiny_study.summary("baseline", 0)["final"]["classes"]
    assert f"| model | n | {' | '.join(classes)} |" in table
    # matched by class name: the peer lists neutral first
    by_name = dict(zip(PEER["classes"], PEER["per_class_acc"], strict=True))
    expected = " | ".join(f"{100 * by_name[c.lower()]:.1f}" for c in classes)
    assert f"| peer: a peer model | 1 | {expected} |" in table
    assert "| ours, plain, multi-task (`multitask`) | 2 |" in table


@pytest.mark.parametrize(("peer", "message"), [
    ({**PEER, "split": "PublicTest"}, "measured on 'PublicTest', the table reports 'test'"),
    ({"name": "x", "n": 48}, "needs 'accuracy'"),
    ({**PEER, "accuracy": 65.1}, "needs 'accuracy' \\(a fraction"),
    ({**PEER, "classes": ["a", "b"]}, "do not match the runs' classes"),
])
def test_a_bad_peer_file_is_named(tiny_study, spec_factory, tmp_path, peer, message) -> None:
    results = table_study(tiny_study, spec_factory, tmp_path, peer=peer)
    with pytest.raises(ValueError, match=f"peer.json.*{message}|{message}"):
        render(results, tmp_path / "img")


def test_a_partly_run_cell_says_how_many_seeds_and_failures(tiny_study, spec_factory,
                                                            tmp_path) -> None:
    results = table_study(tiny_study, spec_factory, tmp_path)
    s1 = results / "tiny" / "1" / "multitask" / "s1.json"
    record = {**json.loads(s1.read_text()), "error": "TrainingError: loss is not finite"}
    s1.unlink()
    (s1.parent / "s1.failed.json").write_text(json.dumps(record))
    table = section(render(results, tmp_path / "img")[0])
    assert "(n = 1 of 2; " in table and "(1 failed run(s) left out)" in table
    assert "(1 pair) |" in table


def test_a_table_metric_the_runs_lack_is_named(tiny_study, spec_factory, tmp_path) -> None:
    results = table_study(tiny_study, spec_factory, tmp_path)
    spec = json.loads((results / "tiny" / "study.json").read_text())
    spec["table"]["metric"] = "PublicTest 10-crop"
    (results / "tiny" / "study.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"baseline/s0.json \(arm 'baseline', seed 0\) has no "
                                         r"'PublicTest 10-crop'"):
        render(results, tmp_path / "img")

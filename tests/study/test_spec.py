"""mtl_heads.study.spec and .jobs: study files, their checks and option sets, planning runs."""

import copy
import json
from pathlib import Path

import pytest

from mtl_heads.study.cli import main
from mtl_heads.study.jobs import plan
from mtl_heads.study.spec import check_study, load_study

ROOT = Path(__file__).resolve().parents[2]
TABLE = {
    "title": "Table I", "metric": "test 10-crop", "columns": ["baseline", "multi-task"],
    "rows": [{"name": "plain", "cells": [
        {"block": "main", "arm": "baseline", "fraction": 1.0,
         "reported": {"mean": 63.71, "std": 0.63}},
        {"block": "main", "arm": "multitask", "fraction": 1.0,
         "reported": {"mean": 66.83, "std": 0.66}}]}],
    "reported_by": "a paper",
    "peers": [{"name": "a peer", "file": "peers/peer.json"}],
}


def with_table(**change) -> dict:
    table = copy.deepcopy(TABLE)
    table.update(change)
    return table


def cell(**change) -> dict:
    return {"block": "main", "arm": "baseline", "fraction": 1.0, **change}


@pytest.mark.parametrize(("change", "message"), [
    ({"blocks": [{"name": "b", "arms": ["nope"], "seeds": [0], "fractions": [1]}]},
     "unknown arms"),
    ({"arms": {"a": ["--seed", "3"]}}, "may not set"),
    ({"blocks": [{"name": "b", "arms": ["baseline"], "seeds": [0], "fractions": [1.5]}]},
     r"fractions must be in \(0, 1\]"),
    ({"name": ""}, "'name' must be"),
    ({"metrics": "validation"}, "'metrics' must be"),
    ({"arms": {"a": ["@long"]}}, r"arm 'a': unknown option set\(s\) \['@long'\]"),
    ({"option_sets": {"long": "--epochs 60"}}, "'option_sets.long' must be a list of strings"),
    ({"table": with_table(columns=[])}, "table.columns must be a non-empty list"),
    ({"table": with_table(rows=[{"name": "r", "cells": [cell()]}])},
     r"table.rows\[0\] \('r'\) must have one cell per column \(2"),
    ({"table": with_table(rows=[{"name": "r", "cells": [cell(), cell(block="nope")]}])},
     r"cells\[1\] \('r', 'multi-task'\): no block 'nope'"),
    ({"table": with_table(rows=[{"name": "r", "cells": [cell(), cell(arm="aux")]}])},
     "arm 'aux' is not in block 'main'"),
    ({"table": with_table(rows=[{"name": "r", "cells": [cell(), cell(fraction=0.5)]}])},
     "fraction 0.5 is not one of block 'main'"),
    ({"table": with_table(rows=[{"name": "r", "cells": [cell(), cell(reported=66.8)]}])},
     "'reported' must be"),
    ({"table": with_table(peers=[{"name": "p", "file": "../elsewhere.json"}])},
     "must be a path inside the results folder"),
    ({"table": {"title": "T"}}, "'table' lacks 'metric'"),
])
def test_bad_study_files_name_the_culprit(tmp_path, spec_factory, change, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec_factory(**change)))
    with pytest.raises(ValueError, match=message):
        load_study(path)
    assert main(["run", str(path), "--estimate"]) == 2


def test_a_study_file_that_is_not_json_or_missing(tmp_path, capsys) -> None:
    (tmp_path / "broken.json").write_text("{")
    assert main(["run", str(tmp_path / "broken.json")]) == 2
    assert "broken.json: not valid JSON" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err


def test_option_sets_expand_into_the_arms_that_name_them(spec_factory) -> None:
    spec = check_study(spec_factory(
        option_sets={"recipe": ["--epochs", "3", "--sched", "step"]},
        arms={"baseline": ["--label-maps", "0", "@recipe"], "multitask": ["@recipe"]}), "t")
    assert spec["arms"] == {"baseline": ["--label-maps", "0", "--epochs", "3", "--sched", "step"],
                            "multitask": ["--epochs", "3", "--sched", "step"]}
    assert check_study(copy.deepcopy(spec), "again")["arms"] == spec["arms"]  # saved, reread
    argv = plan(spec, Path("runs"), [], threads=1)[0].argv
    assert argv[argv.index("--sched") + 1] == "step" and "@recipe" not in argv


def test_an_arm_with_an_unknown_train_option_is_refused_before_running(tmp_path, spec_factory,
                                                                       capsys) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(spec_factory(arms={"baseline": ["--label-map", "0"],
                                                  "multitask": []})))
    assert main(["run", str(path), "--output", str(tmp_path / "runs"), "--results",
                 str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "study 'tiny', arm 'baseline'" in err and "--label-map" in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_plan_filters_arms_and_names_an_unknown_one(spec_factory) -> None:
    spec = check_study(spec_factory(), "tiny")
    jobs = plan(spec, Path("runs"), [], threads=1, arms=["multitask"])
    assert [(j.arm, j.seed) for j in jobs] == [("multitask", 0), ("multitask", 1)]
    with pytest.raises(ValueError, match=r"--arms nope: no such arm in study 'tiny'"):
        plan(spec, Path("runs"), [], threads=1, arms=["nope"])
    with pytest.raises(ValueError, match=r"--blocks nope: no such block in study 'tiny'"):
        plan(spec, Path("runs"), [], threads=1, blocks=["nope"])


def test_plan_trains_a_run_shared_by_blocks_once(spec_factory) -> None:
    spec = spec_factory()
    spec["blocks"].append({"name": "seed0", "arms": ["multitask"], "seeds": [0],
                           "fractions": [1.0]})
    jobs = plan(check_study(spec, "t"), Path("runs"), ["--data", "x.csv"], threads=2)
    assert len(jobs) == 4
    assert jobs[0].run_dir == Path("runs/tiny/1/baseline/s0")
    assert jobs[0].argv[-4:] == ("--data", "x.csv", "--workers", "2")


def test_committed_studies_are_valid() -> None:
    for path in sorted((ROOT / "examples" / "studies").glob("*.json")):
        spec = load_study(path)
        assert plan(spec, Path("runs"), [], threads=1)


def test_the_fer2013_study_plans_table_one() -> None:
    """Table I's cells name the no-transformations pairs of full_100 and the planned
    transformations block, whose recipe is one option set."""
    spec = load_study(ROOT / "examples" / "studies" / "fer2013.json")
    table = spec["table"]
    cells = [(c["block"], c["arm"], c["fraction"]) for row in table["rows"] for c in row["cells"]]
    assert cells == [("full_100", "baseline", 1.0), ("full_100", "aux", 1.0),
                     ("table1_transforms_100", "baseline_t1", 1.0),
                     ("table1_transforms_100", "aux_t1", 1.0)]
    reported = [c["reported"]["mean"] for row in table["rows"] for c in row["cells"]]
    assert reported == [63.71, 66.83, 66.39, 67.21]
    block = next(b for b in spec["blocks"] if b["name"] == "table1_transforms_100")
    assert block["seeds"] == [0, 1, 2, 3, 4, 5] and block["fractions"] == [1.0]
    recipe = spec["option_sets"]["table1_recipe"]
    for t1, like in (("baseline_t1", "baseline_transforms"), ("aux_t1", "aux_transforms")):
        assert spec["arms"][t1] == [*spec["arms"][like], *recipe]


def test_the_docs_example_study_and_table_are_valid() -> None:
    """docs/studies.md's example study file, and its table entry inside the fer2013 study."""
    text = (ROOT / "docs" / "studies.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    example = check_study(json.loads(blocks[0]), "docs/studies.md")
    assert example["arms"]["aux_long"][-4:] == ["--epochs", "60", "--sched", "cosine"]
    assert len(plan(example, Path("runs"), [], threads=1)) == 3 * 4 * 2 + 2 * 6
    fer2013 = json.loads((ROOT / "examples" / "studies" / "fer2013.json").read_text())
    fer2013["table"] = json.loads("{" + blocks[1] + "}")["table"]
    assert check_study(fer2013, "docs/studies.md")["table"]["rows"][0]["cells"][1]["arm"] == "aux"

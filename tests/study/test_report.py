"""mtl_heads.study.report, `mtl-heads study report` and `readme`: the page, the README block, the
precision and CPU time footers, and that the committed page is what the summaries make."""

import json
import re
import shutil
from pathlib import Path

import pytest

from mtl_heads.study.cli import main
from mtl_heads.study.report import render, replace_block

ROOT = Path(__file__).resolve().parents[2]


def copy_results(tiny_study, tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(tiny_study.results, results)
    return results


def edit_summaries(results: Path, edit) -> None:
    for path in (results / "tiny").glob("*/*/s*.json"):
        s = json.loads(path.read_text())
        edit(s)
        path.write_text(json.dumps(s))


def test_report_tables(tiny_study, tmp_path) -> None:
    page, block = render(tiny_study.results, tmp_path, min_pairs=2)
    assert "| `multitask` | test 10-crop | 2 |" in page
    assert "| `baseline` | 2 |" in page and "| `multitask` | 2 |" in page
    assert "1 run(s) × 1 thread(s)" in page and "Load average at launch " in page
    assert "| tiny / main | 100% | `multitask` − `baseline` | test 10-crop | 2 |" in block
    # the numbers are those of the summaries
    s = [tiny_study.summary(a, k) for a in ("baseline", "multitask") for k in (0, 1)]
    diff = sum(s[2 + k]["final"]["test"]["test"]["acc_tta"]
               - s[k]["final"]["test"]["test"]["acc_tta"] for k in (0, 1)) / 2
    assert f"| 2 | {100 * diff:+.2f} |" in block
    # too few seeds: on the page, not in the README's short table
    results = copy_results(tiny_study, tmp_path)
    (results / "tiny" / "1" / "multitask" / "s1.json").unlink()
    page, block = render(results, tmp_path, min_pairs=2)
    assert "| `multitask` | test 10-crop | 1 |" in page
    assert "tiny / main" not in block and "no comparison of 2 or more" in block
    assert "tiny / main" not in render(tiny_study.results, tmp_path)[1]  # 4 pairs by default


def test_block_footer_gives_precision_cpu_hours_and_cpu_flags(tiny_study, tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)

    def edit(s):
        s["final"].update(train_time_s=1800.0, eval_time_s=180.0)
        s["launches"][0]["machine"].update(threads_per_run=2, cpu_flags=["avx2", "avx512_bf16"])
        if s["arm"] == "multitask":  # a run of before --precision, in bfloat16
            del s["final"]["precision"]
            s["options"].pop("precision")
            s["options"]["amp"] = True

    edit_summaries(results, edit)
    page, _ = render(results, tmp_path)
    # 4 runs x (30 + 3) min x 2 threads
    assert ("; 4.40 CPU hours (training + evaluation × threads per run). Precision: bfloat16 "
            "(2 run(s): `multitask`), float32 (2 run(s): `baseline`). ") in page
    assert "(2 CPUs; avx2, avx512_bf16), 1 run(s) × 2 thread(s)" in page


def test_block_footer_counts_only_its_own_study_and_seeds(tiny_study, spec_factory,
                                                          tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    # a second study with the same arm names, and a seed the block does not plan
    other = results / "other"
    shutil.copytree(results / "tiny", other)
    for path in other.glob("*/*/s*.json"):
        path.write_text(path.read_text().replace('"study": "tiny"', '"study": "other"'))
    (other / "study.json").write_text(json.dumps(spec_factory(name="other")))
    extra = results / "tiny" / "1" / "baseline" / "s7.json"
    extra.write_text((extra.parent / "s0.json").read_text().replace('"seed": 0', '"seed": 7'))
    page, _ = render(results, tmp_path)
    assert page.count("4 run(s) summarised.") == 2 and page.count("Runs: 4;") == 2


def test_study_total_and_cpu_footer_count_runs_shared_by_blocks_once(tiny_study, spec_factory,
                                                                     tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    spec = spec_factory()
    spec["blocks"].append({"name": "seed0", "arms": ["baseline", "multitask"], "seeds": [0],
                           "fractions": [1.0]})
    spec["blocks"].append({"name": "later", "arms": ["baseline"], "seeds": [9],
                           "fractions": [1.0]})
    (results / "tiny" / "study.json").write_text(json.dumps(spec))

    def edit(s):  # 30 min per run: 25 of training, 2 of evaluation, 1 thread
        s["launches"][0]["wall_s"] = 1800.0
        s["final"].update(train_time_s=1500.0, eval_time_s=120.0)

    edit_summaries(results, edit)
    page, _ = render(results, tmp_path)
    assert ("The whole study so far (each run once, though blocks share runs): 4 finished "
            "run(s); training time 1.7 h (sum of the finished runs' epoch times), wall time "
            "2.0 h summed over all launches: about 1.0 h at 2 runs at a time; 1.8 CPU hours "
            "(training + evaluation × threads per run); precision float32.") in page
    footer = page[page.index("### CPU time per block"):]
    assert "| `main` | 4 | float32 | 1.8 |" in footer
    assert "| `seed0` | 2 | float32 | 0.9 |" in footer
    assert "| `later` | 0 | – | – |" in footer
    assert "| **the study** (each run once) | 4 | float32 | 1.8 |" in footer


def test_report_refuses_unpaired_runs(tiny_study, tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    path = results / "tiny" / "1" / "multitask" / "s1.json"
    s = json.loads(path.read_text())
    s["options"]["split_seed"] = 5
    path.write_text(json.dumps(s))
    with pytest.raises(ValueError, match=r"baseline/s1.json and .*multitask/s1.json are not "
                                         r"paired: they differ in \{'split_seed': \(0, 5\)\}"):
        render(results, tmp_path)


def test_a_study_reports_only_the_metrics_it_names(tiny_study, tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    page, _ = render(results, tmp_path / "img", min_pairs=2)
    assert "test 10-crop" in page
    spec = json.loads((results / "tiny" / "study.json").read_text())
    (results / "tiny" / "study.json").write_text(json.dumps({**spec, "metrics": ["validation"]}))
    page, block = render(results, tmp_path / "img", min_pairs=2)
    assert "test 10-crop" not in page and "test centre crop" not in page
    assert "| arm | n | validation | label-map IoU (val) |" in page
    assert "| validation |" in block


def test_a_study_naming_an_unmeasured_metric_is_refused(tiny_study, tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    spec = json.loads((results / "tiny" / "study.json").read_text())
    (results / "tiny" / "study.json").write_text(json.dumps({**spec, "metrics": ["valdation"]}))
    with pytest.raises(ValueError, match=r"metrics \['valdation'\] are not measured"):
        render(results, tmp_path / "img")


def test_summaries_without_their_study_file_are_refused(tiny_study, tmp_path) -> None:
    results = copy_results(tiny_study, tmp_path)
    (results / "tiny" / "study.json").unlink()
    with pytest.raises(ValueError, match=r"summaries of studies \['tiny'\] but no"):
        render(results, tmp_path)


def test_report_writes_the_page_and_readme_writes_the_block(tiny_study, tmp_path,
                                                            capsys) -> None:
    results = copy_results(tiny_study, tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- study-results:begin (generated by examples/compare.py report) "
                      "-->\nold\n<!-- study-results:end -->\n\nafter\n")
    page = tmp_path / "page.md"
    assert main(["report", "--results", str(results), "--page", str(page), "--img",
                 str(tmp_path / "img")]) == 0
    assert page.read_text() == render(results, tmp_path / "img")[0]
    assert "old" in readme.read_text()  # report leaves the README alone
    assert main(["readme", "--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text == replace_block(text, render(results, None)[1], "README.md")
    assert text.startswith("# x\n\n<!-- study-results:begin (generated by mtl-heads study readme)")
    assert "old" not in text and text.endswith("<!-- study-results:end -->\n\nafter\n")
    readme.write_text("no markers\n")
    assert main(["readme", "--results", str(results), "--readme", str(readme)]) == 2
    assert "no '<!-- study-results:begin" in capsys.readouterr().err


def test_report_spec_updates_the_study_file_after_checking_its_summaries(
        tiny_study, spec_factory, tmp_path, capsys) -> None:
    results = copy_results(tiny_study, tmp_path)
    spec = spec_factory()
    spec["blocks"].append({"name": "more_seeds", "arms": ["baseline", "multitask"],
                           "seeds": [2, 3], "fractions": [1.0]})
    (tmp_path / "tiny.json").write_text(json.dumps(spec))
    argv = ["report", "--results", str(results), "--page", str(tmp_path / "page.md"),
            "--img", str(tmp_path / "img"), "--spec", str(tmp_path / "tiny.json")]
    assert main(argv) == 0
    assert "### more_seeds" in (tmp_path / "page.md").read_text()
    assert [b["name"] for b in json.loads((results / "tiny" / "study.json").read_text())[
        "blocks"]] == ["main", "more_seeds"]
    # a study file whose arm no longer matches its committed runs is refused, nothing saved
    (tmp_path / "tiny.json").write_text(json.dumps(spec_factory(
        options=[*spec_factory()["options"], "--drop-rate", "0.25"])))
    assert main(argv) == 2
    assert "is not a run of arm 'baseline' of study 'tiny'" in capsys.readouterr().err
    (tmp_path / "tiny.json").write_text(json.dumps(spec_factory(
        arms={"baseline": ["--label-maps", "0"]},
        blocks=[{"name": "b", "arms": ["baseline"], "seeds": [0], "fractions": [1.0]}])))
    assert main(argv) == 2
    assert "has no arm 'multitask'" in capsys.readouterr().err
    assert "more_seeds" in (results / "tiny" / "study.json").read_text()


def test_committed_tables_match_committed_summaries(tmp_path) -> None:
    page, block = render(ROOT / "results", tmp_path)
    assert (ROOT / "docs" / "results_study.md").read_text() == page, (
        "docs/results_study.md is out of date: run `mtl-heads study report`")
    readme = (ROOT / "README.md").read_text()
    assert replace_block(readme, block, "README.md") == readme, (
        "README's study block is out of date: run `mtl-heads study readme`")


@pytest.mark.parametrize("path, begin, end", [
    ("README.md", "## What we measured", "<!-- study-results:begin"),
    ("docs/results.md", "## Paired many-seed studies", "### The baseline recipe"),
])
def test_prose_quotes_the_generated_tables(path, begin, end) -> None:
    """Every paired difference and CI that the prose on the study quotes is on the generated
    page (the prose is written by hand; its numbers must not drift from the summaries)."""
    text = (ROOT / path).read_text()
    prose = text[text.index(begin):text.index(end)]
    page = (ROOT / "docs" / "results_study.md").read_text()
    quoted = re.findall(r"\[[+\-−]\d+\.\d\d, [+\-−]\d+\.\d\d\]|[+\-−]\d+\.\d\d\b", prose)
    assert len(quoted) >= 6, quoted
    missing = [q for q in quoted if q.replace("−", "-") not in page]
    assert not missing, f"{path} quotes numbers the generated tables do not have: {missing}"

"""examples/compare.py: a tiny paired study end to end, reuse, estimate, report, pairing."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from file_modules import load

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny study run once in-process: (root, compare module, printed output)."""
    compare = load("examples/compare.py")
    root = tmp_path_factory.mktemp("study")
    (root / "tiny.json").write_text(json.dumps(STUDY))
    argv = ["run", str(root / "tiny.json"), "--jobs", "1", "--output", str(root / "runs"),
            "--results", str(root / "results")]
    assert compare.main(argv) == 0
    return root, compare, argv


def test_study_writes_one_small_summary_per_run(study) -> None:
    root, compare, _ = study
    paths = sorted((root / "results" / "tiny").glob("*/*/s*.json"))
    assert [p.relative_to(root / "results").as_posix() for p in paths] == [
        "tiny/1/baseline/s0.json", "tiny/1/baseline/s1.json",
        "tiny/1/multitask/s0.json", "tiny/1/multitask/s1.json"]
    for p in paths:
        assert p.stat().st_size < 16_000
        s = json.loads(p.read_text())
        assert s["options"]["seed"] == int(p.stem[1:])
        assert s["options"]["label_maps"] == (0 if "baseline" in str(p) else 3)
        launch = s["launches"][0]
        assert launch["recorded"] == "at launch" and len(launch["code"]["commit"]) == 40
        assert launch["machine"]["threads_per_run"] == 1 and launch["wall_s"] > 0
        assert launch["machine"]["load_avg_1min"] >= 0
        assert [e["epoch"] for e in s["epochs"]] == [1]
        assert 0 <= s["final"]["test"]["test"]["acc_tta"] <= 1
        assert "acc" in s["final"]["val"]
        assert not any(k.endswith("safetensors") for k in json.dumps(s).split('"'))
    multitask = json.loads(paths[2].read_text())
    assert "iou_mean" in multitask["final"]["val"]
    assert json.loads((root / "results" / "tiny" / "study.json").read_text())["name"] == "tiny"


def test_rerun_reuses_finished_runs(study, monkeypatch, capsys) -> None:
    root, compare, argv = study
    before = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("final.json")}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare, "run_training", no_training)
    assert compare.main(argv) == 0
    assert "0 run(s) trained, 4 reused, 0 failed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("final.json")} == before


def test_rerun_with_other_options_is_refused(study, capsys) -> None:
    root, compare, _ = study
    changed = {**STUDY, "options": [*TINY, "--lr", "0.1"]}
    (root / "changed.json").write_text(json.dumps(changed))
    assert compare.main(["run", str(root / "changed.json"), "--jobs", "1", "--output",
                         str(root / "runs"), "--results", str(root / "other")]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run with other options" in err and "'lr': (0.05, 0.1)" in err
    assert not (root / "other").exists()  # refused before anything ran


def without_one_summary(root: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """The study's summaries copied under tmp_path but multitask s1's, and a `run` argv."""
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    (results / "tiny" / "1" / "multitask" / "s1.json").unlink()
    return results, ["run", str(root / "tiny.json"), "--jobs", "1", "--output",
                     str(tmp_path / "runs"), "--results", str(results)]


def test_kept_summaries_are_reused_without_run_folders(study, tmp_path, monkeypatch,
                                                       capsys) -> None:
    """A new machine: the run folders are gone, the committed summaries are not."""
    root, compare, _ = study
    results, argv = without_one_summary(root, tmp_path)
    assert compare.main([*argv, "--estimate", "--no-probe"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[:3] for line in out.splitlines()
            if line.startswith(("baseline ", "multitask "))]
    assert rows == [["baseline", "2", "2"], ["multitask", "2", "1"]]  # arm, runs, done
    trained = []

    def fake_training(output, args, quiet=False):
        trained.append(output.relative_to(tmp_path / "runs").as_posix())
        raise RuntimeError("stop here")

    monkeypatch.setattr(compare, "run_training", fake_training)
    assert compare.main(argv) == 1  # the one run without a summary is trained (and fails here)
    out = capsys.readouterr().out
    assert trained == ["tiny/1/multitask/s1"]
    assert "reusing 1/baseline/s0 (its summary" in out and "0 run(s) trained, 3 reused" in out
    # not the training's own failure (an interruption, say): reported, not recorded
    assert not list(results.rglob("*.failed.json"))


def test_kept_summary_of_other_options_is_refused(study, tmp_path, capsys) -> None:
    root, compare, _ = study
    changed = {**STUDY, "options": [*TINY, "--drop-rate", "0.25"]}
    (tmp_path / "tiny.json").write_text(json.dumps(changed))
    assert compare.main(["run", str(tmp_path / "tiny.json"), "--jobs", "1", "--output",
                         str(tmp_path / "runs"), "--results", str(root / "results")]) == 2
    err = capsys.readouterr().err
    assert "s0.json is a finished run of 1/baseline/s0 with other options" in err
    assert "'drop_rate': (0.5, 0.25)" in err
    assert not (tmp_path / "runs").exists()


def test_a_failed_run_is_recorded_skipped_reported_and_retried(study, tmp_path, monkeypatch,
                                                              capsys) -> None:
    root, compare, _ = study
    results, argv = without_one_summary(root, tmp_path)
    train = compare.run_training
    calls = []

    def diverging(output, args, quiet=False):
        calls.append(output.name)
        raise compare.TrainingError("loss is not finite at epoch 1, step 3. Lower --lr")

    monkeypatch.setattr(compare, "run_training", diverging)
    assert compare.main(argv) == 1
    record = json.loads((results / "tiny" / "1" / "multitask" / "s1.failed.json").read_text())
    assert record["error"] == "TrainingError: loss is not finite at epoch 1, step 3. Lower --lr"
    assert (record["arm"], record["seed"], record["options"]["label_maps"]) == ("multitask", 1, 3)
    assert record["launches"][0]["ok"] is False and record["epochs"] == []
    # a recorded failure is not trained again, and the report names it
    assert compare.main(argv) == 0 and calls == ["s1"]
    out = capsys.readouterr().out
    assert "skipping 1/multitask/s1: it failed before (TrainingError: loss is not finite" in out
    assert "0 run(s) trained, 3 reused, 0 failed in 0.0 min; 1 skipped (failed before)" in out
    monkeypatch.setattr(compare, "README_MIN_PAIRS", 1)
    # a second block that plans the same run: the README names the failed run once
    spec = {**STUDY, "blocks": [*STUDY["blocks"], {**STUDY["blocks"][0], "name": "again"}]}
    (results / "tiny" / "study.json").write_text(json.dumps(spec))
    page, block = compare.render(results, tmp_path)
    assert page.count("3 run(s) summarised, 1 failed (listed below the tables).") == 2
    assert ("- 100% `multitask` seed 1: TrainingError: loss is not finite at epoch 1, step 3 "
            "(after 0 finished epoch(s); code ") in page
    assert "| `multitask` | test 10-crop | 1 |" in page  # the pair of seed 0 only
    assert block.rstrip().endswith("Failed runs, not in these numbers: tiny / main, again 100% "
                                   "`multitask` seed 1: TrainingError: loss is not finite at "
                                   "epoch 1, step 3.")
    # a record of other options does not stop the run
    monkeypatch.setattr(compare, "run_training", diverging)
    other = {**STUDY, "options": [*TINY, "--drop-rate", "0.25"]}
    (tmp_path / "other.json").write_text(json.dumps(other))
    shutil.copytree(results, tmp_path / "other_results")
    assert compare.main(["run", str(tmp_path / "other.json"), "--jobs", "1", "--output",
                         str(tmp_path / "other_runs"), "--results", str(tmp_path / "other_results"),
                         "--seeds", "1", "--arms", "multitask"]) == 1
    assert "records a failure of other options" in capsys.readouterr().out
    assert calls == ["s1", "s1"]
    # --retry-failed trains it again; once it finishes, its failure record goes
    monkeypatch.setattr(compare, "run_training", train)
    assert compare.main([*argv, "--retry-failed"]) == 0
    assert (results / "tiny" / "1" / "multitask" / "s1.json").is_file()
    assert not (results / "tiny" / "1" / "multitask" / "s1.failed.json").exists()
    assert "1 failed" not in compare.render(results, tmp_path)[0]
    # a failure record beside a summary of the same run is stale: the report refuses it
    (results / "tiny" / "1" / "multitask" / "s1.failed.json").write_text(
        compare.dump_summary(record))
    with pytest.raises(ValueError, match="a failure record of a run that has a summary too"):
        compare.render(results, tmp_path)


@pytest.mark.parametrize("status, message, recorded", [
    (3, "error: loss is not finite at epoch 2, step 1. Lower --lr", True),
    (2, "error: no file fer2013.csv", False),
    (1, "Traceback ...\nKeyboardInterrupt", False),
])
def test_a_child_process_failure_is_recorded_only_when_training_stopped_it(
        tmp_path, monkeypatch, status, message, recorded) -> None:
    """--jobs > 1: the error comes from the child's exit status and this launch's log."""
    compare = load("examples/compare.py")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "train.py").write_text(
        f"import sys\nprint('data: synthetic: train 120')\nprint({message!r}, file=sys.stderr)\n"
        f"sys.exit({status})\n")
    monkeypatch.setattr(compare, "HERE", fake)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("error: an earlier launch's error\n")
    job = compare.Job("aux", 1.0, 0, ("--data", "synthetic"), run_dir)
    recorded_jobs = []
    failures = compare.run_jobs([job], threads=1, jobs=2,
                                failed=lambda j, why: recorded_jobs.append((j, why)))
    assert len(failures) == 1
    why = failures[0][1]
    if recorded:
        assert why == "TrainingError: loss is not finite at epoch 2, step 1. Lower --lr"
        assert recorded_jobs == [(job, why)]
    else:
        assert recorded_jobs == [] and why.startswith(f"exit status {status}")
        assert "earlier launch" not in why
    launch = json.loads((run_dir / "launch.json").read_text())["launches"][-1]
    assert launch["ok"] is False


def test_collect_matches_the_summary_of_run(study, tmp_path) -> None:
    root, compare, _ = study
    run_dir = root / "runs" / "tiny" / "1" / "multitask" / "s1"
    assert compare.main(["collect", str(run_dir), "--study", "tiny", "--arm", "multitask",
                         "--results", str(tmp_path)]) == 0
    a = (tmp_path / "tiny" / "1" / "multitask" / "s1.json").read_text()
    assert a == (root / "results" / "tiny" / "1" / "multitask" / "s1.json").read_text()


def test_collect_checks_the_arm_against_the_study(study, tmp_path, capsys) -> None:
    root, compare, _ = study
    run_dir = root / "runs" / "tiny" / "1" / "baseline" / "s0"
    argv = ["collect", str(run_dir), "--study", "tiny", "--spec", str(root / "tiny.json"),
            "--results", str(tmp_path)]
    assert compare.main([*argv, "--arm", "multitask"]) == 2
    assert "'label_maps': (0, 3)" in capsys.readouterr().err
    assert compare.main([*argv, "--arm", "baseline"]) == 0
    assert (tmp_path / "tiny" / "study.json").is_file()


def test_collect_of_a_folder_without_launch_record(study, tmp_path) -> None:
    root, compare, _ = study
    run_dir = root / "runs" / "tiny" / "1" / "baseline" / "s0"
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("args.json", "metrics.jsonl", "final.json"):
        (bare / name).write_text((run_dir / name).read_text())
    s = compare.summarize(bare, "tiny", "baseline")
    assert s["launches"][0]["recorded"] == "at collection"
    with pytest.raises(FileNotFoundError, match="no final.json"):
        (bare / "final.json").unlink()
        compare.summarize(bare, "tiny", "baseline")


def test_report_tables(study, tmp_path, monkeypatch) -> None:
    root, compare, _ = study
    monkeypatch.setattr(compare, "README_MIN_PAIRS", 2)  # the tiny study has 2 seeds
    page, block = compare.render(root / "results", tmp_path)
    assert "| `multitask` | test 10-crop | 2 |" in page
    assert "| `baseline` | 2 |" in page and "| `multitask` | 2 |" in page
    assert "1 run(s) × 1 thread(s)" in page and "Load average at launch " in page
    assert "| tiny / main | 100% | `multitask` − `baseline` | test 10-crop | 2 |" in block
    # the numbers are those of the summaries
    s = [json.loads((root / "results" / "tiny" / "1" / a / f"s{k}.json").read_text())
         for a in ("baseline", "multitask") for k in (0, 1)]
    diff = sum(s[2 + k]["final"]["test"]["test"]["acc_tta"]
               - s[k]["final"]["test"]["test"]["acc_tta"] for k in (0, 1)) / 2
    assert f"| 2 | {100 * diff:+.2f} |" in block
    # too few seeds: on the page, not in the README's short table
    shutil.copytree(root / "results", tmp_path / "one")
    (tmp_path / "one" / "tiny" / "1" / "multitask" / "s1.json").unlink()
    page, block = compare.render(tmp_path / "one", tmp_path)
    assert "| `multitask` | test 10-crop | 1 |" in page
    assert "tiny / main" not in block and "no comparison of 2 or more" in block
    monkeypatch.setattr(compare, "README_MIN_PAIRS", 4)
    assert "tiny / main" not in compare.render(root / "results", tmp_path)[1]


def test_block_footer_counts_only_its_own_study_and_seeds(study, tmp_path) -> None:
    root, compare, _ = study
    shutil.copytree(root / "results", tmp_path / "results")
    # a second study with the same arm names, and a seed the block does not plan
    other = tmp_path / "results" / "other"
    shutil.copytree(tmp_path / "results" / "tiny", other)
    for path in other.glob("*/*/s*.json"):
        path.write_text(path.read_text().replace('"study": "tiny"', '"study": "other"'))
    (other / "study.json").write_text(json.dumps({**STUDY, "name": "other"}))
    extra = tmp_path / "results" / "tiny" / "1" / "baseline" / "s7.json"
    extra.write_text((extra.parent / "s0.json").read_text().replace('"seed": 0', '"seed": 7'))
    page, _ = compare.render(tmp_path / "results", tmp_path)
    assert page.count("4 run(s) summarised.") == 2 and page.count("Runs: 4;") == 2


def test_study_total_counts_runs_shared_by_blocks_once(study, tmp_path) -> None:
    root, compare, _ = study
    shutil.copytree(root / "results", tmp_path / "results")
    spec = {**STUDY, "blocks": [*STUDY["blocks"], {"name": "seed0", "arms": ["baseline",
            "multitask"], "seeds": [0], "fractions": [1.0]}]}
    (tmp_path / "results" / "tiny" / "study.json").write_text(json.dumps(spec))
    for path in (tmp_path / "results" / "tiny").glob("*/*/s*.json"):  # 30 min per run
        s = json.loads(path.read_text())
        s["launches"][0]["wall_s"] = 1800.0
        s["final"]["train_time_s"] = 1500.0
        path.write_text(json.dumps(s))
    page, _ = compare.render(tmp_path / "results", tmp_path)
    assert ("The whole study so far (each run once, though blocks share runs): 4 finished "
            "run(s); training time 1.7 h (sum of the finished runs' epoch times), wall time "
            "2.0 h summed over all launches: about 1.0 h at 2 runs at a time.") in page


def test_report_refuses_unpaired_runs(study, tmp_path) -> None:
    root, compare, _ = study
    shutil.copytree(root / "results", tmp_path / "results")
    path = tmp_path / "results" / "tiny" / "1" / "multitask" / "s1.json"
    s = json.loads(path.read_text())
    s["options"]["split_seed"] = 5
    path.write_text(json.dumps(s))
    with pytest.raises(ValueError, match=r"baseline/s1.json and .*multitask/s1.json are not "
                                         r"paired: they differ in \{'split_seed': \(0, 5\)\}"):
        compare.render(tmp_path / "results", tmp_path)


def test_estimate_from_measured_rates(study, capsys) -> None:
    root, compare, _ = study
    spec = compare.check_study(json.loads(json.dumps({**STUDY, "blocks": [
        {**STUDY["blocks"][0], "seeds": [0, 1, 2]}]})), "test")
    jobs = compare.plan(spec, root / "runs", [], threads=1)
    est = compare.estimate(jobs, root / "results", "tiny", threads=1,
                           concurrency=2, probe=False)
    samples = json.loads((root / "results" / "tiny" / "1" / "baseline" / "s0.json")
                         .read_text())["epochs"][0]["samples"]
    for arm in ("baseline", "multitask"):
        row = est["arms"][arm]
        assert (row["runs"], row["finished"], row["source"]) == (3, 2, "measured")
        assert row["samples"] == samples  # one epoch of the one missing seed
        assert row["train_s"] == pytest.approx(samples / row["rate"])
    assert est["wall_hours"] == pytest.approx(est["process_hours"] / 2)
    assert est["overhead_per_run_s"] is not None


@pytest.mark.parametrize("loadavg, cpus, threads, jobs, busy", [
    (0.0, 2, 1, 2, False), (0.4, 2, 1, 2, False), (2.0, 2, 1, 2, True), (1.0, 16, 4, 2, False),
    (10.0, 16, 4, 2, True),
])
def test_probe_warns_on_a_busy_machine(loadavg, cpus, threads, jobs, busy) -> None:
    compare = load("examples/compare.py")
    warning = compare.busy_warning(loadavg, cpus, threads, jobs)
    assert (warning is not None) == busy
    if busy:
        assert f"load average {loadavg:.1f} on {cpus} cores" in warning


def test_paired_runs_share_the_trunk_initialisation() -> None:
    train = load("examples/train.py")
    args = train.build_parser().parse_args(["--data", "synthetic", "--output", "-"])

    def trunk(label_maps: int, seed: int) -> dict[str, torch.Tensor]:
        args.label_maps, args.seed = label_maps, seed
        return train.build_model(args, 1, 7).backbone.state_dict()

    base, multi, other = trunk(0, 3), trunk(3, 3), trunk(0, 4)
    assert base.keys() == multi.keys()
    assert all(torch.equal(base[k], multi[k]) for k in base)
    assert not all(torch.equal(base[k], other[k]) for k in base if k.endswith("weight"))


def test_train_options_after_double_dash() -> None:
    compare = load("examples/compare.py")
    args = compare.parse_args(["run", "s.json", "--jobs", "1", "--", "--data", "x.csv", "--amp"])
    assert (args.study, args.jobs, args.train_args) == ("s.json", 1, ["--data", "x.csv", "--amp"])
    assert compare.parse_args(["run", "s.json"]).train_args == []


@pytest.mark.parametrize(("change", "message"), [
    ({"blocks": [{"name": "b", "arms": ["nope"], "seeds": [0], "fractions": [1]}]},
     "unknown arms"),
    ({"arms": {"a": ["--seed", "3"]}}, "may not set"),
    ({"blocks": [{"name": "b", "arms": ["baseline"], "seeds": [0], "fractions": [1.5]}]},
     r"fractions must be in \(0, 1\]"),
    ({"name": ""}, "'name' must be"),
    ({"metrics": "validation"}, "'metrics' must be"),
])
def test_bad_study_files_name_the_culprit(tmp_path, change, message) -> None:
    compare = load("examples/compare.py")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**STUDY, **change}))
    with pytest.raises(ValueError, match=message):
        compare.load_study(path)
    assert compare.main(["run", str(path), "--estimate"]) == 2


def test_a_study_reports_only_the_metrics_it_names(study, tmp_path, monkeypatch) -> None:
    root, compare, _ = study
    monkeypatch.setattr(compare, "README_MIN_PAIRS", 2)
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    page, _ = compare.render(results, tmp_path / "img")
    assert "test 10-crop" in page
    spec = json.loads((results / "tiny" / "study.json").read_text())
    (results / "tiny" / "study.json").write_text(json.dumps({**spec, "metrics": ["validation"]}))
    page, block = compare.render(results, tmp_path / "img")
    assert "test 10-crop" not in page and "test centre crop" not in page
    assert "| arm | n | validation | label-map IoU (val) |" in page
    assert "| validation |" in block


def test_plan_filters_arms_and_names_an_unknown_one() -> None:
    compare = load("examples/compare.py")
    spec = compare.check_study(json.loads(json.dumps(STUDY)), "tiny")
    jobs = compare.plan(spec, Path("runs"), [], threads=1, arms=["multitask"])
    assert [(j.arm, j.seed) for j in jobs] == [("multitask", 0), ("multitask", 1)]
    with pytest.raises(ValueError, match=r"--arms nope: no such arm in study 'tiny'"):
        compare.plan(spec, Path("runs"), [], threads=1, arms=["nope"])


def test_a_study_naming_an_unmeasured_metric_is_refused(study, tmp_path) -> None:
    root, compare, _ = study
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    spec = json.loads((results / "tiny" / "study.json").read_text())
    (results / "tiny" / "study.json").write_text(json.dumps({**spec, "metrics": ["valdation"]}))
    with pytest.raises(ValueError, match=r"metrics \['valdation'\] are not measured"):
        compare.render(results, tmp_path / "img")


def test_committed_studies_are_valid() -> None:
    compare = load("examples/compare.py")
    for path in sorted((ROOT / "examples" / "studies").glob("*.json")):
        spec = compare.load_study(path)
        assert compare.plan(spec, Path("runs"), [], threads=1)


def test_committed_tables_match_committed_summaries(tmp_path) -> None:
    compare = load("examples/compare.py")
    page, block = compare.render(ROOT / "results", tmp_path)
    assert (ROOT / "docs" / "results_study.md").read_text() == page, (
        "docs/results_study.md is out of date: run `python examples/compare.py report`")
    readme = (ROOT / "README.md").read_text()
    assert compare.replace_block(readme, block, "README.md") == readme, (
        "README's study table is out of date: run `python examples/compare.py report`")


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


@pytest.mark.slow
def test_two_processes_and_probe(tmp_path) -> None:
    compare = load("examples/compare.py")
    (tmp_path / "tiny.json").write_text(json.dumps(STUDY))
    common = [str(tmp_path / "tiny.json"), "--output", str(tmp_path / "runs"), "--results",
              str(tmp_path / "results")]
    assert compare.main(["run", *common, "--estimate", "--probe-faces", "100"]) == 0
    assert compare.main(["run", *common, "--jobs", "2", "--seeds", "0"]) == 0
    for arm in ("baseline", "multitask"):
        run_dir = tmp_path / "runs" / "tiny" / "1" / arm / "s0"
        assert "outputs written to" in (run_dir / "train.log").read_text()
        s = json.loads((tmp_path / "results" / "tiny" / "1" / arm / "s0.json").read_text())
        assert s["launches"][0]["machine"]["concurrent_runs"] == 2

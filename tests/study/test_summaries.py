"""mtl_heads.study.summaries and `mtl-heads study collect`: summaries of run folders, the arm
check, the precision and CPU time of a run, old summaries."""

import json

import pytest

from mtl_heads.study.cli import main
from mtl_heads.study.summaries import (
    check_arm,
    cpu_seconds,
    option_diff,
    read_results,
    run_precision,
    summarize,
)


def test_collect_matches_the_summary_of_run(tiny_study, tmp_path) -> None:
    run_dir = tiny_study.root / "runs" / "tiny" / "1" / "multitask" / "s1"
    assert main(["collect", str(run_dir), "--study", "tiny", "--arm", "multitask",
                 "--results", str(tmp_path)]) == 0
    a = (tmp_path / "tiny" / "1" / "multitask" / "s1.json").read_text()
    assert a == (tiny_study.results / "tiny" / "1" / "multitask" / "s1.json").read_text()


def test_collect_checks_the_arm_against_the_study(tiny_study, tmp_path, capsys) -> None:
    run_dir = tiny_study.root / "runs" / "tiny" / "1" / "baseline" / "s0"
    argv = ["collect", str(run_dir), "--study", "tiny", "--spec",
            str(tiny_study.root / "tiny.json"), "--results", str(tmp_path)]
    assert main([*argv, "--arm", "multitask"]) == 2
    assert "'label_maps': (0, 3)" in capsys.readouterr().err
    assert main([*argv, "--arm", "nope"]) == 2
    assert "--arm nope: not an arm of" in capsys.readouterr().err
    assert main([*argv, "--arm", "baseline"]) == 0
    assert (tmp_path / "tiny" / "study.json").is_file()


def test_collect_of_a_folder_without_launch_record(tiny_study, tmp_path) -> None:
    run_dir = tiny_study.root / "runs" / "tiny" / "1" / "baseline" / "s0"
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("args.json", "metrics.jsonl", "final.json"):
        (bare / name).write_text((run_dir / name).read_text())
    s = summarize(bare, "tiny", "baseline")
    assert s["launches"][0]["recorded"] == "at collection"
    (bare / "final.json").unlink()
    with pytest.raises(FileNotFoundError, match="no final.json"):
        summarize(bare, "tiny", "baseline")


def test_summaries_of_older_runs_read_their_precision_from_amp(tiny_study) -> None:
    """Summaries made before --precision saved `amp` and no final precision."""
    s = tiny_study.summary("baseline", 0)
    assert run_precision(s) == "float32"
    old = {**s, "final": {k: v for k, v in s["final"].items()
                          if k not in ("precision", "native_bf16")},
           "options": {**{k: v for k, v in s["options"].items() if k != "precision"},
                       "amp": True}}
    assert run_precision(old) == "bfloat16"
    assert run_precision({**old, "options": {**old["options"], "amp": False}}) == "float32"


def test_precision_and_amp_are_site_options(tiny_study, spec_factory) -> None:
    """A summary of a bfloat16 run counts as a run of its arm: precision is how it ran."""
    s = tiny_study.summary("multitask", 1)
    s["options"] = {**{k: v for k, v in s["options"].items() if k != "precision"}, "amp": True}
    spec = spec_factory()
    check_arm(s, spec, "s1.json")
    argv = [*spec["options"], *spec["arms"]["multitask"], "--seed", "1"]
    assert option_diff(s["options"], [*argv, "--precision", "float32"]) == {}
    assert option_diff(s["options"], [*argv, "--lr", "0.2"]) == {"lr": (0.05, 0.2)}
    with pytest.raises(ValueError, match=r"options differ \(run, study\): \{'lr': \(0.05, 0.2"):
        check_arm(s, spec_factory(options=[*spec["options"], "--lr", "0.2"]), "s1.json")


def test_cpu_seconds_count_training_evaluation_and_threads(tiny_study) -> None:
    s = tiny_study.summary("multitask", 0)
    final = s["final"]
    seconds, with_eval = cpu_seconds(s)
    assert with_eval and seconds == pytest.approx(final["train_time_s"] + final["eval_time_s"])
    s["launches"][-1]["machine"]["threads_per_run"] = 4
    assert cpu_seconds(s)[0] == pytest.approx(4 * seconds)
    del final["eval_time_s"]  # a summary from before eval_time_s: training only, flagged
    assert cpu_seconds(s) == (pytest.approx(4 * final["train_time_s"]), False)


def test_a_summary_of_another_format_is_refused(tiny_study, tmp_path) -> None:
    path = tmp_path / "tiny" / "1" / "baseline" / "s0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**tiny_study.summary("baseline", 0), "format": 2}))
    with pytest.raises(ValueError, match="s0.json: summary format 2, this version reads 1"):
        read_results(tmp_path)

"""mtl_heads.study.runner and `mtl-heads study run`: a tiny paired study end to end, reuse of
finished runs and kept summaries, failure records, child processes, launch records."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from mtl_heads.study import runs
from mtl_heads.study.cli import main
from mtl_heads.study.jobs import Job
from mtl_heads.study.report import render
from mtl_heads.study.runner import run_jobs
from mtl_heads.study.summaries import dump_summary
from mtl_heads.train import TrainingError


def test_study_writes_one_small_summary_per_run(tiny_study) -> None:
    results = tiny_study.results
    paths = sorted((results / "tiny").glob("*/*/s*.json"))
    assert [p.relative_to(results).as_posix() for p in paths] == [
        "tiny/1/baseline/s0.json", "tiny/1/baseline/s1.json",
        "tiny/1/multitask/s0.json", "tiny/1/multitask/s1.json"]
    for p in paths:
        assert p.stat().st_size < 16_000
        s = json.loads(p.read_text())
        assert s["format"] == 1 and s["options"]["seed"] == int(p.stem[1:])
        assert s["options"]["label_maps"] == (0 if "baseline" in str(p) else 3)
        launch = s["launches"][0]
        assert launch["recorded"] == "at launch" and len(launch["code"]["commit"]) == 40
        assert launch["command"].startswith("mtl-heads train ")
        machine = launch["machine"]
        assert machine["threads_per_run"] == 1 and launch["wall_s"] > 0
        assert machine["load_avg_1min"] >= 0
        # the CPU flags that decide bfloat16's speed, and the precision the run used
        assert set(machine["cpu_flags"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
        assert machine["precision"] == s["final"]["precision"] == "float32"
        assert isinstance(s["final"]["native_bf16"], bool)
        assert [e["epoch"] for e in s["epochs"]] == [1]
        assert 0 <= s["final"]["test"]["test"]["acc_tta"] <= 1
        assert "acc" in s["final"]["val"]
        assert not any(k.endswith("safetensors") for k in json.dumps(s).split('"'))
    multitask = json.loads(paths[2].read_text())
    assert "iou_mean" in multitask["final"]["val"]
    assert json.loads((results / "tiny" / "study.json").read_text())["name"] == "tiny"


def test_machine_record_reads_the_cpu_flags(tmp_path) -> None:
    from mtl_heads.study.launches import machine

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Test CPU\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    record = machine(2, 1, cpuinfo=cpuinfo)
    assert record["cpu"] == "Test CPU" and record["cpu_flags"] == ["avx2", "avx512f",
                                                                    "avx512_bf16"]
    assert (record["threads_per_run"], record["concurrent_runs"]) == (2, 1)


def test_rerun_reuses_finished_runs(tiny_study, monkeypatch, capsys) -> None:
    root = tiny_study.root
    before = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("final.json")}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs, "run_training", no_training)
    assert main(tiny_study.argv) == 0
    assert "0 run(s) trained, 4 reused, 0 failed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("final.json")} == before


def test_rerun_with_other_options_is_refused(tiny_study, spec_factory, capsys) -> None:
    root = tiny_study.root
    changed = spec_factory(options=[*spec_factory()["options"], "--lr", "0.1"])
    (root / "changed.json").write_text(json.dumps(changed))
    assert main(["run", str(root / "changed.json"), "--jobs", "1", "--output",
                 str(root / "runs"), "--results", str(root / "other")]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run with other options" in err and "'lr': (0.05, 0.1)" in err
    assert not (root / "other").exists()  # refused before anything ran


def test_site_options_after_double_dash_do_not_change_a_run(tiny_study, tmp_path, monkeypatch,
                                                            capsys) -> None:
    """--precision, like --workers or --device, says how a run ran, not what it measured."""
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs, "run_training", no_training)
    shutil.copytree(tiny_study.results, tmp_path / "results")
    argv = ["run", str(tiny_study.root / "tiny.json"), "--jobs", "1", "--output",
            str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    assert main([*argv, "--", "--precision", "bfloat16", "--channels-last"]) == 0
    assert "0 run(s) trained, 4 reused" in capsys.readouterr().out


def without_one_summary(results: Path, tmp_path: Path, tiny_json: Path) -> tuple[Path, list[str]]:
    """The study's summaries copied under tmp_path but multitask s1's, and a `run` argv."""
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / "tiny" / "1" / "multitask" / "s1.json").unlink()
    return copy, ["run", str(tiny_json), "--jobs", "1", "--output", str(tmp_path / "runs"),
                  "--results", str(copy)]


def test_kept_summaries_are_reused_without_run_folders(tiny_study, tmp_path, monkeypatch,
                                                       capsys) -> None:
    """A new machine: the run folders are gone, the committed summaries are not."""
    results, argv = without_one_summary(tiny_study.results, tmp_path,
                                        tiny_study.root / "tiny.json")
    assert main([*argv, "--estimate", "--no-probe"]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[:3] for line in out.splitlines()
            if line.startswith(("baseline ", "multitask "))]
    assert rows == [["baseline", "2", "2"], ["multitask", "2", "1"]]  # arm, runs, done
    trained = []

    def fake_training(output, args, quiet=False):
        trained.append(output.relative_to(tmp_path / "runs").as_posix())
        raise RuntimeError("stop here")

    monkeypatch.setattr(runs, "run_training", fake_training)
    assert main(argv) == 1  # the one run without a summary is trained (and fails here)
    out = capsys.readouterr().out
    assert trained == ["tiny/1/multitask/s1"]
    assert "reusing 1/baseline/s0 (its summary" in out and "0 run(s) trained, 3 reused" in out
    # not the training's own failure (an interruption, say): reported, not recorded
    assert not list(results.rglob("*.failed.json"))


def test_kept_summary_of_other_options_is_refused(tiny_study, spec_factory, tmp_path,
                                                  capsys) -> None:
    changed = spec_factory(options=[*spec_factory()["options"], "--drop-rate", "0.25"])
    (tmp_path / "tiny.json").write_text(json.dumps(changed))
    assert main(["run", str(tmp_path / "tiny.json"), "--jobs", "1", "--output",
                 str(tmp_path / "runs"), "--results", str(tiny_study.results)]) == 2
    err = capsys.readouterr().err
    assert "s0.json is a finished run of 1/baseline/s0 with other options" in err
    assert "'drop_rate': (0.5, 0.25)" in err
    assert not (tmp_path / "runs").exists()


def test_a_failed_run_is_recorded_skipped_reported_and_retried(tiny_study, spec_factory,
                                                              tmp_path, monkeypatch,
                                                              capsys) -> None:
    tiny_json = tiny_study.root / "tiny.json"
    results, argv = without_one_summary(tiny_study.results, tmp_path, tiny_json)
    train = runs.run_training
    calls = []

    def diverging(output, args, quiet=False):
        calls.append(output.name)
        raise TrainingError("loss is not finite at epoch 1, step 3. Lower --lr")

    monkeypatch.setattr(runs, "run_training", diverging)
    assert main(argv) == 1
    record = json.loads((results / "tiny" / "1" / "multitask" / "s1.failed.json").read_text())
    assert record["error"] == "TrainingError: loss is not finite at epoch 1, step 3. Lower --lr"
    assert (record["arm"], record["seed"], record["options"]["label_maps"]) == ("multitask", 1, 3)
    assert record["launches"][0]["ok"] is False and record["epochs"] == []
    # a recorded failure is not trained again, and the report names it
    assert main(argv) == 0 and calls == ["s1"]
    out = capsys.readouterr().out
    assert "skipping 1/multitask/s1: it failed before (TrainingError: loss is not finite" in out
    assert "0 run(s) trained, 3 reused, 0 failed in 0.0 min; 1 skipped (failed before)" in out
    # a second block that plans the same run: the README names the failed run once
    spec = spec_factory()
    spec["blocks"].append({**spec["blocks"][0], "name": "again"})
    (results / "tiny" / "study.json").write_text(json.dumps(spec))
    page, block = render(results, tmp_path, min_pairs=1)
    assert page.count("3 run(s) summarised, 1 failed (listed below the tables).") == 2
    assert ("- 100% `multitask` seed 1: TrainingError: loss is not finite at epoch 1, step 3 "
            "(after 0 finished epoch(s); code ") in page
    assert "| `multitask` | test 10-crop | 1 |" in page  # the pair of seed 0 only
    assert block.rstrip().endswith("Failed runs, not in these numbers: tiny / main, again 100% "
                                   "`multitask` seed 1: TrainingError: loss is not finite at "
                                   "epoch 1, step 3.")
    # a record of other options does not stop the run
    other = spec_factory(options=[*spec_factory()["options"], "--drop-rate", "0.25"])
    (tmp_path / "other.json").write_text(json.dumps(other))
    shutil.copytree(results, tmp_path / "other_results")
    assert main(["run", str(tmp_path / "other.json"), "--jobs", "1", "--output",
                 str(tmp_path / "other_runs"), "--results", str(tmp_path / "other_results"),
                 "--seeds", "1", "--arms", "multitask"]) == 1
    assert "records a failure of other options" in capsys.readouterr().out
    assert calls == ["s1", "s1"]
    # --retry-failed trains it again; once it finishes, its failure record goes
    monkeypatch.setattr(runs, "run_training", train)
    assert main([*argv, "--retry-failed"]) == 0
    assert (results / "tiny" / "1" / "multitask" / "s1.json").is_file()
    assert not (results / "tiny" / "1" / "multitask" / "s1.failed.json").exists()
    assert "1 failed" not in render(results, tmp_path)[0]
    # a failure record beside a summary of the same run is stale: the report refuses it
    (results / "tiny" / "1" / "multitask" / "s1.failed.json").write_text(dump_summary(record))
    with pytest.raises(ValueError, match="a failure record of a run that has a summary too"):
        render(results, tmp_path)


@pytest.mark.parametrize("status, message, recorded", [
    (3, "error: loss is not finite at epoch 2, step 1. Lower --lr", True),
    (2, "error: no file fer2013.csv", False),
    (1, "Traceback ...\nKeyboardInterrupt", False),
])
def test_a_child_process_failure_is_recorded_only_when_training_stopped_it(
        tmp_path, status, message, recorded) -> None:
    """--jobs > 1: the error comes from the child's exit status and this launch's log."""
    fake = tmp_path / "fake_train.py"
    fake.write_text(f"import sys\nprint('data: synthetic: train 120')\n"
                    f"print({message!r}, file=sys.stderr)\nsys.exit({status})\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").write_text("error: an earlier launch's error\n")
    job = Job("aux", 1.0, 0, ("--data", "synthetic"), run_dir)
    recorded_jobs = []
    failures = run_jobs([job], threads=1, jobs=2, command=[sys.executable, str(fake)],
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


def test_a_child_runs_this_package_with_its_threads(tmp_path) -> None:
    """The child imports the parent's mtl_heads (also from a checkout that is not installed)
    and gets OMP_NUM_THREADS = --threads."""
    import mtl_heads

    probe = tmp_path / "probe.py"
    probe.write_text("import os, sys, mtl_heads\n"
                     "print('package', mtl_heads.__file__)\n"
                     "print('threads', os.environ['OMP_NUM_THREADS'])\nsys.exit(0)\n")
    run_dir = tmp_path / "run"
    job = Job("aux", 1.0, 0, ("--data", "synthetic"), run_dir)
    assert run_jobs([job], threads=3, jobs=2, command=[sys.executable, str(probe)]) == []
    log = (run_dir / "train.log").read_text()
    assert f"package {mtl_heads.__file__}" in log and "threads 3" in log


@pytest.mark.slow
def test_two_processes_and_probe(tmp_path, spec_factory) -> None:
    (tmp_path / "tiny.json").write_text(json.dumps(spec_factory()))
    common = [str(tmp_path / "tiny.json"), "--output", str(tmp_path / "runs"), "--results",
              str(tmp_path / "results")]
    assert main(["run", *common, "--estimate", "--probe-faces", "100"]) == 0
    assert main(["run", *common, "--jobs", "2", "--seeds", "0"]) == 0
    for arm in ("baseline", "multitask"):
        run_dir = tmp_path / "runs" / "tiny" / "1" / arm / "s0"
        assert "outputs written to" in (run_dir / "train.log").read_text()
        s = json.loads((tmp_path / "results" / "tiny" / "1" / arm / "s0.json").read_text())
        assert s["launches"][0]["machine"]["concurrent_runs"] == 2

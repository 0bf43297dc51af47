"""`mtl-heads study`: its parser, the options after `--`, and the console entry point."""

import subprocess
import sys

import pytest

from mtl_heads.cli import main as mtl_heads_main
from mtl_heads.study.cli import build_parser, main


def test_train_options_after_double_dash(tmp_path, capsys) -> None:
    parser = build_parser()
    args = parser.parse_args(["run", "s.json", "--jobs", "1"])
    assert (args.study, args.jobs, args.threads, args.output) == ("s.json", 1, 1, "runs/study")
    with pytest.raises(SystemExit):  # train's options are not the runner's
        parser.parse_args(["run", "s.json", "--data", "x.csv"])
    # after --, they reach every run (here: the study file is missing, so nothing runs)
    assert main(["run", str(tmp_path / "s.json"), "--", "--data", "x.csv", "--amp"]) == 2
    assert "s.json: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--", "--data", "x.csv"])
    assert "options after -- are for `run` only" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "collect", "report", "readme"])
def test_every_subcommand_has_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        mtl_heads_main(["study", command, "--help"])
    assert exit_info.value.code == 0
    assert f"mtl-heads study {command}" in capsys.readouterr().out


def test_the_console_command_runs_the_study_cli() -> None:
    """`python -m mtl_heads study --help` (the process boundary of the installed command)."""
    out = subprocess.run([sys.executable, "-m", "mtl_heads", "study", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: mtl-heads study")
    assert "{run,collect,report,readme}" in out and "mtl-heads study report" in out

"""examples/train.py, the loop written out, gives the engine's numbers (``mtl-heads train``)."""

import json

import pytest
from file_modules import load

from mtl_heads.train import parse_args, train

TINY = ["--data", "synthetic", "--synthetic-train", "160", "--synthetic-test", "64",
        "--batch-size", "32", "--eval-batch-size", "64", "--quiet", "--epochs", "2", "--tta"]


@pytest.mark.slow
@pytest.mark.parametrize("arm", [
    ["--label-maps", "0", "--augment", "crop"],
    ["--label-maps", "3", "--head", "spatial", "--map-loss", "bce_dice", "--lambda", "3",
     "--augment", "full", "--variants-per-epoch", "2"],
], ids=["baseline", "aux"])
def test_tutorial_matches_the_engine(tmp_path, arm):
    engine = train(parse_args([*TINY, *arm, "--output", str(tmp_path / "engine")]))
    tutorial = load("examples/train.py").train([*TINY, *arm, "--output", str(tmp_path / "ex")])
    for split in ("val", "test"):
        got = tutorial[split] if split == "val" else tutorial[split]["test"]
        want = engine[split] if split == "val" else engine[split]["test"]
        assert got == want
    keys = ("train_loss", "train_acc", "val_acc", "val_loss", "lr")
    history = [{k: json.loads(line)[k] for k in keys}
               for line in (tmp_path / "ex" / "metrics.jsonl").read_text().splitlines()]
    engine_history = [{k: json.loads(line)[k] for k in keys} for line in
                      (tmp_path / "engine" / "metrics.jsonl").read_text().splitlines()]
    assert history == engine_history
    assert tutorial["selected_epoch"] == engine["selected"]["epoch"]


def test_tutorial_reports_bad_options(tmp_path, capsys):
    code = load("examples/train.py").main(["--data", str(tmp_path / "missing.csv"),
                                          "--output", str(tmp_path / "out")])
    assert code == 2
    assert "missing.csv" in capsys.readouterr().err

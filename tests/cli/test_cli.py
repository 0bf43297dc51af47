from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtl_heads.cli import build_parser, main
from mtl_heads.datasets import FER2013

pytest.importorskip("dlib", reason='needs the landmarks extra: pip install "mtl-heads[landmarks]"')

ROOT = Path(__file__).resolve().parents[2]


def _csv(path: Path, n: int = 5) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for i in range(n):
            px = " ".join(map(str, rng.integers(0, 256, 2304)))
            f.write(f"{i % 7},{px},{'Training' if i < 3 else 'PublicTest'}\n")
    return path


def _annotate(csv: Path, out: Path, *extra: str) -> int:
    """Run the annotate subcommand in this process, one worker, no progress bar."""
    return main(["annotate", str(csv), "-o", str(out), "--workers", "1", "--no-progress", *extra])


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["annotate", "x.csv", "-o", "y.npz"])
    assert (args.upsample, args.second_threshold, args.size, args.workers) == (4, -0.5, 48, None)


def test_predict_and_export_defaults() -> None:
    parser = build_parser()
    args = parser.parse_args(["predict", "photo.jpg"])
    # no checkpoint: the bundled model; upsampling left to predict's default (2x)
    assert (args.checkpoint, args.upsample, args.no_detect, args.json, args.csv) == (
        None, None, False, False, False)
    args = parser.parse_args(["export", "--format", "onnx", "-o", "m.onnx"])
    assert args.checkpoint is None and args.format == "onnx"
    with pytest.raises(SystemExit):
        parser.parse_args(["predict", "photo.jpg", "--json", "--csv"])


def test_annotate_csv_end_to_end(tmp_path, capsys) -> None:
    csv = _csv(tmp_path / "fer2013.csv")
    out = tmp_path / "lm.npz"
    assert _annotate(csv, out, "--upsample", "2") == 0
    text = capsys.readouterr().out
    assert "split=Training" in text and "split=PublicTest" in text and "wrote" in text
    ds = FER2013(csv, split="PublicTest", landmarks=out)  # one file serves every split
    assert ds.landmarks.shape == (2, 68, 2)


def test_limit_and_errors(tmp_path, capsys) -> None:
    csv = _csv(tmp_path / "fer2013.csv")
    out = tmp_path / "lm.npz"
    assert _annotate(csv, out, "--limit", "2", "--no-second-pass") == 0
    assert np.load(out)["valid"].shape == (2,)
    with pytest.raises(ValueError, match="has 2 images but the data source has 5"):
        FER2013(csv, landmarks=out)
    (tmp_path / "x.txt").write_text("x")
    assert main(["annotate", str(tmp_path / "x.txt"), "-o", str(out)]) == 2
    assert "cannot tell the data source" in capsys.readouterr().err


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mtl_heads", "annotate", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--upsample" in result.stdout and "300-W" in result.stdout

"""examples/fer2013.py and examples/tfd.py end to end on tiny files of the real layouts, in-process
through their ``main(argv)``."""

from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from file_modules import load

FAST = ["--", "--batch-size", "8", "--eval-batch-size", "64", "--checkpoint-every", "0"]


def run(script: str, *args: str) -> SimpleNamespace:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = load(f"examples/{script}").main(list(args))
    return SimpleNamespace(returncode=code, stdout=out.getvalue())


@pytest.mark.slow
def test_tfd_table_on_a_generated_mat(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    from mtl_heads.datasets import SyntheticFaces, image_fingerprint, save_landmarks

    n = 50
    faces = SyntheticFaces(n, seed=7)
    # TFD layout: labs_ex 1..7 (-1 unlabelled), folds N x 5 with 0 unlabelled/1 train/2 valid/3 test
    labs = faces.labels + 1
    labs[-5:] = -1
    folds = np.zeros((n, 5), np.int64)
    for f in range(5):
        order = np.roll(np.arange(n - 5), 9 * f)
        folds[order[:30], f], folds[order[30:37], f], folds[order[37:], f] = 1, 2, 3
    mat = tmp_path / "TFD_48x48.mat"
    scipy_io.savemat(mat, {"images": faces.images, "labs_ex": labs[:, None],
                           "labs_id": np.arange(n)[:, None], "folds": folds})
    lm = tmp_path / "tfd_landmarks.npz"
    save_landmarks(lm, faces.landmarks, faces.landmarks_valid,
                   fingerprint=image_fingerprint(faces.images), source="test")

    out = tmp_path / "tfd"
    res = run("tfd.py", "--data", str(mat), "--landmarks", str(lm), "--folds", "0", "1",
              "--epochs", "1", "--variants", "2", "--output", str(out), "--quiet", *FAST)
    assert res.returncode == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["accuracy"]) == {"valid", "test"}
    assert all(len(v) == 2 for split in results["accuracy"].values() for v in split.values())
    table = (out / "table.md").read_text()
    assert "| valid |" in table and "85.72 ± 1.28" in table and "(n=2)" in table
    final = json.loads((out / "fer_convnet" / "fold1" / "aux" / "final.json").read_text())
    assert final["val"]["n"] == 7 and final["test"]["test"]["n"] == 8
    assert final["samples_seen"] == 60  # 30 train images x 2 variants x 1 epoch
    # a rerun reuses the finished runs
    again = run("tfd.py", "--data", str(mat), "--landmarks", str(lm), "--folds", "0", "1",
                "--epochs", "1", "--variants", "2", "--output", str(out), "--quiet", *FAST)
    assert again.returncode == 0 and again.stdout.count("reusing") == 6  # 3 models x 2 folds
    # ... but not a finished run made with other options
    with pytest.raises(ValueError, match="holds a finished run with other options") as err:
        run("tfd.py", "--data", str(mat), "--landmarks", str(lm), "--folds", "0",
            "--epochs", "2", "--variants", "2", "--output", str(out), "--quiet", *FAST,
            "--lr", "0.5")
    assert "'lr': (0.01, 0.5)" in str(err.value) and "'epochs': (1, 2)" in str(err.value)


@pytest.mark.slow
def test_fer2013_table_on_a_tiny_csv(tmp_path):
    from mtl_heads.datasets import SyntheticFaces, image_fingerprint, save_landmarks

    faces = SyntheticFaces(70, seed=3)
    usage = ["Training"] * 50 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    csv = tmp_path / "fer2013.csv"
    with open(csv, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, label, use in zip(faces.images, faces.labels, usage, strict=True):
            f.write(f"{label},{' '.join(map(str, img.ravel().tolist()))},{use}\n")
    lm = tmp_path / "lm.npz"
    save_landmarks(lm, faces.landmarks, faces.landmarks_valid,
                   fingerprint=image_fingerprint(faces.images), source="test")
    out = tmp_path / "table1"
    res = run("fer2013.py", "--data", str(csv), "--landmarks", str(lm), "--cells", "none",
              "--epochs", "1", "--output", str(out), "--quiet", *FAST)
    assert res.returncode == 0
    table = (out / "table.md").read_text()
    for heading in ("## PublicTest", "## PrivateTest", "## PublicTest + PrivateTest"):
        assert heading in table
    assert "63.71 ± 0.63" in table  # the paper's row beside ours
    results = json.loads((out / "results.json").read_text())
    assert set(results["table"]["test"]["none"]) == {"baseline", "paper", "aux", "paper_gain",
                                                     "aux_gain"}
    assert (out / "curves_none.png").stat().st_size > 0
    assert (out / "label_maps.png").stat().st_size > 0

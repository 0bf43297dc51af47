"""The bundled-model plumbing: write_bundle from a run trained here, the default model of
predict/export, timm's pretrained config. The package path is monkeypatched to a temp dir: no
weight file is ever written into the package."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from trained_runs import write_run

import mtl_heads.pretrained as pretrained
from mtl_heads.checkpoint import load_trained
from mtl_heads.cli import main
from mtl_heads.datasets import SyntheticFaces
from mtl_heads.predict import classify_faces, predict
from mtl_heads.preprocessing import PaperPreprocessing
from mtl_heads.pretrained.bundle import (
    MAX_BUNDLE_BYTES,
    model_card,
    read_bundle_info,
    write_bundle,
)

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[2]
COMMAND = "python examples/train.py --data synthetic --backbone fer_convnet --seed 3"


def _train_run(folder: Path, steps: int) -> tuple[Path, np.ndarray, np.ndarray]:
    """A fer_convnet run trained here for ``steps`` steps, in train.py's layout
    (best.safetensors, args.json, final.json); returns the run and its training faces and
    labels.

    Adam fits 64 SyntheticFaces in 30 full-batch steps (5-20 s on a CPU), so the model gives
    confident, correct answers on them: what float16 must preserve."""
    write_run(folder, backbone="fer_convnet", label_maps=3, head="spatial", seed=3)
    train = SyntheticFaces(64, seed=0)
    images, labels = torch.from_numpy(train.images)[:, None], torch.from_numpy(train.labels)
    model, pre = load_trained(folder).model, PaperPreprocessing(crop=42).fit(images)
    pre(images)  # train mode: fixes the minibatch statistics, as a first training batch does
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        model.train()
        pre.train()  # the minibatch statistics follow training, as in train.py
        loss = torch.nn.functional.cross_entropy(model(pre(images))["logits"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    best = folder / "best.safetensors"
    with safe_open(str(best), "pt") as f:
        metadata = f.metadata()
    tensors = {"model." + k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update({"pre." + k: v.contiguous() for k, v in pre.state_dict().items()})
    save_file(tensors, str(best), metadata=metadata)
    trained = load_trained(folder)
    with torch.no_grad():
        centre = trained.model.deploy()(trained.preprocessing(images)).argmax(1)
    acc = float((centre == labels).float().mean())
    probs, _ = classify_faces(trained, train.images)  # 10 views: mirrored ones were not trained
    acc_tta = float((probs.argmax(1) == train.labels).mean())
    args = json.loads((folder / "args.json").read_text())
    (folder / "args.json").write_text(json.dumps(dict(args, seed=3, split_seed=0)))
    final = {"data": "SyntheticFaces (synthetic)", "classes": trained.classes, "epochs_run": steps,
             "selected": {"by": "last epoch", "epoch": steps},
             "test": {"Training": {"n": len(train), "acc": acc, "acc_tta": acc_tta,
                                   "per_class_acc": [acc] * 7, "confusion": [[0]]}}}
    (folder / "final.json").write_text(json.dumps(final))
    return folder, train.images, train.labels


# every test runs on a random-weights run (fast); with --runslow also on a trained one
@pytest.fixture(scope="module", params=["random", pytest.param("trained", marks=pytest.mark.slow)])
def run(request, tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    steps = 30 if request.param == "trained" else 0
    return _train_run(tmp_path_factory.mktemp(request.param) / "run", steps)


@pytest.fixture(scope="module")
def bundle(run, tmp_path_factory) -> Path:
    folder, faces, labels = run
    out = tmp_path_factory.mktemp("pretrained") / "fer_convnet.fer2013.safetensors"
    return write_bundle(folder, out, command=COMMAND, evaluate={"Training": (faces, labels)})


@pytest.fixture
def bundled(bundle, monkeypatch) -> Path:
    """The package's bundled-model path (and timm's config of it) pointed at ``bundle``."""
    _point_package_at(bundle, monkeypatch)
    return bundle


def _point_package_at(path: Path, monkeypatch) -> None:
    from timm.models import _registry

    monkeypatch.setattr(pretrained, "FER2013_WEIGHTS", path)
    cfgs = _registry._model_pretrained_cfgs
    for name in ("fer_convnet", "fer_convnet.fer2013"):  # the default entry and the tagged one
        monkeypatch.setitem(cfgs, name, dataclasses.replace(cfgs[name], file=str(path)))


def test_the_trained_run_learned(run) -> None:
    folder, faces, labels = run
    final = json.loads((folder / "final.json").read_text())
    if not final["epochs_run"]:
        pytest.skip("the random-weights run is not trained")
    acc = final["test"]["Training"]["acc"]
    assert acc > 0.8  # chance is 1/7: the bundle below carries a model that learned its faces


def test_bundle_is_small_float16_and_predicts_like_the_run(run, bundle) -> None:
    folder, faces, labels = run
    assert bundle.stat().st_size <= MAX_BUNDLE_BYTES  # fer_convnet: 5.08 M params -> ~10 MB
    with safe_open(str(bundle), "pt") as f:
        dtypes = {k: f.get_tensor(k).dtype for k in f.keys()}
    assert {d for k, d in dtypes.items() if k.startswith("model.")} == {torch.float16}
    assert {d for k, d in dtypes.items() if k.startswith("pre.")} == {torch.float32}
    assert not any(k.startswith("model.label_map_head.") for k in dtypes)  # deployed only
    run_model, half = load_trained(folder), load_trained(bundle)
    assert half.classes == run_model.classes and half.num_label_maps == 0
    p32, _ = classify_faces(run_model, faces)
    p16, maps = classify_faces(half, faces)
    assert maps is None
    np.testing.assert_allclose(p16, p32, atol=5e-3)
    assert (p16.argmax(1) == p32.argmax(1)).mean() >= 0.98


def test_metadata_and_model_card(run, bundle) -> None:
    folder, faces, labels = run
    info = read_bundle_info(bundle)
    final = json.loads((folder / "final.json").read_text())
    assert info["command"] == COMMAND and info["seeds"] == {"seed": 3, "split_seed": 0}
    assert info["accuracy"]["Training"]["acc"] == final["test"]["Training"]["acc"]
    assert "confusion" not in info["accuracy"]["Training"]
    assert info["source"]["sha256"] == hashlib.sha256(
        (folder / "best.safetensors").read_bytes()).hexdigest()
    check = info["float16_check"]["Training"]
    p16, _ = classify_faces(load_trained(bundle), faces)
    assert check["n"] == len(faces) and check["max_abs_prob_diff"] < 5e-3
    assert check["acc_tta_float16"] == pytest.approx(float((p16.argmax(1) == labels).mean()))
    card = bundle.with_suffix(".md").read_text()
    assert card == model_card(info, bundle.name)  # the card renders again from the file
    acc = final["test"]["Training"]["acc"]
    assert f"| Training | 64 | {100 * acc:.2f} % |" in card
    assert COMMAND in card and info["source"]["sha256"] in card and "$" not in card
    assert "SyntheticFaces" in card and "Research use only" not in card


def test_card_of_a_fer2013_run_says_research_use_only() -> None:
    info = {"data": "FER2013 /data/fer2013.csv", "trained_with_label_maps": 3,
            "args": {"data": "/data/fer2013.csv", "landmarks": "/data/lm.npz"}}
    card = model_card(info, "x.safetensors")
    assert "**Research use only**: trained on FER2013 and dlib's 68-point model" in card
    assert "300-W" in card and "Goodfellow" in card


def test_label_map_head_kept_on_request(run, tmp_path) -> None:
    folder, faces, _ = run
    out = write_bundle(folder, tmp_path / "with_head.safetensors", label_map_head=True)
    p32, m32 = classify_faces(load_trained(folder), faces[:8])
    p16, m16 = classify_faces(load_trained(out), faces[:8])
    assert m16 is not None and m16.shape == m32.shape == (8, 3, 42, 42)
    np.testing.assert_allclose(m16, m32, atol=1e-2)


def test_write_bundle_errors(run, tmp_path) -> None:
    folder, _, _ = run
    with pytest.raises(ValueError, match="a bundle is a .safetensors file"):
        write_bundle(folder, tmp_path / "model.pt")
    out = tmp_path / "big.safetensors"
    with pytest.raises(ValueError, match=r"big\.safetensors: the bundle of fer_convnet is 10\.\d+ "
                                         r"MB, above the 0\.00 MB limit"):
        write_bundle(folder, out, max_bytes=1000)
    assert not out.exists()
    baseline = write_run(tmp_path / "baseline", backbone="test_resnet", label_maps=0)
    with pytest.raises(ValueError, match="label_map_head=True, but the run has no label-map"):
        write_bundle(baseline, tmp_path / "b.safetensors", label_map_head=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        write_bundle(tmp_path / "nothing", tmp_path / "c.safetensors")
    with pytest.raises(ValueError, match=r"evaluate\['x'\]: faces must be \(N, 48, 48\)"):
        write_bundle(folder, tmp_path / "d.safetensors", evaluate={"x": (np.zeros((2, 42, 42)),
                                                                          None)})
    with pytest.raises(ValueError, match=r"evaluate\['x'\]: labels must be \(2,\)"):
        write_bundle(folder, tmp_path / "d.safetensors", evaluate={"x": (np.zeros((2, 48, 48)),
                                                                          np.zeros(3))})
    assert not (tmp_path / "d.safetensors").exists()  # checked before anything is written


def test_predict_and_export_default_to_the_bundled_model(bundled, run, tmp_path, capsys) -> None:
    _, faces, _ = run
    crops = tmp_path / "crops"
    crops.mkdir()
    for i in range(3):
        Image.fromarray(faces[i]).save(crops / f"{i}.png")
    results, trained = predict(crops, detect=False)
    assert trained.path == bundled
    expected, _ = classify_faces(load_trained(bundled), faces[:3])
    np.testing.assert_allclose(np.stack([r.faces[0].probs for r in results]), expected,
                               atol=1e-6)
    assert main(["predict", str(crops), "--no-detect"]) == 0
    captured = capsys.readouterr()
    assert f"model: {bundled} (bundled with mtl-heads; research use only" in captured.err
    assert len(captured.out.splitlines()) == 3

    out = tmp_path / "exported.safetensors"
    assert main(["export", "--format", "safetensors", "-o", str(out)]) == 0
    from mtl_heads.export import DeployedClassifier

    net = DeployedClassifier.from_safetensors(out)
    assert net.classes == trained.classes
    with torch.no_grad():
        centre = net(torch.from_numpy(faces[:3])[:, None].float())
    assert centre.shape == (3, 7) and torch.allclose(centre.sum(1), torch.ones(3))


def test_timm_pretrained_loads_the_bundled_file(bundled) -> None:
    model = timm.create_model("fer_convnet", pretrained=True).eval()
    assert model.pretrained_cfg["tag"] == "fer2013"
    with safe_open(str(bundled), "pt") as f:
        for k, v in model.state_dict().items():
            assert torch.equal(v, f.get_tensor("model.backbone." + k).float()), k
    x = torch.randn(2, 1, 42, 42)
    assert torch.equal(model(x), load_trained(bundled).model.deploy()(x))


def test_missing_bundled_model_says_what_to_do(tmp_path, monkeypatch, capsys) -> None:
    missing = tmp_path / "fer_convnet.fer2013.safetensors"
    _point_package_at(missing, monkeypatch)
    image = tmp_path / "face.png"
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(image)
    assert main(["predict", str(image), "--no-detect"]) == 2
    err = capsys.readouterr().err
    assert f"{missing} is missing" in err and "`mtl-heads train`" in err
    assert "mtl-heads predict IMAGE --checkpoint RUN_FOLDER" in err
    assert main(["export", "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "mtl-heads export RUN_FOLDER --format onnx" in capsys.readouterr().err
    with pytest.raises(pretrained.MissingWeightsError, match="No pretrained weights exist for "
                       "fer_convnet.fer2013 in this installation") as caught:
        timm.create_model("fer_convnet", pretrained=True)
    # timm callers catch RuntimeError, file code catches FileNotFoundError: both work
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, FileNotFoundError)
    assert "pretrained_cfg_overlay=dict(file=" in str(caught.value)
    with pytest.raises(FileNotFoundError, match=r"No pretrained weights exist at .*other\.pth"):
        timm.create_model("fer_convnet", pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(tmp_path / "other.pth")))


def test_the_package_names_and_ships_the_file() -> None:
    from timm.models import get_pretrained_cfg

    assert pretrained.FER2013_WEIGHTS.parent == Path(pretrained.__file__).parent
    assert get_pretrained_cfg("fer_convnet.fer2013").file == str(pretrained.FER2013_WEIGHTS)
    assert timm.create_model("fer_convnet").pretrained_cfg["tag"] == "fer2013"  # the default
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config["package-data"]["mtl_heads.pretrained"]
    assert "*.safetensors" in data and "*.md" in data

from __future__ import annotations

import numpy as np
import pytest
import torch
from trained_runs import write_run

from mtl_heads.augmentation import center_crop
from mtl_heads.checkpoint import load_trained
from mtl_heads.cli import main
from mtl_heads.export import DeployedClassifier, export_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("run") / "run", backbone="fer_convnet", head="linear")


def _random_faces() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (16, 1, 48, 48), generator=gen).float()


def _real_faces(npz) -> torch.Tensor:
    with np.load(npz, allow_pickle=False) as data:
        rows = np.flatnonzero(data["split"] == "PublicTest")[:64]
        return torch.from_numpy(data["images"][rows][:, None]).float()


def _eager(run, faces: torch.Tensor) -> torch.Tensor:
    trained = load_trained(run)
    with torch.no_grad():
        x = trained.preprocessing.standardize(faces)
        x = trained.preprocessing.normalize_batch(center_crop(x, trained.crop))
        return trained.model(x)["logits"].softmax(-1)


def test_folded_preprocessing_is_the_eval_pipeline(run) -> None:
    faces = _random_faces()
    net = DeployedClassifier.from_trained(load_trained(run))
    with torch.no_grad():
        assert torch.allclose(net(faces), _eager(run, faces), atol=1e-6, rtol=0)
        assert torch.equal(net(faces.to(torch.uint8)), net(faces))


def _check_onnx(run, tmp_path, faces: torch.Tensor) -> None:
    ort = pytest.importorskip("onnxruntime")
    file = export_model(run, tmp_path / "model.onnx", "onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # weights inside, no sidecar
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    eager = _eager(run, faces).numpy()
    for batch in (faces, faces[:3]):  # the batch dimension is dynamic
        out = session.run(None, {"faces": batch.numpy()})[0]
        np.testing.assert_allclose(out, eager[: len(batch)], atol=1e-5, rtol=0)


def _check_torchscript(run, tmp_path, faces: torch.Tensor) -> None:
    file = export_model(run, tmp_path / "model.pt", "torchscript")
    scripted = torch.jit.load(str(file))
    eager = _eager(run, faces)
    with torch.no_grad():
        for batch in (faces, faces[:3]):
            torch.testing.assert_close(scripted(batch), eager[: len(batch)], atol=1e-5, rtol=0)


def test_onnx_equals_eager(run, tmp_path) -> None:
    _check_onnx(run, tmp_path, _random_faces())


def test_torchscript_equals_eager(run, tmp_path) -> None:
    _check_torchscript(run, tmp_path, _random_faces())


@pytest.mark.realdata
def test_onnx_equals_eager_on_real_faces(run, tmp_path, fer2013_npz) -> None:
    _check_onnx(run, tmp_path, _real_faces(fer2013_npz))


@pytest.mark.realdata
def test_torchscript_equals_eager_on_real_faces(run, tmp_path, fer2013_npz) -> None:
    _check_torchscript(run, tmp_path, _real_faces(fer2013_npz))


def test_safetensors_export_rebuilds_and_loads_in_timm(run, tmp_path) -> None:
    import timm

    file = export_model(run, tmp_path / "model.safetensors", "safetensors")
    faces = _random_faces()
    net = DeployedClassifier.from_safetensors(file)
    assert net.classes == load_trained(run).classes
    with torch.no_grad():
        torch.testing.assert_close(net(faces), _eager(run, faces), atol=1e-6, rtol=0)
    plain = timm.create_model("fer_convnet", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(file))).eval()
    x = torch.randn(2, 1, 42, 42)
    assert torch.equal(plain(x), load_trained(run).model.deploy()(x))


def test_cli_export(run, tmp_path, capsys) -> None:
    out = tmp_path / "m.pt"
    assert main(["export", str(run), "--format", "torchscript", "-o", str(out)]) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["export", str(bad), "--format", "onnx", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "bad.safetensors: not a safetensors checkpoint" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown export format 'tflite'"):
        export_model(run, tmp_path / "x", "tflite")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_tta_export_equals_predict_probabilities(run, tmp_path, fmt) -> None:
    from mtl_heads.predict import classify_faces

    faces = _random_faces()
    expected, _ = classify_faces(load_trained(run), faces.to(torch.uint8).numpy())
    file = export_model(run, tmp_path / f"tta.{fmt}", fmt, tta=True)
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        got = session.run(None, {"faces": faces.numpy()})[0]
    else:
        with torch.no_grad():
            got = torch.jit.load(str(file))(faces).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_safetensors_export_of_a_vit(tmp_path) -> None:
    # train.py passes no patch_size: test_vit's 16 px patches need a crop that 16 divides
    run = write_run(tmp_path / "vit", backbone="test_vit", crop=48)
    file = export_model(run, tmp_path / "vit.safetensors", "safetensors")
    faces = _random_faces()
    with torch.no_grad():
        torch.testing.assert_close(DeployedClassifier.from_safetensors(file)(faces),
                                   _eager(run, faces), atol=1e-6, rtol=0)

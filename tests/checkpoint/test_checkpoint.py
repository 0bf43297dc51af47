from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from trained_runs import CLASSES, write_run

from mtl_heads.checkpoint import load_trained, resolve_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_run_folder_rebuilds_model_and_preprocessing(tmp_path) -> None:
    run = write_run(tmp_path / "run")
    trained = load_trained(run)
    assert trained.path == run / "best.safetensors"  # the file train.py selects
    assert trained.classes == CLASSES
    assert (trained.backbone, trained.crop, trained.image_size, trained.label_maps) == (
        "test_resnet", 42, 48, 3)
    assert not trained.model.training and not trained.preprocessing.training
    from safetensors.torch import load_file

    saved = load_file(str(run / "last.safetensors"))
    for k, v in trained.model.state_dict().items():
        assert torch.equal(v, saved["model." + k]), k
    running_var = trained.preprocessing.minibatch.running_var
    assert torch.equal(running_var, saved["pre.minibatch.running_var"])


def test_best_file_without_args_json_reads_last(tmp_path) -> None:
    run = write_run(tmp_path / "run", final_json=False)
    (run / "args.json").unlink()
    trained = load_trained(run / "best.safetensors")
    assert trained.backbone == "test_resnet"
    assert trained.classes == CLASSES  # from the run's data ("synthetic")
    (run / "last.safetensors").unlink()
    with pytest.raises(ValueError, match="best.safetensors: the checkpoint does not hold"):
        load_trained(run / "best.safetensors")


def test_bad_checkpoints_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_trained(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="no checkpoint in this folder"):
        resolve_checkpoint(tmp_path)
    text = tmp_path / "notes.safetensors"
    text.write_text("not tensors at all")
    with pytest.raises(ValueError, match=r"notes\.safetensors: not a safetensors checkpoint"):
        load_trained(text)
    pickle = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(2)}, pickle)
    with pytest.raises(ValueError, match=r"model\.pth: not a safetensors checkpoint"):
        load_trained(pickle)
    plain = tmp_path / "deploy.safetensors"
    save_file({"fc.weight": torch.zeros(7, 4)}, str(plain))
    with pytest.raises(ValueError, match="deploy.safetensors: no 'mtl_heads_train'.*timm"):
        load_trained(plain)


def test_other_architecture_or_class_count(tmp_path) -> None:
    run = write_run(tmp_path / "run")
    with pytest.raises(ValueError, match="a test_resnet checkpoint, expected fer_convnet"):
        load_trained(run, backbone="fer_convnet")
    with pytest.raises(ValueError, match="a 7-class checkpoint, expected 5 classes"):
        load_trained(run, num_classes=5)
    # options that name one backbone over the weights of another
    args = json.loads((run / "args.json").read_text())
    (run / "args.json").write_text(json.dumps(dict(args, backbone="resnet10t")))
    with pytest.raises(ValueError, match="best.safetensors: the weights do not fit a resnet10t"):
        load_trained(run)


def test_timm_loads_a_fer_convnet_run(tmp_path) -> None:
    run = write_run(tmp_path / "run", backbone="fer_convnet", head="linear")
    trained = load_trained(run)
    x = torch.randn(2, 1, 42, 42)
    for name in ("best.safetensors", "last.safetensors"):
        model = timm.create_model("fer_convnet", pretrained=True,
                                  pretrained_cfg_overlay=dict(file=str(run / name))).eval()
        assert torch.equal(model(x), trained.model.deploy()(x)), name


def test_timm_refuses_other_weights_for_fer_convnet(tmp_path) -> None:
    run = write_run(tmp_path / "resnet")
    with pytest.raises(ValueError, match="not a fer_convnet's.*another backbone"):
        timm.create_model("fer_convnet", pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(run / "best.safetensors")))
    run5 = write_run(tmp_path / "five", backbone="fer_convnet", num_classes=5)
    with pytest.raises(ValueError, match="a 5-class checkpoint; pass num_classes=5"):
        timm.create_model("fer_convnet", pretrained=True,
                          pretrained_cfg_overlay=dict(file=str(run5 / "best.safetensors")))
    model = timm.create_model("fer_convnet", pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=dict(file=str(run5 / "best.safetensors"),
                                                          num_classes=5)).eval()
    x = torch.randn(1, 1, 42, 42)
    assert torch.equal(model(x), load_trained(run5).model.deploy()(x))


def test_timm_loads_any_backbone_from_the_deploy_file(tmp_path) -> None:
    from mtl_heads.export import export_model

    run = write_run(tmp_path / "run", backbone="resnet10t")
    file = export_model(run, tmp_path / "resnet10t.safetensors", "safetensors")
    model = timm.create_model("resnet10t", pretrained=True, num_classes=7, in_chans=1,
                              pretrained_cfg_overlay=dict(file=str(file), num_classes=7)).eval()
    x = torch.randn(2, 1, 42, 42)
    assert torch.equal(model(x), load_trained(run).model.deploy()(x))


@pytest.mark.slow
def test_a_real_training_run_loads(tmp_path) -> None:
    from mtl_heads.train import main as train_main

    out = tmp_path / "run"
    assert train_main(["--data", "synthetic", "--synthetic-train", "96", "--synthetic-test", "32",
                       "--backbone", "test_resnet", "--epochs", "1", "--batch-size", "32",
                       "--val-fraction", "0.25", "--quiet", "--output", str(out)]) == 0
    trained = load_trained(out)
    final = json.loads((out / "final.json").read_text())
    assert trained.classes == final["classes"]
    deploy = timm.create_model("test_resnet", pretrained=True, num_classes=len(final["classes"]),
                               in_chans=1, pretrained_cfg_overlay=dict(
                                   file=str(out / "deploy.safetensors"),
                                   num_classes=len(final["classes"]))).eval()
    x = torch.randn(2, 1, 42, 42)
    assert torch.equal(deploy(x), trained.model.deploy()(x))

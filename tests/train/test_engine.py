"""End-to-end tests of the training engine (``mtl-heads train``) on tiny SyntheticFaces runs.

The engine and the scripts are run in-process through their ``main(argv)``; only the kill /
resume and torchrun tests start processes, since a process boundary is what they test.
"""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from file_modules import load

import mtl_heads.train as engine
from mtl_heads.augmentation import center_crop, sample_parameters
from mtl_heads.checkpoint import load_trained
from mtl_heads.preprocessing import PaperPreprocessing

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic", "--synthetic-train", "160", "--synthetic-test", "64",
        "--batch-size", "32", "--eval-batch-size", "64", "--quiet"]
TIMING = ("epoch_time", "samples_per_s", "train_time_s", "eval_time_s")


def call_main(main, *args: str) -> SimpleNamespace:
    """``main(argv)``, in this process, with its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
            if not isinstance(exit_.code, int | None):
                print(exit_.code, file=err)
    return SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


def script(relative: str):
    """The ``main`` of a script file (e.g. ``"scripts/sweeps/gradient_share.py"``)."""
    return load(relative).main


def run(*args: str) -> SimpleNamespace:
    """``mtl-heads train`` in this process."""
    return call_main(engine.main, *args)


def run_process(*args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    """``python -m mtl_heads train`` in a process of its own (for kills and torchrun; torchrun
    takes ``-m`` as its module flag)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = (launcher or [sys.executable]) + ["-m", "mtl_heads", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(obj):
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def write_fer_csv(path: Path, images: np.ndarray, labels: np.ndarray, usage: list[str]) -> None:
    with open(path, "w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, label, use in zip(images, labels, usage, strict=True):
            f.write(f"{label},{' '.join(map(str, img.ravel().tolist()))},{use}\n")


@pytest.fixture(scope="module")
def tiny_fer(tmp_path_factory):
    """A fer2013.csv of 60 synthetic faces and its landmark file, plus a file for other images."""
    from mtl_heads.datasets import SyntheticFaces, image_fingerprint, save_landmarks

    root = tmp_path_factory.mktemp("fer")
    faces = SyntheticFaces(60, seed=3)
    usage = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    write_fer_csv(root / "fer2013.csv", faces.images, faces.labels, usage)
    save_landmarks(root / "landmarks.npz", faces.landmarks, faces.landmarks_valid,
                   fingerprint=image_fingerprint(faces.images), source="test")
    other = SyntheticFaces(60, seed=4)
    save_landmarks(root / "other.npz", other.landmarks, other.landmarks_valid,
                   fingerprint=image_fingerprint(other.images), source="other images")
    return root


@pytest.mark.slow
def test_end_to_end_multitask(tmp_path):
    out = tmp_path / "mt"
    res = run(*TINY, "--label-maps", "3", "--epochs", "4", "--lr", "0.05", "--drop-rate", "0",
              "--tta", "--output", str(out))
    assert res.returncode == 0, res.stderr
    history = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,")
    final = json.loads((out / "final.json").read_text())
    test = final["test"]["test"]
    assert test["n"] == 64 and sum(map(sum, test["confusion"])) == 64
    assert 0.0 <= test["acc"] <= 1.0 and 0.0 <= test["acc_tta"] <= 1.0
    assert set(test["iou"]) == {"left_brow", "right_brow", "mouth"}
    assert final["samples_seen"] == 4 * history[0]["samples"]
    assert "outputs written to" in res.stdout
    # the shipped classifier is a plain timm fer_convnet checkpoint
    import timm

    import mtl_heads  # noqa: F401

    plain = timm.create_model("fer_convnet", num_classes=7)
    plain.load_state_dict(tensors(out / "deploy.safetensors"))


@pytest.mark.slow
def test_head_init_prior_starts_from_the_pixel_prior(tmp_path):
    first_loss, finals = {}, {}
    for init in ("default", "prior"):
        out = tmp_path / init
        res = run(*TINY, "--label-maps", "3", "--epochs", "1", "--head-init", init,
                  "--output", str(out))
        assert res.returncode == 0, res.stderr
        first_loss[init] = read_jsonl(out / "metrics.jsonl")[0]["train_label_maps"]
        finals[init] = json.loads((out / "final.json").read_text())
    # default: every unit starts at p = 0.5 and the head hardly moves in 5 steps (ln 2 = 0.693);
    # prior: the loss starts near the entropy of the thin brow/mouth maps
    assert first_loss["default"] > 0.6
    assert first_loss["prior"] < 0.3
    # the face-blind reference depends on the data only, not on the model
    ref = [f["test"]["test"]["iou_prior"] for f in finals.values()]
    assert ref[0] == ref[1] and set(ref[0]) == {"left_brow", "right_brow", "mouth"}
    # scripts/sweeps/label_map_prior_iou.py gives the same number without training
    prior_iou = call_main(script("scripts/sweeps/label_map_prior_iou.py"), *TINY)
    assert prior_iou.returncode == 0, prior_iou.stderr
    line = next(x for x in prior_iou.stdout.splitlines() if x.startswith("test:"))
    assert f"prior IoU mean {finals['prior']['test']['test']['iou_prior_mean']:.3f}" in line


@pytest.mark.slow
def test_gradient_share_scales_with_lambda(tmp_path):
    # scripts/sweeps/gradient_share.py splits the trunk gradient into CE and lambda * C_l: at the
    # initial weights (same seed, same batches, same dropout draws) doubling lambda doubles the
    # label-map norm and leaves the CE norm and the cosine as they were.
    out = tmp_path / "mt"
    res = run(*TINY, "--label-maps", "3", "--epochs", "1", "--output", str(out))
    assert res.returncode == 0, res.stderr
    saved = json.loads((out / "args.json").read_text())
    (tmp_path / "mt2").mkdir()
    (tmp_path / "mt2" / "args.json").write_text(json.dumps({**saved, "lam": 2 * saved["lam"]}))
    pattern = re.compile(r"norm CE (\S+), label maps (\S+), ratio maps/CE \S+, cosine (\S+)")

    def gradient_share(run_dir: Path, *extra: str) -> SimpleNamespace:
        return call_main(script("scripts/sweeps/gradient_share.py"), str(run_dir), *extra)

    found = []
    for run_dir in (out, tmp_path / "mt2"):
        share = gradient_share(run_dir, "--weights", "init", "--batches", "2")
        assert share.returncode == 0, share.stderr
        found.append([float(v) for v in pattern.search(share.stdout).groups()])
    (ce1, maps1, cos1), (ce2, maps2, cos2) = found
    assert maps1 > 0 and ce2 == pytest.approx(ce1, rel=1e-3) and cos2 == pytest.approx(cos1)
    assert maps2 == pytest.approx(2 * maps1, rel=1e-3)
    # a baseline run has no label-map loss to split
    base = tmp_path / "base"
    base.mkdir()
    (base / "args.json").write_text(json.dumps({**saved, "label_maps": 0}))
    share = gradient_share(base)
    assert share.returncode != 0 and "baseline run (--label-maps 0)" in share.stderr


@pytest.mark.slow
def test_head_option_is_ignored_by_the_baseline(tmp_path):
    # a baseline/multi-task pair may share one command: --head is ignored without maps
    out = tmp_path / "base"
    res = run(*TINY, "--backbone", "test_resnet", "--head", "spatial", "--label-maps", "0",
              "--epochs", "1", "--output", str(out))
    assert res.returncode == 0, res.stderr
    keys = tensors(out / "best.safetensors")
    assert any(k.startswith("model.backbone.") for k in keys)
    assert not any(".label_map_head." in k for k in keys)


@pytest.mark.slow
def test_baseline_on_fer2013_csv(tmp_path, tiny_fer):
    out = tmp_path / "fer"
    res = run("--data", str(tiny_fer / "fer2013.csv"), "--label-maps", "0", "--epochs", "1",
              "--batch-size", "8", "--val-fraction", "0.2", "--quiet", "--output", str(out))
    assert res.returncode == 0, res.stderr
    final = json.loads((out / "final.json").read_text())
    assert {k: v["n"] for k, v in final["test"].items()} == {
        "PublicTest": 10, "PrivateTest": 10, "test": 20}
    assert final["val"]["n"] == 8 and final["samples_seen"] == 32


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(tmp_path):
    # 160 faces -> 144 train (10 % validation) -> 5 steps of ~29 per epoch; checkpoints every 2.
    common = [*TINY, "--label-maps", "3", "--epochs", "2", "--checkpoint-every", "2",
              "--seed", "5"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_process(*common, "--output", str(full)).returncode == 0
    res = run_process(*common, "--output", str(killed), "--stop-after-steps", "3")
    assert res.returncode == 0 and "stopping after 3 steps" in res.stdout
    assert not (killed / "final.json").exists()
    res = run_process(*common, "--output", str(killed), "--resume")
    assert res.returncode == 0, res.stderr
    assert "resumed from" in res.stdout and "epoch 0 step 2" in res.stdout

    for name in ("deploy.safetensors", "best.safetensors", "last.safetensors"):
        a, b = tensors(full / name), tensors(killed / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    assert without_timing(read_jsonl(full / "metrics.jsonl")) == without_timing(
        read_jsonl(killed / "metrics.jsonl"))
    assert without_timing(json.loads((full / "final.json").read_text())) == without_timing(
        json.loads((killed / "final.json").read_text()))


@pytest.mark.slow
def test_resume_rejects_other_options(tmp_path):
    out = tmp_path / "run"
    assert run(*TINY, "--label-maps", "0", "--epochs", "1", "--output", str(out)).returncode == 0
    res = run(*TINY, "--label-maps", "0", "--epochs", "1", "--lr", "0.5", "--output", str(out),
              "--resume")
    assert res.returncode == 2 and "other options" in res.stderr and "'lr'" in res.stderr


def test_resume_names_other_preprocessing_before_loading(tmp_path):
    # the checkpoint's tensors would not even fit a pipeline without the per-image and
    # minibatch steps: the options are compared first, and the message names them
    out = tmp_path / "run"
    assert run(*TINY, "--label-maps", "0", "--epochs", "1", "--output", str(out)).returncode == 0
    res = run(*TINY, "--label-maps", "0", "--epochs", "1", "--preprocessing", "standard",
              "--output", str(out), "--resume")
    assert res.returncode == 2 and "other options" in res.stderr
    assert "'preprocessing': ('paper', 'standard')" in res.stderr


def test_random_crops_and_standard_preprocessing_train_and_load(tmp_path):
    out = tmp_path / "run"
    res = run(*TINY, "--label-maps", "3", "--epochs", "1", "--augment", "crop",
              "--preprocessing", "standard", "--channels-last", "--output", str(out))
    assert res.returncode == 0, res.stderr
    args = json.loads((out / "args.json").read_text())
    assert (args["augment"], args["preprocessing"], args["channels_last"]) == (
        "crop", "standard", True)
    trained = load_trained(out)
    assert isinstance(trained.preprocessing.per_image, torch.nn.Identity)
    assert isinstance(trained.preprocessing.minibatch, torch.nn.Identity)
    raw = torch.randint(0, 256, (2, 1, 48, 48), dtype=torch.uint8)
    assert trained.model.deploy()(trained.preprocessing(raw)).shape == (2, 7)


@pytest.mark.slow
def test_torchrun_two_processes_sees_each_sample_once(tmp_path):
    common = [*TINY, "--label-maps", "3", "--epochs", "2", "--batch-size", "30"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_process(*common, "--output", str(one)).returncode == 0
    res = run_process(*common, "--output", str(two), launcher=[
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    assert res.returncode == 0, res.stderr
    f1, f2 = (json.loads((d / "final.json").read_text()) for d in (one, two))
    assert f2["world_size"] == 2 and f1["world_size"] == 1
    # every training sample once per epoch, over both processes together
    h1, h2 = read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")
    assert [r["samples"] for r in h2] == [r["samples"] for r in h1] == [144, 144]
    # evaluation counts are summed over the processes' shards
    assert f2["val"]["n"] == f1["val"]["n"] == 16
    assert f2["test"]["test"]["n"] == 64 and sum(map(sum, f2["test"]["test"]["confusion"])) == 64
    # the same data, augmentation and initial weights: the first epoch's loss agrees closely
    # (not bit for bit: dropout masks and minibatch statistics are per process)
    assert h2[0]["train_ce"] == pytest.approx(h1[0]["train_ce"], rel=0.05)


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message(tmp_path):
    out = tmp_path / "nan"
    res = run(*TINY, "--label-maps", "0", "--epochs", "2", "--lr", "1e30",
              "--checkpoint-every", "1", "--output", str(out))
    assert res.returncode == 3
    assert "loss is not finite at epoch 1, step" in res.stderr
    assert not (out / "final.json").exists()
    if (out / "last.safetensors").exists():  # the last good checkpoint is kept, and loads
        assert all(torch.isfinite(t).all() for t in tensors(out / "last.safetensors").values()
                   if t.is_floating_point())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "no/such/fer2013.csv"], "no such file or folder"),
        (["--backbone", "resnet_18"], "unknown timm model"),
        (["--batch-size", "1000"], "larger than the training set"),
        (["--landmarks", "no/such.npz"], "--landmarks no/such.npz: no such file"),
    ],
)
def test_bad_input_errors(tmp_path, capsys, extra, message):
    args = ["--data", "synthetic", "--synthetic-train", "64", "--synthetic-test", "16",
            "--epochs", "1", "--quiet", "--output", str(tmp_path / "out"), *extra]
    assert engine.main(args) == 2
    assert message in capsys.readouterr().err


def test_label_maps_need_landmarks(tmp_path, capsys, tiny_fer):
    args = ["--data", str(tiny_fer / "fer2013.csv"), "--label-maps", "3", "--output",
            str(tmp_path / "out")]
    assert engine.main(args) == 2
    assert "--label-maps 3 needs landmarks" in capsys.readouterr().err


def test_landmark_file_of_another_data_set(tmp_path, capsys, tiny_fer):
    args = ["--data", str(tiny_fer / "fer2013.csv"), "--landmarks", str(tiny_fer / "other.npz"),
            "--output", str(tmp_path / "out")]
    assert engine.main(args) == 2
    assert "does not match the data source" in capsys.readouterr().err


def test_epoch_batches_cover_each_sample_once_per_variant():
    args = engine.build_parser().parse_args(
        ["--data", "synthetic", "--output", "x", "--batch-size", "32", "--variants-per-epoch", "3"])
    batches = engine.epoch_batches(100, args, epoch=2)
    counts = torch.bincount(torch.cat(batches), minlength=100)
    assert (counts == 3).all()
    sizes = [len(b) for b in batches]
    assert len(batches) == 10 and max(sizes) - min(sizes) <= 1
    again = engine.epoch_batches(100, args, epoch=2)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    assert not torch.equal(torch.cat(batches), torch.cat(engine.epoch_batches(100, args, epoch=3)))


def _ferplus_csv(path: Path) -> Path:
    from mtl_heads.datasets.fer2013 import FERPLUS_COLUMNS

    usage = ["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
    with open(path, "w") as f:
        f.write("Usage,Image name," + ",".join(FERPLUS_COLUMNS) + "\n")
        for i, use in enumerate(usage):
            votes = [0] * 10
            votes[i % 8] = 10  # every class, contempt included
            if i % 5 == 4:
                votes = [4, 4, 0, 0, 0, 0, 0, 0, 0, 2]  # no majority: FER+ drops the image
            f.write(f"{use},fer{i:07d}.png," + ",".join(map(str, votes)) + "\n")
    return path


def test_ferplus_labels_and_dropped_images(tmp_path, capsys, tiny_fer):
    fp = _ferplus_csv(tmp_path / "fer2013new.csv")
    out = tmp_path / "out"
    args = ["--data", str(tiny_fer / "fer2013.csv"), "--ferplus", str(fp), "--label-maps", "0",
            "--epochs", "1", "--batch-size", "8", "--val-fraction", "0", "--quiet",
            "--output", str(out)]
    assert engine.main(args) == 0, capsys.readouterr().err
    final = json.loads((out / "final.json").read_text())
    assert {k: v["n"] for k, v in final["test"].items()} == {
        "PublicTest": 8, "PrivateTest": 8, "test": 16}
    assert final["samples_seen"] == 32  # 40 Training rows, 8 dropped
    model = tensors(out / "last.safetensors")
    assert any(t.shape[0] == 8 for k, t in model.items() if k.endswith("bias"))  # 8 classes


def test_ferplus_bad_options(tmp_path, capsys, tiny_fer):
    fp = _ferplus_csv(tmp_path / "fer2013new.csv")
    soft = ["--data", str(tiny_fer / "fer2013.csv"), "--ferplus", str(fp), "--ferplus-mode",
            "crossentropy", "--label-maps", "0", "--output", str(tmp_path / "soft")]
    assert engine.main(soft) == 2
    assert "soft labels are not supported" in capsys.readouterr().err
    other = ["--data", "synthetic", "--ferplus", str(fp), "--output", str(tmp_path / "x")]
    assert engine.main(other) == 2
    assert "--ferplus labels FER2013 rows" in capsys.readouterr().err
    missing = ["--data", str(tiny_fer / "fer2013.csv"), "--ferplus", "no/such.csv",
               "--label-maps", "0", "--output", str(tmp_path / "y")]
    assert engine.main(missing) == 2
    assert "--ferplus no/such.csv: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("label_maps", [0, 3])
def test_evaluation_scores_a_union_from_its_parts(tiny_fer, label_maps):
    """The final evaluation runs each image once: the union ``test`` split is scored from
    PublicTest's and PrivateTest's sums, and the centre crop of a 10-crop pass is the centre view;
    both must give exactly what scoring each split on its own gives."""
    args = engine.build_parser().parse_args([
        "--data", str(tiny_fer / "fer2013.csv"), "--landmarks", str(tiny_fer / "landmarks.npz"),
        "--label-maps", str(label_maps), "--tta", "--eval-batch-size", "40", "--output", "-"])
    data = engine.load_data(args)
    assert data.unions == {"test": ("PublicTest", "PrivateTest")}
    torch.manual_seed(0)
    model = engine.build_model(args, 1, len(data.classes)).eval()
    pre = PaperPreprocessing(channels=1, size=48, crop=42).fit(data.train.images)
    pre.normalize_batch(center_crop(pre.standardize(data.train.images.float()), 42))
    prior = engine.training_prior(data.train, args) if label_maps else None
    ctx, cpu = engine.Dist(), torch.device("cpu")
    fast = engine.evaluate_tests(model, pre, data, args, cpu, ctx, prior=prior)
    for name, split in data.tests.items():
        alone = engine.validate(model, pre, split, args, len(data.classes), ctx, tta=True,
                               prior=prior)
        assert fast[name].keys() == alone.keys()
        for key, value in alone.items():
            if key == "loss":
                assert fast[name][key] == pytest.approx(value, rel=1e-6)
            elif key.startswith("confusion"):
                assert fast[name][key] == value, (name, key)
            else:
                assert fast[name][key] == pytest.approx(value), (name, key)
    assert fast["test"]["n"] == 20 and ("iou" in fast["test"]) == bool(label_maps)
    # the centre-crop logits taken from the 10-crop forward equal a centre-crop forward of their own
    args.tta = False
    plain = engine.validate(model, pre, data.tests["PublicTest"], args, len(data.classes), ctx)
    assert plain["confusion"] == fast["PublicTest"]["confusion"]
    assert plain["loss"] == pytest.approx(fast["PublicTest"]["loss"], rel=1e-5)


def test_find_unions_needs_the_same_rows(tiny_fer):
    a = engine.Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
    b = engine.Split(torch.ones(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([2, 3, 4]))
    both = engine.Split(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]))
    assert engine.find_unions({"a": a, "b": b, "ab": both}) == {"ab": ("a", "b")}
    shuffled = engine.Split(both.images.flip(0), both.labels.flip(0))
    assert engine.find_unions({"a": a, "b": b, "ab": shuffled}) == {}


def test_predrawn_maps_equal_maps_drawn_from_the_augmented_landmarks():
    """Integer crops and mirroring of the maps drawn once at load time give the targets that
    drawing from the cropped/mirrored landmarks gives (the per-step path)."""
    from mtl_heads.datasets import SyntheticFaces
    from mtl_heads.landmarks import landmarks_to_label_maps

    split = engine.Split.from_dataset(SyntheticFaces(48, seed=5, invalid_fraction=0.1))
    stored = engine.predraw_label_maps(split)
    assert stored.dtype == torch.uint8 and stored.shape == (48, 3, 48, 48)
    args = engine.build_parser().parse_args(
        ["--data", "synthetic", "--augment", "flip-shift", "--output", "-"])
    aug = engine.build_augmentation(args)
    images = split.images.float()
    params = sample_parameters(aug, images.shape, torch.Generator().manual_seed(0))
    flips = params[0].data["flip"]
    assert flips.any() and not flips.all()
    _, warped = aug(images, stored.float() / engine.MAP_LEVELS, data_keys=["input", "mask"],
                    params=params)
    _, landmarks = aug(images, split.landmarks, data_keys=["input", "keypoints"], params=params)
    drawn = landmarks_to_label_maps(landmarks, 42, valid=split.valid)
    assert warped.shape == drawn.shape == (48, 3, 42, 42)
    assert drawn.sum() > 0
    torch.testing.assert_close(warped, drawn, rtol=0, atol=0)


@pytest.mark.slow
def test_label_map_sources_train_alike(tmp_path):
    """Both label-map sources train the same model without augmentation (equal targets)."""
    finals = {}
    for source in ("predrawn", "landmarks"):
        out = tmp_path / source
        res = run(*TINY, "--label-maps", "3", "--epochs", "1", "--label-map-source", source,
                  "--output", str(out))
        assert res.returncode == 0, res.stderr
        finals[source] = without_timing(json.loads((out / "final.json").read_text()))
    assert finals["predrawn"] == finals["landmarks"]


def test_runs_before_label_map_source_count_as_what_they_did():
    def legacy(saved):
        return engine.legacy_options({"precision": "float32", **saved})

    assert legacy({"augment": "full"}) == {"label_map_source": "landmarks"}
    assert legacy({"augment": "flip-shift"}) == {"label_map_source": "predrawn"}  # equal targets
    assert legacy({"augment": "full", "label_map_source": "predrawn"}) == {}


def test_runs_before_precision_count_as_what_they_did():
    assert engine.legacy_options({"label_map_source": "predrawn", "amp": True}) == {
        "precision": "bfloat16"}
    assert engine.legacy_options({"label_map_source": "predrawn", "amp": False}) == {
        "precision": "float32"}
    assert engine.saved_options({"label_map_source": "predrawn"})["precision"] == "float32"

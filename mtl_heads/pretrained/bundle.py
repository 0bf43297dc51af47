"""Bundles: what inference needs of a training run, in one small file, with a model card.

:func:`write_bundle` reduces the folder of a training run (``mtl-heads train``) to

- ``OUTPUT.safetensors``: the deployed classifier (``model.backbone.*``, the plain timm model) in
  float16, optionally the label-map head (``model.label_map_head.*``, float16, so that
  ``mtl-heads predict --save-overlay`` can draw brows and mouths), and the fitted
  :class:`~mtl_heads.preprocessing.PaperPreprocessing` (``pre.*``, float32: 2 x H x W values).
  The layout and the ``mtl_heads_train`` metadata (the options the model is rebuilt from, the
  class names) are those of the run's checkpoints, so every reader of a checkpoint reads a
  bundle: :func:`~mtl_heads.checkpoint.load_trained`, ``mtl-heads predict --checkpoint``,
  ``mtl-heads export`` and ``timm.create_model(..., pretrained=True)`` with the file in its
  pretrained config. The ``mtl_heads_bundle`` metadata holds the provenance: data, options,
  command, seeds, selected epoch, accuracies, source file and its hash.
- ``OUTPUT.md``: the model card, :data:`MODEL_CARD_TEMPLATE` filled from that metadata
  (:func:`model_card` renders it again from a bundle).

A fer_convnet bundle (5.08 M parameters) is about 10 MB; :func:`write_bundle` refuses to leave a
file above ``max_bytes`` (12 MB by default), the size the package can carry.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import METADATA_KEY, TrainedModel, load_trained, read_safetensors

__all__ = ["BUNDLE_KEY", "MAX_BUNDLE_BYTES", "MODEL_CARD_TEMPLATE", "write_bundle",
           "read_bundle_info", "model_card"]

BUNDLE_KEY = "mtl_heads_bundle"
BUNDLE_FORMAT = 1
MAX_BUNDLE_BYTES = 12_000_000
MODEL_CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _half(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    # integer buffers (e.g. BatchNorm's num_batches_tracked) keep their type
    return {
        prefix + k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in tensors.items()
    }


def _accuracies(final: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The validation and test results of final.json, without the confusion matrices."""
    splits = {"validation": final.get("val")} | dict(final.get("test") or {})
    keep = ("n", "acc", "acc_tta", "per_class_acc", "per_class_acc_tta")
    return {name: {k: res[k] for k in keep if k in res}
            for name, res in splits.items() if isinstance(res, Mapping) and "acc" in res}


def _float16_check(
    full: TrainedModel, half: TrainedModel, faces: np.ndarray, labels: np.ndarray | None
) -> dict[str, Any]:
    """How far the float16 file's 10-view probabilities are from the run's float32 ones."""
    from ..predict import classify_faces

    p32, _ = classify_faces(full, faces)
    p16, _ = classify_faces(half, faces)
    out: dict[str, Any] = {
        "n": len(faces),
        "max_abs_prob_diff": float(np.abs(p32 - p16).max()) if len(faces) else 0.0,
        "same_top1": float((p32.argmax(1) == p16.argmax(1)).mean()) if len(faces) else 1.0,
    }
    if labels is not None:
        labels = np.asarray(labels)
        out["acc_tta_float32"] = float((p32.argmax(1) == labels).mean())
        out["acc_tta_float16"] = float((p16.argmax(1) == labels).mean())
    return out


def write_bundle(
    run: str | os.PathLike,
    output: str | os.PathLike,
    *,
    name: str = "fer_convnet.fer2013",
    command: str | None = None,
    label_map_head: bool = False,
    evaluate: Mapping[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
    max_bytes: int | None = MAX_BUNDLE_BYTES,
) -> Path:
    """Write the bundle of a finished training run and its model card.

    Args:
        run: a training run folder (its selected ``best.safetensors``, else
            ``last.safetensors``, with ``args.json`` and ``final.json``) or a checkpoint file.
        output: the ``.safetensors`` file to write; the card goes beside it with ``.md``.
        name: the model's name in the card (the timm name with its pretrained tag).
        command: the command line that trained the run (a run folder does not record it).
        label_map_head: keep the label-map head as well (a multi-task run only).
        evaluate: named sets of stored-size grey faces ``{"PublicTest": (faces, labels)}``
            (uint8 (N, S, S); labels may be ``None``) on which to compare the float16 file with
            the run's float32 weights (10 views): largest probability difference, top-1
            agreement, and accuracy when labels are given. Recorded in the metadata and card.
        max_bytes: the largest file to leave (``None``: any); a larger one is removed.

    Returns:
        The path of the bundle.

    Raises:
        FileNotFoundError: no checkpoint in ``run``.
        ValueError: a bad checkpoint, ``label_map_head`` for a run without one, an ``output``
            that is not ``.safetensors``, or a bundle above ``max_bytes`` (the message gives its
            size).
    """
    from safetensors.torch import save_file

    import mtl_heads

    output = Path(output)
    if output.suffix != ".safetensors":
        raise ValueError(f"{output}: a bundle is a .safetensors file")
    trained = load_trained(run)
    folder = trained.path.parent
    final_file = folder / "final.json"
    final = json.loads(final_file.read_text()) if final_file.is_file() else {}
    run_args = dict(trained.args)
    # the run option's name: today's first, then the one older runs saved
    map_keys = [k for k in ("num_label_maps", "label_maps") if k in run_args] or ["label_maps"]
    num_maps = int(run_args.get(map_keys[0]) or 0)
    if label_map_head and not num_maps:
        raise ValueError(f"{trained.path}: label_map_head=True, but the run has no label-map head")
    size = trained.image_size
    for split, (faces, labels) in (evaluate or {}).items():
        shape = np.shape(faces)
        if len(shape) != 3 or shape[1:] != (size, size):
            raise ValueError(f"evaluate[{split!r}]: faces must be (N, {size}, {size}), got {shape}")
        if labels is not None and np.shape(labels) != (shape[0],):
            raise ValueError(f"evaluate[{split!r}]: labels must be ({shape[0]},), got "
                             f"{np.shape(labels)}")

    model = trained.model
    if label_map_head:
        tensors = _half(model.state_dict(), "model.")
    else:
        tensors = _half(model.deploy().state_dict(), "model.backbone.")
    tensors.update({"pre." + k: v.detach().float().cpu().contiguous()
                    for k, v in trained.preprocessing.state_dict().items()})
    # what the file rebuilds: without the head it is a baseline model of the same backbone
    load_args = dict(run_args)
    if not label_map_head:
        load_args.update(dict.fromkeys(map_keys, 0), head=None)
    parameters = sum(v.numel() for k, v in tensors.items()
                     if k.startswith("model.") and v.is_floating_point())
    info: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "name": name,
        "architecture": trained.backbone,
        "classes": trained.classes,
        "parameters": parameters,
        "dtype": "float16",
        "label_map_head": bool(label_map_head),
        "trained_with_label_maps": num_maps,
        "image_size": size,
        "crop": trained.crop,
        "norm": float(trained.preprocessing.norm),
        "data": final.get("data", str(run_args.get("data", ""))),
        "args": run_args,
        "command": command,
        "seeds": {k: run_args[k] for k in ("seed", "split_seed") if k in run_args},
        "selected": final.get("selected"),
        "epochs_run": final.get("epochs_run"),
        "accuracy": _accuracies(final),
        "source": {"run": str(folder), "checkpoint": trained.path.name,
                   "sha256": _sha256(trained.path)},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mtl_heads_version": mtl_heads.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "timm_version": _timm_version(),
    }
    train_meta = {"state": {"args": load_args, "epoch": (final.get("selected") or {}).get(
        "epoch")}, "classes": trained.classes}
    output.parent.mkdir(parents=True, exist_ok=True)
    metadata = {METADATA_KEY: json.dumps(train_meta), BUNDLE_KEY: json.dumps(info)}
    save_file(tensors, str(output), metadata=metadata)
    nbytes = output.stat().st_size
    if max_bytes is not None and nbytes > max_bytes:
        output.unlink()
        raise ValueError(
            f"{output}: the bundle of {trained.backbone} is {nbytes / 1e6:.2f} MB, above the "
            f"{max_bytes / 1e6:.2f} MB limit (max_bytes=None writes it anyway)"
        )
    if evaluate:
        half = load_trained(output)
        info["float16_check"] = {
            split: _float16_check(trained, half, np.asarray(faces), labels)
            for split, (faces, labels) in evaluate.items()
        }
        metadata[BUNDLE_KEY] = json.dumps(info)
        save_file(tensors, str(output), metadata=metadata)
    info["size_bytes"] = output.stat().st_size
    output.with_suffix(".md").write_text(model_card(info, output.name))
    return output


def _timm_version() -> str:
    import timm

    return str(timm.__version__)


def read_bundle_info(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance a bundle carries (``mtl_heads_bundle`` metadata).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, or not a bundle (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bundle at {path}")
    _, metadata = read_safetensors(path, "bundle", "expected a file written by write_bundle")
    if BUNDLE_KEY not in metadata:
        raise ValueError(f"{path}: no {BUNDLE_KEY!r} metadata, so not a bundle of write_bundle")
    info = dict(json.loads(metadata[BUNDLE_KEY]))
    info["size_bytes"] = path.stat().st_size
    return info


def _percent(x: Any) -> str:
    return f"{100 * x:.2f} %" if isinstance(x, (int, float)) else "-"


def _cell(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def _licences(info: Mapping[str, Any]) -> tuple[str, str]:
    """The restriction line and the licence list, from the data and the landmarks used."""
    args = info.get("args", {})
    data = f"{info.get('data', '')} {args.get('data', '')}".lower()
    items = ["- Code: Apache-2.0 (mtl-heads)."]
    restricted = []
    if "fer2013" in data or "fer+" in data:
        restricted.append("FER2013")
        items.append(
            "- Training images: FER2013 (Goodfellow et al., ICML 2013 Challenges in "
            "Representation Learning; faces collected from web image search, distributed through "
            "Kaggle for the challenge): for research use; no licence grants other uses."
        )
    elif str(args.get("data", "")) == "synthetic":
        items.append("- Training images: mtl-heads' SyntheticFaces (drawn by the package; no "
                     "third-party data).")
    else:
        items.append(f"- Training images: `{args.get('data', '?')}`: check that data set's "
                     "licence.")
    if info.get("trained_with_label_maps") and args.get("landmarks"):
        restricted.append("dlib's 68-point model")
        items.append(
            "- Landmarks behind the label maps (`mtl-heads annotate`): dlib's "
            "`shape_predictor_68_face_landmarks.dat` (face-recognition-models), trained on "
            "iBUG 300-W, licensed for research use only (no commercial use)."
        )
    items.append("- `mtl-heads predict` finds and frames faces with dlib's 68-point model (300-W, "
                 "research use only); `--no-detect` does not use it.")
    if restricted:
        items.append("- These weights inherit the restrictions above: research use only.")
        line = (f"**Research use only**: trained on {' and '.join(restricted)} data "
                "(see Licences).")
    else:
        line = "See Licences for the data behind these weights."
    return line, "\n".join(items)


def model_card(info: Mapping[str, Any], file_name: str | None = None) -> str:
    """The markdown model card of a bundle, :data:`MODEL_CARD_TEMPLATE` filled from its
    provenance (:func:`read_bundle_info`)."""
    args = dict(info.get("args", {}))
    classes = list(info.get("classes", []))
    acc = dict(info.get("accuracy", {}))
    rows = [f"| {split} | {res.get('n', '-')} | {_percent(res.get('acc'))} | "
            f"{_percent(res.get('acc_tta'))} |" for split, res in acc.items()]
    per_class = ""
    tests = [s for s in acc if s != "validation" and "per_class_acc" in acc[s]]
    if tests and classes:
        split = tests[0]
        res = acc[split]
        tta = res.get("per_class_acc_tta") or [None] * len(classes)
        per_class = "\n".join(
            [f"Per class on {split} (recall):", "", "| class | centre crop | 10 views |",
             "|---|---|---|"]
            + [f"| {c} | {_percent(a)} | {_percent(t)} |"
               for c, a, t in zip(classes, res["per_class_acc"], tta, strict=False)]
        )
    check = info.get("float16_check") or {}
    if check:
        lines = ["Float16 file against the run's float32 weights (10 views, measured when the "
                 "bundle was written):", "",
                 "| faces | largest probability difference | same top class | accuracy float16 "
                 "| accuracy float32 |", "|---|---|---|---|---|"]
        for split, res in check.items():
            lines.append(f"| {split}: {res['n']} | {res['max_abs_prob_diff']:.2e} | "
                         f"{_percent(res['same_top1'])} | {_percent(res.get('acc_tta_float16'))} "
                         f"| {_percent(res.get('acc_tta_float32'))} |")
        float16 = "\n".join(lines)
    else:
        float16 = ("The float16 file was not compared with the float32 run when it was written "
                   "(`write_bundle(..., evaluate=...)` does).")
    selected = info.get("selected") or {}
    selected_text = "Epochs and the selected epoch: not recorded (final.json lacks them)."
    if info.get("epochs_run"):
        selected_text = (f"{info['epochs_run']} epochs run; the weights of epoch "
                         f"{selected.get('epoch', '?')} "
                         f"({selected.get('by', 'selection not recorded')}).")
    seeds = ", ".join(f"`{k}` {v}" for k, v in (info.get("seeds") or {}).items()) or "not recorded"
    maps = int(info.get("trained_with_label_maps") or 0)
    trained_with = (f"with {maps} auxiliary landmark label maps (DeVries et al. 2014)"
                    if maps else "without auxiliary label maps")
    head_note = ("label-map head included, float16" if info.get("label_map_head")
                 else "label-map head dropped: no inference cost")
    data = str(info.get("data", "")) or "not recorded"
    subset, val = args.get("train_subset"), args.get("val_fraction")
    data_text = f"{data}."
    if subset not in (None, 1, 1.0):
        data_text += f" Trained on a {_percent(subset)} subset of the training split."
    if val:
        data_text += (f" A {_percent(val)} slice of the training split (split seed "
                      f"{args.get('split_seed', '?')}) was held out for validation, to select "
                      "the epoch.")
    restriction, licences = _licences(info)
    source = info.get("source", {})
    values = {
        "name": info.get("name", "model"),
        "architecture": info.get("architecture", "?"),
        "trained_with": trained_with,
        "num_classes": len(classes),
        "classes": ", ".join(classes),
        "restriction": restriction,
        "file_name": file_name or "?",
        "size_mb": f"{info.get('size_bytes', 0) / 1e6:.2f}",
        "parameters": f"{int(info.get('parameters', 0)):,}",
        "head_note": head_note,
        "image_size": info.get("image_size", "?"),
        "crop": info.get("crop", "?"),
        "norm": info.get("norm", "?"),
        "created": info.get("created", "?"),
        "mtl_heads_version": info.get("mtl_heads_version", "?"),
        "torch_version": info.get("torch_version", "?"),
        "timm_version": info.get("timm_version", "?"),
        "source_checkpoint": source.get("checkpoint", "?"),
        "source_run": source.get("run", "?"),
        "source_sha256": source.get("sha256", "?"),
        "data_description": data_text,
        "selected": selected_text,
        "command": info.get("command") or "# not recorded: the options below are the run's",
        "seeds": seeds,
        "options_table": "\n".join(f"| `{k}` | `{_cell(v)}` |" for k, v in sorted(args.items())),
        "accuracy_table": "\n".join(rows) or "| (no results recorded) | | | |",
        "per_class_table": per_class,
        "float16_section": float16,
        "licences": licences,
    }
    text = string.Template(MODEL_CARD_TEMPLATE.read_text()).substitute(values)
    # empty optional sections leave runs of blank lines
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text

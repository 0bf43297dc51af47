"""Load what ``mtl-heads train`` wrote: the trained model and its fitted preprocessing.

A run folder holds ``last.safetensors`` (every epoch), ``best.safetensors`` (best validation
accuracy, when the run had a validation split), ``args.json`` and ``final.json`` (class names,
results). Each checkpoint is one safetensors file with ``model.``, ``pre.`` and ``loss.`` prefixed
tensors (plus ``optim.`` ones) and JSON in ``metadata["mtl_heads_train"]``; ``last.safetensors``
carries the run's options in its ``["state"]["args"]``, ``best.safetensors`` only the weights, so
for it they come from ``args.json`` or ``last.safetensors`` beside it.
:func:`load_trained` rebuilds the :class:`~mtl_heads.MultiTaskModel` and the
:class:`~mtl_heads.preprocessing.PaperPreprocessing` from these; nothing here imports
``examples/``. A bundle (:mod:`mtl_heads.pretrained.bundle`, the package's own trained model) is
such a checkpoint reduced to the ``model.`` (float16) and ``pre.`` tensors, with the options and
the class names in the same metadata: :func:`load_trained` reads it as it reads a checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._deprecation import warn_renamed
from .models.multitask import MultiTaskModel, create_model
from .preprocessing import PREPROCESSING, PaperPreprocessing

__all__ = ["TrainedModel", "load_trained", "resolve_checkpoint", "read_checkpoint"]

METADATA_KEY = "mtl_heads_train"
# the run option holding the map count: today's name, then the one older runs saved
_NUM_LABEL_MAPS_KEYS = ("num_label_maps", "label_maps")
# preferred file of a run folder first: the model train.py selects for its final evaluation
RUN_FILES = ("best.safetensors", "last.safetensors")


@dataclass
class TrainedModel:
    """A trained multi-task model with the preprocessing fitted in its run.

    Attributes:
        model: the :class:`~mtl_heads.MultiTaskModel`, in eval mode.
        preprocessing: the fitted :class:`~mtl_heads.preprocessing.PaperPreprocessing`, eval mode.
        classes: class names, in logit order.
        args: the ``mtl-heads train`` options of the run.
        path: the checkpoint file read.
    """

    model: MultiTaskModel
    preprocessing: PaperPreprocessing
    classes: list[str]
    args: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()

    @property
    def backbone(self) -> str:
        """The timm model name of the classifier."""
        return str(self.args["backbone"])

    @property
    def image_size(self) -> int:
        """The stored face size the preprocessing is fitted at (48 for FER2013)."""
        return int(self.preprocessing.per_pixel.mean.shape[-1])

    @property
    def crop(self) -> int:
        """The size the network sees (the 10 test views are crops of this size)."""
        return int(self.args.get("crop") or self.image_size)

    @property
    def in_chans(self) -> int:
        return int(self.preprocessing.per_pixel.mean.shape[0])

    @property
    def num_label_maps(self) -> int:
        """The number of label maps the model predicts (0: the baseline)."""
        return self.model.num_label_maps

    @property
    def label_maps(self) -> int:
        """Deprecated: :attr:`num_label_maps`."""
        warn_renamed("TrainedModel.label_maps", "num_label_maps", stacklevel=3)
        return self.num_label_maps


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file of a run folder (``best.safetensors``, else ``last.safetensors``), or
    ``path`` itself when it is a file.

    Raises:
        FileNotFoundError: no such path, or a folder without either file.
    """
    path = Path(path)
    if path.is_dir():
        for name in RUN_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path}: no checkpoint in this folder (expected one of {list(RUN_FILES)}, "
            "written by mtl-heads train)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def read_safetensors(
    path: Path, what: str, expected: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the string metadata of a safetensors file.

    Raises:
        ValueError: the file is not a safetensors ``what``; the message names it and says what
            was ``expected``.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a safetensors {what} ({err}); {expected}") from err


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the ``mtl_heads_train`` metadata of a train.py checkpoint file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not safetensors, or carries no ``mtl_heads_train`` metadata (the
            message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    tensors, metadata = read_safetensors(
        path,
        "checkpoint",
        "expected a file written by mtl-heads train (last.safetensors / best.safetensors)",
    )
    if METADATA_KEY not in metadata:
        hint = (
            " (a plain timm state dict such as deploy.safetensors: load it with timm.create_model)"
            if tensors and not any(k.startswith("model.") for k in tensors)
            else ""
        )
        raise ValueError(
            f"{path}: no {METADATA_KEY!r} metadata, so not a checkpoint written by "
            f"mtl-heads train{hint}"
        )
    try:
        meta = json.loads(metadata[METADATA_KEY])
        state = meta["state"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: unreadable {METADATA_KEY!r} metadata ({err})") from err
    if "args" not in state:
        state["args"] = _run_args(path)
    args = state["args"]
    if "backbone" not in args:
        raise ValueError(f"{path}: the run's options lack 'backbone'")
    if not any(key in args for key in _NUM_LABEL_MAPS_KEYS):
        raise ValueError(f"{path}: the run's options lack 'num_label_maps' (or 'label_maps')")
    return tensors, meta


def _run_args(path: Path) -> dict[str, Any]:
    """The run options of a checkpoint that does not carry them (train.py's ``best.safetensors``
    holds weights only): the run folder's ``args.json``, else its ``last.safetensors``."""
    from safetensors import safe_open

    args_file = path.parent / "args.json"
    if args_file.is_file():
        return dict(json.loads(args_file.read_text()))
    last = path.parent / "last.safetensors"
    if last.is_file() and last != path:
        with safe_open(str(last), "pt") as f:
            meta = json.loads((f.metadata() or {}).get(METADATA_KEY, "{}"))
        if "args" in meta.get("state", {}):
            return dict(meta["state"]["args"])
    raise ValueError(
        f"{path}: the checkpoint does not hold the run's options, and neither args.json nor "
        f"last.safetensors is beside it in {path.parent}"
    )


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _classifier_shape(backbone: nn.Module, state: dict[str, torch.Tensor]) -> torch.Size | None:
    names = (getattr(backbone, "pretrained_cfg", None) or {}).get("classifier")
    for name in [names] if isinstance(names, str) else list(names or []):
        # "backbone.model.": a backbone behind an input resize (ResizedClassifier)
        for prefix in ("backbone.", "backbone.model."):
            weight = state.get(f"{prefix}{name}.weight")
            if weight is not None:
                return weight.shape
    return None


def _class_names(path: Path, args: dict[str, Any], num_classes: int) -> list[str]:
    final = path.parent / "final.json"
    if final.is_file():
        try:
            classes = json.loads(final.read_text()).get("classes")
        except json.JSONDecodeError:
            classes = None
        if isinstance(classes, list) and len(classes) == num_classes:
            return [str(c) for c in classes]
    from .datasets.fer2013 import FER2013_CLASSES, FERPLUS_CLASSES
    from .datasets.synthetic import SYNTHETIC_CLASSES
    from .datasets.tfd import TFD_CLASSES

    data = str(args.get("data", ""))
    known = []
    if data == "synthetic":
        known = list(SYNTHETIC_CLASSES)
    elif args.get("ferplus"):
        known = list(FERPLUS_CLASSES)
    elif data.lower().endswith(".csv") or Path(data, "train").is_dir():
        known = list(FER2013_CLASSES)
    elif data.lower().endswith(".mat"):
        known = list(TFD_CLASSES)
    elif Path(data).is_dir():
        known = sorted(p.name for p in Path(data).iterdir() if p.is_dir() and p.name[0] != ".")
    if len(known) == num_classes:
        return known
    return [f"class {i}" for i in range(num_classes)]


def load_trained(
    path: str | os.PathLike,
    *,
    backbone: str | None = None,
    num_classes: int | None = None,
    map_location: str | torch.device = "cpu",
) -> TrainedModel:
    """Rebuild the model and the preprocessing of a ``mtl-heads train`` run.

    Args:
        path: a run folder (``best.safetensors`` is read when present, else ``last.safetensors``)
            or one checkpoint file.
        backbone: the timm model name the caller expects (``None``: any).
        num_classes: the class count the caller expects (``None``: any).
        map_location: the device to load on.

    Returns:
        The :class:`TrainedModel` (model and preprocessing in eval mode).

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not a train.py safetensors checkpoint, another architecture or class count
            than expected, or tensors that do not fit the architecture the run names (the message
            names the file).

    Examples:
        >>> load_trained("no/such/run")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no checkpoint at no/such/run
    """
    file = resolve_checkpoint(path)
    tensors, meta = read_checkpoint(file)
    args = dict(meta["state"]["args"])
    name = str(args["backbone"])
    if backbone is not None and backbone != name:
        raise ValueError(f"{file}: a {name} checkpoint, expected {backbone}")
    model_state = _part(tensors, "model.")
    pre_state = _part(tensors, "pre.")
    if "per_pixel.mean" not in pre_state:
        raise ValueError(f"{file}: no fitted preprocessing ('pre.per_pixel.mean' is missing)")
    mean = pre_state["per_pixel.mean"]
    in_chans, size = int(mean.shape[0]), tuple(int(s) for s in mean.shape[1:])
    crop = args.get("crop")
    pre = PaperPreprocessing(channels=in_chans, size=size, crop=crop,
                             **PREPROCESSING[args.get("preprocessing", "paper")])
    try:
        pre.load_state_dict(pre_state)
    except RuntimeError as err:
        raise ValueError(f"{file}: the preprocessing tensors do not load: {err}") from err

    num_label_maps = int(next(args[k] for k in _NUM_LABEL_MAPS_KEYS if k in args))
    head = args.get("head") if num_label_maps else None
    # a run whose backbone does not fit its crop resized its inputs (create_model's option)
    resize_input = bool(args.get("resize_input", False))
    # build once with a placeholder class count to find the classifier's width in the file
    probe = create_model(name, num_classes=1, in_chans=in_chans, img_size=crop,
                         num_label_maps=0, resize_input=resize_input)
    shape = _classifier_shape(probe.backbone, model_state)
    if shape is None:
        raise ValueError(
            f"{file}: no classifier weights of a {name} in the checkpoint (is it the checkpoint "
            "of another architecture?)"
        )
    found = int(shape[0])
    if num_classes is not None and num_classes != found:
        raise ValueError(f"{file}: a {found}-class checkpoint, expected {num_classes} classes")
    model = create_model(name, num_classes=found, in_chans=in_chans, img_size=crop,
                         num_label_maps=num_label_maps, head=head, resize_input=resize_input)
    try:
        model.load_state_dict(model_state)
    except RuntimeError as err:
        raise ValueError(f"{file}: the weights do not fit a {name} ({err})") from err
    # a bundle (mtl_heads.pretrained.bundle) carries its class names: no final.json beside it
    stored = meta.get("classes")
    if stored is not None and (not isinstance(stored, list) or len(stored) != found):
        raise ValueError(f"{file}: the stored class names {stored!r} do not fit {found} classes")
    classes = [str(c) for c in stored] if stored is not None else _class_names(file, args, found)
    model.eval().to(map_location)
    pre.eval().to(map_location)
    return TrainedModel(model, pre, classes, args, file)

"""Checkpoints in mtl-heads train's format, made in-process in a fraction of a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import mtl_heads
from mtl_heads.preprocessing import PaperPreprocessing

CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def write_run(
    folder: Path,
    backbone: str = "test_resnet",
    label_maps: int = 3,
    num_classes: int = 7,
    final_json: bool = True,
    seed: int = 0,
    crop: int = 42,
    **model_kwargs: Any,
) -> Path:
    """A run folder like train.py's: last.safetensors (model., pre., loss. tensors, the options
    in metadata), best.safetensors (weights only), args.json and final.json."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model = mtl_heads.create_model(backbone, num_classes=num_classes, in_chans=1, img_size=crop,
                                   num_label_maps=label_maps, **model_kwargs)
    images = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    pre = PaperPreprocessing(crop=crop).fit(images)
    pre.normalize_batch(pre(images))  # train mode: fixes the batch statistics
    loss = mtl_heads.MaskedMultiTaskLoss(1.0)
    tensors = {}
    for prefix, module in (("model.", model), ("pre.", pre), ("loss.", loss)):
        tensors.update({prefix + k: v.contiguous() for k, v in module.state_dict().items()})
    args = {"data": "synthetic", "backbone": backbone, "label_maps": label_maps,
            "head": model.head_kind, "image_size": 48, "crop": crop}
    save_file(tensors, str(folder / "last.safetensors"),
              metadata={"mtl_heads_train": json.dumps({"state": {"epoch": 1, "args": args}})})
    save_file(tensors, str(folder / "best.safetensors"),
              metadata={"mtl_heads_train": json.dumps({"state": {"epoch": 1}})})
    (folder / "args.json").write_text(json.dumps(args))
    if final_json:
        names = CLASSES if num_classes == 7 else [f"c{i}" for i in range(num_classes)]
        (folder / "final.json").write_text(json.dumps({"classes": names}))
    return folder

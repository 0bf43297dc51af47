"""Training checkpoints: the run's tensors as safetensors, its state and options as JSON metadata.

``last.safetensors`` (written every ``--checkpoint-every`` steps and at each epoch's end) holds
the model, the fitted preprocessing, the loss's parameters, the optimizer state and the loop's
:class:`~mtl_heads.train.engine.TrainState`; ``best.safetensors`` the weights of the best
validation epoch. :func:`mtl_heads.checkpoint.load_trained` reads a finished run for inference.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..checkpoint import METADATA_KEY, read_checkpoint
from .options import RESUMABLE, saved_options

__all__ = ["BEST", "CHECKPOINT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT = "last.safetensors"
BEST = "best.safetensors"


def save_checkpoint(path: Path, model: nn.Module, pre: nn.Module, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer | None, state: dict[str, Any]) -> None:
    """Write the run's tensors and ``state`` (JSON) to ``path`` atomically.

    The optimizer's per-parameter tensors are stored as ``optim.<id>.<name>`` tensors and its
    scalars and groups in the metadata, so the file is plain safetensors (no pickle).
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (("model.", model), ("pre.", pre), ("loss.", loss_fn)):
        for k, v in module.state_dict().items():
            tensors[prefix + k] = v.detach().cpu().contiguous()
    meta: dict[str, Any] = {"state": state}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for k, v in pstate.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[k] = v
        meta["optim_groups"] = sd["param_groups"]
        meta["optim_scalars"] = scalars
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    os.replace(tmp, path)  # atomic: a kill during the write keeps the previous checkpoint


def load_checkpoint(path: Path, model: nn.Module, pre: nn.Module, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer | None,
                    args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Load a checkpoint into the run's objects; with ``args``, first refuse one made with other
    (non-resumable) options, naming them, before any tensor is loaded."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    tensors, meta = read_checkpoint(path)
    if args is not None:
        saved = saved_options(meta["state"]["args"])
        changed = {k: (saved.get(k), v) for k, v in vars(args).items()
                   if k not in RESUMABLE and saved.get(k) != v}
        if changed:
            raise ValueError(f"--resume {path}: the run was started with other options "
                             f"(saved, now): {changed}")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(part("model."))
    pre.load_state_dict(part("pre."))
    loss_fn.load_state_dict(part("loss."))
    if optimizer is not None and "optim_groups" in meta:
        state: dict[int, dict[str, Any]] = {}
        for k, v in part("optim.").items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        for pid, extra in meta["optim_scalars"].items():
            state.setdefault(int(pid), {}).update(extra)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optim_groups"]})
    return meta["state"]

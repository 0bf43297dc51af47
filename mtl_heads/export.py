"""Ship a trained classifier: the deploy model with the run's preprocessing folded in.

:class:`DeployedClassifier` takes raw stored-size faces (uint8 or float grey levels 0-255, e.g.
48x48 FER2013 faces) and returns class probabilities: per-image normalisation, per-pixel
standardisation with the statistics fitted in training, centre crop, the fixed minibatch
normalisation, then the plain timm classifier (``MultiTaskModel.deploy()``: the label-map head is
gone). :func:`export_model` writes it as ONNX, TorchScript or safetensors.

The safetensors file is an ordinary timm state dict of the backbone (``timm.create_model(name,
pretrained=True, pretrained_cfg_overlay=dict(file=..., num_classes=K))`` loads it); the
preprocessing, the class names and, for a model built with ``resize_input=True``, the size its
:class:`~mtl_heads.models.InputResize` resizes to travel in its metadata (``mtl_heads_export``),
and :meth:`DeployedClassifier.from_safetensors` rebuilds the whole classifier from it.
"""


import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .augmentation import center_crop, ten_crop_views
from .checkpoint import TrainedModel, load_trained, read_safetensors
from .models.input_resize import ResizedClassifier
from .preprocessing import per_image_normalize

__all__ = ["DeployedClassifier", "export_model", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
METADATA_KEY = "mtl_heads_export"


class DeployedClassifier(nn.Module):
    """Raw faces in, class probabilities out: fitted preprocessing + the plain timm classifier.

    Args:
        classifier: the timm model (``MultiTaskModel.deploy()``).
        pixel_mean: (C, H, W) per-pixel mean of the per-image-normalised training images.
        pixel_std: (C, H, W) their per-pixel standard deviation.
        batch_mean: the minibatch normalisation's running mean (fixed in training).
        batch_std: its running standard deviation (``sqrt(var + eps)``).
        crop: the size the classifier sees (centre crop of the stored size).
        norm: the per-image L2 norm.
        classes: class names (kept for the user; not part of the graph).
        tta: average the softmax over the paper's 10 test views (4 corner crops + centre,
            mirrored; ``crop`` sized) instead of using the centre crop alone.

    Shape:
        - input: :math:`(B, C, H, W)` uint8 or float grey levels at the stored size
        - output: :math:`(B, K)` probabilities

    Examples:
        >>> import timm
        >>> net = DeployedClassifier(timm.create_model("test_resnet", num_classes=3, in_chans=1),
        ...                          torch.zeros(1, 8, 8), torch.ones(1, 8, 8), 0.0, 1.0, crop=6)
        >>> net(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)).sum(1)
        tensor([1.0000, 1.0000], grad_fn=<SumBackward1>)
    """

    def __init__(
        self,
        classifier: nn.Module,
        pixel_mean: torch.Tensor,
        pixel_std: torch.Tensor,
        batch_mean: float,
        batch_std: float,
        crop: int | None = None,
        norm: float = 150.0,
        classes: list[str] | None = None,
        tta: bool = False,
    ) -> None:
        super().__init__()
        if tta and crop is None:
            raise ValueError("tta=True needs a crop size (the 10 views are crops)")
        self.classifier = classifier
        self.register_buffer("pixel_mean", pixel_mean.detach().float().clone())
        self.register_buffer("pixel_std", pixel_std.detach().float().clone())
        self.batch_mean = float(batch_mean)
        self.batch_std = float(batch_std)
        self.crop = crop
        self.norm = float(norm)
        self.classes = list(classes or [])
        self.tta = bool(tta)

    @classmethod
    def from_trained(cls, trained: TrainedModel, tta: bool = False) -> "DeployedClassifier":
        """Fold a loaded run's preprocessing into its deploy model (shares its weights)."""
        pre = trained.preprocessing
        mb = pre.minibatch
        return cls(
            trained.model.deploy(),
            pre.per_pixel.mean,
            pre.per_pixel.std,
            float(mb.running_mean),
            float(torch.sqrt(mb.running_var + mb.eps)),
            crop=trained.crop,
            norm=pre.per_image.norm,
            classes=trained.classes,
            tta=tta,
        ).eval()

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.pixel_mean.shape[-2]), int(self.pixel_mean.shape[-1])

    def config(self) -> dict[str, Any]:
        """Everything besides the classifier weights, JSON-serialisable."""
        return {
            "pixel_mean": self.pixel_mean.flatten().tolist(),
            "pixel_std": self.pixel_std.flatten().tolist(),
            "pixel_shape": list(self.pixel_mean.shape),
            "batch_mean": self.batch_mean,
            "batch_std": self.batch_std,
            "crop": self.crop,
            "norm": self.norm,
            "classes": self.classes,
            "tta": self.tta,
        }

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = per_image_normalize(faces.float(), self.norm)
        x = (x - self.pixel_mean) / self.pixel_std
        if self.tta:
            views = ten_crop_views(x, self.crop)
            logits = self.classifier((views.flatten(0, 1) - self.batch_mean) / self.batch_std)
            return logits.softmax(-1).view(views.shape[0], views.shape[1], -1).mean(0)
        if self.crop is not None:
            x = center_crop(x, self.crop)
        x = (x - self.batch_mean) / self.batch_std
        return self.classifier(x).softmax(-1)

    def save_safetensors(self, path: str | os.PathLike, architecture: str) -> None:
        """The classifier's timm state dict, with the preprocessing and classes in metadata."""
        from safetensors.torch import save_file

        timm_model, input_resize = self.classifier, None
        if isinstance(timm_model, ResizedClassifier):
            # the file stays a plain timm checkpoint; the resize is rebuilt from the metadata
            timm_model, input_resize = timm_model.model, list(timm_model.resize.size)
        state = timm_model.state_dict()
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        meta = dict(self.config(), architecture=architecture,
                    num_classes=int(self.classifier.num_classes),
                    in_chans=int(self.pixel_mean.shape[0]), input_resize=input_resize)
        save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})

    @classmethod
    def from_safetensors(cls, path: str | os.PathLike) -> "DeployedClassifier":
        """Rebuild what :meth:`save_safetensors` wrote.

        Raises:
            ValueError: not a safetensors file, or one without ``mtl_heads_export`` metadata.
        """
        import timm

        import mtl_heads.models  # noqa: F401  (registers fer_convnet)

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no exported model at {path}")
        tensors, metadata = read_safetensors(path, "file", "expected an mtl-heads export")
        if METADATA_KEY not in metadata:
            raise ValueError(f"{path}: no {METADATA_KEY!r} metadata (written by mtl-heads export?)")
        meta = json.loads(metadata[METADATA_KEY])
        kwargs: dict[str, Any] = dict(num_classes=meta["num_classes"], in_chans=meta["in_chans"])
        input_resize = meta.get("input_resize")  # absent in files written before it existed
        # the size the timm model itself runs at: behind an input resize, the resized size
        size = tuple(input_resize) if input_resize else meta["crop"] or meta["pixel_shape"][-1]
        try:  # ViTs and fer_convnet fix their input size when built; CNNs take no img_size
            classifier = timm.create_model(meta["architecture"], img_size=size, **kwargs)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
            classifier = timm.create_model(meta["architecture"], **kwargs)
        try:
            classifier.load_state_dict(tensors)
        except RuntimeError as err:
            raise ValueError(
                f"{path}: the weights do not fit a {meta['architecture']} ({err})"
            ) from err
        if input_resize:
            classifier = ResizedClassifier(classifier, input_resize)
        shape = meta["pixel_shape"]
        return cls(
            classifier,
            torch.tensor(meta["pixel_mean"]).view(shape),
            torch.tensor(meta["pixel_std"]).view(shape),
            meta["batch_mean"],
            meta["batch_std"],
            crop=meta["crop"],
            norm=meta["norm"],
            classes=meta["classes"],
            tta=meta.get("tta", False),
        ).eval()


def export_model(
    checkpoint: str | os.PathLike | TrainedModel,
    output: str | os.PathLike,
    format: str = "onnx",
    *,
    tta: bool = False,
    opset: int = 18,
) -> Path:
    """Write the deploy model of a run, preprocessing folded in, as ONNX, TorchScript or
    safetensors.

    The ONNX and TorchScript graphs take float32 ``(B, C, H, W)`` grey levels 0-255 at the stored
    size (any batch size) and return ``(B, K)`` probabilities. TorchScript is traced.

    Args:
        checkpoint: a run folder, a checkpoint file, or a loaded :class:`TrainedModel`.
        output: the file to write.
        format: one of :data:`EXPORT_FORMATS`.
        tta: fold the paper's 10-view average into the graph (the probabilities
            ``mtl-heads predict`` reports); default: the centre crop alone.
        opset: ONNX opset.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown format, or a bad checkpoint (named in the message).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; expected one of {EXPORT_FORMATS}")
    trained = checkpoint if isinstance(checkpoint, TrainedModel) else load_trained(checkpoint)
    net = DeployedClassifier.from_trained(trained, tta=tta)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if format == "safetensors":
        net.save_safetensors(output, trained.backbone)
        return output
    h, w = net.image_size
    example = torch.full((4, trained.in_chans, h, w), 128.0)
    example[:, :, : h // 2] = 30.0  # any image with contrast; the trace does not depend on it
    # the tracer warns that the shape checks become constants: the graph is for this size only
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if format == "torchscript":
            traced = torch.jit.trace(net, example, check_trace=False)
            traced.save(str(output))
        else:
            torch.onnx.export(
                net,
                (example,),
                str(output),
                input_names=["faces"],
                output_names=["probs"],
                dynamic_shapes={"faces": {0: torch.export.Dim("batch")}},
                opset_version=opset,
                dynamo=True,  # torch.export-based (needs onnxscript); any batch size
                external_data=False,  # one file, weights inside (models under 2 GB)
                verbose=False,
            )
    return output

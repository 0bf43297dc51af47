"""Trained models that ship inside the package.

The one planned is a FER2013 classifier, ``fer_convnet.fer2013.safetensors`` in this folder, with
its model card ``fer_convnet.fer2013.md`` beside it. It is what ``mtl-heads predict`` and
``mtl-heads export`` use when no checkpoint is given, and the file that timm's pretrained config
``fer_convnet.fer2013`` (the default of ``timm.create_model("fer_convnet", pretrained=True)``)
points at. A copy of mtl-heads without the file (a checkout, or a release that does not ship it)
raises :class:`MissingWeightsError` with what to do instead.

The file is a *bundle* (:mod:`mtl_heads.pretrained.bundle`): the deployed classifier in float16,
the fitted preprocessing and the run's provenance, in the layout of a training checkpoint.

Importing this module reads nothing: it only names the files.
"""

from pathlib import Path

__all__ = [
    "FER2013_WEIGHTS",
    "FER2013_MODEL_CARD",
    "MissingWeightsError",
    "bundled_model",
    "missing_weights_error",
]

FER2013_WEIGHTS = Path(__file__).resolve().with_name("fer_convnet.fer2013.safetensors")
FER2013_MODEL_CARD = FER2013_WEIGHTS.with_suffix(".md")


class MissingWeightsError(FileNotFoundError, RuntimeError):
    """A weights file a pretrained config points at is not there.

    Both a ``FileNotFoundError`` (a file is missing) and a ``RuntimeError`` (what timm raises when a
    model has no pretrained weights), so code written for either catches it.
    """


def missing_weights_error(path: str | Path, usage: str = "") -> MissingWeightsError:
    """The error for a missing weights file; for the bundled file it says how to get a model.

    Args:
        path: the file that is missing.
        usage: how to pass a model of one's own in the caller's interface (appended).

    Examples:
        >>> print(missing_weights_error("/no/such.safetensors"))
        No pretrained weights exist at /no/such.safetensors: no such file
    """
    path = Path(path)
    if path != FER2013_WEIGHTS:
        return MissingWeightsError(f"No pretrained weights exist at {path}: no such file")
    return MissingWeightsError(
        f"No pretrained weights exist for fer_convnet.fer2013 in this installation: {path} is "
        "missing (this copy of mtl-heads ships no trained model). Train one with `mtl-heads "
        "train` (see the Training page of the docs; about an "
        "hour on a CPU for FER2013) and use its run folder" + (f": {usage}" if usage else "")
    )


def bundled_model(usage: str = "") -> Path:
    """The bundled FER2013 model file.

    Args:
        usage: how to pass a model of one's own, for the error message.

    Raises:
        MissingWeightsError: this installation does not have the file.
    """
    if not FER2013_WEIGHTS.is_file():
        raise missing_weights_error(FER2013_WEIGHTS, usage)
    return FER2013_WEIGHTS

"""The paper's augmentation as a Kornia ``AugmentationSequential``, and its parameters.

:func:`paper_augmentation` builds it; :func:`sample_parameters` draws a batch's parameters from a
``torch.Generator`` (the stream the committed studies used), :func:`select_parameters` keeps the
rows of one process, and :func:`zoom_of` reads each sample's zoom (to scale the strokes of label
maps drawn after the augmentation).
"""

from collections.abc import Sequence
from typing import Any

import torch
from kornia.augmentation import AugmentationSequential
from kornia.augmentation.container.params import ParamItem
from kornia.constants import DataKey, Resample

from ..landmarks import FLIP_INDEX_68, PAPER_GROUPS, mirror_channels
from .affine_crop import RandomAffineCrop
from .mirror import RandomMirror

__all__ = [
    "SoftMaskSequential",
    "paper_augmentation",
    "sample_parameters",
    "select_parameters",
    "zoom_of",
]


def _is_floating(mask: Any) -> bool:
    if isinstance(mask, torch.Tensor):
        return mask.is_floating_point()
    return isinstance(mask, list) and all(_is_floating(m) for m in mask)


class SoftMaskSequential(AugmentationSequential):
    r"""Kornia's ``AugmentationSequential``, masks resampled by their dtype.

    Kornia resamples masks nearest unless ``extra_args`` asks otherwise, one choice for every
    call. Here each call decides from the masks it is given: floating-point masks (soft label
    maps) are resampled bilinearly, so they stay soft; integer and bool masks (class labels)
    nearest, so they keep their labels, and come back in their dtype as Kornia returns them. One
    call takes masks of one kind: pass soft maps and class labels in two calls with the same
    ``params=``. Everything else is Kornia's container, built with the same arguments
    (``extra_args[DataKey.MASK]["resample"]`` is set per call).

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> seq = SoftMaskSequential(RandomAffineCrop(4, rotation=30.0, mask_flip_channels=None),
        ...                          data_keys=["input", "mask"])
        >>> labels = torch.tensor([0, 5]).repeat_interleave(18).view(1, 1, 6, 6)
        >>> _, out = seq(torch.rand(1, 1, 6, 6), labels)
        >>> out.dtype, sorted(out.unique().tolist())
        (torch.int64, [0, 5])
        >>> _, soft = seq(torch.rand(1, 1, 6, 6), labels.float(), params=seq._params)
        >>> soft.dtype, len(soft.unique()) > 2
        (torch.float32, True)
    """

    def _arguments_preproc(
        self, *args: Any, data_keys: list[DataKey], params: list[ParamItem] | None = None
    ) -> list[Any]:
        # Kornia casts masks to the image's dtype here, and reads ``extra_args`` after this hook
        # in both forward and inverse: the last place where the masks' own dtype is known.
        kinds = {_is_floating(a) for a, k in zip(args, data_keys, strict=True) if k == DataKey.MASK}
        if len(kinds) > 1:
            raise ValueError(
                "one call got floating-point masks (resampled bilinearly) and integer masks "
                "(resampled nearest); pass them in two calls with the same params="
            )
        resample = Resample.BILINEAR if kinds == {True} else Resample.NEAREST
        mask_args = self.extra_args.get(DataKey.MASK, {"align_corners": None})
        self.extra_args = {**self.extra_args, DataKey.MASK: {**mask_args, "resample": resample}}
        return super()._arguments_preproc(*args, data_keys=data_keys, params=params)


def paper_augmentation(
    *,
    flip: bool = True,
    shift: int = 3,
    rotation: float = 45.0,
    zoom: float = 1.2,
    crop: int | Sequence[int] = 42,
    flip_index: Sequence[int] | None = FLIP_INDEX_68,
    mask_flip_channels: Sequence[int] | None = mirror_channels(PAPER_GROUPS),
    data_keys: Sequence[str] = ("input", "mask", "keypoints"),
) -> AugmentationSequential:
    r"""The paper's training augmentation as a Kornia ``AugmentationSequential``.

    With no arguments it is the paper's FER2013 setting: a mirror on half the samples, rotation
    by up to ±45°, zoom by up to 1.2 and a 42x42 crop shifted by up to ±3 px, as one
    :class:`~mtl_heads.augmentation.RandomAffineCrop`. The settings of DeVries et al. (2014)
    and the engine's ``--augment`` choices:

    ========== ===================================================================
    ``none``   ``flip=False, shift=0, rotation=0, zoom=1``: the centre crop
    ``crop``   ``flip=False, shift=3, rotation=0, zoom=1``
    flip-shift ``shift=3, rotation=0, zoom=1``: the paper's TFD setting
    ``full``   the defaults: the paper's FER2013 setting
    ========== ===================================================================

    Without rotation and zoom the crop copies pixels exactly. Masks go through
    :class:`SoftMaskSequential`: floating-point label maps bilinear, integer masks nearest.
    The container is called as a plain module (Kornia's ``disable_features = True``): tensors in,
    tensors out, no output kept for ``.show()``; set ``aug.disable_features = False`` for NumPy
    or PIL inputs.

    Args:
        flip: mirror half of the samples, swapping keypoints with ``flip_index`` and mask
            channels with ``mask_flip_channels``.
        shift: largest crop offset from the centre, in whole pixels.
        rotation: largest rotation in degrees.
        zoom: largest zoom factor (>= 1).
        crop: output size ``(h, w)`` or one int.
        flip_index: keypoint permutation on mirrored samples; ``None`` keeps the order.
        mask_flip_channels: mask channel permutation on mirrored samples; ``None`` keeps the
            order.
        data_keys: Kornia's data keys of a call without ``data_keys=``.

    Returns:
        A :class:`SoftMaskSequential` (a Kornia ``AugmentationSequential``).

    Shape:
        - images: :math:`(B, C, H, W)` floating point -> :math:`(B, C, h, w)`
        - masks: :math:`(B, K, H, W)` -> :math:`(B, K, h, w)`
        - keypoints: :math:`(B, N, 2)`, (x, y) pixels; NaN rows stay NaN

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> aug = paper_augmentation()
        >>> images, maps = torch.rand(4, 1, 48, 48), torch.rand(4, 3, 48, 48)
        >>> landmarks = torch.rand(4, 68, 2) * 47
        >>> out, out_maps, out_landmarks = aug(images, maps, landmarks)
        >>> out.shape, out_maps.shape, out_landmarks.shape
        (torch.Size([4, 1, 42, 42]), torch.Size([4, 3, 42, 42]), torch.Size([4, 68, 2]))

        A training step: parameters from a seeded generator for the global batch, the rows of
        this process, then images with label maps (or landmarks, or nothing) on any device.

        >>> params = sample_parameters(aug, (8, 1, 48, 48), torch.Generator().manual_seed(0))
        >>> params = select_parameters(params, slice(0, None, 2))  # rank 0 of 2
        >>> x, maps = aug(images, maps, data_keys=["input", "mask"], params=params)
        >>> x, landmarks = aug(images, landmarks, data_keys=["input", "keypoints"], params=params)
        >>> x = aug(images, data_keys=["input"], params=params)
        >>> zoom_of(params).dtype, zoom_of(params).shape
        (torch.float64, torch.Size([4]))
    """
    transform = RandomAffineCrop(
        crop, rotation=rotation, zoom=zoom, shift=shift, p_flip=0.5 if flip else 0.0,
        flip_index=flip_index, mask_flip_channels=mask_flip_channels,
    )
    aug = SoftMaskSequential(transform, data_keys=list(data_keys))
    # A plain module call, tensors in and out: Kornia's NumPy/PIL conversion and the output it
    # keeps for ``.show()`` cost time per call, and the kept output stops the allocator from
    # reusing its memory (~400 page faults per call at batch 256 on a CPU).
    aug.disable_features = True
    return aug


def sample_parameters(
    aug: AugmentationSequential, batch_shape: Sequence[int], generator: torch.Generator
) -> list[ParamItem]:
    r"""Draw the parameters of one call of ``aug`` from ``generator``, for replay with ``params=``.

    Kornia draws from the global generator (``aug.forward_parameters(batch_shape)``); this draws
    the same kind of parameters from a CPU ``torch.Generator``, so that a training step's
    augmentation follows from its seed on any device and with any number of processes. For
    :func:`paper_augmentation` it is the random stream the committed studies were trained with.

    Args:
        aug: an ``AugmentationSequential`` of :class:`RandomAffineCrop` and
            :class:`RandomMirror` transforms.
        batch_shape: the shape of the whole batch of images, ``(B, C, H, W)``.
        generator: the CPU generator to draw from.

    Returns:
        Kornia's parameter list: one ``ParamItem(name, params)`` per transform.

    Examples:
        >>> aug = paper_augmentation()
        >>> params = sample_parameters(aug, (4, 1, 48, 48), torch.Generator().manual_seed(0))
        >>> [item.name for item in params], params[0].data["flip"]
        (['RandomAffineCrop_0'], tensor([ True, False,  True, False]))
        >>> out = aug(torch.rand(4, 1, 48, 48), data_keys=["input"], params=params)
    """
    if not isinstance(aug, AugmentationSequential):
        raise TypeError(f"aug must be a kornia AugmentationSequential, got {type(aug).__name__}")
    if aug.random_apply is not False:
        raise ValueError(
            "sample_parameters draws every transform in order; aug has random_apply="
            f"{aug.random_apply!r}"
        )
    shape = tuple(int(s) for s in batch_shape)
    if len(shape) != 4:
        raise ValueError(f"batch_shape must be (B, C, H, W), got {tuple(batch_shape)}")
    batch = shape[0]
    params = []
    for name, module in aug.named_children():
        if isinstance(module, RandomAffineCrop):
            data = module._param_generator(shape, module.same_on_batch, generator=generator)
            data["batch_prob"] = torch.ones(batch)  # Kornia's gate is 1 (see RandomAffineCrop)
            out_shape = (*shape[:2], *module.flags["size"])
        elif isinstance(module, RandomMirror):
            n = 1 if module.same_on_batch else batch
            gate = torch.full((n,), float(module.p))
            if 0.0 < module.p < 1.0:
                gate = (torch.rand(n, generator=generator) < module.p).float()
            data = {"batch_prob": gate.expand(batch).clone()}
            out_shape = shape
        else:
            raise TypeError(
                f"sample_parameters draws RandomAffineCrop and RandomMirror only; {name} is a "
                f"{type(module).__name__} (draw its parameters with aug.forward_parameters)"
            )
        data["forward_input_shape"] = torch.tensor(shape)
        params.append(ParamItem(name, data))
        shape = out_shape
    return params


def select_parameters(params: list[ParamItem], index: Any) -> list[ParamItem]:
    r"""The parameters of some samples of a batch: for the rows of one process, say.

    Every per-sample value is indexed (``index`` as for a tensor: a slice, indices or a bool
    mask) and the recorded batch shape follows, so ``aug(x[index], params=...)`` augments each
    sample as ``aug(x, params=params)`` does.

    Args:
        params: Kornia's parameter list (from :func:`sample_parameters` or ``aug._params``).
        index: which samples, e.g. ``slice(rank, None, world)``.

    Returns:
        A new parameter list; ``params`` is left as it was.

    Examples:
        >>> params = sample_parameters(paper_augmentation(), (4, 1, 48, 48),
        ...                            torch.Generator().manual_seed(3))
        >>> params[0].data["flip"], select_parameters(params, slice(1, None, 2))[0].data["flip"]
        (tensor([ True,  True, False, False]), tensor([ True, False]))
    """
    selected = []
    for item in params:
        data = item.data
        if isinstance(data, list):
            data = select_parameters(data, index)
        elif isinstance(data, dict):
            data = _select(data, index)
        selected.append(ParamItem(item.name, data))
    return selected


def _select(data: dict[str, Any], index: Any) -> dict[str, Any]:
    if "batch_prob" in data:
        batch = data["batch_prob"].shape[0]
    elif "forward_input_shape" in data:
        batch = int(data["forward_input_shape"][0])
    else:
        raise ValueError(
            f"parameters without 'batch_prob' or 'forward_input_shape' to read the batch size "
            f"from: {sorted(data)}"
        )
    rows = torch.arange(batch)[index]
    out = {}
    for key, value in data.items():
        if key == "forward_input_shape":
            value = value.clone()
            value[0] = len(rows)
        elif isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == batch:
            value = value.index_select(0, rows.to(value.device))
        out[key] = value
    return out


def zoom_of(params: list[ParamItem]) -> torch.Tensor:
    r"""Each sample's zoom factor in ``params`` (the product over :class:`RandomAffineCrop` draws).

    Label maps drawn after the augmentation from the augmented landmarks should be drawn with
    strokes this much thicker, as the maps warped with the image are
    (``landmarks_to_label_maps(..., thickness_scale=zoom_of(params))``).

    Args:
        params: Kornia's parameter list of a pipeline with a :class:`RandomAffineCrop`.

    Returns:
        A float64 tensor of shape :math:`(B,)`.

    Examples:
        >>> params = sample_parameters(paper_augmentation(), (4, 1, 48, 48),
        ...                            torch.Generator().manual_seed(0))
        >>> zoom_of(params)
        tensor([1.1163, 1.0576, 1.0906, 1.0354], dtype=torch.float64)
    """
    zooms = [data["scale"] for data in _affine_crop_draws(params)]
    if not zooms:
        raise ValueError(
            "params hold no RandomAffineCrop draw (flip, angle, scale, offset); pass the "
            "parameters of paper_augmentation() or of a pipeline with a RandomAffineCrop"
        )
    zoom = zooms[0]
    for other in zooms[1:]:
        zoom = zoom * other
    return zoom


def _affine_crop_draws(params: list[ParamItem]) -> list[dict[str, torch.Tensor]]:
    draws = []
    for item in params:
        if isinstance(item.data, list):
            draws += _affine_crop_draws(item.data)
        elif isinstance(item.data, dict) and {"flip", "angle", "scale", "offset"} <= set(item.data):
            draws.append(item.data)
    return draws

"""Aligned, mirror-aware augmentation as Kornia transforms, and the paper's test-time views.

The paper's training augmentation (DeVries et al. 2014: mirror, rotation, zoom, a 48 -> 42 crop
shifted by ±3 px) is :func:`paper_augmentation`, a Kornia ``AugmentationSequential`` of one
:class:`RandomAffineCrop`; :class:`RandomMirror` is the mirror alone, for any Kornia pipeline.
On mirrored samples both re-index keypoints with a flip index and swap mask channels, so that
"left" keeps meaning image-left. Soft label maps are resampled bilinearly, integer masks nearest
(:class:`SoftMaskSequential` decides by dtype).

A training step draws its parameters from a seeded CPU generator for the whole batch, keeps the
rows of its process, and replays them on images with label maps, or landmarks, or alone
(the calls of the training engine)::

    aug = paper_augmentation(flip=True, shift=3, rotation=45.0, zoom=1.2, crop=42)
    params = sample_parameters(aug, (len(rows_global), *images.shape[1:]), generator)
    params = select_parameters(params, slice(rank, None, world))
    if maps is not None:          # label maps drawn once per image, warped with it
        x, maps = aug(x, maps, data_keys=["input", "mask"], params=params)
    elif landmarks is not None:   # or drawn after the augmentation, from its landmarks
        x, landmarks = aug(x, landmarks, data_keys=["input", "keypoints"], params=params)
        maps = landmarks_to_label_maps(landmarks, 42, thickness_scale=zoom_of(params))
    else:                         # the baseline: images alone
        x = aug(x, data_keys=["input"], params=params)

``zoom_of(params)`` is each sample's zoom, float64 ``(B,)``. See docs/kornia-pipeline.md.

For the same parameters this gives the pixels, maps and landmarks of :class:`AlignedAugmentation`
(the path the committed studies were trained with) bit for bit; ``AlignedAugmentation`` and
``RandomAlignedCrop`` are deprecated and stay for one release.

:func:`center_crop`, :func:`ten_crop_views` and :func:`predict_ten_crop` are the test-time side:
a centre crop, or 4 corner crops + the centre crop, each also mirrored, softmax averaged.
"""

from .affine_crop import AffineCropGenerator, RandomAffineCrop
from .aligned import AlignedAugmentation, RandomAlignedCrop
from .mirror import RandomMirror
from .paper import (
    SoftMaskSequential,
    paper_augmentation,
    sample_parameters,
    select_parameters,
    zoom_of,
)
from .test_time import center_crop, predict_ten_crop, ten_crop_views

__all__ = [
    "AffineCropGenerator",
    "AlignedAugmentation",
    "RandomAffineCrop",
    "RandomAlignedCrop",
    "RandomMirror",
    "SoftMaskSequential",
    "center_crop",
    "paper_augmentation",
    "predict_ten_crop",
    "sample_parameters",
    "select_parameters",
    "ten_crop_views",
    "zoom_of",
]

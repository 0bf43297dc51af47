"""Face expression data sets (FER2013 / FER+, TFD, class folders) and landmark files.

Every data set decodes its source once into uint8 numpy arrays (``.images``, ``.labels``,
``.landmarks``, ``.landmarks_valid``) and yields dict items
``{"image": uint8 (C, H, W), "label": int64 scalar (or float (C,) soft labels)}``, plus
``"landmarks"`` float32 (68, 2) and ``"landmarks_valid"`` bool when a landmark file is given;
torch's default collate stacks them into a batch dict with the same keys.

scipy (TFD) and Pillow (image folders) are imported only when needed:
``pip install "mtl-heads[data]"``.
"""

from ._base import FaceDataset, duplicate_groups, image_hashes
from .fer2013 import (
    FER2013,
    FER2013_CLASSES,
    FERPLUS_CLASSES,
    FERPLUS_MODES,
    FERPLUS_TO_FER2013,
    ferplus_drop_reasons,
    ferplus_labels,
    ferplus_to_fer2013,
    read_fer2013_csv,
    read_fer2013_folder,
    read_ferplus_votes,
)
from .folder import ImageFolderFaces, list_image_folder, read_image_folder
from .landmark_file import LandmarkFile, image_fingerprint, load_landmarks, save_landmarks
from .splits import (
    SOURCE_KINDS,
    SPLIT_OPTIONS,
    FaceSplits,
    duplicate_aware_split,
    load_splits,
    source_kind,
    subset_rows,
)
from .synthetic import SYNTHETIC_CLASSES, SyntheticFaces, synthetic_landmarks
from .tfd import TFD, TFD_CLASSES, read_tfd

__all__ = [
    "FaceDataset",
    "FaceSplits",
    "SOURCE_KINDS",
    "SPLIT_OPTIONS",
    "duplicate_aware_split",
    "load_splits",
    "source_kind",
    "subset_rows",
    "FER2013",
    "FER2013_CLASSES",
    "FERPLUS_CLASSES",
    "FERPLUS_MODES",
    "FERPLUS_TO_FER2013",
    "TFD",
    "TFD_CLASSES",
    "ImageFolderFaces",
    "LandmarkFile",
    "duplicate_groups",
    "ferplus_drop_reasons",
    "ferplus_labels",
    "ferplus_to_fer2013",
    "image_fingerprint",
    "image_hashes",
    "list_image_folder",
    "load_landmarks",
    "read_fer2013_csv",
    "read_fer2013_folder",
    "read_ferplus_votes",
    "read_image_folder",
    "read_tfd",
    "save_landmarks",
    "SyntheticFaces",
    "synthetic_landmarks",
    "SYNTHETIC_CLASSES",
]

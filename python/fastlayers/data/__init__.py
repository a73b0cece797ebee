"""fastlayers.data: datasets, IDX files, batching, normalisation and augmentation.

>>> from fastlayers import data
>>> ds = data.fashion_mnist()                       # doctest: +SKIP  (needs the files)
>>> x_tr, y_tr, x_val, y_val = data.train_val_split(*ds.train, val_fraction=0.1, stratify=True)
>>> x_tr, x_val, x_te = data.standardize(x_tr, x_val, ds.x_test)
>>> aug = data.default_augmentation(seed=0)
>>> for xb, yb in data.DataLoader(x_tr, y_tr, batch_size=128, shuffle=True, seed=0, transform=aug):
...     ...

Modules: ``idx`` (read_idx / write_idx), ``datasets`` (fashion_mnist, mnist, synthetic sets,
get), ``loader`` (DataLoader, train_val_split, Standardize), ``augment`` (transforms).
"""

from fastlayers.data import augment, datasets, idx, loader
from fastlayers.data.augment import (
    Compose,
    GaussianNoise,
    RandomAffine,
    RandomContrast,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScale,
    RandomShear,
    RandomTranslate,
    RandomVerticalFlip,
    default_augmentation,
)
from fastlayers.data.datasets import (
    DATASETS,
    Dataset,
    blobs,
    fashion_mnist,
    get,
    logical_and,
    logical_or,
    mnist,
    spirals,
    truth_table,
    two_spirals,
    xor,
)
from fastlayers.data.idx import read_idx, write_idx
from fastlayers.data.loader import DataLoader, Standardize, standardize, train_val_split

__all__ = [
    "DATASETS",
    "Compose",
    "DataLoader",
    "Dataset",
    "GaussianNoise",
    "RandomAffine",
    "RandomContrast",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomScale",
    "RandomShear",
    "RandomTranslate",
    "RandomVerticalFlip",
    "Standardize",
    "augment",
    "blobs",
    "datasets",
    "default_augmentation",
    "fashion_mnist",
    "get",
    "idx",
    "loader",
    "logical_and",
    "logical_or",
    "mnist",
    "read_idx",
    "spirals",
    "standardize",
    "train_val_split",
    "truth_table",
    "two_spirals",
    "write_idx",
    "xor",
]

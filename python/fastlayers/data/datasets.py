"""Datasets: Fashion-MNIST and MNIST from IDX files, and small synthetic sets.

Real data is never downloaded (the machines this runs on may have no network): Fashion-MNIST
is looked up, in this order, in

1. ``path`` when given (and then only there),
2. ``$FASTLAYERS_DATA``,
3. ``/usr/share/datasets/fashion-mnist`` — where Debian's ``dataset-fashion-mnist`` package
   (``sudo apt-get install dataset-fashion-mnist``) puts the four gzipped IDX files.

In a folder, the files are found directly in it or in a ``fashion-mnist/`` (for MNIST:
``mnist/``) or torchvision-style ``FashionMNIST/raw/`` (``MNIST/raw/``) sub-folder, under their
original names ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped (``.gz``) or not; the
``train-images.idx3-ubyte`` spelling of some mirrors is accepted too. When nothing is found,
the ``FileNotFoundError`` lists the places searched and says how to get the data.

Images come back as float32 in [0, 1], shaped (N, 1, 28, 28) (NCHW, one channel), labels as
int64 — what ``fastlayers.nn`` layers and ``CrossEntropyLoss`` take. torch equivalents:
``torchvision.datasets.FashionMNIST`` / ``MNIST`` with ``ToTensor()``.

Synthetic sets (float32 features, int64 labels, reproducible from a seed): the AND / OR / XOR
truth tables (the perceptron's classic successes and its failure), two (or more) interleaved
spirals, and Gaussian blobs. ``get(name)`` returns any of them as a ``Dataset`` with a train and
a test part, which is what ``fastlayers train --dataset NAME`` uses.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

from fastlayers.data.idx import read_idx

__all__ = [
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "blobs",
    "fashion_mnist",
    "get",
    "logical_and",
    "logical_or",
    "mnist",
    "spirals",
    "truth_table",
    "two_spirals",
    "xor",
]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "FASTLAYERS_DATA"
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))
# The four files of an MNIST-format set, by (part, kind).
_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


@dataclasses.dataclass(frozen=True, eq=False)  # arrays: compare fields yourself
class Dataset:
    """A classification dataset split into a train and a test part.

    Attributes:
        x_train, x_test: float32 inputs, (N, 1, H, W) for images, (N, features) otherwise.
        y_train, y_test: int64 class labels in [0, len(classes)).
        classes: class names, index = label.
        name: the dataset's name (as ``get`` knows it).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple
    name: str

    @property
    def train(self):
        """(x_train, y_train)."""
        return self.x_train, self.y_train

    @property
    def test(self):
        """(x_test, y_test)."""
        return self.x_test, self.y_test

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple:
        """Shape of one example, e.g. (1, 28, 28)."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={self.x_train.shape} {self.x_train.dtype}, "
            f"test={self.x_test.shape}, classes={self.num_classes})"
        )


# ----------------------------------------------------------------------------- IDX sets


def _find_file(folder: str, stem: str) -> str | None:
    """The first existing spelling of an MNIST-format file in folder, or None."""
    dotted = stem.replace("-idx", ".idx")  # e.g. train-images.idx3-ubyte
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _find_set(roots: list[str], subdirs: tuple[str, ...]) -> tuple[dict | None, list[str]]:
    """Looks for all four files in each root and its sub-folders; returns (files, searched)."""
    searched = []
    for root in roots:
        for sub in ("", *subdirs):
            folder = os.path.join(root, sub) if sub else root
            searched.append(folder)
            files = {key: _find_file(folder, stem) for key, stem in _STEMS.items()}
            if all(files.values()):
                return files, searched
    return None, searched


def _images_to_float(images: np.ndarray, file: str) -> np.ndarray:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{file}: expected (N, H, W) uint8 images, got {images.shape} {images.dtype}")
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


def _labels_to_int(labels: np.ndarray, file: str, num_classes: int) -> np.ndarray:
    """(N,) uint8 -> (N,) int64, checked to be in [0, num_classes)."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{file}: expected (N,) integer labels, got {labels.shape} {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{file}: labels must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    return labels


def _load_idx_set(files: dict, classes: tuple, name: str) -> Dataset:
    """Reads the four files of an MNIST-format set and checks that they fit together."""
    parts = {}
    for part in ("train", "test"):
        img_file, lbl_file = files[(part, "images")], files[(part, "labels")]
        x = _images_to_float(read_idx(img_file), img_file)
        y = _labels_to_int(read_idx(lbl_file), lbl_file, len(classes))
        if len(x) != len(y):
            raise ValueError(f"{img_file} has {len(x)} images but {lbl_file} has {len(y)} labels")
        parts[part] = (x, y)
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise ValueError(
            f"train images are {parts['train'][0].shape[2:]} but test images are {parts['test'][0].shape[2:]}"
        )
    return Dataset(*parts["train"], *parts["test"], classes=classes, name=name)


def fashion_mnist(path=None) -> Dataset:
    """Loads Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 60,000 train / 10,000 test 28x28 images.

    Args:
        path: folder holding the four IDX files (or a ``fashion-mnist/`` sub-folder). When
            None: ``$FASTLAYERS_DATA``, then ``/usr/share/datasets/fashion-mnist``.

    Returns:
        Dataset with x float32 (N, 1, 28, 28) in [0, 1], y int64 in [0, 10), and the class
        names T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.

    Raises:
        FileNotFoundError: the files are not in any searched folder; the message lists them
            and says how to install the data.
        ValueError: a file is corrupt or truncated, or the files do not fit together.

    torch equivalent: ``torchvision.datasets.FashionMNIST(root, train=..., transform=ToTensor())``.
    """
    subdirs = ("fashion-mnist", "fashion_mnist", os.path.join("FashionMNIST", "raw"))
    if path is not None:
        roots = [os.fspath(path)]
    else:
        roots = [os.environ[ENV_VAR]] if os.environ.get(ENV_VAR) else []
        roots.append(DEFAULT_FASHION_MNIST_DIR)
    files, searched = _find_set(roots, subdirs)
    if files is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found. Looked for train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), "
            "t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) in: "
            + ", ".join(searched)
            + ".\nTo get it: on Debian/Ubuntu `sudo apt-get install dataset-fashion-mnist` (installs to "
            f"{DEFAULT_FASHION_MNIST_DIR}), or download the four files from "
            "https://github.com/zalandoresearch/fashion-mnist and pass their folder as path= or set "
            f"${ENV_VAR}=/that/folder."
        )
    return _load_idx_set(files, FASHION_MNIST_CLASSES, "fashion-mnist")


def mnist(path=None) -> Dataset:
    """Loads MNIST (LeCun et al.) from IDX files you have: 60,000 train / 10,000 test digits.

    Args:
        path: folder holding train-images-idx3-ubyte(.gz) and the three other files (or an
            ``mnist/`` or ``MNIST/raw/`` sub-folder); None uses ``$FASTLAYERS_DATA``.

    Returns:
        Dataset with x float32 (N, 1, 28, 28) in [0, 1], y int64, classes "0".."9".

    torch equivalent: ``torchvision.datasets.MNIST(root, train=..., transform=ToTensor())``.
    """
    subdirs = ("mnist", os.path.join("MNIST", "raw"))
    if path is not None:
        roots = [os.fspath(path)]
    elif os.environ.get(ENV_VAR):
        roots = [os.environ[ENV_VAR]]
    else:
        raise FileNotFoundError(
            f"mnist() needs the folder of the MNIST IDX files: pass path= or set ${ENV_VAR}. "
            "MNIST is not downloaded automatically; its four files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) are on "
            "the MNIST page and its mirrors. (Fashion-MNIST, a drop-in replacement, is packaged: "
            "`sudo apt-get install dataset-fashion-mnist`, then fashion_mnist().)"
        )
    files, searched = _find_set(roots, subdirs)
    if files is None:
        raise FileNotFoundError(
            "MNIST not found. Looked for train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), "
            "t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) in: " + ", ".join(searched)
        )
    return _load_idx_set(files, MNIST_CLASSES, "mnist")


# ----------------------------------------------------------------------------- synthetic sets

_TRUTH_TABLES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "xor": (0, 1, 1, 0),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
}


def truth_table(op: str = "xor"):
    """The four rows of a two-input boolean function: x (4, 2) float32 in {0, 1}, y (4,) int64.

    op: "and", "or", "xor", "nand" or "nor". AND and OR are linearly separable (a perceptron
    learns them); XOR is not (Minsky and Papert's example), so a perceptron never converges.
    """
    key = op.lower()
    if key not in _TRUTH_TABLES:
        raise ValueError(f"truth_table: op must be one of {sorted(_TRUTH_TABLES)}, got {op!r}")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return x, np.array(_TRUTH_TABLES[key], dtype=np.int64)


def xor():
    """XOR truth table: x (4, 2) float32, y = [0, 1, 1, 0] int64."""
    return truth_table("xor")


def logical_and():
    """AND truth table: x (4, 2) float32, y = [0, 0, 0, 1] int64."""
    return truth_table("and")


def logical_or():
    """OR truth table: x (4, 2) float32, y = [0, 1, 1, 1] int64."""
    return truth_table("or")


def _class_sizes(n: int, classes: int) -> np.ndarray:
    """n split into `classes` near-equal counts (the first n % classes get one more)."""
    return np.full(classes, n // classes) + (np.arange(classes) < n % classes)


def _check_counts(fn: str, n: int, classes: int) -> None:
    if int(classes) != classes or classes < 1:
        raise ValueError(f"{fn}: classes must be a positive integer, got {classes!r}")
    if int(n) != n or n < classes:
        raise ValueError(f"{fn}: n must be an integer >= classes ({classes}), got {n!r}")


def spirals(n: int = 400, classes: int = 2, noise: float = 0.05, turns: float = 1.0, seed=0):
    """Interleaved spiral arms, one per class (cs231n's spiral data; two arms = "two spirals").

    Arm k is the curve r = t, angle = 2*pi*(turns*t + k/classes) for t ~ U(0, 1), in the
    unit disc, plus isotropic Gaussian noise of std ``noise``. Not linearly separable: an MLP
    with a hidden layer separates it, a linear classifier cannot.

    Returns:
        x (n, 2) float32, y (n,) int64 — classes as equal as n allows, rows shuffled.
    """
    _check_counts("spirals", n, classes)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), _class_sizes(n, classes))
    t = rng.uniform(0.0, 1.0, n)
    angle = 2 * np.pi * (turns * t + y / classes)
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.int64)


def two_spirals(n: int = 400, noise: float = 0.05, turns: float = 1.0, seed=0):
    """Two interleaved spirals: ``spirals(n, classes=2, ...)``."""
    return spirals(n, 2, noise=noise, turns=turns, seed=seed)


def blobs(n: int = 300, classes: int = 3, dims: int = 2, std: float = 1.0, center_box=(-5.0, 5.0), seed=0):
    """Isotropic Gaussian blobs, one per class (like ``sklearn.datasets.make_blobs``).

    The class centres are drawn uniformly in ``center_box`` along every dimension; each point
    is its centre plus N(0, std^2 I) noise.

    Returns:
        x (n, dims) float32, y (n,) int64 — classes as equal as n allows, rows shuffled.
    """
    _check_counts("blobs", n, classes)
    if int(dims) != dims or dims < 1:
        raise ValueError(f"blobs: dims must be a positive integer, got {dims!r}")
    rng = np.random.default_rng(seed)
    centers = rng.uniform(center_box[0], center_box[1], (classes, dims))
    y = np.repeat(np.arange(classes), _class_sizes(n, classes))
    x = centers[y] + std * rng.standard_normal((n, dims))
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.int64)


# ----------------------------------------------------------------------------- by name


def _synthetic(name: str, make: Callable, classes: tuple, test_fraction: float, seed) -> Dataset:
    """Makes one synthetic set and splits it (stratified) into train and test parts."""
    from fastlayers.data.loader import train_val_split

    x, y = make()
    x_tr, y_tr, x_te, y_te = train_val_split(x, y, val_fraction=test_fraction, seed=seed, stratify=True)
    return Dataset(x_tr, y_tr, x_te, y_te, classes=classes, name=name)


def _truth_table_set(op: str) -> Dataset:
    # The truth table is the whole input space: train and test are the same four rows.
    x, y = truth_table(op)
    return Dataset(x, y, x.copy(), y.copy(), classes=("0", "1"), name=op)


def get(name: str, path=None, *, n=None, classes=None, dims=2, noise=0.05, test_fraction=0.25, seed=0) -> Dataset:
    """A dataset by name, as a ``Dataset`` with train and test parts (used by ``fastlayers train``).

    Names (see ``DATASETS``): "fashion-mnist" and "mnist" (from IDX files; ``path`` as in
    ``fashion_mnist``), "and", "or", "xor" (train = test = the truth table), "spirals" and
    "blobs" (``n`` points, default 1000; ``classes``, default 2 and 3; blobs in ``dims``
    dimensions; spirals with ``noise``; a stratified ``test_fraction`` held out; ``seed``).
    """
    key = name.lower().replace("_", "-")
    if key == "fashion-mnist":
        return fashion_mnist(path)
    if key == "mnist":
        return mnist(path)
    if key in ("and", "or", "xor"):
        return _truth_table_set(key)
    if key == "spirals":
        k = 2 if classes is None else classes
        return _synthetic(
            "spirals",
            lambda: spirals(1000 if n is None else n, k, noise=noise, seed=seed),
            tuple(str(c) for c in range(k)),
            test_fraction,
            seed,
        )
    if key == "blobs":
        k = 3 if classes is None else classes
        return _synthetic(
            "blobs",
            lambda: blobs(1000 if n is None else n, k, dims=dims, seed=seed),
            tuple(str(c) for c in range(k)),
            test_fraction,
            seed,
        )
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


DATASETS = ("fashion-mnist", "mnist", "and", "or", "xor", "spirals", "blobs")

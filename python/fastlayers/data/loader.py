"""Batching, train/validation splits and normalisation for in-memory (x, y) arrays.

- ``DataLoader``: mini-batches of (x, y) with shuffle, seed and drop_last — a new permutation
  every epoch, drawn from one seeded Generator, so a run is reproducible epoch by epoch
  (torch: ``torch.utils.data.DataLoader(TensorDataset(x, y), batch_size, shuffle,
  generator=torch.Generator().manual_seed(seed), drop_last)``).
- ``train_val_split``: a seeded random split, optionally stratified so each class keeps its
  proportion in both parts (sklearn: ``train_test_split(..., stratify=y)``).
- ``Standardize`` / ``standardize``: zero mean, unit variance with statistics computed on the
  training set only and applied unchanged to validation and test data, per channel (axis 1)
  by default (torchvision: ``transforms.Normalize(mean, std)``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DataLoader", "Standardize", "standardize", "train_val_split"]


def _as_generator(seed) -> np.random.Generator:
    """A Generator from an int seed, None (fresh entropy) or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class DataLoader:
    """Iterates over mini-batches of in-memory arrays; each ``iter()`` is one epoch.

    Args:
        x: array of N examples along axis 0 (e.g. (N, 1, 28, 28) float32).
        y: array of N labels/targets along axis 0, or None (then batches are x alone).
        batch_size: examples per batch (the last one may be smaller unless drop_last).
        shuffle: visit the examples in a new random order every epoch.
        seed: int, None or np.random.Generator for the shuffling order. With an int, two
            loaders built alike give the same sequence of epochs; epoch k's order is the k-th
            permutation drawn from the Generator, whatever was consumed of earlier epochs.
        drop_last: skip the final batch when it is smaller than batch_size.
        transform: optional callable applied to each x batch (e.g. an augmentation
            ``Compose``); it must return a new array, the loader's x is never modified.

    Batches are copies when shuffled (fancy indexing) and views into x otherwise.

    >>> loader = DataLoader(np.arange(10), np.arange(10), batch_size=4, drop_last=True)
    >>> [yb.tolist() for _, yb in loader]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """

    def __init__(self, x, y=None, batch_size: int = 32, shuffle: bool = False, seed=None, drop_last: bool = False,
                 transform=None):
        self.x = np.asarray(x)
        self.y = None if y is None else np.asarray(y)
        if self.x.ndim == 0:
            raise ValueError("DataLoader: x must have at least one dimension (examples along axis 0)")
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"DataLoader: x has {len(self.x)} examples but y has {len(self.y)}")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.rng = _as_generator(seed)
        self.epoch = 0  # epochs started so far

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        """Examples seen per epoch (N, or fewer with drop_last)."""
        return len(self) * self.batch_size if self.drop_last else len(self.x)

    def __iter__(self):
        n = len(self.x)
        # The permutation is drawn here, when the epoch starts, not lazily per batch.
        order = self.rng.permutation(n) if self.shuffle else None
        self.epoch += 1
        return self._batches(order, n)

    def _batches(self, order, n):
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, n)
            idx = slice(start, stop) if order is None else order[start:stop]
            xb = self.x[idx]
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb if self.y is None else (xb, self.y[idx])


def train_val_split(x, y, val_fraction: float = 0.1, seed=0, stratify: bool = False):
    """Splits (x, y) at random into a training and a validation part.

    Args:
        x, y: arrays with N examples along axis 0.
        val_fraction: in [0, 1); the validation part gets round(N * val_fraction) examples.
        seed: int, None or np.random.Generator.
        stratify: keep every class's share of y in both parts. Each class c with n_c examples
            gives floor(n_c * val_fraction) or one more to validation, the extra ones going
            to the classes with the largest remainders, so the total is still
            round(N * val_fraction) and no class is off by more than one.

    Returns:
        (x_train, y_train, x_val, y_val), each part in random order.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"train_val_split: x has {len(x)} examples but y has {len(y)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in [0, 1), got {val_fraction!r}")
    rng = _as_generator(seed)
    n = len(x)
    n_val = int(round(n * val_fraction))
    if not stratify:
        order = rng.permutation(n)
        val_idx, train_idx = order[:n_val], order[n_val:]
    else:
        classes, inverse = np.unique(y, return_inverse=True)
        inverse = inverse.reshape(-1)
        counts = np.bincount(inverse, minlength=len(classes))
        exact = counts * val_fraction
        quota = np.floor(exact).astype(np.int64)
        # Largest remainders get the rest (stable sort: ties go to the smaller class label).
        extra = n_val - int(quota.sum())
        if extra > 0:
            quota[np.argsort(-(exact - quota), kind="stable")[:extra]] += 1
        val_parts, train_parts = [], []
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(inverse == c))
            val_parts.append(members[: quota[c]])
            train_parts.append(members[quota[c]:])
        val_idx = rng.permutation(np.concatenate(val_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


class Standardize:
    """x -> (x - mean) / std with statistics fitted on training data (torchvision ``Normalize``).

    Args:
        mean, std: arrays that broadcast against a batch (e.g. (1, C, 1, 1)); see ``fit``.

    A zero std (a constant channel or feature) is replaced by 1, so that channel is only
    centred, never divided by zero. Output is float32 for integer input, the input's float
    dtype otherwise.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean)
        std = np.asarray(std)
        self.std = np.where(std > 0, std, 1).astype(std.dtype)

    @classmethod
    def fit(cls, x, per_channel: bool = True) -> "Standardize":
        """Mean and std of x (computed in float64): per index of axis 1 (the channels of NCHW,
        the features of (N, F)) when per_channel, over everything otherwise."""
        x = np.asarray(x)
        if x.ndim < 2 and per_channel:
            raise ValueError(f"Standardize.fit: per-channel statistics need x with >= 2 dims, got shape {x.shape}")
        axes = tuple(a for a in range(x.ndim) if a != 1) if per_channel else tuple(range(x.ndim))
        mean = x.mean(axis=axes, dtype=np.float64, keepdims=True)
        std = x.std(axis=axes, dtype=np.float64, keepdims=True)
        if not per_channel:
            mean, std = mean.reshape(()), std.reshape(())
        return cls(mean, std)

    def __call__(self, x):
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        # Statistics cast to the output dtype: a float32 batch never makes a float64 temporary.
        return ((x - self.mean.astype(dtype)) / self.std.astype(dtype)).astype(dtype, copy=False)

    def inverse(self, x):
        """Undoes the transform: x * std + mean."""
        x = np.asarray(x)
        return (x * self.std + self.mean).astype(x.dtype if x.dtype.kind == "f" else np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Standardize(mean={np.squeeze(self.mean)}, std={np.squeeze(self.std)})"


def standardize(train, *others, per_channel: bool = True):
    """Standardises ``train`` with its own statistics and each of ``others`` with the same ones.

    >>> x_tr, x_val, x_te = standardize(x_tr, x_val, x_te)     # doctest: +SKIP

    Returns a tuple (train, *others) of standardised arrays; keep ``Standardize.fit(train)``
    when the statistics are needed later (e.g. for inference).
    """
    norm = Standardize.fit(train, per_channel=per_channel)
    return tuple(norm(a) for a in (train, *others))

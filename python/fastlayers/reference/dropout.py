"""Reference inverted dropout, with the generator of the CPU kernel (bit-identical masks).

    y = x * keep / (1 - p)        dx = dout * keep / (1 - p)

(y = 0 wherever keep is 0, even for a NaN x; y = 0 everywhere when p == 1.) Whether
element i of the C-order flattening is kept depends only on (seed, i):

    mix64(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
                z *= 0x94D049BB133111EB; z ^= z >> 31          (uint64, wrapping)
    key       = mix64(seed ^ 0x6A09E667F3BCC909)
    h_j       = mix64(key + (j + 1) * 0x9E3779B97F4A7C15)      (SplitMix64's j-th output)
    u_i       = low 32 bits of h_j if r < 32 else high 32 bits of h_j,
                with r = i % 64, j = 32 (i // 64) + r % 32   (blocks of 64 elements)
    keep_i    = u_i >= floor(p * 2^32)                          (P(keep) = 1 - p, to 2^-32)

training=False or p == 0 is the identity: the input itself is returned.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["dropout", "dropout_forward", "dropout_backward", "dropout_mask", "draw_seed"]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_SALT = 0x6A09E667F3BCC909


def _mix64(z):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _mix64_int(z: int) -> int:
    """The same on one Python int."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def draw_seed() -> int:
    """A seed from NumPy's global generator (reproducible after ``np.random.seed``)."""
    return int(np.random.randint(0, 2**63, dtype=np.int64))


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed: expected an integer in [0, 2**64) or None, got bool")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed: expected an integer in [0, 2**64) or None, got {type(seed).__name__}") from None
    if not 0 <= seed <= _MASK64:
        raise ValueError(f"seed: expected an integer in [0, 2**64), got {seed}")
    return seed


def _check_p(p) -> float:
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"p: expected a real number in [0, 1], got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    return p


def dropout_mask(shape, p: float, seed: int) -> np.ndarray:
    """Boolean keep-mask of the given shape for (p, seed), as the kernels draw it."""
    p = _check_p(p)
    seed = _check_seed(seed)
    n = math.prod(shape) if isinstance(shape, tuple) else int(shape)
    key = np.uint64(_mix64_int(seed ^ _SALT))
    blocks = -(-n // 64)
    j = np.arange(32 * blocks, dtype=np.uint64)
    h = _mix64(key + (j + np.uint64(1)) * np.uint64(_GAMMA)).reshape(blocks, 32)
    # Block b's elements 0..31 take the low halves of its 32 hashes, 32..63 the high.
    u = np.concatenate([h & np.uint64(0xFFFFFFFF), h >> np.uint64(32)], axis=1).reshape(-1)
    threshold = math.floor(p * 2.0**32)  # exact: a power-of-two scaling
    return (u[:n] >= np.uint64(threshold)).reshape(shape)


def dropout_forward(x, p=0.5, training=True, seed=None):
    """y = x * keep / (1 - p) (a select: dropped elements are 0). Returns (out, cache);
    cache = (keep, scale), or None for the identity (training=False or p == 0)."""
    x = np.asarray(x)
    p = _check_p(p)
    if not training or p == 0.0:
        return x, None
    seed = draw_seed() if seed is None else _check_seed(seed)
    keep = dropout_mask(x.shape, p, seed)
    scale = x.dtype.type(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    return np.where(keep, x * scale, x.dtype.type(0)), (keep, scale)


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p) (dout itself for the identity)."""
    dout = np.asarray(dout)
    if cache is None:
        return (dout,)
    keep, scale = cache
    return (np.where(keep, dout * scale, dout.dtype.type(0)),)


def dropout(x, p=0.5, training=True, seed=None):
    return dropout_forward(x, p, training, seed)[0]

"""Inverted dropout on float32 arrays, seeded and reproducible.

``dropout(x, p=0.5, training=True, seed=None)`` like torch.nn.functional.dropout: each
element is zeroed with probability p and the kept ones are scaled by 1 / (1 - p), so
the expected output is x. Element i of the C-order flattening is kept or dropped as a
function of (seed, i) alone (a counter-based generator: SplitMix64 of the index, see
fastlayers.reference.dropout): the same seed gives the same mask for any thread count,
SIMD path or backend ("cpu", "reference" and the CUDA kernel on CuPy arrays give
bit-identical masks). ``seed=None``
draws one from NumPy's global generator (``np.random.seed`` makes it reproducible).

- p in [0, 1]; p == 1 gives zeros. Dropped elements are exactly 0 even if x is NaN.
- training=False or p == 0: the identity, returning ``x`` itself (no copy, as PyTorch);
  backward then returns ``dout`` itself.
- The cache keeps only (seed, p, shape): backward regenerates the mask, which costs no
  memory and less time than reading a stored one.
"""

from __future__ import annotations


from fastlayers import reference as _ref
from fastlayers.ops._checks import check_array, check_flag
from fastlayers.ops._device import device_of, placement
from fastlayers.reference.dropout import _check_p, _check_seed, draw_seed

__all__ = ["dropout", "dropout_forward", "dropout_backward"]


class _DropoutCache:
    __slots__ = ("backend", "shape", "seed", "p", "ref")

    def __init__(self, backend, shape, seed, p, ref=None):
        self.backend = backend
        self.shape = shape
        self.seed = seed  # None for the identity
        self.p = p
        self.ref = ref

    def __repr__(self):
        return f"<dropout_forward cache, backend={self.backend!r}, shape={self.shape}, p={self.p}, seed={self.seed}>"


def dropout_forward(x, p=0.5, training=True, seed=None, *, backend=None):
    """Inverted dropout: y = x * keep / (1 - p). Returns (out, cache).

    x: float32 array, any shape. p: drop probability in [0, 1] (ValueError otherwise).
    seed: None (drawn from NumPy's global generator) or an integer in [0, 2**64).
    """
    x = check_array(x, "x", device=True)
    p = _check_p(p)
    training = check_flag(training, "training")
    seed = None if seed is None else _check_seed(seed)
    dev, backend = placement(backend, x=x)
    if not training or p == 0.0:
        return x, _DropoutCache(backend, x.shape, None, p)
    if seed is None:
        seed = draw_seed()
    if backend == "reference":
        out, ref_cache = _ref.dropout_forward(x, p, True, seed)
        return out, _DropoutCache(backend, x.shape, seed, p, ref_cache)
    x = dev.contiguous(x)
    out = dev.empty(x.shape)
    dev.run("dropout_apply", out, x, seed, p)
    return out, _DropoutCache(backend, x.shape, seed, p)


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p), with the forward's mask. Returns (dx,)."""
    if not isinstance(cache, _DropoutCache):
        raise TypeError(f"cache: expected the cache returned by dropout_forward, got {type(cache).__name__}")
    dout = check_array(dout, "dout", device=True)
    if dout.shape != cache.shape:
        raise ValueError(f"dout: expected shape {cache.shape} (the forward output's), got {dout.shape}")
    if cache.seed is None:
        return (dout,)
    if cache.backend == "reference":
        return _ref.dropout_backward(dout, cache.ref)
    dev = device_of(dout=dout)
    dout = dev.contiguous(dout)
    dx = dev.empty(dout.shape)
    dev.run("dropout_apply", dx, dout, cache.seed, cache.p)
    return (dx,)


def dropout(x, p=0.5, training=True, seed=None, *, backend=None):
    """Inverted dropout, forward only (see dropout_forward)."""
    return dropout_forward(x, p, training, seed, backend=backend)[0]

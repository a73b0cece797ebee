"""Element-wise activations and the residual add: forward and backward on float32 arrays.

Every op takes a float32 array of any shape (0-size included; non-contiguous input is
copied once) and follows PyTorch (``torch.nn.functional.<name>``, same defaults):

    relu, leaky_relu(negative_slope=0.01), sigmoid, tanh,
    gelu(approximate="none" | "tanh"), softplus(beta=1, threshold=20), elu(alpha=1),
    add(a, b)  (a + b, the residual connection)

For each: ``<op>(...)`` (forward only), ``<op>_forward(...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> (dx,)`` (``(da, db)`` for add). ``backend=None`` or
``"cpu"`` runs the C++ kernels, ``"reference"`` the NumPy reference; backward runs on
the backend its forward ran on. The cache is opaque. What it keeps:

- relu, leaky_relu: a packed bit mask of x > 0 (n/8 bytes; backward then streams
  dout + n/8 bytes instead of dout + x: about a third less memory traffic);
- sigmoid, tanh: a reference to the output ``out``;
- gelu, softplus, elu: a reference to the input ``x``.

Do not modify a referenced array in place between forward and backward.
Accuracy of the CPU kernels: within a few 1e-7 (absolute, and relative away from 0) of
the float64 values; no overflow to inf/NaN for finite inputs of any magnitude.
"""

from __future__ import annotations

import numpy as np

from fastlayers import reference as _ref
from fastlayers.ops._checks import check_array, check_scalar
from fastlayers.ops._device import device_of, placement

__all__ = [
    "relu", "relu_forward", "relu_backward",
    "leaky_relu", "leaky_relu_forward", "leaky_relu_backward",
    "sigmoid", "sigmoid_forward", "sigmoid_backward",
    "tanh", "tanh_forward", "tanh_backward",
    "gelu", "gelu_forward", "gelu_backward",
    "softplus", "softplus_forward", "softplus_backward",
    "elu", "elu_forward", "elu_backward",
    "add", "add_forward", "add_backward",
]

# Kernel ids: the values of fastlayers::Activation (csrc/cpu/activation.h).
_RELU, _LEAKY_RELU, _SIGMOID, _TANH, _GELU, _GELU_TANH, _SOFTPLUS, _ELU = range(8)
_MASKED = (_RELU, _LEAKY_RELU)        # backward reads a packed mask of x > 0
_FROM_OUTPUT = (_SIGMOID, _TANH)      # backward reads the output
# every other kind: backward reads the input


class _Cache:
    """What backward needs: the op, the backend and what forward saved."""

    __slots__ = ("op", "backend", "shape", "kind", "params", "saved", "mask", "ref")

    def __init__(self, op, backend, shape, kind=None, params=(0.0, 1.0, 20.0), saved=None, mask=None, ref=None):
        self.op = op
        self.backend = backend
        self.shape = shape
        self.kind = kind
        self.params = params
        self.saved = saved
        self.mask = mask
        self.ref = ref

    def __repr__(self):
        return f"<{self.op}_forward cache, backend={self.backend!r}, shape={self.shape}>"


def _check_cache(cache, op: str) -> _Cache:
    if not isinstance(cache, _Cache):
        raise TypeError(f"cache: expected the cache returned by {op}_forward, got {type(cache).__name__}")
    if cache.op != op:
        raise ValueError(f"cache: expected the cache returned by {op}_forward, got one from {cache.op}_forward")
    return cache


def _check_dout(dout, cache: _Cache) -> np.ndarray:
    dout = check_array(dout, "dout", device=True)
    if dout.shape != cache.shape:
        raise ValueError(f"dout: expected shape {cache.shape} (the forward output's), got {dout.shape}")
    return dout


def _forward(op, x, backend, kind, params, ref_fn, ref_args, need_cache=True):
    """Shared body of every activation's forward."""
    x = check_array(x, "x", device=True)
    dev, backend = placement(backend, x=x)
    if backend == "reference":
        out, ref_cache = ref_fn(x, *ref_args)
        return out, _Cache(op, backend, x.shape, ref=ref_cache)
    x = dev.contiguous(x)
    out = dev.empty(x.shape)
    mask = None
    if need_cache and kind in _MASKED:
        mask = dev.empty(((x.size + 7) // 8,), np.uint8)
    dev.run("activation_forward", out, mask, x, kind, *params)
    if not need_cache:
        return out, None
    saved = out if kind in _FROM_OUTPUT else (None if kind in _MASKED else x)
    return out, _Cache(op, backend, x.shape, kind, params, saved, mask)


def _backward(op, dout, cache, ref_fn):
    """Shared body of every activation's backward."""
    cache = _check_cache(cache, op)
    dout = _check_dout(dout, cache)
    if cache.backend == "reference":
        return ref_fn(dout, cache.ref)
    dev = device_of(dout=dout, saved=cache.saved, mask=cache.mask)
    dout = dev.contiguous(dout)
    dx = dev.empty(dout.shape)
    dev.run("activation_backward", dx, dout, cache.saved, cache.mask, cache.kind, *cache.params)
    return (dx,)


# --- relu -------------------------------------------------------------------------

def relu_forward(x, *, backend=None):
    """y = max(x, 0) (NaN propagates), like torch.relu. Returns (out, cache)."""
    return _forward("relu", x, backend, _RELU, (0.0, 1.0, 20.0), _ref.relu_forward, ())


def relu_backward(dout, cache):
    """dx = dout * [x > 0] (0 at x == 0). Returns (dx,)."""
    return _backward("relu", dout, cache, _ref.relu_backward)


def relu(x, *, backend=None):
    """max(x, 0), forward only."""
    return _forward("relu", x, backend, _RELU, (0.0, 1.0, 20.0), _ref.relu_forward, (), need_cache=False)[0]


# --- leaky_relu ---------------------------------------------------------------------

def _slope(negative_slope) -> float:
    return check_scalar(negative_slope, "negative_slope")


def leaky_relu_forward(x, negative_slope=0.01, *, backend=None):
    """y = x where x > 0, negative_slope * x elsewhere. Returns (out, cache)."""
    s = _slope(negative_slope)
    return _forward("leaky_relu", x, backend, _LEAKY_RELU, (s, 1.0, 20.0), _ref.leaky_relu_forward, (s,))


def leaky_relu_backward(dout, cache):
    """dx = dout where x > 0, negative_slope * dout elsewhere. Returns (dx,)."""
    return _backward("leaky_relu", dout, cache, _ref.leaky_relu_backward)


def leaky_relu(x, negative_slope=0.01, *, backend=None):
    s = _slope(negative_slope)
    return _forward("leaky_relu", x, backend, _LEAKY_RELU, (s, 1.0, 20.0), _ref.leaky_relu_forward, (s,),
                    need_cache=False)[0]


# --- sigmoid ------------------------------------------------------------------------

def sigmoid_forward(x, *, backend=None):
    """y = 1 / (1 + e^-x). Returns (out, cache); the cache references out."""
    return _forward("sigmoid", x, backend, _SIGMOID, (0.0, 1.0, 20.0), _ref.sigmoid_forward, ())


def sigmoid_backward(dout, cache):
    """dx = dout * y * (1 - y). Returns (dx,)."""
    return _backward("sigmoid", dout, cache, _ref.sigmoid_backward)


def sigmoid(x, *, backend=None):
    return _forward("sigmoid", x, backend, _SIGMOID, (0.0, 1.0, 20.0), _ref.sigmoid_forward, (), need_cache=False)[0]


# --- tanh ---------------------------------------------------------------------------

def tanh_forward(x, *, backend=None):
    """y = tanh(x). Returns (out, cache); the cache references out."""
    return _forward("tanh", x, backend, _TANH, (0.0, 1.0, 20.0), _ref.tanh_forward, ())


def tanh_backward(dout, cache):
    """dx = dout * (1 - y^2). Returns (dx,)."""
    return _backward("tanh", dout, cache, _ref.tanh_backward)


def tanh(x, *, backend=None):
    return _forward("tanh", x, backend, _TANH, (0.0, 1.0, 20.0), _ref.tanh_forward, (), need_cache=False)[0]


# --- gelu ---------------------------------------------------------------------------

def _gelu_kind(approximate) -> int:
    if approximate == "none":
        return _GELU
    if approximate == "tanh":
        return _GELU_TANH
    raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")


def gelu_forward(x, approximate="none", *, backend=None):
    """GELU, like torch.nn.functional.gelu: x Phi(x) (exact, through erf) or, with
    approximate="tanh", x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Returns (out, cache)."""
    kind = _gelu_kind(approximate)
    return _forward("gelu", x, backend, kind, (0.0, 1.0, 20.0), _ref.gelu_forward, (approximate,))


def gelu_backward(dout, cache):
    """dx = dout * gelu'(x). Returns (dx,)."""
    return _backward("gelu", dout, cache, _ref.gelu_backward)


def gelu(x, approximate="none", *, backend=None):
    kind = _gelu_kind(approximate)
    return _forward("gelu", x, backend, kind, (0.0, 1.0, 20.0), _ref.gelu_forward, (approximate,),
                    need_cache=False)[0]


# --- softplus -----------------------------------------------------------------------

def _softplus_params(beta, threshold):
    beta = check_scalar(beta, "beta")
    threshold = check_scalar(threshold, "threshold")
    if beta == 0.0 or not np.isfinite(beta):
        raise ValueError(f"beta: expected a finite nonzero number, got {beta}")
    return beta, threshold


def softplus_forward(x, beta=1.0, threshold=20.0, *, backend=None):
    """y = log(1 + e^(beta x)) / beta, and y = x where beta x > threshold (PyTorch's
    linear region). Returns (out, cache)."""
    beta, threshold = _softplus_params(beta, threshold)
    return _forward("softplus", x, backend, _SOFTPLUS, (0.0, beta, threshold), _ref.softplus_forward,
                    (beta, threshold))


def softplus_backward(dout, cache):
    """dx = dout * sigmoid(beta x) (dout where beta x > threshold). Returns (dx,)."""
    return _backward("softplus", dout, cache, _ref.softplus_backward)


def softplus(x, beta=1.0, threshold=20.0, *, backend=None):
    beta, threshold = _softplus_params(beta, threshold)
    return _forward("softplus", x, backend, _SOFTPLUS, (0.0, beta, threshold), _ref.softplus_forward,
                    (beta, threshold), need_cache=False)[0]


# --- elu ----------------------------------------------------------------------------

def elu_forward(x, alpha=1.0, *, backend=None):
    """y = x where x > 0, alpha (e^x - 1) elsewhere. Returns (out, cache)."""
    a = check_scalar(alpha, "alpha")
    return _forward("elu", x, backend, _ELU, (a, 1.0, 20.0), _ref.elu_forward, (a,))


def elu_backward(dout, cache):
    """dx = dout where x > 0, dout * alpha e^x elsewhere. Returns (dx,)."""
    return _backward("elu", dout, cache, _ref.elu_backward)


def elu(x, alpha=1.0, *, backend=None):
    a = check_scalar(alpha, "alpha")
    return _forward("elu", x, backend, _ELU, (a, 1.0, 20.0), _ref.elu_forward, (a,), need_cache=False)[0]


# --- add (residual connection) ------------------------------------------------------

def add_forward(a, b, *, backend=None):
    """y = a + b for two float32 arrays of the same shape (no broadcasting: a residual
    connection adds two activations of one shape). Returns (out, cache)."""
    a = check_array(a, "a", device=True)
    b = check_array(b, "b", device=True)
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a {a.shape}, got {b.shape}")
    dev, backend = placement(backend, a=a, b=b)
    if backend == "reference":
        out, ref_cache = _ref.add_forward(a, b)
        return out, _Cache("add", backend, a.shape, ref=ref_cache)
    out = dev.empty(a.shape)
    dev.run("add_forward", out, dev.contiguous(a), dev.contiguous(b))
    return out, _Cache("add", backend, a.shape)


def add_backward(dout, cache):
    """(da, db) = (dout, dout). da is ``dout`` itself (no copy); db is a fresh copy, so
    the two never alias each other and the caller may modify either (modifying da
    modifies dout)."""
    cache = _check_cache(cache, "add")
    dout = _check_dout(dout, cache)
    if cache.backend == "reference":
        return _ref.add_backward(dout, cache.ref)
    return dout, dout.copy()


def add(a, b, *, backend=None):
    return add_forward(a, b, backend=backend)[0]

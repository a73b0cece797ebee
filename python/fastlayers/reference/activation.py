"""Reference element-wise activations and the residual add (PyTorch semantics).

Every op works on arrays of any shape and in the dtype it is given (float32 or float64;
float64 for gradient checks). ``<op>_forward`` returns ``(out, cache)``;
``<op>_backward(dout, cache)`` returns ``(dx,)`` (``(da, db)`` for ``add``). The cache
holds the input ``x`` (or the output, where the derivative is a function of it): do not
modify those arrays in place between forward and backward.

Formulas (torch.nn.functional names and defaults):

    relu(x)          = max(x, 0)                        relu'        = [x > 0]
    leaky_relu(x, s) = x if x > 0 else s x              leaky_relu'  = 1 if x > 0 else s
    sigmoid(x)       = 1 / (1 + e^-x)                   sigmoid'     = y (1 - y)
    tanh(x)                                             tanh'        = 1 - y^2
    gelu(x)          = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
                                                        gelu'        = Phi(x) + x phi(x)
    gelu(x, "tanh")  = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
                                                        gelu'        = (1 + t)/2 + x/2 (1 - t^2) u'
    softplus(x, b, T)= x if b x > T else log(1 + e^(b x)) / b
                                                        softplus'    = 1 if b x > T else sigmoid(b x)
    elu(x, a)        = x if x > 0 else a (e^x - 1)      elu'         = 1 if x > 0 else a e^x
    add(a, b)        = a + b                            (da, db)     = (dout, dout)

with phi the standard normal density. At the kinks (x == 0) the derivative is the one
PyTorch uses: relu' = 0, leaky_relu' = s, elu' = a. Every formula is evaluated in a form
that does not overflow (sigmoid and softplus through e^-|x|).
"""

from __future__ import annotations

import math

import numpy as np

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

def _erf(x):
    """erf, exact to double precision: scipy's when installed (fast), else math.erf.

    Imported on first use: scipy costs ~0.2 s at import, which `import fastlayers`
    should not pay.
    """
    global _erf
    try:
        from scipy.special import erf as impl
    except ImportError:  # pragma: no cover - depends on the environment
        impl = np.vectorize(math.erf, otypes=[np.float64])
    _erf = impl
    return impl(x)


def _float(x) -> np.ndarray:
    """x as a floating array (integers become float64)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Through e^-|x| so that neither tail overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


# --- relu -------------------------------------------------------------------------

def relu_forward(x):
    """y = max(x, 0) (NaN propagates). Cache: x."""
    x = _float(x)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout * [x > 0] (0 at x == 0, as in PyTorch)."""
    x = cache
    return (np.where(x > 0, dout, 0).astype(x.dtype, copy=False),)


def relu(x):
    return relu_forward(x)[0]


# --- leaky_relu ---------------------------------------------------------------------

def leaky_relu_forward(x, negative_slope=0.01):
    """y = x where x > 0, negative_slope * x elsewhere. Cache: (x, negative_slope)."""
    x = _float(x)
    s = x.dtype.type(negative_slope)
    return np.where(x > 0, x, x * s), (x, s)


def leaky_relu_backward(dout, cache):
    """dx = dout where x > 0, negative_slope * dout elsewhere (including x == 0)."""
    x, s = cache
    return (np.where(x > 0, dout, dout * s).astype(x.dtype, copy=False),)


def leaky_relu(x, negative_slope=0.01):
    return leaky_relu_forward(x, negative_slope)[0]


# --- sigmoid ------------------------------------------------------------------------

def sigmoid_forward(x):
    """y = 1 / (1 + e^-x). Cache: y."""
    y = _sigmoid(_float(x))
    return y, y


def sigmoid_backward(dout, cache):
    """dx = dout * y * (1 - y)."""
    y = cache
    return (dout * y * (1 - y),)


def sigmoid(x):
    return sigmoid_forward(x)[0]


# --- tanh ---------------------------------------------------------------------------

def tanh_forward(x):
    """y = tanh(x). Cache: y."""
    y = np.tanh(_float(x))
    return y, y


def tanh_backward(dout, cache):
    """dx = dout * (1 - y^2)."""
    y = cache
    return (dout * (1 - y * y),)


def tanh(x):
    return tanh_forward(x)[0]


# --- gelu ---------------------------------------------------------------------------

_GELU_BETA = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")


def gelu_forward(x, approximate="none"):
    """GELU. approximate="none": y = x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2;
    approximate="tanh": y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    Computed in float64, returned in x's dtype. Cache: (x, approximate)."""
    _check_approximate(approximate)
    x = _float(x)
    xd = x.astype(np.float64)
    if approximate == "none":
        y = 0.5 * xd * (1 + _erf(xd / math.sqrt(2.0)))
    else:
        y = 0.5 * xd * (1 + np.tanh(_GELU_BETA * (xd + _GELU_KAPPA * xd**3)))
    return y.astype(x.dtype), (x, approximate)


def gelu_backward(dout, cache):
    """approximate="none": dx = dout (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi);
    approximate="tanh": dx = dout ((1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)),
    t = tanh(sqrt(2/pi) (x + 0.044715 x^3))."""
    x, approximate = cache
    xd = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if approximate == "none":
            cdf = 0.5 * (1 + _erf(xd / math.sqrt(2.0)))
            pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
            g = cdf + xd * pdf
        else:
            t = np.tanh(_GELU_BETA * (xd + _GELU_KAPPA * xd**3))
            sech2 = 1 - t * t
            right = 0.5 * xd * sech2 * _GELU_BETA * (1 + 3 * _GELU_KAPPA * xd * xd)
            g = 0.5 * (1 + t) + np.where(sech2 == 0, 0.0, right)
    return ((np.asarray(dout, dtype=np.float64) * g).astype(x.dtype),)


def gelu(x, approximate="none"):
    return gelu_forward(x, approximate)[0]


# --- softplus -----------------------------------------------------------------------

def softplus_forward(x, beta=1.0, threshold=20.0):
    """y = x where beta x > threshold, else log(1 + e^(beta x)) / beta, evaluated as
    (max(z, 0) + log1p(e^-|z|)) / beta with z = beta x (no overflow). Cache: (x, beta, threshold)."""
    x = _float(x)
    z = x * x.dtype.type(beta)
    sp = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / x.dtype.type(beta)
    return np.where(z > threshold, x, sp).astype(x.dtype, copy=False), (x, beta, threshold)


def softplus_backward(dout, cache):
    """dx = dout where beta x > threshold, else dout * sigmoid(beta x)."""
    x, beta, threshold = cache
    z = x * x.dtype.type(beta)
    return (np.where(z > threshold, dout, dout * _sigmoid(z)).astype(x.dtype, copy=False),)


def softplus(x, beta=1.0, threshold=20.0):
    return softplus_forward(x, beta, threshold)[0]


# --- elu ----------------------------------------------------------------------------

def elu_forward(x, alpha=1.0):
    """y = x where x > 0, alpha (e^x - 1) elsewhere (expm1, exact near 0). Cache: (x, alpha)."""
    x = _float(x)
    a = x.dtype.type(alpha)
    neg = a * np.expm1(np.minimum(x, 0))
    return np.where(x > 0, x, neg), (x, a)


def elu_backward(dout, cache):
    """dx = dout where x > 0, dout * alpha e^x elsewhere (alpha at x == 0)."""
    x, a = cache
    return (np.where(x > 0, dout, dout * a * np.exp(np.minimum(x, 0))).astype(x.dtype, copy=False),)


def elu(x, alpha=1.0):
    return elu_forward(x, alpha)[0]


# --- add (residual connection) ------------------------------------------------------

def add_forward(a, b):
    """y = a + b (same shapes). Cache: None."""
    a = _float(a)
    b = _float(b)
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a {a.shape}, got {b.shape}")
    return a + b, None


def add_backward(dout, cache):
    """(da, db) = (dout, dout): da is dout itself, db a copy (they never alias each other)."""
    dout = np.asarray(dout)
    return dout, dout.copy()


def add(a, b):
    return add_forward(a, b)[0]

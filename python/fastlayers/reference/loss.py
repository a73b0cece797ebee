"""Reference softmax, log-softmax and losses: the specification of fastlayers.ops.loss.

Plain NumPy in the dtype it is given (float64 for gradient checks). Conventions shared
by every function here:

- ``<op>_forward(...) -> (out, cache)`` and ``<op>_backward(dout, cache) -> tuple``
  with one gradient per differentiable input, in argument order.
- Losses return the loss as a Python ``float`` (a double: the mean or sum is exact to
  double precision even for float32 inputs). Their backward takes the scalar upstream
  gradient ``dout`` (default 1.0), so ``loss_backward(cache)``, ``loss_backward(1.0,
  cache)`` and ``loss_backward(cache=cache)`` all work.
- ``reduction="mean"`` (default) or ``"sum"`` over the per-element (per-sample) losses.
- NaN in an input propagates: a NaN (or +inf) logit makes its whole softmax row NaN and
  the loss NaN; ``-inf`` logits get probability 0 (a row of only -inf is NaN), as in
  PyTorch.

Caches are tuples whose first element is the op name.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "binary_cross_entropy_with_logits_forward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_forward",
    "mse_loss",
    "mse_loss_backward",
    "mse_loss_forward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "softmax_forward",
]

REDUCTIONS = ("mean", "sum")


# ---------------------------------------------------------------------------
# Argument helpers (also used by fastlayers.ops.loss, so that both backends accept the
# same labels and reductions).
# ---------------------------------------------------------------------------


def _labels_as_int64(labels, n: int, c: int) -> np.ndarray:
    """labels as a C-contiguous int64 (n,) array with every value in [0, c).

    Any integer dtype is accepted (int8..int64, uint8..uint64) and converted to int64;
    bool and floating dtypes are a TypeError; a wrong shape or a value outside [0, c) is
    a ValueError naming the first offending value and its index.
    """
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels: expected a numpy.ndarray of integers, got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels: expected an integer dtype (class indices), got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"labels: expected shape ({n},) to match logits' {n} rows, got {labels.shape}")
    if n:
        # Compared in the labels' own dtype, so no uint64 value wraps before the check.
        if labels.min() < 0 or labels.max() >= c:
            i = int(np.flatnonzero((labels < 0) | (labels >= c))[0])
            raise ValueError(f"labels: value {labels[i]} at index {i} is outside [0, {c}) for {c} classes")
    return np.ascontiguousarray(labels, dtype=np.int64)


def _reduction_scale(reduction, count: int) -> float:
    """The factor turning a sum of ``count`` terms into the requested reduction."""
    if reduction == "mean":
        return 1.0 / count
    if reduction == "sum":
        return 1.0
    raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")


def _split_dout_cache(dout, cache, op: str):
    """(dout, cache) for a loss backward called as (cache), (dout, cache) or (cache=...)."""
    if cache is None and isinstance(dout, tuple):
        dout, cache = 1.0, dout
    if not isinstance(cache, tuple) or not cache or cache[0] != op:
        raise TypeError(f"cache: expected the cache returned by {op}_forward")
    return dout, cache


# ---------------------------------------------------------------------------
# Softmax and log-softmax
# ---------------------------------------------------------------------------


def softmax_forward(x, axis=-1):
    """y = softmax(x) along ``axis`` (PyTorch's ``dim``), any rank.

        y_i = exp(x_i - m) / sum_j exp(x_j - m),   m = max_j x_j

    Subtracting the maximum m changes nothing mathematically and keeps every exp <= 1
    (no overflow for large logits). Returns (y, cache).
    """
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # initial: empty axes are fine
    e = np.exp(x - m)
    y = e / np.sum(e, axis=axis, keepdims=True)
    return y, ("softmax", y, axis)


def softmax_backward(dout, cache):
    """(dx,) with dx = y * (dout - sum(dout * y)), the sum along the softmax axis.

    From dy_i/dx_j = y_i (delta_ij - y_j): dx_j = sum_i dout_i y_i (delta_ij - y_j).
    """
    _, y, axis = cache
    dout = np.asarray(dout)
    s = np.sum(dout * y, axis=axis, keepdims=True)
    return (y * (dout - s),)


def softmax(x, axis=-1):
    """softmax(x) along ``axis``; see softmax_forward."""
    return softmax_forward(x, axis)[0]


def log_softmax_forward(x, axis=-1):
    """y = log_softmax(x) along ``axis``, any rank.

        y_i = (x_i - m) - log sum_j exp(x_j - m),   m = max_j x_j   (log-sum-exp)

    Returns (y, cache).
    """
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    shifted = x - m
    with np.errstate(divide="ignore"):  # log(0) only for an empty axis (no output)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return y, ("log_softmax", y, axis)


def log_softmax_backward(dout, cache):
    """(dx,) with dx = dout - exp(y) * sum(dout), the sum along the axis (exp(y) = softmax)."""
    _, y, axis = cache
    dout = np.asarray(dout)
    return (dout - np.exp(y) * np.sum(dout, axis=axis, keepdims=True),)


def log_softmax(x, axis=-1):
    """log_softmax(x) along ``axis``; see log_softmax_forward."""
    return log_softmax_forward(x, axis)[0]


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def softmax_cross_entropy_forward(logits, labels, reduction="mean"):
    """Cross-entropy of softmax(logits) against integer class labels.

    logits: (N, C); labels: (N,) integers in [0, C) (any integer dtype).

        loss_i = -log_softmax(logits)_i[labels_i] = logsumexp(logits_i) - logits_i[labels_i]
        loss   = (1/N) sum_i loss_i    (reduction="mean")   or   sum_i loss_i   ("sum")

    Returns (loss as a Python float, cache). Same as torch.nn.functional.cross_entropy.
    """
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"logits: expected at least one row and one class, got shape {logits.shape}")
    labels = _labels_as_int64(labels, n, c)
    scale = _reduction_scale(reduction, n)
    logp = log_softmax(logits, axis=1)
    loss = -np.sum(logp[np.arange(n), labels]) * scale
    return float(loss), ("softmax_cross_entropy", np.exp(logp), labels, scale)


def softmax_cross_entropy_backward(dout=1.0, cache=None):
    """(dlogits,) with dlogits = dout * scale * (softmax(logits) - onehot(labels)).

    scale is 1/N for the mean, 1 for the sum.
    """
    dout, cache = _split_dout_cache(dout, cache, "softmax_cross_entropy")
    _, p, labels, scale = cache
    g = p.copy()
    g[np.arange(len(labels)), labels] -= 1.0
    return (g * (float(dout) * scale),)


def softmax_cross_entropy(logits, labels, reduction="mean"):
    """The loss only; see softmax_cross_entropy_forward."""
    return softmax_cross_entropy_forward(logits, labels, reduction)[0]


def binary_cross_entropy_with_logits_forward(logits, targets, reduction="mean"):
    """Multi-label binary cross-entropy of sigmoid(logits) against targets, any shape.

        l = -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]
          = max(x, 0) - x t + log(1 + exp(-|x|))          (stable form; no overflow)
        loss = mean(l)  (reduction="mean")   or   sum(l)  ("sum")

    Targets are usually in [0, 1]; other values are not refused (PyTorch does not
    either) and simply enter the formula. Returns (loss as a Python float, cache).
    Same as torch.nn.functional.binary_cross_entropy_with_logits.
    """
    x = np.asarray(logits)
    t = np.asarray(targets)
    if x.shape != t.shape:
        raise ValueError(f"targets: expected shape {x.shape} to match logits, got {t.shape}")
    if x.size == 0:
        raise ValueError(f"logits: expected at least one element, got shape {x.shape}")
    scale = _reduction_scale(reduction, x.size)
    l = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return float(np.sum(l) * scale), ("binary_cross_entropy_with_logits", x, t, scale)


def binary_cross_entropy_with_logits_backward(dout=1.0, cache=None, *, need_dtargets=True):
    """(dlogits, dtargets):

        dlogits  = dout * scale * (sigmoid(x) - t)
        dtargets = -dout * scale * x

    scale is 1/numel for the mean, 1 for the sum. dtargets is None when
    ``need_dtargets`` is false (targets are usually constants).
    """
    dout, cache = _split_dout_cache(dout, cache, "binary_cross_entropy_with_logits")
    _, x, t, scale = cache
    g = float(dout) * scale
    sig = np.exp(-np.logaddexp(0, -x))  # 1 / (1 + exp(-x)) without overflow
    return (g * (sig - t), -g * x if need_dtargets else None)


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """The loss only; see binary_cross_entropy_with_logits_forward."""
    return binary_cross_entropy_with_logits_forward(logits, targets, reduction)[0]


def mse_loss_forward(pred, target, reduction="mean"):
    """Mean squared error, any shape:

        loss = mean((pred - target)^2)  (reduction="mean")  or  sum(...)  ("sum")

    Returns (loss as a Python float, cache). Same as torch.nn.functional.mse_loss.
    """
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"target: expected shape {p.shape} to match pred, got {t.shape}")
    if p.size == 0:
        raise ValueError(f"pred: expected at least one element, got shape {p.shape}")
    scale = _reduction_scale(reduction, p.size)
    d = p - t
    return float(np.sum(d * d) * scale), ("mse_loss", d, scale)


def mse_loss_backward(dout=1.0, cache=None, *, need_dtarget=True):
    """(dpred, dtarget) with dpred = 2 * dout * scale * (pred - target), dtarget = -dpred.

    scale is 1/numel for the mean, 1 for the sum; dtarget is None when ``need_dtarget``
    is false.
    """
    dout, cache = _split_dout_cache(dout, cache, "mse_loss")
    _, d, scale = cache
    g = 2.0 * float(dout) * scale * d
    return (g, -g if need_dtarget else None)


def mse_loss(pred, target, reduction="mean"):
    """The loss only; see mse_loss_forward."""
    return mse_loss_forward(pred, target, reduction)[0]

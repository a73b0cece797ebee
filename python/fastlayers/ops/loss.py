"""Softmax, log-softmax and losses on float32 NumPy arrays (C++ kernels).

Every op comes as ``<op>(...)``, ``<op>_forward(...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> tuple`` (one gradient per differentiable input), with
``backend=None | "cpu" | "reference"``; the formulas are in fastlayers.reference.loss,
which is the specification. Backward runs on the backend its forward ran on.

- softmax / log_softmax(x, axis=-1): any rank, along any axis (PyTorch's ``dim``).
  The kernel reads the axis in place — contiguous rows when it is the last axis, and
  (dim, inner) column tiles otherwise (NCHW along C) — so no transpose is made.
- softmax_cross_entropy(logits (N, C), labels (N,), reduction="mean"),
  binary_cross_entropy_with_logits(logits, targets, reduction="mean") and
  mse_loss(pred, target, reduction="mean") return the loss as a Python ``float``
  (computed in double from float32 terms) on NumPy arrays. On GPU arrays the loss is a
  0-d float32 device array (as CuPy's reductions return): the forward does not wait for
  the GPU, ``float(loss)`` does. Cross-entropy labels given on the host are checked there;
  labels already on the GPU are checked by the kernel, which has to wait for it. Their backward takes a scalar ``dout``
  (default 1.0): ``loss_backward(cache)``, ``loss_backward(dout, cache)`` and
  ``loss_backward(cache=cache)`` are all accepted.
- Labels: a numpy array of any integer dtype, converted to int64; float or bool labels
  are a TypeError; a wrong shape or a value outside [0, C) a ValueError naming the first
  offending value and its index (the kernel checks again before reading anything).
- Float inputs must be float32 (other dtypes: TypeError); non-contiguous inputs are
  copied once. Empty losses (N == 0 or no elements) are a ValueError.
- NaN propagates: a NaN (or +inf) logit turns its softmax row into NaN and the loss
  into NaN; -inf logits get probability 0 (a row of only -inf is NaN), as in PyTorch.
- The cache keeps references to the forward's inputs/output (not copies), like
  PyTorch's saved tensors: do not modify them in place before backward.
"""

from __future__ import annotations

import operator

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

from fastlayers.ops._checks import check_array, check_flag, check_scalar
from fastlayers.ops._device import device_of, is_device_array, placement
from fastlayers.reference import loss as _ref
from fastlayers.reference.loss import _labels_as_int64, _reduction_scale, _split_dout_cache

# Caches: (op, backend, ...): ("softmax", "cpu", y, axis) or (op, "reference", ref_cache).


def _check_axis(axis, ndim: int) -> int:
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis: expected an integer, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis: {axis} is out of range for a {ndim}-D array")
    return axis


def _check_cache(cache, op: str) -> tuple:
    """The cache of fastlayers.ops.<op>_forward (not of fastlayers.reference's)."""
    if not (isinstance(cache, tuple) and len(cache) >= 3 and cache[0] == op
            and isinstance(cache[1], str) and cache[1] in ("cpu", "reference")):
        raise TypeError(f"cache: expected the cache returned by fastlayers.ops.{op}_forward")
    return cache


def _loss_dout_cache(dout, cache, op: str) -> tuple[float, tuple]:
    """(dout as a float, cache) for a loss backward called as (cache), (dout, cache) or (cache=...)."""
    dout, cache = _split_dout_cache(dout, cache, op)
    return _scalar_dout(dout), _check_cache(cache, op)


def _scalar_dout(dout) -> float:
    """A loss's upstream gradient: a real number or a 0-d / one-element array."""
    if isinstance(dout, np.ndarray) and dout.size == 1 and dout.dtype.kind == "f":
        return float(dout.reshape(()))
    return check_scalar(dout, "dout")


def _device_labels(labels, n: int, c: int, dev):
    """Class labels for logits on a GPU: a device int64 array of shape (n,). Host labels
    (a list or numpy array) are checked on the host, then copied over; device labels of
    another integer dtype are converted where the array library can (CuPy)."""
    if not is_device_array(labels):
        return dev.xp.asarray(_labels_as_int64(labels, n, c))
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels: expected shape ({n},) (one per row of logits), got {tuple(labels.shape)}")
    if np.dtype(labels.dtype) != np.int64:
        if np.dtype(labels.dtype).kind not in "iu" or not hasattr(labels, "astype"):
            raise TypeError(f"labels: expected an int64 device array, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    return labels  # values outside [0, C) make the forward raise ValueError


def _loss_value(dev, kernel: str, scale: float, *args):
    """scale * the kernel's sum: a float on the CPU; on a GPU a 0-d float32 device array,
    written by the kernel's "_to" form without waiting for the GPU."""
    if dev.is_cpu:
        return dev.run(kernel, *args) * scale
    loss = dev.empty(())
    dev.run(kernel + "_to", loss, *args, scale)
    return loss


def _check_pair(a, b, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 arrays of one shape with at least one element."""
    a = check_array(a, a_name, device=True)
    b = check_array(b, b_name, device=True)
    if a.shape != b.shape:
        raise ValueError(f"{b_name}: expected shape {a.shape} to match {a_name}, got {b.shape}")
    if a.size == 0:
        raise ValueError(f"{a_name}: expected at least one element, got shape {a.shape}")
    return a, b


# ---------------------------------------------------------------------------
# Softmax and log-softmax
# ---------------------------------------------------------------------------


def _softmax_forward(x, axis, backend, op: str, log: bool):
    x = check_array(x, "x", min_ndim=1, device=True)
    axis = _check_axis(axis, x.ndim)
    dev, backend = placement(backend, x=x)
    if backend == "reference":
        ref_forward = _ref.log_softmax_forward if log else _ref.softmax_forward
        y, ref_cache = ref_forward(x, axis)
        return y, (op, "reference", ref_cache)
    x = dev.contiguous(x)
    y = dev.empty(x.shape)
    dev.run("softmax_forward", y, x, axis, log)
    return y, (op, "cpu", y, axis)


def _softmax_backward(dout, cache, op: str, log: bool):
    cache = _check_cache(cache, op)
    dout = check_array(dout, "dout", device=True)
    y = cache[2] if cache[1] == "cpu" else cache[2][1]
    if dout.shape != y.shape:
        raise ValueError(f"dout: expected shape {y.shape} (the forward output's), got {dout.shape}")
    if cache[1] == "reference":
        ref_backward = _ref.log_softmax_backward if log else _ref.softmax_backward
        return ref_backward(dout, cache[2])
    dev = device_of(dout=dout, y=y)
    dout = dev.contiguous(dout)
    dx = dev.empty(y.shape)
    dev.run("softmax_backward", dx, dout, y, cache[3], log)
    return (dx,)


def softmax_forward(x, axis=-1, *, backend=None):
    """(y, cache) with y = softmax(x) along ``axis`` (float32, any rank >= 1).

    y = exp(x - max) / sum(exp(x - max)) along the axis; see fastlayers.reference.softmax_forward.
    """
    return _softmax_forward(x, axis, backend, "softmax", False)


def softmax_backward(dout, cache):
    """(dx,) with dx = y * (dout - sum(dout * y)) along the softmax axis."""
    return _softmax_backward(dout, cache, "softmax", False)


def softmax(x, axis=-1, *, backend=None):
    """softmax(x) along ``axis`` (forward only)."""
    return _softmax_forward(x, axis, backend, "softmax", False)[0]


def log_softmax_forward(x, axis=-1, *, backend=None):
    """(y, cache) with y = (x - max) - log(sum(exp(x - max))) along ``axis``."""
    return _softmax_forward(x, axis, backend, "log_softmax", True)


def log_softmax_backward(dout, cache):
    """(dx,) with dx = dout - exp(y) * sum(dout) along the axis."""
    return _softmax_backward(dout, cache, "log_softmax", True)


def log_softmax(x, axis=-1, *, backend=None):
    """log_softmax(x) along ``axis`` (forward only)."""
    return _softmax_forward(x, axis, backend, "log_softmax", True)[0]


# ---------------------------------------------------------------------------
# Softmax cross-entropy
# ---------------------------------------------------------------------------


def softmax_cross_entropy_forward(logits, labels, reduction="mean", *, backend=None):
    """(loss, cache): cross-entropy of softmax(logits) against integer labels.

    logits: float32 (N, C), N, C >= 1; labels: (N,) any integer dtype, values in [0, C).
    loss = mean_i (logsumexp(logits_i) - logits_i[labels_i]) as a Python float
    (``reduction="sum"``: the sum; on a GPU a 0-d device array, see the module docstring). One fused pass per row computes the row max and
    log-sum-exp; backward recomputes the softmax from them (no (N, C) array is cached).
    """
    logits = check_array(logits, "logits", ndim=2, device=True)
    n, c = logits.shape
    if n == 0 or c == 0:
        raise ValueError(f"logits: expected at least one row and one class, got shape {logits.shape}")
    dev, backend = placement(backend, logits=logits)
    host_labels = not is_device_array(labels)
    labels = _labels_as_int64(labels, n, c) if dev.is_cpu else _device_labels(labels, n, c, dev)
    scale = _reduction_scale(reduction, n)
    op = "softmax_cross_entropy"
    if backend == "reference":
        loss, ref_cache = _ref.softmax_cross_entropy_forward(logits, labels, reduction)
        return loss, (op, "reference", ref_cache)
    logits = dev.contiguous(logits)
    stats = dev.empty((n, 2))  # per row: max, log sum exp(x - max)
    cache = (op, "cpu", stats, logits, labels, scale)
    if dev.is_cpu or host_labels:  # host labels were checked on the host: nothing to wait for
        return _loss_value(dev, "softmax_cross_entropy_forward", scale, stats, logits, labels), cache
    # Device labels are checked by the kernel, which waits for the GPU to report.
    total = dev.run("softmax_cross_entropy_forward", stats, logits, labels)
    return dev.xp.asarray(np.float32(total * scale)), cache


def softmax_cross_entropy_backward(dout=1.0, cache=None):
    """(dlogits,) = dout * scale * (softmax(logits) - onehot(labels)); scale = 1/N for the mean."""
    g, cache = _loss_dout_cache(dout, cache, "softmax_cross_entropy")
    if cache[1] == "reference":
        return _ref.softmax_cross_entropy_backward(g, cache[2])
    _, _, stats, logits, labels, scale = cache
    dev = device_of(logits=logits)
    dlogits = dev.empty(logits.shape)
    dev.run("softmax_cross_entropy_backward", dlogits, stats, logits, labels, g * scale)
    return (dlogits,)


def softmax_cross_entropy(logits, labels, reduction="mean", *, backend=None):
    """The loss only (a Python float; on a GPU a 0-d device array); see softmax_cross_entropy_forward."""
    return softmax_cross_entropy_forward(logits, labels, reduction, backend=backend)[0]


# ---------------------------------------------------------------------------
# Binary cross-entropy with logits
# ---------------------------------------------------------------------------


def binary_cross_entropy_with_logits_forward(logits, targets, reduction="mean", *, backend=None):
    """(loss, cache): mean over all elements of max(x, 0) - x t + log(1 + exp(-|x|)).

    logits, targets: float32 of one shape (any rank, >= 1 element). Targets outside
    [0, 1] are not refused (as in PyTorch); they just enter the formula.
    """
    x, t = _check_pair(logits, targets, "logits", "targets")
    scale = _reduction_scale(reduction, x.size)
    op = "binary_cross_entropy_with_logits"
    dev, backend = placement(backend, logits=x, targets=t)
    if backend == "reference":
        loss, ref_cache = _ref.binary_cross_entropy_with_logits_forward(x, t, reduction)
        return loss, (op, "reference", ref_cache)
    x, t = dev.contiguous(x), dev.contiguous(t)
    return _loss_value(dev, "bce_with_logits_forward", scale, x, t), (op, "cpu", x, t, scale)


def binary_cross_entropy_with_logits_backward(dout=1.0, cache=None, *, need_dtargets=True):
    """(dlogits, dtargets) = (dout * scale * (sigmoid(x) - t), -dout * scale * x).

    dtargets is None when ``need_dtargets`` is false (saves writing an array).
    """
    g, cache = _loss_dout_cache(dout, cache, "binary_cross_entropy_with_logits")
    need_dtargets = check_flag(need_dtargets, "need_dtargets")
    if cache[1] == "reference":
        return _ref.binary_cross_entropy_with_logits_backward(g, cache[2], need_dtargets=need_dtargets)
    _, _, x, t, scale = cache
    dev = device_of(logits=x)
    dx = dev.empty(x.shape)
    dt = dev.empty(x.shape) if need_dtargets else None
    dev.run("bce_with_logits_backward", dx, dt, x, t, g * scale)
    return (dx, dt)


def binary_cross_entropy_with_logits(logits, targets, reduction="mean", *, backend=None):
    """The loss only (a Python float; on a GPU a 0-d device array); see binary_cross_entropy_with_logits_forward."""
    return binary_cross_entropy_with_logits_forward(logits, targets, reduction, backend=backend)[0]


# ---------------------------------------------------------------------------
# Mean squared error
# ---------------------------------------------------------------------------


def mse_loss_forward(pred, target, reduction="mean", *, backend=None):
    """(loss, cache): mean((pred - target)^2) over all elements, as a Python float (on a
    GPU a 0-d device array).

    pred, target: float32 of one shape (any rank, >= 1 element).
    """
    p, t = _check_pair(pred, target, "pred", "target")
    scale = _reduction_scale(reduction, p.size)
    dev, backend = placement(backend, pred=p, target=t)
    if backend == "reference":
        loss, ref_cache = _ref.mse_loss_forward(p, t, reduction)
        return loss, ("mse_loss", "reference", ref_cache)
    p, t = dev.contiguous(p), dev.contiguous(t)
    return _loss_value(dev, "mse_forward", scale, p, t), ("mse_loss", "cpu", p, t, scale)


def mse_loss_backward(dout=1.0, cache=None, *, need_dtarget=True):
    """(dpred, dtarget) = (2 dout scale (pred - target), -dpred); dtarget None unless needed."""
    g, cache = _loss_dout_cache(dout, cache, "mse_loss")
    need_dtarget = check_flag(need_dtarget, "need_dtarget")
    if cache[1] == "reference":
        return _ref.mse_loss_backward(g, cache[2], need_dtarget=need_dtarget)
    _, _, p, t, scale = cache
    dev = device_of(pred=p)
    dp = dev.empty(p.shape)
    dt = dev.empty(p.shape) if need_dtarget else None
    dev.run("mse_backward", dp, dt, p, t, g * scale)
    return (dp, dt)


def mse_loss(pred, target, reduction="mean", *, backend=None):
    """The loss only (a Python float; on a GPU a 0-d device array); see mse_loss_forward."""
    return mse_loss_forward(pred, target, reduction, backend=backend)[0]

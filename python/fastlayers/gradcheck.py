"""Numerical gradients by centred differences, for checking backward passes.

The cs231n recipe: perturb one input element by +-h, evaluate a scalar loss
``sum(f(x) * dout)`` and take ``(L(x + h) - L(x - h)) / 2h``. Use float64 inputs (the
references accept them) and points away from kinks (ReLU at 0, pooling ties).

>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal((3, 4))
>>> dout = np.ones((3, 4))
>>> g = numerical_gradient(lambda: np.tanh(x), x, dout)
>>> rel_error(g, dout * (1 - np.tanh(x) ** 2)) < 1e-8
True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numerical_gradient", "rel_error"]


def numerical_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout, h: float = 1e-6) -> np.ndarray:
    """d/dx of sum(f() * dout), where ``f`` reads ``x`` (modified in place, then restored).

    f: a function of no arguments that recomputes the output from the current ``x``.
    dout: the upstream gradient, shaped like f()'s output (a scalar for scalar losses).
    """
    if not isinstance(x, np.ndarray) or not x.flags.writeable:
        raise TypeError("x: expected a writeable numpy.ndarray (it is perturbed in place)")
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        plus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
        x[idx] = old - h
        minus = np.sum(np.asarray(f(), dtype=np.float64) * dout)
        x[idx] = old
        grad[idx] = (plus - minus) / (2.0 * h)
        it.iternext()
    return grad


def rel_error(a, b) -> float:
    """max |a - b| / max(|a| + |b|, 1e-8), elementwise maximum: the cs231n relative error."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} to match a, got {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))

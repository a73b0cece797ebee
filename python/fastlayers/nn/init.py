"""Weight initialisation (torch.nn.init), in place on NumPy arrays, reproducible.

Every function fills ``array`` (a floating-point ndarray) in place and returns it. The
random ones take an optional ``rng`` (a ``numpy.random.Generator``); without one they
draw from this module's generator, which ``seed(n)`` resets — so
``fastlayers.nn.init.seed(0)`` before building a network gives the same weights on
every run. Random numbers are drawn directly in the array's dtype, into the array (no
float64 temporary; a 100M-parameter layer needs no extra memory).

Fans (``fan_in_and_fan_out``): for a 2-D weight (out, in) fan_in = in, fan_out = out;
for a convolution weight (K, C/groups, R, S) fan_in = C/groups * R * S and fan_out =
K * R * S (torch's rule: dimension 1 is "in", dimension 0 is "out", times the
receptive field).

Which to use: the variance of a layer's outputs is fan_in * Var(w) * Var(x), so the
weights' variance should scale like 1/fan_in for signals to neither vanish nor explode
through depth. Xavier/Glorot (2010) balances fan_in and fan_out for tanh/sigmoid
networks; He/Kaiming (2015) doubles the variance for ReLU, which zeroes half the
signal. The layers' own defaults (PyTorch's) are stated in each layer's docstring.
"""

from __future__ import annotations

import math
import numbers
import threading
from contextlib import contextmanager

import numpy as np

__all__ = [
    "skip_random_fills",
    "calculate_gain",
    "constant",
    "fan_in_and_fan_out",
    "get_rng",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "ones",
    "seed",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

_rng = np.random.default_rng()


def seed(n: int) -> None:
    """Reset the module's generator: every later default initialisation is reproducible."""
    global _rng
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
        raise TypeError(f"n: expected a non-negative integer seed, got {n!r}")
    _rng = np.random.default_rng(int(n))


def get_rng(rng=None) -> np.random.Generator:
    """``rng`` itself, or the module's generator when it is None."""
    if rng is None:
        return _rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def _check(array) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise TypeError(f"array: expected a floating-point numpy.ndarray, got {got}")
    if not array.flags.writeable:
        raise ValueError("array: is read-only (it is filled in place)")
    return array


def _real(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def fan_in_and_fan_out(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` (at least 2-D), torch's rule."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"array: fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_LINEAR_GAIN = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch.nn.init.calculate_gain: 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for
    relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope = param, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _real(param, "param")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}; expected one of "
                     f"{_LINEAR_GAIN + ('tanh', 'relu', 'leaky_relu', 'selu')}")


# > 0 while some thread is inside skip_random_fills().
_skip_fills = 0
_skip_lock = threading.Lock()


@contextmanager
def skip_random_fills():
    """Inside this block the random initialisers (uniform, normal, Xavier, Kaiming)
    leave their arrays as they are; zeros/ones/constant still fill.

    For building a large network only to count its parameters or to load a checkpoint
    into it: layers allocate with ``np.empty``, so skipping the draws leaves the pages
    untouched. The values are garbage until written. Process-wide: a model built by
    another thread meanwhile is left uninitialised too.
    """
    global _skip_fills
    with _skip_lock:
        _skip_fills += 1
    try:
        yield
    finally:
        with _skip_lock:
            _skip_fills -= 1


def _fill_uniform(array, low: float, high: float, rng) -> np.ndarray:
    if _skip_fills:
        return array
    rng = get_rng(rng)
    if array.flags.c_contiguous and array.dtype in (np.float32, np.float64):
        rng.random(dtype=array.dtype, out=array)  # U[0, 1) in place
        array *= high - low
        array += low
    else:
        array[...] = rng.uniform(low, high, array.shape)
    return array


def _fill_normal(array, mean: float, std: float, rng) -> np.ndarray:
    if _skip_fills:
        return array
    rng = get_rng(rng)
    if array.flags.c_contiguous and array.dtype in (np.float32, np.float64):
        rng.standard_normal(dtype=array.dtype, out=array)
        array *= std
        array += mean
    else:
        array[...] = rng.normal(mean, std, array.shape)
    return array


def zeros(array) -> np.ndarray:
    """Fill with 0 (torch.nn.init.zeros_). Right for biases; for WEIGHTS a bad idea (shown
    for teaching): every unit of a layer then computes the same output and receives the
    same gradient, so the units stay identical forever — the symmetry is never broken and
    the layer behaves like a single unit (with ReLU, all-zero weights even give zero
    gradients everywhere)."""
    _check(array).fill(0)
    return array


def ones(array) -> np.ndarray:
    """Fill with 1 (torch.nn.init.ones_): BatchNorm/LayerNorm scales. See zeros() on weights."""
    _check(array).fill(1)
    return array


def constant(array, value) -> np.ndarray:
    """Fill with ``value`` (torch.nn.init.constant_). The same warning as zeros(): a
    constant weight matrix never breaks the symmetry between units."""
    _check(array).fill(_real(value, "value"))
    return array


def uniform(array, low=0.0, high=1.0, *, rng=None) -> np.ndarray:
    """U(low, high) (torch.nn.init.uniform_)."""
    low, high = _real(low, "low"), _real(high, "high")
    if not low <= high:
        raise ValueError(f"high: expected >= low ({low}), got {high}")
    return _fill_uniform(_check(array), low, high, rng)


def normal(array, mean=0.0, std=1.0, *, rng=None) -> np.ndarray:
    """N(mean, std^2) (torch.nn.init.normal_): the classic "small random numbers"
    (std=0.01). Fixed std ignores the fan: deep networks' signals vanish or explode."""
    mean, std = _real(mean, "mean"), _real(std, "std")
    if not std >= 0:
        raise ValueError(f"std: expected a number >= 0, got {std}")
    return _fill_normal(_check(array), mean, std, rng)


def xavier_uniform(array, gain=1.0, *, rng=None) -> np.ndarray:
    """Glorot & Bengio (2010), torch.nn.init.xavier_uniform_: U(-a, a) with
    a = gain * sqrt(6 / (fan_in + fan_out)), i.e. Var = 2 gain^2 / (fan_in + fan_out)."""
    fan_in, fan_out = fan_in_and_fan_out(_check(array).shape)
    a = _real(gain, "gain") * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill_uniform(array, -a, a, rng)


def xavier_normal(array, gain=1.0, *, rng=None) -> np.ndarray:
    """torch.nn.init.xavier_normal_: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(_check(array).shape)
    std = _real(gain, "gain") * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill_normal(array, 0.0, std, rng)


def _kaiming_std(array, a, mode, nonlinearity) -> float:
    fan_in, fan_out = fan_in_and_fan_out(_check(array).shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"array: a fan of 0 for shape {array.shape}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None) -> np.ndarray:
    """He et al. (2015), torch.nn.init.kaiming_uniform_: U(-b, b) with
    b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, a).
    nonlinearity="relu" (or the default leaky_relu with a=0) gives Var = 2 / fan.
    PyTorch's Linear/Conv default is a=sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = math.sqrt(3.0) * _kaiming_std(array, _real(a, "a"), mode, nonlinearity)
    return _fill_uniform(array, -bound, bound, rng)


def kaiming_normal(array, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None) -> np.ndarray:
    """torch.nn.init.kaiming_normal_: N(0, std^2), std = gain / sqrt(fan)."""
    std = _kaiming_std(array, _real(a, "a"), mode, nonlinearity)
    return _fill_normal(array, 0.0, std, rng)

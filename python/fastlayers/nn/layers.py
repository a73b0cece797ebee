"""Layers: thin Modules over fastlayers.ops, with torch.nn's constructor signatures.

Each layer's ``__init__`` holds its initialisation (PyTorch's defaults, named in its
docstring), its ``forward`` calls ``<op>_forward`` on the module's backend and keeps the
cache (``Module._call``), and its ``backward`` calls ``<op>_backward`` with that cache,
adds the parameter gradients to ``param.grad`` and returns the input gradient (None when
``need_input_grad`` is False). No arithmetic happens here beyond reshapes.

Arrays are float32 on the "cpu" backend (a TypeError names the argument otherwise);
``module.double().to_backend("reference")`` runs the NumPy reference in float64. Random
initialisation draws from ``rng`` when given, else from fastlayers.nn.init's generator
(``fastlayers.nn.init.seed(n)`` makes it reproducible).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fastlayers.nn import init
from fastlayers.nn.module import Module, Parameter

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "ELU",
    "Flatten",
    "GELU",
    "GlobalAvgPool2d",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
]


# --------------------------------------------------------------------------------------
# Argument checks (constructor arguments; the ops check the arrays)
# --------------------------------------------------------------------------------------


def _int(x, name: str, minimum: int = 1) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {x}")
    return int(x)


def _pair(x, name: str, minimum: int = 1) -> tuple[int, int]:
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {x!r}")
        return _int(x[0], name, minimum), _int(x[1], name, minimum)
    v = _int(x, name, minimum)
    return v, v


def _real(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def _flag(x, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(x).__name__}")
    return bool(x)


def _uniform_parameter(shape, bound: float, rng) -> Parameter:
    return Parameter(init.uniform(np.empty(shape, np.float32), -bound, bound, rng=rng))


def _accumulate(*pairs) -> None:
    for param, g in pairs:
        if param is not None:
            param.accumulate(g)


def _data(p):
    return None if p is None else p.data


# --------------------------------------------------------------------------------------
# Linear and convolutions
# --------------------------------------------------------------------------------------


class Linear(Module):
    """y = x @ weight.T + bias, for x (..., in_features) (torch.nn.Linear).

    weight (out_features, in_features), bias (out_features,). Default initialisation
    (PyTorch's): weight kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(in_features),
    1/sqrt(in_features)), and bias U(-1/sqrt(in_features), 1/sqrt(in_features)).
    With need_input_grad=False (a network's first layer) backward computes no dx.
    """

    def __init__(self, in_features, out_features, bias=True, *, rng=None):
        super().__init__()
        self.in_features = _int(in_features, "in_features")
        self.out_features = _int(out_features, "out_features")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), np.float32))
        init.kaiming_uniform(self.weight.data, a=math.sqrt(5), rng=rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.bias = _uniform_parameter((self.out_features,), bound, rng) if _flag(bias, "bias") else None

    def forward(self, x):
        return self._call("linear", x, self.weight.data, _data(self.bias))

    def backward(self, grad_out):
        dx, dw, db = self._grad(grad_out, need_dx=self.need_input_grad)
        _accumulate((self.weight, dw), (self.bias, db))
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution (torch.nn.Conv2d): x (N, C, H, W) -> (N, K, P, Q).

    weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,). padding: int,
    pair, "same" (stride 1) or "valid". Default initialisation (PyTorch's): weight
    kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in =
    in_channels/groups * kh * kw, and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    backward skips dx when need_input_grad is False and dw/db for frozen parameters.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, *, rng=None):
        super().__init__()
        self.in_channels = _int(in_channels, "in_channels")
        self.out_channels = _int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", 0)
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
        self.dilation = _pair(dilation, "dilation")
        self.groups = _int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"groups: {self.groups} must divide in_channels ({self.in_channels}) and "
                             f"out_channels ({self.out_channels})")
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(np.empty(shape, np.float32), a=math.sqrt(5), rng=rng))
        bound = 1.0 / math.sqrt(init.fan_in_and_fan_out(shape)[0])
        self.bias = _uniform_parameter((self.out_channels,), bound, rng) if _flag(bias, "bias") else None

    def forward(self, x):
        return self._call("conv2d", x, self.weight.data, _data(self.bias), self.stride, self.padding,
                          self.dilation, self.groups)

    def backward(self, grad_out):
        dx, dw, db = self._grad(grad_out, need_dx=self.need_input_grad, need_dw=self.weight.requires_grad,
                                need_db=self.bias is not None and self.bias.requires_grad)
        _accumulate((self.weight, dw), (self.bias, db))
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}" + (f", groups={self.groups}" if self.groups != 1 else "")
                + ("" if self.bias is not None else ", bias=False"))


class ConvTranspose2d(Module):
    """Transposed convolution, the "deconvolution" of U-Nets (torch.nn.ConvTranspose2d).

    x (N, in_channels, H, W) -> (N, out_channels, (H-1)*stride - 2*padding +
    dilation*(k-1) + output_padding + 1, ...). weight (in_channels, out_channels/groups,
    kh, kw) (torch's layout). Default initialisation (PyTorch's): weight
    kaiming_uniform(a=sqrt(5)) and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in
    is computed on the weight as torch does: out_channels/groups * kh * kw.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, *, rng=None):
        super().__init__()
        self.in_channels = _int(in_channels, "in_channels")
        self.out_channels = _int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)
        self.output_padding = _pair(output_padding, "output_padding", 0)
        self.groups = _int(groups, "groups")
        self.dilation = _pair(dilation, "dilation")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"groups: {self.groups} must divide in_channels ({self.in_channels}) and "
                             f"out_channels ({self.out_channels})")
        shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(init.kaiming_uniform(np.empty(shape, np.float32), a=math.sqrt(5), rng=rng))
        bound = 1.0 / math.sqrt(init.fan_in_and_fan_out(shape)[0])
        self.bias = _uniform_parameter((self.out_channels,), bound, rng) if _flag(bias, "bias") else None

    def forward(self, x):
        return self._call("conv_transpose2d", x, self.weight.data, _data(self.bias), self.stride, self.padding,
                          self.output_padding, dilation=self.dilation, groups=self.groups)

    def backward(self, grad_out):
        dx, dw, db = self._grad(grad_out, need_dx=self.need_input_grad, need_dw=self.weight.requires_grad,
                                need_db=self.bias is not None and self.bias.requires_grad)
        _accumulate((self.weight, dw), (self.bias, db))
        return dx

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


# --------------------------------------------------------------------------------------
# Parameter-free layers: one op each
# --------------------------------------------------------------------------------------


class _OpLayer(Module):
    """A layer that is one parameter-free op: ``_op`` and the arguments after x."""

    _op = ""

    def _args(self) -> tuple:
        return ()

    def forward(self, x):
        return self._call(self._op, x, *self._args())

    def backward(self, grad_out):
        if not self.need_input_grad:  # nothing to compute: no parameters
            self._take()
            return None
        (dx,) = self._grad(grad_out)
        return dx


class _Pool(_OpLayer):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding", 0)

    def _args(self):
        return self.kernel_size, self.stride, self.padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """Max pooling (torch.nn.MaxPool2d, ceil_mode=False); stride defaults to kernel_size.
    The gradient goes to the first maximum of each window. No parameters."""

    _op = "max_pool2d"


class AvgPool2d(_Pool):
    """Average pooling (torch.nn.AvgPool2d, count_include_pad=True); stride defaults to
    kernel_size. No parameters."""

    _op = "avg_pool2d"


class GlobalAvgPool2d(_OpLayer):
    """Mean over H and W: (N, C, H, W) -> (N, C), ready for a Linear head
    (torch.nn.AdaptiveAvgPool2d(1) followed by Flatten). No parameters."""

    _op = "global_avg_pool2d"


class ReLU(_OpLayer):
    """max(x, 0) (torch.nn.ReLU). No parameters."""

    _op = "relu"


class LeakyReLU(_OpLayer):
    """x for x > 0, negative_slope * x otherwise (torch.nn.LeakyReLU). No parameters."""

    _op = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = _real(negative_slope, "negative_slope")

    def _args(self):
        return (self.negative_slope,)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_OpLayer):
    """1 / (1 + exp(-x)) (torch.nn.Sigmoid). No parameters."""

    _op = "sigmoid"


class Tanh(_OpLayer):
    """tanh(x) (torch.nn.Tanh). No parameters."""

    _op = "tanh"


class GELU(_OpLayer):
    """x * Phi(x) (torch.nn.GELU); approximate="tanh" for the tanh approximation. No parameters."""

    _op = "gelu"

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _args(self):
        return (self.approximate,)


class Softplus(_OpLayer):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (torch.nn.Softplus).
    No parameters."""

    _op = "softplus"

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = _real(beta, "beta")
        self.threshold = _real(threshold, "threshold")
        if self.beta == 0 or not math.isfinite(self.beta):
            raise ValueError(f"beta: expected a finite nonzero number, got {self.beta}")

    def _args(self):
        return self.beta, self.threshold


class ELU(_OpLayer):
    """x for x > 0, alpha (exp(x) - 1) otherwise (torch.nn.ELU). No parameters."""

    _op = "elu"

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = _real(alpha, "alpha")

    def _args(self):
        return (self.alpha,)


class Softmax(_OpLayer):
    """exp(x) / sum(exp(x)) along ``axis`` (torch.nn.Softmax(dim=axis)). For training a
    classifier use CrossEntropyLoss on the logits instead (softmax fused, stable).
    No parameters."""

    _op = "softmax"

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = _int(axis, "axis", minimum=-(2**31))

    def _args(self):
        return (self.axis,)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...) (torch.nn.Flatten(start_dim=1, end_dim=-1)): a
    reshape (a view when x is contiguous); backward reshapes back. No parameters."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _int(start_dim, "start_dim", minimum=-(2**31))
        self.end_dim = _int(end_dim, "end_dim", minimum=-(2**31))

    def forward(self, x):
        nd = x.ndim
        s, e = self.start_dim % max(nd, 1), self.end_dim % max(nd, 1)
        if not (0 <= s < nd and 0 <= e < nd and s <= e):
            raise ValueError(f"x: cannot flatten dims {self.start_dim}..{self.end_dim} of shape {x.shape}")
        self._save(x.shape)
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])

    def backward(self, grad_out):
        shape = self._take()
        return grad_out.reshape(shape) if self.need_input_grad else None


# --------------------------------------------------------------------------------------
# Normalisation and dropout
# --------------------------------------------------------------------------------------


class _BatchNorm(Module):
    """Shared body of BatchNorm1d/2d; subclasses set _ndims (the accepted input ranks)."""

    _ndims: tuple = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features = _int(num_features, "num_features")
        self.eps = _real(eps, "eps")
        if not self.eps > 0:
            raise ValueError(f"eps: expected a number > 0, got {eps}")
        if momentum is not None:
            momentum = _real(momentum, "momentum")
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"momentum: expected a number in [0, 1] or None, got {momentum}")
        self.momentum = momentum
        self.affine = _flag(affine, "affine")
        self.track_running_stats = _flag(track_running_stats, "track_running_stats")
        c = self.num_features
        self.weight = Parameter(np.ones(c, np.float32)) if self.affine else None
        self.bias = Parameter(np.zeros(c, np.float32)) if self.affine else None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, np.float32))
            self.register_buffer("running_var", np.ones(c, np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if getattr(x, "ndim", None) not in self._ndims:
            raise ValueError(f"x: {type(self).__name__} expects a {' or '.join(f'{d}-D' for d in self._ndims)} "
                             f"input, got shape {getattr(x, 'shape', type(x).__name__)}")
        # Batch statistics when training or when no running statistics are kept.
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative moving average, as torch
                momentum = 1.0 / float(self.num_batches_tracked)
        x4 = x[..., None] if x.ndim == 3 else x  # (N, C, L) -> (N, C, L, 1): per channel
        out = self._call("batch_norm", x4, _data(self.weight), _data(self.bias), self.running_mean,
                         self.running_var, use_batch, 0.0 if momentum is None else momentum, self.eps)
        return out[..., 0] if x.ndim == 3 else out

    def backward(self, grad_out):
        dx, dgamma, dbeta = self._grad(grad_out[..., None] if grad_out.ndim == 3 else grad_out)
        _accumulate((self.weight, dgamma), (self.bias, dbeta))
        if not self.need_input_grad:
            return None
        return dx[..., 0] if grad_out.ndim == 3 else dx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation per feature of x (N, C) or per channel of x (N, C, L)
    (torch.nn.BatchNorm1d). Training: normalise with the batch mean and biased variance
    and update running_mean/running_var (unbiased) with ``momentum`` (None: cumulative
    average); eval: use the running statistics. Default initialisation (PyTorch's):
    weight (gamma) ones, bias (beta) zeros; running_mean zeros, running_var ones."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation per channel of x (N, C, H, W) (torch.nn.BatchNorm2d), over
    N, H and W. Same modes and default initialisation as BatchNorm1d: weight ones, bias
    zeros, running_mean zeros, running_var ones."""

    _ndims = (4,)


class LayerNorm(Module):
    """Normalise each sample over its trailing ``normalized_shape`` dims (torch.nn.LayerNorm),
    then scale by weight and shift by bias (shape normalized_shape). The same in training
    and eval. Default initialisation (PyTorch's): weight ones, bias zeros."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            self.normalized_shape = tuple(_int(d, "normalized_shape") for d in normalized_shape)
        else:
            self.normalized_shape = (_int(normalized_shape, "normalized_shape"),)
        self.eps = _real(eps, "eps")
        if not self.eps > 0:
            raise ValueError(f"eps: expected a number > 0, got {eps}")
        affine = _flag(elementwise_affine, "elementwise_affine")
        self.weight = Parameter(np.ones(self.normalized_shape, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, np.float32)) if affine else None

    def forward(self, x):
        return self._call("layer_norm", x, self.normalized_shape, _data(self.weight), _data(self.bias), self.eps)

    def backward(self, grad_out):
        dx, dw, db = self._grad(grad_out)
        _accumulate((self.weight, dw), (self.bias, db))
        return dx if self.need_input_grad else None

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout (torch.nn.Dropout): in training, zero each element with probability
    p and scale the rest by 1/(1-p); in eval, the identity.

    seed: None draws each forward's mask seed from NumPy's global generator
    (np.random.seed makes it reproducible); an integer s makes the layer deterministic on
    its own: its k-th training forward (k = 0, 1, ...) uses seed s + k (the masks of
    consecutive seeds are unrelated: the kernel hashes the seed). No parameters.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        self.p = _real(p, "p")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {self.p}")
        if seed is not None:
            seed = _int(seed, "seed", minimum=0)
        self.seed = seed
        self._calls = 0

    def forward(self, x):
        seed = None
        if self.seed is not None and self.training and self.p > 0:
            seed = (self.seed + self._calls) % 2**64
            self._calls += 1
        return self._call("dropout", x, self.p, self.training, seed)

    def backward(self, grad_out):
        if not self.need_input_grad:
            self._take()
            return None
        (dx,) = self._grad(grad_out)
        return dx

    def extra_repr(self):
        return f"p={self.p}"

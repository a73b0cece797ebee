"""In-place optimiser steps on float32 arrays: SGD, RMSprop, Adagrad, Adam / AdamW.

Each function performs one step of the torch.optim algorithm of the same name (formulas
in :mod:`fastlayers.reference.optim`), updating ``param`` and its state buffers in place,
and returns None. The caller owns the state: buffers start as zeros (``np.zeros_like(param)``),
like PyTorch's lazily created ones, and ``step`` counts calls from 1.

SGD's first step: PyTorch creates the momentum buffer as a copy of the first gradient
(no dampening applied). Pass ``first_step=True`` on the first call (velocity's contents
are then ignored and overwritten); with dampening == 0 a zero velocity and
first_step=False give the same result.

Arrays: param and every state buffer must be float32, C-contiguous, writeable, of the
same shape, and must not share memory with each other; grad must be float32 of the same
shape (any strides; a non-contiguous grad is copied once). Hyper-parameters follow
torch.optim's checks (lr, eps, weight_decay, momentum >= 0; betas in [0, 1); step an
integer >= 1); violations are a ValueError/TypeError naming the argument.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]

from fastlayers.ops._checks import check_array, check_flag, check_scalar
from fastlayers.ops._device import device_of, placement
from fastlayers.reference import optim as _ref


def _check_param(param):
    param = check_array(param, "param", device=True)
    if not param.flags.c_contiguous:
        raise ValueError(f"param: expected a C-contiguous array (it is updated in place), got strides {param.strides}")
    if not getattr(param.flags, "writeable", True):
        raise ValueError("param: array is read-only (it is updated in place)")
    return param


def _check_grad(grad, param, mutated):
    grad = check_array(grad, "grad", device=True)
    if grad.shape != param.shape:
        raise ValueError(f"grad: expected shape {param.shape} (param's), got {grad.shape}")
    # The kernel reads grad while it writes the buffers: a grad that overlaps one of them
    # (or is not contiguous) is copied once.
    dev = device_of(param=param, grad=grad)
    if not grad.flags.c_contiguous or any(dev.may_share_memory(grad, b) for b in mutated):
        grad = dev.copy(grad)
    return grad


def _check_state(buf, name, param, others):
    """A state buffer: float32, param's shape, C-contiguous, writeable, not aliased."""
    buf = check_array(buf, name, device=True)
    if buf.shape != param.shape:
        raise ValueError(f"{name}: expected shape {param.shape} (param's), got {buf.shape}")
    if not buf.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (it is updated in place), got strides {buf.strides}")
    if not getattr(buf.flags, "writeable", True):
        raise ValueError(f"{name}: array is read-only (it is updated in place)")
    dev = device_of(param=param, **{name: buf})
    for other_name, other in others:
        if other is not None and dev.may_share_memory(buf, other):
            raise ValueError(f"{name}: must not share memory with {other_name}")
    return buf


def _nonneg(x, name):
    x = check_scalar(x, name)
    if not x >= 0.0:  # also refuses NaN
        raise ValueError(f"{name}: expected a number >= 0, got {x}")
    return x


def _beta(x, name):
    x = check_scalar(x, name)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {x}")
    return x


def _step(step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an integer >= 1, got {type(step).__name__}")
    step = int(step)
    if step < 1:
        raise ValueError(f"step: expected an integer >= 1 (the first step is 1), got {step}")
    return step


def sgd_step(
    param,
    grad,
    velocity=None,
    *,
    lr,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    weight_decay=0.0,
    first_step=False,
    backend=None,
):
    """One torch.optim.SGD step in place.

    g = grad + weight_decay * param; with momentum: velocity = g on the first step
    (``first_step=True``), else velocity = momentum * velocity + (1 - dampening) * g;
    g = g + momentum * velocity (nesterov) or velocity; param -= lr * g.
    velocity is required when momentum != 0 and ignored otherwise.
    """
    param = _check_param(param)
    lr = _nonneg(lr, "lr")
    momentum = _nonneg(momentum, "momentum")
    dampening = check_scalar(dampening, "dampening")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    nesterov = check_flag(nesterov, "nesterov")
    first_step = check_flag(first_step, "first_step")
    dev, backend = placement(backend, param=param)
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError(
            f"nesterov: Nesterov momentum requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum}, dampening={dampening}"
        )
    if momentum != 0.0:
        if velocity is None:
            raise ValueError("velocity: required when momentum != 0 (start with np.zeros_like(param))")
        velocity = _check_state(velocity, "velocity", param, [("param", param)])
    else:
        velocity = None
    grad = _check_grad(grad, param, [b for b in (param, velocity) if b is not None])
    if backend == "reference":
        _ref.sgd_step(
            param, grad, velocity, lr=lr, momentum=momentum, dampening=dampening,
            nesterov=nesterov, weight_decay=weight_decay, first_step=first_step,
        )
        return None
    dev.run("sgd_step", param, grad, velocity, lr, momentum, dampening, nesterov, weight_decay, first_step)
    return None


def rmsprop_step(
    param,
    grad,
    square_avg,
    *,
    lr=0.01,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    momentum_buf=None,
    centered=False,
    grad_avg=None,
    backend=None,
):
    """One torch.optim.RMSprop step in place.

    square_avg (zeros at the start) is always updated; momentum_buf is required when
    momentum > 0, grad_avg when centered (both zeros at the start).
    """
    param = _check_param(param)
    lr = _nonneg(lr, "lr")
    alpha = _nonneg(alpha, "alpha")
    eps = _nonneg(eps, "eps")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    momentum = _nonneg(momentum, "momentum")
    centered = check_flag(centered, "centered")
    dev, backend = placement(backend, param=param)
    square_avg = _check_state(square_avg, "square_avg", param, [("param", param)])
    if momentum > 0.0:
        if momentum_buf is None:
            raise ValueError("momentum_buf: required when momentum > 0 (start with np.zeros_like(param))")
        momentum_buf = _check_state(
            momentum_buf, "momentum_buf", param, [("param", param), ("square_avg", square_avg)]
        )
    else:
        momentum_buf = None
    if centered:
        if grad_avg is None:
            raise ValueError("grad_avg: required when centered=True (start with np.zeros_like(param))")
        grad_avg = _check_state(
            grad_avg, "grad_avg", param, [("param", param), ("square_avg", square_avg), ("momentum_buf", momentum_buf)]
        )
    else:
        grad_avg = None
    grad = _check_grad(grad, param, [b for b in (param, square_avg, momentum_buf, grad_avg) if b is not None])
    if backend == "reference":
        _ref.rmsprop_step(
            param, grad, square_avg, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
            momentum=momentum, momentum_buf=momentum_buf, centered=centered, grad_avg=grad_avg,
        )
        return None
    dev.run("rmsprop_step", param, grad, square_avg, lr, alpha, eps, weight_decay, momentum, momentum_buf, centered, grad_avg)
    return None


def adagrad_step(param, grad, sum_sq, *, lr=0.01, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step, backend=None):
    """One torch.optim.Adagrad step in place; ``step`` counts from 1, sum_sq starts at
    zeros (or PyTorch's initial_accumulator_value)."""
    param = _check_param(param)
    lr = _nonneg(lr, "lr")
    eps = _nonneg(eps, "eps")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    lr_decay = _nonneg(lr_decay, "lr_decay")
    step = _step(step)
    dev, backend = placement(backend, param=param)
    sum_sq = _check_state(sum_sq, "sum_sq", param, [("param", param)])
    grad = _check_grad(grad, param, [param, sum_sq])
    if backend == "reference":
        _ref.adagrad_step(param, grad, sum_sq, lr=lr, eps=eps, weight_decay=weight_decay, lr_decay=lr_decay, step=step)
        return None
    dev.run("adagrad_step", param, grad, sum_sq, lr, eps, weight_decay, lr_decay, step)
    return None


def adam_step(
    param,
    grad,
    m,
    v,
    *,
    step,
    lr=1e-3,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    amsgrad=False,
    max_v=None,
    backend=None,
):
    """One torch.optim.Adam step in place (AdamW with ``decoupled_weight_decay=True``).

    m, v (and max_v for ``amsgrad=True``) start as zeros; ``step`` counts from 1 and
    gives the bias corrections 1 - beta1**step and 1 - beta2**step.
    """
    param = _check_param(param)
    step = _step(step)
    lr = _nonneg(lr, "lr")
    beta1 = _beta(beta1, "beta1")
    beta2 = _beta(beta2, "beta2")
    eps = _nonneg(eps, "eps")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    decoupled_weight_decay = check_flag(decoupled_weight_decay, "decoupled_weight_decay")
    amsgrad = check_flag(amsgrad, "amsgrad")
    dev, backend = placement(backend, param=param)
    m = _check_state(m, "m", param, [("param", param)])
    v = _check_state(v, "v", param, [("param", param), ("m", m)])
    if amsgrad:
        if max_v is None:
            raise ValueError("max_v: required when amsgrad=True (start with np.zeros_like(param))")
        max_v = _check_state(max_v, "max_v", param, [("param", param), ("m", m), ("v", v)])
    else:
        max_v = None
    grad = _check_grad(grad, param, [b for b in (param, m, v, max_v) if b is not None])
    if backend == "reference":
        _ref.adam_step(
            param, grad, m, v, step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            amsgrad=amsgrad, max_v=max_v,
        )
        return None
    dev.run("adam_step", param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad, max_v)
    return None

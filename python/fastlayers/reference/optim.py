"""Reference optimiser updates (torch.optim semantics), in place on NumPy arrays.

Each function performs ONE step: it mutates ``param`` and its state buffers and returns
None. The caller owns the state (zeros at the start, like PyTorch's lazily created
buffers) and the step counter. With g = grad (+ weight_decay * param, the L2 term):

SGD (momentum mu, dampening tau):
    buf = g                          on the first step (PyTorch: "buffer is None")
    buf = mu * buf + (1 - tau) * g   afterwards
    g   = g + mu * buf  (Nesterov)   or   g = buf
    param -= lr * g

RMSprop:
    square_avg = alpha * square_avg + (1 - alpha) * g^2
    centered:  grad_avg = alpha * grad_avg + (1 - alpha) * g;  avg = sqrt(square_avg - grad_avg^2) + eps
    else:      avg = sqrt(square_avg) + eps
    momentum:  buf = momentum * buf + g / avg;  param -= lr * buf
    else:      param -= lr * g / avg

Adagrad (step t = 1, 2, ...):
    sum_sq += g^2;  param -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum_sq) + eps)

Adam (step t = 1, 2, ...); AdamW (decoupled_weight_decay) instead multiplies
param *= 1 - lr * weight_decay first and does not add the L2 term:
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    amsgrad: max_v = max(max_v, v), used in place of v below
    param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""

from __future__ import annotations

import numpy as np

__all__ = ["adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]


def sgd_step(
    param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, first_step=False
):
    """One SGD step in place; ``first_step=True`` sets velocity = g (its old contents are ignored)."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    if momentum != 0:
        if velocity is None:
            raise ValueError("velocity: required when momentum != 0")
        if first_step:
            velocity[...] = g
        else:
            velocity[...] = momentum * velocity + (1 - dampening) * g
        g = g + momentum * velocity if nesterov else velocity
    param -= lr * g


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
):
    """One RMSprop step in place (square_avg, and momentum_buf / grad_avg when used)."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        grad_avg[...] = alpha * grad_avg + (1 - alpha) * g
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buf[...] = momentum * momentum_buf + g / avg
        param -= lr * momentum_buf
    else:
        param -= lr * g / avg


def adagrad_step(param, grad, sum_sq, *, lr=0.01, eps=1e-10, weight_decay=0.0, lr_decay=0.0, step):
    """One Adagrad step in place; ``step`` counts from 1."""
    g = grad + weight_decay * param if weight_decay != 0 else grad
    clr = lr / (1 + (int(step) - 1) * lr_decay)
    sum_sq += g * g
    param -= clr * g / (np.sqrt(sum_sq) + eps)


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
):
    """One Adam (AdamW when decoupled_weight_decay) step in place; ``step`` counts from 1."""
    g = grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = grad + weight_decay * param
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    if amsgrad:
        np.maximum(max_v, v, out=max_v)
        vv = max_v
    else:
        vv = v
    step = int(step)
    bias_correction1 = 1 - beta1**step  # Python floats: the arrays keep their dtype
    bias_correction2 = 1 - beta2**step
    denom = np.sqrt(vv) / bias_correction2**0.5 + eps
    param -= lr / bias_correction1 * m / denom

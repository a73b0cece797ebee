"""Losses and weight penalties.

A loss is called on a prediction and a target and returns a Python float; its
``backward(dout=1.0)`` returns d loss / d prediction, to feed to ``model.backward``::

    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())

Each runs one fused op of fastlayers.ops on its ``backend`` ("cpu", or "reference",
which takes float64 too), like the Modules (``to_backend``). Penalties add a term on
chosen parameters: ``penalty(params)`` returns its value (add it to the loss you report)
and ``penalty.backward()`` adds its gradient to each parameter's ``.grad`` — call it
after ``model.backward`` and before the optimiser step.
"""

from __future__ import annotations

import numbers

import numpy as np

from fastlayers.nn.module import BACKENDS, Module, Parameter, functional

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Penalty", "L2Penalty", "Loss", "MSELoss"]


class Loss:
    """Base of the losses: ``loss_fn(pred, target) -> float``, ``loss_fn.backward(dout=1.0)``.

    reduction: "mean" (default) or "sum" over the samples (CrossEntropyLoss) or the
    elements (the others). The forward keeps the op's cache for one backward.
    """

    _op = ""
    _backward_kwargs: dict = {}

    def __init__(self, reduction="mean", *, backend="cpu"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self.to_backend(backend)
        self._ctx = None

    def to_backend(self, name: str) -> "Loss":
        if name not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
        self.backend = name
        return self

    def forward(self, pred, target) -> float:
        return float(self.compute(pred, target))

    def compute(self, pred, target):
        """The loss as the op gives it, keeping the cache for one backward like ``forward``:
        a float on the CPU, a 0-d device array on a GPU (written there without waiting for
        the GPU; ``float()`` of it waits). The trainer uses this to read losses back from a
        GPU in groups rather than once per batch."""
        F = functional(self.backend, getattr(pred, "dtype", np.float32))
        loss, cache = getattr(F, self._op + "_forward")(pred, target, self.reduction)
        self._ctx = (getattr(F, self._op + "_backward"), cache)
        return loss

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def backward(self, dout=1.0):
        """d loss / d pred, times ``dout`` (the gradient of whatever the loss feeds into)."""
        if self._ctx is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call the loss on a prediction first "
                               f"(each call allows one backward)")
        backward, cache = self._ctx
        self._ctx = None
        return backward(dout, cache, **self._backward_kwargs)[0]

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits (N, C) and integer labels (N,) in [0, C)
    (torch.nn.CrossEntropyLoss): mean_i (logsumexp(z_i) - z_i[y_i]). The softmax is fused
    (stable for any logits); the gradient is (softmax(z) - onehot(y)) / N. The model's last
    layer should output logits (no Softmax layer)."""

    _op = "softmax_cross_entropy"


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on logits (torch.nn.BCEWithLogitsLoss): for multi-label
    targets in [0, 1] of the logits' shape, mean of max(z, 0) - z t + log(1 + exp(-|z|))
    (the sigmoid fused, stable); the gradient is (sigmoid(z) - t) / size."""

    _op = "binary_cross_entropy_with_logits"
    _backward_kwargs = {"need_dtargets": False}


class MSELoss(Loss):
    """Mean squared error (torch.nn.MSELoss): mean((pred - target)^2) over all elements;
    the gradient is 2 (pred - target) / size. (Nielsen's quadratic cost is half the sum
    over the outputs, averaged over the batch.)"""

    _op = "mse_loss"
    _backward_kwargs = {"need_dtarget": False}


def _param_list(params) -> list:
    if isinstance(params, Module):
        return params.parameters()
    if isinstance(params, Parameter):
        return [params]
    out = list(params)
    for i, p in enumerate(out):
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{i}]: expected a Parameter, got {type(p).__name__}")
    return out


class _Penalty:
    def __init__(self, coef):
        if isinstance(coef, (bool, np.bool_)) or not isinstance(coef, numbers.Real):
            raise TypeError(f"coef: expected a real number, got {type(coef).__name__}")
        if not coef >= 0:
            raise ValueError(f"coef: expected a number >= 0, got {coef}")
        self.coef = float(coef)
        self._params = None

    def __call__(self, params) -> float:
        """The penalty on ``params`` (a Module, a Parameter or a list of Parameters);
        remembers them for backward()."""
        self._params = _param_list(params)
        return float(sum(self._value(p.data) for p in self._params))

    def backward(self) -> None:
        """Add the penalty's gradient to each remembered parameter's .grad (frozen ones skipped)."""
        if self._params is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call the penalty on parameters first")
        for p in self._params:
            if p.requires_grad:
                p.accumulate(self._grad(p.data))

    def __repr__(self):
        return f"{type(self).__name__}(coef={self.coef})"


class L2Penalty(_Penalty):
    """coef/2 * sum of squared weights ("weight decay", ridge): gradient coef * w, the same
    update as SGD's weight_decay=coef, but applied only to the parameters you pass (e.g.
    the weights and not the biases or BatchNorm scales)."""

    def _value(self, w):
        w = w.reshape(-1)
        return 0.5 * self.coef * float(np.dot(w, w))

    def _grad(self, w):
        return self.coef * w


class L1Penalty(_Penalty):
    """coef * sum |w| (lasso): gradient coef * sign(w) (0 at w == 0); drives small weights
    to exactly zero, a sparse model."""

    def _value(self, w):
        return self.coef * float(np.abs(w).sum())

    def _grad(self, w):
        return self.coef * np.sign(w)

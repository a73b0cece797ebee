"""Multilayer perceptrons: ``mlp`` (any sizes and activation), ``nielsen`` (the
[784, 30, 10] sigmoid network of Nielsen's book) and ``mlp512`` (784-512-512-10 tanh).

Each starts with a Flatten, so it takes images (N, 1, 28, 28) as well as vectors
(N, 784), and ends with a Linear layer's logits — except ``nielsen``, which ends with a
Sigmoid, as in the book (its cost is the quadratic cost on the activations).
"""

from __future__ import annotations

import numbers

import numpy as np

from fastlayers import nn
from fastlayers.models._common import activation as _activation_layer
from fastlayers.models._common import check_classes, check_shape, maybe_uninitialised, prod

__all__ = ["mlp", "mlp512", "nielsen"]


def _sizes(sizes, name="sizes") -> list[int]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"{name}: expected a list of positive ints, got {type(sizes).__name__}")
    out = list(sizes)
    for i, s in enumerate(out):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"{name}[{i}]: expected a positive integer, got {s!r}")
    return [int(s) for s in out]


def _stack(sizes, act: str, rng, dropout: float = 0.0, batch_norm: bool = False, final=None) -> nn.Sequential:
    """Flatten, then Linear(sizes[i], sizes[i+1]) with [BatchNorm1d,] act[, Dropout]
    between layers; ``final`` (a Module or None) after the last Linear."""
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=rng))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(_activation_layer(act))
            if dropout:
                layers.append(nn.Dropout(dropout))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def mlp(sizes=None, activation="relu", *, hidden=(256, 128, 100), input_shape=None, num_classes=None,
        dropout=0.0, batch_norm=False, rng=None, init=True):
    """A multilayer perceptron: Flatten -> [Linear -> (BatchNorm1d) -> act -> (Dropout)]* -> Linear.

    sizes: the full list of layer widths [inputs, hidden..., outputs] (e.g. [784, 256,
    128, 100, 10]); when given it fixes the inputs and classes (input_shape and
    num_classes, if given, are checked against it). Otherwise the widths are
    [prod(input_shape), *hidden, num_classes] (input_shape (1, 28, 28) and 10 classes
    unless given) — the default is the issue's Fashion-MNIST
    baseline 784-256-128-100-10 with ReLU. activation: a name from
    models._common.ACTIVATIONS (relu, tanh, sigmoid, leaky_relu, gelu, elu, softplus).
    dropout: probability after each hidden activation (0: none). Layers keep PyTorch's
    default initialisation. Outputs logits: train with CrossEntropyLoss.
    torch: nn.Sequential(nn.Flatten(), nn.Linear(...), nn.ReLU(), ...).
    """
    if sizes is None:
        shape = check_shape((1, 28, 28) if input_shape is None else input_shape)
        classes = check_classes(10 if num_classes is None else num_classes)
        widths = [prod(shape), *_sizes(hidden, "hidden"), classes]
    else:
        widths = _sizes(sizes)
        if len(widths) < 2:
            raise ValueError(f"sizes: expected at least [inputs, outputs], got {widths}")
        if input_shape is not None and prod(check_shape(input_shape)) != widths[0]:
            raise ValueError(f"sizes: sizes[0] = {widths[0]} but input_shape {tuple(input_shape)} has "
                             f"{prod(check_shape(input_shape))} features")
        if num_classes is not None and check_classes(num_classes, minimum=1) != widths[-1]:
            raise ValueError(f"sizes: sizes[-1] = {widths[-1]} but num_classes = {num_classes}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
    with maybe_uninitialised(init):
        return _stack(widths, activation, rng, float(dropout), bool(batch_norm))


def nielsen(input_shape=(1, 28, 28), num_classes=10, *, hidden=30, rng=None, init=True):
    """Nielsen's network ("Neural Networks and Deep Learning", ch. 1, network.py):
    Flatten -> Linear(784, 30) -> Sigmoid -> Linear(30, 10) -> Sigmoid. 23,860 parameters.

    Initialisation as in network.py: every weight and bias drawn from N(0, 1).
    Training as in the book: mini-batch SGD (batch 10, eta 3.0, 30 epochs) on the
    quadratic cost C = 1/(2n) sum_x ||y(x) - a||^2 with one-hot targets y — use MSELoss
    on the Sigmoid outputs and one-hot float targets (N, 10). MSELoss averages over all
    N*10 elements without the 1/2, so its gradient is 2/10 of the book's: the book's
    eta = 3.0 is lr = 15 here (MSELoss(reduction="sum") with lr = eta / (2 batch_size)
    is the book's update exactly). torch: nn.Sequential(nn.Flatten(), nn.Linear(784, 30),
    nn.Sigmoid(), nn.Linear(30, 10), nn.Sigmoid()) with nn.MSELoss.
    """
    widths = [prod(check_shape(input_shape)), int(hidden), check_classes(num_classes)]
    with maybe_uninitialised(init):
        net = _stack(widths, "sigmoid", rng, final=nn.Sigmoid())
        for p in net.parameters():
            nn.init.normal(p.data, 0.0, 1.0, rng=rng)
    return net


def mlp512(input_shape=(1, 28, 28), num_classes=10, *, rng=None, init=True):
    """The lecture's MNIST network: Flatten -> Linear(784, 512) -> Tanh -> Linear(512, 512)
    -> Tanh -> Linear(512, 10), logits for a softmax + cross-entropy (CrossEntropyLoss,
    the softmax fused). 669,706 parameters.

    Initialisation: Glorot/Xavier uniform weights (designed for tanh; Keras' Dense
    default), zero biases. torch: nn.Sequential(nn.Flatten(), nn.Linear(784, 512),
    nn.Tanh(), nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 10)) with nn.CrossEntropyLoss.
    """
    widths = [prod(check_shape(input_shape)), 512, 512, check_classes(num_classes)]
    with maybe_uninitialised(init):
        net = _stack(widths, "tanh", rng)
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform(m.weight.data, rng=rng)
                nn.init.zeros(m.bias.data)
    return net

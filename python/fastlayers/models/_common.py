"""Helpers shared by the model builders: argument checks, output-size arithmetic,
activation names, and ``uninitialised()`` (build a network without drawing its weights).

Shapes follow fastlayers.data: ``input_shape`` is the shape of ONE example without the
batch dimension, (C, H, W) for images and (features,) for vectors.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import numpy as np

from fastlayers import nn
from fastlayers.nn import init as _init

__all__ = [
    "ACTIVATIONS",
    "activation",
    "check_classes",
    "check_image_shape",
    "check_shape",
    "conv_out",
    "maybe_uninitialised",
    "uninitialised",
]

# name -> layer class; the names the CLI accepts for --activation.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}


def activation(name: str) -> nn.Module:
    """A fresh activation layer from its name (see ACTIVATIONS)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def _positive_int(x, name: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral) or x < 1:
        raise ValueError(f"{name}: expected a positive integer, got {x!r}")
    return int(x)


def check_shape(input_shape, name: str = "input_shape") -> tuple:
    """input_shape as a tuple of positive ints (one example, no batch dimension)."""
    if isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, (bool, np.bool_)):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise ValueError(f"{name}: expected a non-empty tuple of positive ints, got {input_shape!r}")
    return tuple(_positive_int(d, name) for d in input_shape)


def check_image_shape(input_shape, model: str) -> tuple:
    """(C, H, W) of an image model; a 2-D (H, W) shape means one channel."""
    shape = check_shape(input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape: {model} expects images (C, H, W), got {input_shape!r}")
    return shape


def check_classes(num_classes, minimum: int = 2) -> int:
    n = _positive_int(num_classes, "num_classes")
    if n < minimum:
        raise ValueError(f"num_classes: expected >= {minimum}, got {n}")
    return n


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling window along one axis (floor mode,
    as torch): (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


# ---------------------------------------------------------------------------------------
# Building without initialising
# ---------------------------------------------------------------------------------------

@contextmanager
def uninitialised():
    """Inside this block, models are built without drawing their weights
    (fastlayers.nn.init.skip_random_fills): a 138M-parameter VGG-16 builds in
    milliseconds and costs (almost) no resident memory until its weights are written —
    by ``load_state_dict`` or the first training step. The values are garbage: use it
    to count parameters or to build a model whose checkpoint you load next; never train
    from it directly.
    """
    with _init.skip_random_fills():
        yield


@contextmanager
def maybe_uninitialised(init: bool):
    """uninitialised() when ``init`` is False, else nothing."""
    if not isinstance(init, (bool, np.bool_)):
        raise TypeError(f"init: expected a bool, got {type(init).__name__}")
    if init:
        yield
    else:
        with uninitialised():
            yield


def prod(shape) -> int:
    return int(math.prod(shape))

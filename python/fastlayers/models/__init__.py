"""fastlayers.models: the model zoo, by name — ``get(name, **kw)``.

    from fastlayers import models
    net = models.get("convnet", input_shape=(1, 28, 28), num_classes=10)
    loss_fn = models.loss_for("convnet")           # CrossEntropyLoss()
    models.names()                                 # every name, as the CLI's --model takes

Every builder takes ``input_shape`` (one example without the batch dimension: (C, H, W)
for images, (features,) for vectors) and ``num_classes`` where they make sense, ``rng``
(a numpy Generator for reproducible initialisation; else fastlayers.nn.init's global
generator) and ``init`` (False: build without drawing the weights — see
models._common.uninitialised; for counting parameters or loading a checkpoint). Each
returns an nn.Sequential of logits (except ``nielsen``, which ends in a Sigmoid, and
``perceptron``, which is not a Module). ``get`` records the name and the keyword
arguments on the model as ``model.zoo_name`` and ``model.zoo_kwargs`` (rng left out),
which checkpoints (fastlayers.io) store to rebuild it, and the loss it trains with as
``model.default_loss`` ("cross_entropy", "bce" or "mse" on one-hot targets).

=========== ================================================ =========== =============
name        architecture                                     input       loss
=========== ================================================ =========== =============
perceptron  Rosenblatt's rule (not a Module: fit/predict)    (features,) its own rule
logistic    Flatten -> Linear(features, 1)                   (2,)        bce
softmax     Flatten -> Linear(features, classes)             (1, 28, 28) cross_entropy
mlp         Flatten -> [Linear -> act]* -> Linear            (1, 28, 28) cross_entropy
nielsen     784-30-10 sigmoid, N(0, 1) init (network.py)     (1, 28, 28) mse_onehot
mlp512      784-512-512-10 tanh                              (1, 28, 28) cross_entropy
lenet5      LeNet-5, 61,706 parameters                       (1, 32, 32) cross_entropy
convnet     TensorFlow layers tutorial CNN, 3,274,634        (1, 28, 28) cross_entropy
vgg         small VGG-style, 3x3 convs + BatchNorm           (1, 28, 28) cross_entropy
resnet      CIFAR-style ResNet-20, basic blocks + BN         (1, 28, 28) cross_entropy
alexnet     torchvision AlexNet, 61,100,840                  (3,224,224) cross_entropy
vgg16       VGG-16 (config D), 138,357,544                   (3,224,224) cross_entropy
=========== ================================================ =========== =============
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from fastlayers import nn
from fastlayers.models._common import ACTIVATIONS, uninitialised
from fastlayers.models.cnn import basic_block, convnet, lenet5, resnet, vgg
from fastlayers.models.imagenet import alexnet, vgg16
from fastlayers.models.linear import ConvergenceWarning, FitResult, Perceptron, logistic, perceptron, softmax
from fastlayers.models.mlp import mlp, mlp512, nielsen

__all__ = [
    "ACTIVATIONS",
    "MODELS",
    "ConvergenceWarning",
    "FitResult",
    "ModelInfo",
    "Perceptron",
    "alexnet",
    "basic_block",
    "convnet",
    "get",
    "info",
    "lenet5",
    "logistic",
    "loss_for",
    "mlp",
    "mlp512",
    "names",
    "nielsen",
    "perceptron",
    "resnet",
    "softmax",
    "uninitialised",
    "vgg",
    "vgg16",
]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """One zoo entry. loss: "cross_entropy" (logits, integer labels), "bce" (one logit,
    float targets (N, 1)), "mse_onehot" (outputs in [0, 1], one-hot float targets) or
    "perceptron" (trained by Perceptron.fit, no loss)."""

    name: str
    build: Callable
    loss: str
    description: str


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("perceptron", perceptron, "perceptron", "Rosenblatt's perceptron (its own rule, not backprop)"),
        ModelInfo("logistic", logistic, "bce", "logistic regression: Linear(features, 1)"),
        ModelInfo("softmax", softmax, "cross_entropy", "softmax regression: Linear(features, classes)"),
        ModelInfo("mlp", mlp, "cross_entropy", "multilayer perceptron (sizes, activation)"),
        ModelInfo("nielsen", nielsen, "mse_onehot", "Nielsen's [784, 30, 10] sigmoid network, quadratic cost"),
        ModelInfo("mlp512", mlp512, "cross_entropy", "784-512-512-10 tanh network, softmax + cross-entropy"),
        ModelInfo("lenet5", lenet5, "cross_entropy", "LeNet-5 (LeCun et al. 1998)"),
        ModelInfo("convnet", convnet, "cross_entropy", "TensorFlow layers tutorial CNN"),
        ModelInfo("vgg", vgg, "cross_entropy", "small VGG-style CNN with BatchNorm"),
        ModelInfo("resnet", resnet, "cross_entropy", "small CIFAR-style ResNet with basic blocks"),
        ModelInfo("alexnet", alexnet, "cross_entropy", "AlexNet (torchvision variant), 224x224x3, 1000 classes"),
        ModelInfo("vgg16", vgg16, "cross_entropy", "VGG-16 (configuration D), 224x224x3, 1000 classes"),
    )
}


def names() -> list[str]:
    """The zoo's model names, in the table's order."""
    return list(MODELS)


def info(name: str) -> ModelInfo:
    """The zoo entry for ``name`` (ValueError listing the names when unknown)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    return MODELS[name]


def get(name: str, **kw):
    """Build the model ``name`` with the builder's keyword arguments (see each builder's
    docstring, e.g. ``get("mlp", hidden=(256, 128), activation="tanh")``)."""
    entry = info(name)
    model = entry.build(**kw)
    recorded = {
        "zoo_name": name,
        "zoo_kwargs": {k: v for k, v in kw.items() if k != "rng"},
        "default_loss": {"mse_onehot": "mse"}.get(entry.loss, entry.loss),
    }
    for attr, value in recorded.items():
        if isinstance(model, nn.Module):
            object.__setattr__(model, attr, value)  # plain attributes, not registered state
        else:
            setattr(model, attr, value)
    return model


def loss_for(name: str, **kw):
    """A fresh loss for the model ``name``: CrossEntropyLoss, BCEWithLogitsLoss or
    MSELoss (kw go to its constructor); None for the perceptron."""
    kind = info(name).loss
    if kind == "perceptron":
        return None
    return {"cross_entropy": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss, "mse_onehot": nn.MSELoss}[kind](**kw)

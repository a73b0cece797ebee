"""fastlayers.nn: Modules, layers, losses and initialisation (torch.nn's names).

No autograd: ``model.backward(grad)`` runs the backpropagation algorithm layer by layer,
returning the input gradient and accumulating every parameter's ``.grad``::

    import fastlayers.nn as nn
    from fastlayers.optim import SGD

    net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches:                      # x float32 (N, 784), y int (N,)
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        net.backward(loss_fn.backward())
        opt.step()

Every computation runs in fastlayers.ops, on the C++ kernels by default
(``backend="cpu"``, float32) or on the NumPy reference (``net.to_backend("reference")``,
which with ``net.double()`` runs in float64 for gradient checks). See
fastlayers.nn.module for the Module machinery and the ``need_input_grad`` rule.
"""

from fastlayers.nn import init
from fastlayers.nn.layers import (
    ELU,
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from fastlayers.nn.losses import BCEWithLogitsLoss, CrossEntropyLoss, L1Penalty, L2Penalty, Loss, MSELoss
from fastlayers.nn.module import Module, Parameter, Residual, Sequential, is_grad_enabled, no_grad

__all__ = [
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "Flatten",
    "GELU",
    "GlobalAvgPool2d",
    "L1Penalty",
    "L2Penalty",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "init",
    "is_grad_enabled",
    "no_grad",
]

"""Small convolutional networks for 28x28 / 32x32 images: ``lenet5``, ``convnet`` (the
TensorFlow layers tutorial network), ``vgg`` (VGG-style 3x3 convs with BatchNorm) and
``resnet`` (CIFAR-style ResNet with basic residual blocks).

Inputs are (N, C, H, W) float32; every network outputs logits (N, num_classes) — train
with CrossEntropyLoss. The fully connected layers' sizes are computed from
``input_shape`` (no forward pass needed).
"""

from __future__ import annotations

import numbers

import numpy as np

from fastlayers import nn
from fastlayers.models._common import activation as _activation_layer
from fastlayers.models._common import check_classes, check_image_shape, conv_out, maybe_uninitialised

__all__ = ["convnet", "lenet5", "resnet", "vgg"]


def _too_small(model: str, shape, h: int, w: int):
    if h < 1 or w < 1:
        raise ValueError(f"input_shape: {shape} is too small for {model} (its feature map shrinks to {h}x{w})")


def _pool_layer(pool: str):
    if pool == "avg":
        return nn.AvgPool2d(2)
    if pool == "max":
        return nn.MaxPool2d(2)
    raise ValueError(f"pool: expected 'avg' or 'max', got {pool!r}")


def _kaiming_convs(net: nn.Module, rng) -> None:
    """He-normal (fan_out, ReLU) conv weights and zero conv biases, as torchvision's
    VGG and ResNet initialise them."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal(m.weight.data, mode="fan_out", nonlinearity="relu", rng=rng)
            if m.bias is not None:
                nn.init.zeros(m.bias.data)


def lenet5(input_shape=(1, 32, 32), num_classes=10, *, input_size=None, activation="tanh", pool="avg",
           rng=None, init=True):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to
    document recognition", 1998), in its common modern form:

        conv 5x5, 6 -> act -> pool 2 -> conv 5x5, 16 -> act -> pool 2 -> flatten (16*5*5)
        -> FC 120 -> act -> FC 84 -> act -> FC num_classes

    on 32x32 inputs. For 28x28 inputs (MNIST / Fashion-MNIST; ``input_shape=(1, 28, 28)``
    or ``input_size=28``, which overrides input_shape's H and W) conv1 is padded by 2,
    the usual adaptation, which keeps every later size — and the parameter count — of
    the 32x32 network. Other sizes use no padding and size FC 120 from the resulting
    feature map.

    Differences from the 1998 paper (as in most reimplementations): C3 connects to all
    6 input maps (the paper used a sparse table: 1,516 weights instead of 2,400), the
    subsampling layers are plain pools without their trainable coefficient and bias
    (pool="avg", the default, is the paper's averaging; "max" is common too), act is
    tanh (the paper's scaled tanh 1.7159 tanh(2x/3) aside; any ACTIVATIONS name), and
    the output is a Linear layer of logits instead of Euclidean RBF units.
    Parameters: 61,706 for 1 input channel and 10 classes (156 + 2,416 + 48,120 + 10,164
    + 850). Default PyTorch initialisation. torch: the same layers in nn.Sequential.
    """
    c, h, w = check_image_shape(input_shape, "lenet5")
    if input_size is not None:  # a square size overriding input_shape's H and W (channels kept)
        h = w = _positive_ints(input_size, "input_size")[0]
    pad = 2 if (h, w) == (28, 28) else 0
    fh, fw = h + 2 * pad, w + 2 * pad
    for _ in range(2):  # conv 5x5 (valid) then pool 2
        fh, fw = conv_out(fh, 5) // 2, conv_out(fw, 5) // 2
    _too_small("lenet5", (c, h, w), fh, fw)
    with maybe_uninitialised(init):
        return nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=pad, rng=rng), _activation_layer(activation), _pool_layer(pool),
            nn.Conv2d(6, 16, 5, rng=rng), _activation_layer(activation), _pool_layer(pool),
            nn.Flatten(),
            nn.Linear(16 * fh * fw, 120, rng=rng), _activation_layer(activation),
            nn.Linear(120, 84, rng=rng), _activation_layer(activation),
            nn.Linear(84, check_classes(num_classes), rng=rng),
        )


def convnet(input_shape=(1, 28, 28), num_classes=10, *, dropout=0.4, rng=None, init=True):
    """The TensorFlow layers tutorial network ("Build a Convolutional Neural Network
    using Estimators", tf.layers, for MNIST):

        conv 5x5, 32, pad 2 -> ReLU -> max-pool 2 -> conv 5x5, 64, pad 2 -> ReLU
        -> max-pool 2 -> flatten (7*7*64) -> FC 1024 -> ReLU -> dropout 0.4 -> FC 10

    Initialisation as tf.layers' defaults: Glorot-uniform kernels, zero biases.
    Parameters for (1, 28, 28) and 10 classes: 3,274,634 (832 + 51,264 + 3,212,288 +
    10,250). For other sizes FC 1024's input is 64 * (H // 4) * (W // 4).
    torch: nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), ...).
    """
    c, h, w = check_image_shape(input_shape, "convnet")
    fh, fw = h // 2 // 2, w // 2 // 2
    _too_small("convnet", (c, h, w), fh, fw)
    with maybe_uninitialised(init):
        net = nn.Sequential(
            nn.Conv2d(c, 32, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * fh * fw, 1024, rng=rng), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(1024, check_classes(num_classes), rng=rng),
        )
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform(m.weight.data, rng=rng)
                nn.init.zeros(m.bias.data)
    return net


def _positive_ints(xs, name: str) -> tuple:
    xs = tuple(xs) if isinstance(xs, (tuple, list)) else (xs,)
    for x in xs:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral) or x < 1:
            raise ValueError(f"{name}: expected positive integers, got {xs!r}")
    return tuple(int(x) for x in xs)


def _conv_bn_relu(cin: int, cout: int, rng, stride: int = 1) -> list:
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()]


def vgg(input_shape=(1, 28, 28), num_classes=10, *, widths=(32, 64, 128), convs_per_stage=2, hidden=256,
        dropout=0.5, rng=None, init=True):
    """A small VGG-style network (after Simonyan & Zisserman, "Very deep convolutional
    networks", 2014, with batch normalisation as torchvision's vgg*_bn):

        for each width: convs_per_stage x [conv 3x3 pad 1 (no bias) -> BatchNorm2d -> ReLU]
                        -> max-pool 2
        -> flatten -> FC hidden -> ReLU -> dropout -> FC num_classes

    For 28x28 inputs and the default widths the feature map is 128 x 3 x 3 (28 -> 14 ->
    7 -> 3), for 32x32 it is 128 x 4 x 4. Initialisation as torchvision's VGG: conv
    weights He-normal (fan_out, ReLU), BatchNorm weight 1 and bias 0; the Linear layers
    keep PyTorch's default. torch: the same layers in nn.Sequential.
    """
    c, h, w = check_image_shape(input_shape, "vgg")
    widths = _positive_ints(widths, "widths")
    (n_convs,) = _positive_ints(convs_per_stage, "convs_per_stage")
    layers, cin, fh, fw = [], c, h, w
    with maybe_uninitialised(init):
        for width in widths:
            for _ in range(n_convs):
                layers += _conv_bn_relu(cin, width, rng)
                cin = width
            layers.append(nn.MaxPool2d(2))
            fh, fw = fh // 2, fw // 2
        _too_small("vgg", (c, h, w), fh, fw)
        layers += [nn.Flatten(), nn.Linear(cin * fh * fw, hidden, rng=rng), nn.ReLU(), nn.Dropout(dropout),
                   nn.Linear(hidden, check_classes(num_classes), rng=rng)]
        net = nn.Sequential(*layers)
        _kaiming_convs(net, rng)
    return net


def basic_block(cin: int, cout: int, stride: int = 1, rng=None) -> nn.Sequential:
    """ResNet's basic block (He et al. 2016, torchvision's BasicBlock):
    Residual(conv 3x3 (stride) -> BN -> ReLU -> conv 3x3 -> BN, projection="auto") -> ReLU.
    The shortcut is the identity when cin == cout and stride == 1, else a 1x1 conv
    (stride) + BatchNorm projection (the paper's option B)."""
    body = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(cout),
    )
    return nn.Sequential(nn.Residual(body, projection="auto"), nn.ReLU())


def resnet(input_shape=(1, 28, 28), num_classes=10, *, depth=20, widths=(16, 32, 64), rng=None, init=True):
    """A small ResNet for 28x28 / 32x32 images: the CIFAR-10 ResNets of He, Zhang, Ren &
    Sun ("Deep residual learning for image recognition", 2016, section 4.2):

        conv 3x3, widths[0] (no bias) -> BN -> ReLU
        -> for each width w_i: n basic blocks (see basic_block), the first with stride 2
           for i > 0
        -> global average pool -> FC num_classes

    with n = (depth - 2) / 6 blocks per stage (depth 20, 32, 44, 56, 110: 6n + 2 layers
    with weights). Difference from the paper: where the shape changes the shortcut is a
    1x1 conv + BatchNorm projection (option B, nn.Residual(projection="auto")) instead of
    zero-padding (option A), which adds w_{i-1} w_i + 2 w_i parameters at each stage
    change: 272,186 for depth 20 on 1 channel and 10 classes (269,434 with option A, the
    paper's "0.27M").
    Initialisation as torchvision: conv weights He-normal (fan_out, ReLU), BatchNorm
    weight 1 and bias 0, the Linear layer PyTorch's default.
    """
    c, h, w = check_image_shape(input_shape, "resnet")
    (depth,) = _positive_ints(depth, "depth")
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth: expected 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    widths = _positive_ints(widths, "widths")
    with maybe_uninitialised(init):
        layers = _conv_bn_relu(c, widths[0], rng)
        cin = widths[0]
        for i, width in enumerate(widths):
            for j in range(n):
                layers.append(basic_block(cin, width, 2 if (i > 0 and j == 0) else 1, rng))
                cin = width
        layers += [nn.GlobalAvgPool2d(), nn.Linear(cin, check_classes(num_classes), rng=rng)]
        net = nn.Sequential(*layers)
        _kaiming_convs(net, rng)
    return net

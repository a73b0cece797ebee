"""Full-size ImageNet classifiers: ``alexnet`` (torchvision's variant) and ``vgg16``.

Inputs (N, 3, 224, 224), 1000 classes; their parameter counts match the published ones
exactly (AlexNet 61,100,840, VGG-16 138,357,544). The weights take 244 MB and 553 MB
in float32: build them with ``init=False`` to count parameters or to load a checkpoint
without drawing (and touching) hundreds of megabytes of random numbers.

torchvision ends both feature extractors with AdaptiveAvgPool2d (6x6 / 7x7), which
fastlayers does not have; at 224x224 that pool is the identity, so it is left out and
the first FC layer is sized from ``input_shape`` (at other sizes the counts then differ
from torchvision's, where the adaptive pool would resample the map).
"""

from __future__ import annotations

from fastlayers import nn
from fastlayers.models._common import check_classes, check_image_shape, conv_out, maybe_uninitialised

__all__ = ["VGG16_CONFIG", "alexnet", "vgg16"]


def _classifier(features: int, num_classes: int, dropout: float, rng, dropout_first: bool) -> list:
    """FC 4096 -> ReLU -> FC 4096 -> ReLU -> FC classes, with Dropout(dropout) placed as
    torchvision does: before each of the first two FCs (AlexNet, dropout_first) or after
    each of their ReLUs (VGG)."""
    layers = []
    for fin in (features, 4096):
        fc = [nn.Linear(fin, 4096, rng=rng), nn.ReLU()]
        layers += [nn.Dropout(dropout), *fc] if dropout_first else [*fc, nn.Dropout(dropout)]
    return layers + [nn.Linear(4096, num_classes, rng=rng)]


def alexnet(input_shape=(3, 224, 224), num_classes=1000, *, dropout=0.5, rng=None, init=True):
    """AlexNet as in torchvision (models.alexnet, after Krizhevsky's "One weird trick for
    parallelizing convolutional neural networks", 2014 — the single-GPU variant, not
    the two-tower 2012 network with 96/256/384/384/256 kernels and LRN):

        conv 11x11, 64, stride 4, pad 2 -> ReLU -> max-pool 3, stride 2
        -> conv 5x5, 192, pad 2 -> ReLU -> max-pool 3/2
        -> conv 3x3, 384, pad 1 -> ReLU -> conv 3x3, 256, pad 1 -> ReLU
        -> conv 3x3, 256, pad 1 -> ReLU -> max-pool 3/2            (256 x 6 x 6 at 224x224)
        -> flatten -> dropout -> FC 4096 -> ReLU -> dropout -> FC 4096 -> ReLU -> FC 1000

    61,100,840 parameters for (3, 224, 224) and 1000 classes (torchvision's number).
    Default PyTorch initialisation (torchvision's AlexNet keeps it).
    """
    c, h, w = check_image_shape(input_shape, "alexnet")
    fh, fw = conv_out(h, 11, 4, 2), conv_out(w, 11, 4, 2)
    for _ in range(3):  # the three max-pools 3/2 (the 5x5 and 3x3 convs keep the size)
        fh, fw = conv_out(fh, 3, 2), conv_out(fw, 3, 2)
    if fh < 1 or fw < 1:
        raise ValueError(f"input_shape: {(c, h, w)} is too small for alexnet (at least 63x63)")
    with maybe_uninitialised(init):
        return nn.Sequential(
            nn.Conv2d(c, 64, 11, stride=4, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, rng=rng), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Flatten(),
            *_classifier(256 * fh * fw, check_classes(num_classes), dropout, rng, dropout_first=True),
        )


# torchvision's configuration "D": conv widths, "M" a 2x2 max-pool.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(input_shape=(3, 224, 224), num_classes=1000, *, dropout=0.5, rng=None, init=True):
    """VGG-16 (Simonyan & Zisserman, "Very deep convolutional networks for large-scale
    image recognition", 2014, configuration D; torchvision's models.vgg16, no BatchNorm):

        13 x conv 3x3 pad 1 -> ReLU, widths 64, 64 | 128, 128 | 256 x3 | 512 x3 | 512 x3,
        a 2x2 max-pool after each group                          (512 x 7 x 7 at 224x224)
        -> flatten -> FC 4096 -> ReLU -> dropout -> FC 4096 -> ReLU -> dropout -> FC 1000

    138,357,544 parameters for (3, 224, 224) and 1000 classes. Initialisation as
    torchvision's VGG: conv weights He-normal (fan_out, ReLU), Linear weights N(0, 0.01),
    all biases 0.
    """
    c, h, w = check_image_shape(input_shape, "vgg16")
    fh, fw = h, w
    layers, cin = [], c
    with maybe_uninitialised(init):
        for v in VGG16_CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                fh, fw = fh // 2, fw // 2
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1, rng=rng), nn.ReLU()]
                cin = v
        if fh < 1 or fw < 1:
            raise ValueError(f"input_shape: {(c, h, w)} is too small for vgg16 (at least 32x32)")
        layers += [nn.Flatten(), *_classifier(cin * fh * fw, check_classes(num_classes), dropout, rng,
                                             dropout_first=False)]
        net = nn.Sequential(*layers)
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal(m.weight.data, mode="fan_out", nonlinearity="relu", rng=rng)
                nn.init.zeros(m.bias.data)
            elif isinstance(m, nn.Linear):
                nn.init.normal(m.weight.data, 0.0, 0.01, rng=rng)
                nn.init.zeros(m.bias.data)
    return net

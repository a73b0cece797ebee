"""The model zoo (fastlayers.models): names and errors, exact parameter counts (the
published ones for LeNet-5, the TensorFlow tutorial convnet, the lecture's MLP,
Nielsen's network, AlexNet and VGG-16), forward shapes and finite gradients for every
small model on a batch of 2, a float64 gradient check through the zoo's residual and
VGG blocks, and the perceptron on AND / OR / XOR.

AlexNet and VGG-16 are built with init=False (weights allocated, never drawn): no
forward pass, milliseconds, almost no resident memory.
"""

import warnings

import numpy as np
import pytest

from fastlayers import models, nn
from fastlayers.data import datasets
from fastlayers.gradcheck import numerical_gradient, rel_error

SMALL = ["logistic", "softmax", "mlp", "nielsen", "mlp512", "lenet5", "convnet", "vgg", "resnet"]


def test_names_and_registry():
    assert models.names() == ["perceptron", "logistic", "softmax", "mlp", "nielsen", "mlp512", "lenet5", "convnet",
                              "vgg", "resnet", "alexnet", "vgg16"]
    for name in models.names():
        doc = models.MODELS[name].build.__doc__
        assert doc and len(doc) > 100, name  # architecture and source documented


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="unknown model 'lenet'.*lenet5.*convnet.*vgg16"):
        models.get("lenet")
    with pytest.raises(ValueError, match="unknown model"):
        models.loss_for("nope")


# (name, kwargs, exact parameter count, where the number comes from)
COUNTS = [
    ("lenet5", {}, 61_706, "156 + 2,416 + 48,120 + 10,164 + 850 (classic 32x32, full C3)"),
    ("lenet5", {"input_shape": (1, 28, 28)}, 61_706, "conv1 padded by 2: the same network"),
    ("lenet5", {"input_size": 28}, 61_706, "input_size shorthand"),
    ("convnet", {}, 3_274_634, "832 + 51,264 + 3,212,288 + 10,250"),
    ("mlp512", {}, 669_706, "401,920 + 262,656 + 5,130"),
    ("nielsen", {}, 23_860, "23,550 + 310"),
    ("softmax", {}, 7_850, "785 * 10"),
    ("logistic", {"input_shape": (5,)}, 6, "5 weights + 1 bias"),
    ("mlp", {}, 247_766, "784-256-128-100-10: 200,960 + 32,896 + 12,900 + 1,010"),
    ("mlp", {"sizes": [4, 3, 2], "activation": "tanh"}, 23, "15 + 8"),
    ("resnet", {}, 272_186, "ResNet-20, option-B projections: 269,434 + 576 + 2,176"),
    ("alexnet", {}, 61_100_840, "torchvision AlexNet"),
    ("vgg16", {}, 138_357_544, "VGG-16, configuration D"),
]


@pytest.mark.parametrize("name,kw,expected,why", COUNTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(COUNTS)])
def test_parameter_counts(name, kw, expected, why):
    assert models.get(name, init=False, **kw).num_parameters() == expected, why


def test_init_false_builds_the_same_shapes_without_drawing():
    a = models.get("lenet5", rng=np.random.default_rng(0)).state_dict()
    b = models.get("lenet5", init=False).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    arr = np.full(6, 7.0, np.float32)
    with models.uninitialised():
        nn.init.normal(arr, rng=np.random.default_rng(0))
        nn.init.kaiming_uniform(arr.reshape(2, 3), rng=np.random.default_rng(0))
    assert (arr == 7.0).all()  # the random fills were skipped...
    nn.init.normal(arr, rng=np.random.default_rng(0))
    assert (arr != 7.0).all()  # ...and are back afterwards


# (name, kwargs, one example's shape, output shape for a batch of 2)
SHAPES = [
    ("logistic", {}, (2,), (2, 1)),
    ("logistic", {"input_shape": (3, 4)}, (3, 4), (2, 1)),
    ("softmax", {}, (1, 28, 28), (2, 10)),
    ("mlp", {"hidden": (16, 8), "activation": "gelu", "dropout": 0.2, "batch_norm": True}, (1, 28, 28), (2, 10)),
    ("mlp", {"sizes": [6, 5, 3]}, (6,), (2, 3)),
    ("nielsen", {}, (784,), (2, 10)),
    ("mlp512", {}, (1, 28, 28), (2, 10)),
    ("lenet5", {}, (1, 32, 32), (2, 10)),
    ("lenet5", {"input_shape": (1, 28, 28), "pool": "max", "activation": "relu"}, (1, 28, 28), (2, 10)),
    ("lenet5", {"input_shape": (3, 32, 32), "num_classes": 5}, (3, 32, 32), (2, 5)),
    ("convnet", {}, (1, 28, 28), (2, 10)),
    ("convnet", {"input_shape": (3, 32, 32), "num_classes": 7}, (3, 32, 32), (2, 7)),
    ("vgg", {}, (1, 28, 28), (2, 10)),
    ("vgg", {"input_shape": (3, 32, 32)}, (3, 32, 32), (2, 10)),
    ("resnet", {}, (1, 28, 28), (2, 10)),
    ("resnet", {"input_shape": (3, 32, 32), "depth": 8, "num_classes": 4}, (3, 32, 32), (2, 4)),
]


def _target(name, out, rng):
    """A target of the kind the model's loss takes, for a batch of len(out)."""
    kind = models.info(name).loss
    if kind == "cross_entropy":
        return rng.integers(0, out.shape[1], len(out))
    if kind == "bce":
        return (rng.random(out.shape) > 0.5).astype(out.dtype)
    assert kind == "mse_onehot"
    return np.eye(out.shape[1], dtype=out.dtype)[rng.integers(0, out.shape[1], len(out))]


@pytest.mark.parametrize("name,kw,shape,out_shape", SHAPES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SHAPES)])
def test_forward_shape_and_backward_gives_finite_grads(name, kw, shape, out_shape, rng):
    net = models.get(name, rng=np.random.default_rng(1), **kw)
    assert (net.zoo_name, net.zoo_kwargs) == (name, kw)
    assert net.default_loss == {"mse_onehot": "mse"}.get(models.info(name).loss, models.info(name).loss)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    out = net(x)
    assert out.shape == out_shape and out.dtype == np.float32 and np.isfinite(out).all()
    loss_fn = models.loss_for(name)
    loss = loss_fn(out, _target(name, out, rng))
    assert np.isfinite(loss)
    net.backward(loss_fn.backward())
    for pname, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.data.shape, pname
        assert np.isfinite(p.grad).all(), pname
    assert any(np.abs(p.grad).max() > 0 for p in net.parameters())
    with nn.no_grad():  # eval mode works too (BatchNorm running stats, dropout off)
        assert net.eval()(x).shape == out_shape


def test_every_small_model_is_covered():
    assert {s[0] for s in SHAPES} == set(SMALL)


@pytest.mark.parametrize("name,kw,shape", [
    ("resnet", {"depth": 8, "widths": (2, 3), "num_classes": 3}, (2, 6, 6)),
    ("vgg", {"widths": (2, 3), "convs_per_stage": 1, "hidden": 4, "dropout": 0.0, "num_classes": 3}, (1, 8, 8)),
])
def test_float64_gradient_check(name, kw, shape, rng):
    """The zoo's blocks (residual with a projection, conv-BN-ReLU, pool, head) backprop
    exactly: analytic vs centred differences in float64 on the reference backend."""
    net = models.get(name, input_shape=shape, rng=np.random.default_rng(2), **kw).double().to_backend("reference")
    net.need_input_grad = True
    loss_fn = nn.CrossEntropyLoss(backend="reference")
    x = rng.standard_normal((3, *shape))
    y = np.array([0, 1, 2])

    def loss():
        return loss_fn(net(x), y)

    loss()
    dx = net.backward(loss_fn.backward())
    for pname, arr, analytic in [("input", x, dx)] + [(n, p.data, p.grad) for n, p in net.named_parameters()]:
        numeric = numerical_gradient(loss, arr, 1.0, h=1e-5)
        assert rel_error(analytic, numeric) < 1e-4 or np.abs(analytic - numeric).max() < 1e-8, pname


def test_nielsen_follows_network_py():
    net = models.get("nielsen", rng=np.random.default_rng(0))
    assert [type(m).__name__ for m in net] == ["Flatten", "Linear", "Sigmoid", "Linear", "Sigmoid"]
    w = net[1].weight.data
    assert abs(w.std() - 1.0) < 0.05 and abs(w.mean()) < 0.05  # N(0, 1), not PyTorch's U(+-1/sqrt(784))
    assert isinstance(models.loss_for("nielsen"), nn.MSELoss)


def test_losses_and_layers_of_the_lecture_networks():
    assert isinstance(models.loss_for("logistic"), nn.BCEWithLogitsLoss)
    assert isinstance(models.loss_for("mlp512"), nn.CrossEntropyLoss)
    assert models.loss_for("perceptron") is None
    assert [type(m).__name__ for m in models.get("mlp512", init=False)] == [
        "Flatten", "Linear", "Tanh", "Linear", "Tanh", "Linear"]
    conv = models.get("convnet", init=False)
    assert [type(m).__name__ for m in conv] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                                "Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert conv[0].padding == (2, 2) and conv[9].p == 0.4
    assert models.get("lenet5", input_size=28, init=False)[0].padding == (2, 2)
    assert models.get("lenet5", init=False)[0].padding == (0, 0)


@pytest.mark.parametrize("name,kw,error,match", [
    ("mlp", {"activation": "swish"}, ValueError, "activation"),
    ("mlp", {"sizes": [784, 10], "input_shape": (3,)}, ValueError, "sizes"),
    ("mlp", {"sizes": [784, 10], "num_classes": 5}, ValueError, "num_classes"),
    ("logistic", {"num_classes": 3}, ValueError, "softmax"),
    ("perceptron", {"num_classes": 3}, ValueError, "binary"),
    ("resnet", {"depth": 18}, ValueError, "6n"),
    ("convnet", {"input_shape": (784,)}, ValueError, "C, H, W"),
    ("lenet5", {"input_shape": (1, 8, 8)}, ValueError, "too small"),
    ("vgg16", {"input_shape": (3, 16, 16)}, ValueError, "too small"),
    ("lenet5", {"pool": "sum"}, ValueError, "pool"),
    ("convnet", {"widths": 3}, TypeError, "widths"),
])
def test_bad_arguments(name, kw, error, match):
    with pytest.raises(error, match=match):
        models.get(name, init=False, **kw)


@pytest.mark.parametrize("op,labels", [("and", "01"), ("or", "01"), ("and", "pm"), ("or", "pm")])
def test_perceptron_learns_and_or(op, labels):
    x, y = datasets.truth_table(op)
    if labels == "pm":
        y = 2 * y - 1
    p = models.get("perceptron")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converging must not warn
        result = p.fit(x, y, max_epochs=50)
    assert result.converged and bool(result) and result.mistakes[-1] == 0 and result.epochs < 50
    assert "converged" in result.message
    np.testing.assert_array_equal(p.predict(x), y)


def test_perceptron_reports_non_convergence_on_xor():
    x, y = datasets.xor()
    p = models.get("perceptron")
    with pytest.warns(models.ConvergenceWarning, match="did not converge in 30 epochs"):
        result = p.fit(x, y, max_epochs=30)
    assert not result.converged and result.epochs == 30 and len(result.mistakes) == 30
    assert min(result.mistakes) > 0 and "not linearly separable" in result.message
    assert (p.predict(x) != y).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not p.fit(x, y, max_epochs=5, warn=False).converged


def test_perceptron_errors():
    p = models.Perceptron()
    with pytest.raises(RuntimeError, match="fit"):
        p.predict(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="labels"):
        p.fit(np.zeros((3, 2), np.float32), [0, 1, 2])
    p.fit(*datasets.logical_and())
    with pytest.raises(ValueError, match="2 features"):
        p.predict(np.zeros((1, 3), np.float32))

"""fastlayers.nn: every layer against the functional ops it wraps, whole-network gradient
checks in float64 through the reference backend, the Module machinery (registration,
state_dict, freeze, modes, summary, input-gradient flags), losses, penalties, PyTorch
parity of a small CNN when torch is installed, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers.nn as nn
from fastlayers import ops
from fastlayers.gradcheck import numerical_gradient, rel_error
from fastlayers.optim import SGD

BACKENDS = ["cpu", "reference"]


def _bn_ops(m, x, backend):
    """batch_norm_forward on copies of the layer's running statistics (it updates them)."""
    return ops.batch_norm_forward(x, m.weight.data, m.bias.data, m.running_mean.copy(), m.running_var.copy(),
                                  True, 0.1, 1e-5, backend=backend)


# --------------------------------------------------------------------------------------
# Each layer vs the op it wraps: (id, layer, input shape, ops forward, ops backward,
# names of the parameters whose gradients follow dx in the op's backward output).
# --------------------------------------------------------------------------------------
LAYERS = [
    ("linear", lambda: nn.Linear(7, 5), (4, 7),
     lambda m, x, b: ops.linear_forward(x, m.weight.data, m.bias.data, backend=b), ops.linear_backward,
     ("weight", "bias")),
    ("linear-3d-nobias", lambda: nn.Linear(6, 3, bias=False), (2, 3, 6),
     lambda m, x, b: ops.linear_forward(x, m.weight.data, backend=b), ops.linear_backward, ("weight", None)),
    ("conv2d", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 7),
     lambda m, x, b: ops.conv2d_forward(x, m.weight.data, m.bias.data, 2, 1, backend=b), ops.conv2d_backward,
     ("weight", "bias")),
    ("conv2d-same-groups", lambda: nn.Conv2d(4, 6, (3, 5), padding="same", dilation=2, groups=2), (2, 4, 8, 9),
     lambda m, x, b: ops.conv2d_forward(x, m.weight.data, m.bias.data, 1, "same", 2, 2, backend=b),
     ops.conv2d_backward, ("weight", "bias")),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 4, 5),
     lambda m, x, b: ops.conv_transpose2d_forward(x, m.weight.data, m.bias.data, 2, 1, 1, backend=b),
     ops.conv_transpose2d_backward, ("weight", "bias")),
    ("max_pool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 8),
     lambda m, x, b: ops.max_pool2d_forward(x, 3, 2, 1, backend=b), ops.max_pool2d_backward, ()),
    ("avg_pool2d", lambda: nn.AvgPool2d(2), (2, 3, 6, 7),
     lambda m, x, b: ops.avg_pool2d_forward(x, 2, backend=b), ops.avg_pool2d_backward, ()),
    ("global_avg_pool2d", lambda: nn.GlobalAvgPool2d(), (2, 3, 5, 4),
     lambda m, x, b: ops.global_avg_pool2d_forward(x, backend=b), ops.global_avg_pool2d_backward, ()),
    ("relu", lambda: nn.ReLU(), (3, 11), lambda m, x, b: ops.relu_forward(x, backend=b), ops.relu_backward, ()),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (3, 11),
     lambda m, x, b: ops.leaky_relu_forward(x, 0.2, backend=b), ops.leaky_relu_backward, ()),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 11),
     lambda m, x, b: ops.sigmoid_forward(x, backend=b), ops.sigmoid_backward, ()),
    ("tanh", lambda: nn.Tanh(), (3, 11), lambda m, x, b: ops.tanh_forward(x, backend=b), ops.tanh_backward, ()),
    ("gelu", lambda: nn.GELU(), (3, 11), lambda m, x, b: ops.gelu_forward(x, backend=b), ops.gelu_backward, ()),
    ("gelu-tanh", lambda: nn.GELU("tanh"), (3, 11),
     lambda m, x, b: ops.gelu_forward(x, "tanh", backend=b), ops.gelu_backward, ()),
    ("softplus", lambda: nn.Softplus(2.0, 5.0), (3, 11),
     lambda m, x, b: ops.softplus_forward(x, 2.0, 5.0, backend=b), ops.softplus_backward, ()),
    ("elu", lambda: nn.ELU(0.7), (3, 11),
     lambda m, x, b: ops.elu_forward(x, 0.7, backend=b), ops.elu_backward, ()),
    ("softmax-axis1", lambda: nn.Softmax(axis=1), (2, 5, 3),
     lambda m, x, b: ops.softmax_forward(x, 1, backend=b), ops.softmax_backward, ()),
    ("batchnorm1d", lambda: nn.BatchNorm1d(5), (6, 5),
     lambda m, x, b: _bn_ops(m, x, b), ops.batch_norm_backward, ("weight", "bias")),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), (2, 3, 4, 5),
     lambda m, x, b: _bn_ops(m, x, b), ops.batch_norm_backward, ("weight", "bias")),
    ("layernorm", lambda: nn.LayerNorm((3, 4)), (2, 5, 3, 4),
     lambda m, x, b: ops.layer_norm_forward(x, (3, 4), m.weight.data, m.bias.data, backend=b),
     ops.layer_norm_backward, ("weight", "bias")),
    ("dropout-seeded", lambda: nn.Dropout(0.3, seed=42), (4, 33),
     lambda m, x, b: ops.dropout_forward(x, 0.3, True, 42, backend=b), ops.dropout_backward, ()),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_functional_op(case, backend, rng):
    _, make, shape, forward, backward, grads = case
    layer = make().to_backend(backend)
    x = rng.standard_normal(shape).astype(np.float32)
    expected, cache = forward(layer, x, backend)
    out = layer(x)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    expected_grads = backward(dout, cache)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, expected_grads[0])
    for name, g in zip(grads, expected_grads[1:]):
        if name is None:
            assert g is None
        else:
            np.testing.assert_array_equal(getattr(layer, name).grad, g)
    # Backward accumulates: a second forward/backward doubles the parameter gradients.
    if grads and isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LayerNorm)):
        first = [getattr(layer, n).grad.copy() for n in grads if n]
        layer(x)
        layer.backward(dout)
        for n, g in zip([n for n in grads if n], first):
            np.testing.assert_allclose(getattr(layer, n).grad, 2 * g, rtol=1e-6)


def test_batchnorm_updates_running_stats_like_the_op_and_eval_uses_them(rng):
    bn = nn.BatchNorm2d(3)
    x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32)
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    ops.batch_norm(x, bn.weight.data, bn.bias.data, rm, rv, True, 0.1, 1e-5)
    bn(x)
    np.testing.assert_array_equal(bn.running_mean, rm)
    np.testing.assert_array_equal(bn.running_var, rv)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    expected = ops.batch_norm(x, bn.weight.data, bn.bias.data, rm, rv, False)
    np.testing.assert_array_equal(bn(x), expected)
    np.testing.assert_array_equal(bn.running_mean, rm)  # eval leaves them alone
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_momentum_none_is_a_cumulative_average(rng):
    bn = nn.BatchNorm1d(3, momentum=None)
    xs = [rng.standard_normal((5, 3)).astype(np.float32) + i for i in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=0) for x in xs], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(axis=0, ddof=1) for x in xs], axis=0), rtol=1e-5)


def test_batchnorm1d_on_3d_input_normalises_per_channel(rng):
    bn = nn.BatchNorm1d(3)
    x = rng.standard_normal((4, 3, 6)).astype(np.float32)
    out = bn(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(out.var(axis=(0, 2)), 1, atol=1e-3)
    assert bn.backward(np.ones_like(out)).shape == x.shape


def test_dropout_eval_is_identity_and_seeded_masks_advance(rng):
    x = rng.standard_normal((8, 16)).astype(np.float32)
    d = nn.Dropout(0.5, seed=7)
    a, b = d(x), d(x)
    np.testing.assert_array_equal(a, ops.dropout(x, 0.5, True, 7))
    np.testing.assert_array_equal(b, ops.dropout(x, 0.5, True, 8))  # the k-th forward uses seed + k
    d.eval()
    assert d(x) is x
    np.testing.assert_array_equal(d.backward(x), x)


# --------------------------------------------------------------------------------------
# Whole networks: float64 reference backend vs centred differences, input and every parameter
# --------------------------------------------------------------------------------------


def _cnn():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 4)), nn.CrossEntropyLoss(), (4, 2, 4, 4), "labels"


def _mlp():
    net = nn.Sequential(
        nn.Linear(5, 8), nn.LayerNorm(8),
        nn.Residual(nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))),
        nn.GELU(), nn.Dropout(0.5),
        nn.Residual(nn.Sequential(nn.Linear(8, 6), nn.ELU()), projection="auto"),
        nn.Linear(6, 3), nn.Softmax())
    net[4].eval()  # dropout in eval mode: the identity, so the loss is a fixed function
    return net, nn.MSELoss(), (4, 5), "regression"


def _cnn2():
    body = nn.Sequential(nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.BatchNorm2d(5), nn.Softplus(),
                         nn.Conv2d(5, 5, 3, padding=1))
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
        nn.LeakyReLU(0.1), nn.AvgPool2d(2), nn.Sigmoid(), nn.Residual(body, projection="auto"),
        nn.GlobalAvgPool2d(), nn.BatchNorm1d(5), nn.Linear(5, 3)), nn.BCEWithLogitsLoss(), (3, 2, 8, 8), "multilabel"


@pytest.mark.parametrize("make", [_cnn, _mlp, _cnn2], ids=["conv-bn-relu-pool-linear-ce", "mlp-residual-layernorm",
                                                           "convT-avgpool-residual-projection-bn1d-bce"])
def test_whole_network_gradient_check_float64(make):
    rng = np.random.default_rng(3)
    nn.init.seed(5)
    net, loss_fn, shape, kind = make()
    net.double().to_backend("reference")
    net.need_input_grad = True
    loss_fn.to_backend("reference")
    x = rng.standard_normal(shape)
    out_dim = net(x).shape[-1]
    if kind == "labels":
        y = rng.integers(0, out_dim, shape[0])
    elif kind == "multilabel":
        y = (rng.random((shape[0], out_dim)) > 0.5).astype(np.float64)
    else:
        y = rng.standard_normal((shape[0], out_dim))

    def loss():
        return loss_fn(net(x), y)

    net.zero_grad()
    loss()
    dx = net.backward(loss_fn.backward())
    assert dx.dtype == np.float64
    checks = [("input", x, dx)] + [(name, p.data, p.grad) for name, p in net.named_parameters()]
    assert len(checks) > 5
    for name, arr, analytic in checks:
        numeric = numerical_gradient(loss, arr, 1.0, h=1e-5)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8, err_msg=name)
        assert rel_error(analytic, numeric) < 1e-4 or np.abs(analytic - numeric).max() < 1e-8, name


# --------------------------------------------------------------------------------------
# Module machinery
# --------------------------------------------------------------------------------------


class TwoLayer(nn.Module):
    """A custom module: sub-modules and a bare Parameter assigned as attributes."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.scale = nn.Parameter(np.ones(3, np.float32))
        self.fc2 = nn.Sequential(nn.Linear(3, 2))

    def forward(self, x):
        self._save(None)  # nothing of its own to keep
        return self.fc2(self.act(self.fc1(x)))

    def backward(self, g):
        return self.fc1.backward(self.act.backward(self.fc2.backward(g)))


def test_registration_order_names_and_traversal():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == ["scale", "fc1.weight", "fc1.bias", "fc2.0.weight", "fc2.0.bias"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "ReLU", "Sequential"]
    assert len(m.modules()) == 5
    assert m.fc1.weight.name == "weight"
    m.fc1 = None  # reassigning removes the registration
    assert [n for n, _ in m.named_parameters()] == ["scale", "fc2.0.weight", "fc2.0.bias"]
    bn = nn.BatchNorm2d(2)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]


def test_nested_sequential_in_custom_module_gets_input_gradients(rng):
    m = TwoLayer()
    x = rng.standard_normal((5, 4)).astype(np.float32)
    m(x)
    dx = m.backward(np.ones((5, 2), np.float32))  # fc2 is a Sequential, but not the network's input layer
    assert dx.shape == x.shape


def test_sequential_first_layer_skips_input_gradient(rng):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    assert [m.need_input_grad for m in net] == [False, True, True, True]
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    net(x)
    assert net.backward(np.ones((2, 2), np.float32)) is None
    assert net[0].weight.grad is not None  # the first layer's parameters still get gradients
    net.need_input_grad = True
    net(x)
    assert net.backward(np.ones((2, 2), np.float32)).shape == x.shape
    # Nesting and slicing: an inner Sequential at position > 0 needs its input gradient; a
    # slice shares the modules without changing their flags.
    outer = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    assert outer[0].need_input_grad is False and outer[1][0].need_input_grad is True
    tail = outer[1:]
    assert outer[1][0].need_input_grad is True and tail[0] is outer[1]
    outer[0] = nn.Linear(3, 3)  # replacing keeps the position and the first-layer flag
    assert [n for n, _ in outer.named_children()] == ["0", "1"] and outer[0].need_input_grad is False
    res = nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(3, 3))))
    assert res[0].body[0].need_input_grad is False
    res.need_input_grad = True
    assert res[0].body[0].need_input_grad is True


def test_flags_inside_custom_modules():
    m = TwoLayer()
    assert m.fc2.need_input_grad is True  # a Sequential inside a custom module: not the input layer
    m.fc1.need_input_grad = False  # the user's choice for the real input layer is kept
    m.head = nn.Sequential(nn.Linear(2, 2), need_input_grad=False)  # so is an explicit flag
    assert m.fc1.need_input_grad is False and m.head[0].need_input_grad is False
    m.fc3 = m.fc1  # re-registering a leaf does not reset it
    assert m.fc1.need_input_grad is False


def test_backward_needs_its_own_forward(rng):
    lin = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="call forward first"):
        lin.backward(np.ones((1, 2), np.float32))
    x = rng.standard_normal((1, 3)).astype(np.float32)
    lin(x)
    lin.backward(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="Linear.backward"):
        lin.backward(np.ones((1, 2), np.float32))  # one backward per forward
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        y = lin(x)
    assert nn.is_grad_enabled()
    np.testing.assert_array_equal(y, ops.linear(x, lin.weight.data, lin.bias.data))
    with pytest.raises(RuntimeError, match="no_grad"):
        lin.backward(np.ones((1, 2), np.float32))


def _small_net():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))


def test_state_dict_round_trip_and_snapshot(rng):
    a, b = _small_net(), _small_net()
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    a(x)  # moves the running statistics
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "4.weight", "4.bias"]
    b.load_state_dict(sd)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x), b(x))
    a[0].weight.data += 1  # the state dict is a snapshot, not a view
    assert not np.array_equal(sd["0.weight"], a[0].weight.data)
    weight = b[0].weight.data
    b.load_state_dict(a.state_dict())
    assert b[0].weight.data is weight  # loaded in place: optimisers keep their references


def test_deepcopy_and_pickle_drop_saved_forwards(rng):
    import copy
    import pickle

    net = _small_net()
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    net(x)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert all(m._ctx is None for m in clone.modules())
        assert clone[0].weight.data is not net[0].weight.data
        clone.eval(), net.eval()
        np.testing.assert_array_equal(clone(x), net(x))
        net.train()


def test_load_state_dict_reports_every_problem_and_copies_nothing():
    net = _small_net()
    sd = net.state_dict()
    before = net[4].weight.data.copy()
    bad = dict(sd)
    del bad["0.bias"]
    bad["extra"] = np.zeros(1, np.float32)
    bad["4.weight"] = np.zeros((3, 31), np.float32)
    bad["1.weight"] = sd["1.weight"].astype(np.float64)
    bad["4.bias"] = np.full(3, 7.0, np.float32)
    with pytest.raises(ValueError) as e:
        net.load_state_dict(bad)
    msg = str(e.value)
    for part in ("missing keys: ['0.bias']", "unexpected keys: ['extra']", "4.weight: expected shape (3, 32)",
                 "1.weight: expected dtype float32", "got float64"):
        assert part in msg
    np.testing.assert_array_equal(net[4].weight.data, before)
    assert not np.any(net[4].bias.data == 7.0)
    ok = {k: v for k, v in sd.items() if k != "0.bias"}
    ok["extra"] = np.zeros(1)
    missing, unexpected = net.load_state_dict(ok, strict=False)
    assert missing == ["0.bias"] and unexpected == ["extra"]
    with pytest.raises(TypeError, match="state"):
        net.load_state_dict([1, 2])


def test_freeze_stops_updates(rng):
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    net[0].freeze()
    frozen = net[0].weight.data.copy()
    head = net[2].weight.data.copy()
    opt = SGD(net.parameters(), lr=0.5, momentum=0.9)
    loss_fn = nn.MSELoss()
    for _ in range(3):
        opt.zero_grad()
        loss_fn(net(rng.standard_normal((8, 4)).astype(np.float32)), np.ones((8, 2), np.float32))
        net.backward(loss_fn.backward())
        opt.step()
    np.testing.assert_array_equal(net[0].weight.data, frozen)
    assert net[0].weight.grad is None and net[0].bias.grad is None
    assert not np.array_equal(net[2].weight.data, head)
    assert net.num_parameters() == 30 and net.num_parameters(trainable_only=True) == 10
    net.unfreeze()
    assert all(p.requires_grad for p in net.parameters())


def test_frozen_conv_skips_weight_gradient(rng):
    conv = nn.Conv2d(2, 3, 3).freeze()
    conv(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    dx = conv.backward(np.ones((1, 3, 3, 3), np.float32))
    assert dx.shape == (1, 2, 5, 5) and conv.weight.grad is None


def test_summary_lists_layers_shapes_and_parameter_counts():
    net = _small_net()
    net[0].freeze()
    text = net.summary((1, 4, 4))
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
    assert "(None, 2, 4, 4)" in rows["0"] and rows["0"].rstrip().endswith(" 20")
    assert "(None, 2, 4, 4)" in rows["1"] and rows["1"].rstrip().endswith(" 4")
    assert "(None, 32)" in rows["3"] and rows["4"].rstrip().endswith(" 99")
    assert "(None, 3)" in rows["4"]
    assert "Total params: 123" in text and "Trainable params: 103" in text and "Non-trainable params: 20" in text
    assert net.training and net[1].training and int(net[1].num_batches_tracked) == 0  # no side effects
    with pytest.raises(RuntimeError):
        net.backward(np.ones((1, 3), np.float32))  # the summary's forward saved nothing


def test_summary_nested_rows_count_their_children():
    net = nn.Sequential(nn.Linear(4, 6), nn.Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU())), nn.Linear(6, 2))
    text = net.summary((4,))
    line = next(s for s in text.splitlines() if s.startswith("1 (Residual)"))
    assert line.rstrip().endswith(" 42")
    assert any(s.startswith("  1.body (Sequential)") for s in text.splitlines())
    assert "Total params: 86" in text


def test_modes_backend_and_dtype_conversion():
    net = _small_net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.to_backend("reference")
    assert {m.backend for m in net.modules()} == {"reference"}
    net.double()
    assert all(p.data.dtype == np.float64 for p in net.parameters())
    assert net[1].running_mean.dtype == np.float64 and net[1].num_batches_tracked.dtype == np.int64
    assert net(np.zeros((2, 1, 4, 4))).dtype == np.float64
    net.to_backend("cpu")
    with pytest.raises(TypeError, match=r"float64 but the cpu backend runs float32 only.*to_backend\('reference'\)"):
        net(np.zeros((2, 1, 4, 4), np.float32))
    net.float()
    assert net(np.zeros((2, 1, 4, 4), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="backend"):
        net.to_backend("gpu")


def test_residual_identity_and_auto_projection(rng):
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    r = nn.Residual(body)
    assert r.projection is None
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(r(x), body(x) + x, rtol=1e-6)
    down = nn.Residual(nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                     nn.Conv2d(8, 8, 3, padding=1)), projection="auto")
    conv, bn = down.projection
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (4, 8, (1, 1), (2, 2))
    assert conv.bias is None
    assert isinstance(bn, nn.BatchNorm2d)
    assert down(x).shape == (2, 8, 3, 3)
    assert down.backward(np.ones((2, 8, 3, 3), np.float32)).shape == x.shape
    assert nn.Residual(nn.Linear(3, 5), projection="auto").projection.weight.shape == (5, 3)
    assert nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1)), projection="auto").projection is None
    with pytest.raises(ValueError, match=r"x: Residual body output shape \(2, 3\) differs.*projection='auto'"):
        nn.Residual(nn.Linear(4, 3))(np.zeros((2, 4), np.float32))


# --------------------------------------------------------------------------------------
# Losses and penalties
# --------------------------------------------------------------------------------------
LOSSES = [
    (nn.CrossEntropyLoss, ops.softmax_cross_entropy_forward, ops.softmax_cross_entropy_backward, "labels"),
    (nn.BCEWithLogitsLoss, ops.binary_cross_entropy_with_logits_forward,
     ops.binary_cross_entropy_with_logits_backward, "probs"),
    (nn.MSELoss, ops.mse_loss_forward, ops.mse_loss_backward, "values"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("cls, fwd, bwd, kind", LOSSES, ids=[c[0].__name__ for c in LOSSES])
def test_loss_matches_functional_op(cls, fwd, bwd, kind, reduction, rng):
    pred = rng.standard_normal((6, 4)).astype(np.float32)
    target = {"labels": rng.integers(0, 4, 6), "probs": rng.random((6, 4)).astype(np.float32),
              "values": rng.standard_normal((6, 4)).astype(np.float32)}[kind]
    loss_fn = cls(reduction)
    value = loss_fn(pred, target)
    expected, cache = fwd(pred, target, reduction)
    assert isinstance(value, float) and value == expected
    np.testing.assert_array_equal(loss_fn.backward(2.0), bwd(2.0, cache)[0])
    with pytest.raises(RuntimeError, match="call the loss"):
        loss_fn.backward()


@pytest.mark.parametrize("cls, value, grad", [
    (nn.L2Penalty, lambda w: 0.05 * np.sum(w**2), lambda w: 0.1 * w),
    (nn.L1Penalty, lambda w: 0.1 * np.sum(np.abs(w)), lambda w: 0.1 * np.sign(w)),
])
def test_penalties_value_and_gradient(cls, value, grad, rng):
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[1].freeze()
    weights = [net[0].weight, net[1].weight]
    pen = cls(0.1)
    v = pen(weights)
    np.testing.assert_allclose(v, sum(value(p.data.astype(np.float64)) for p in weights), rtol=1e-5)
    pen.backward()
    np.testing.assert_allclose(net[0].weight.grad, grad(net[0].weight.data), rtol=1e-6)
    assert net[1].weight.grad is None and net[0].bias.grad is None  # frozen / not chosen
    w = net[0].weight.data.astype(np.float64)
    numeric = numerical_gradient(lambda: cls(0.1)([nn.Parameter(w)]), w, 1.0)
    np.testing.assert_allclose(net[0].weight.grad, numeric, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------
# PyTorch parity: the same weights (loaded through state_dict, torch's key names) give
# the same outputs and gradients.
# --------------------------------------------------------------------------------------


def test_matches_torch_through_state_dict(rng):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    tnet = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5))
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 3 * 3, 5))
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    net.need_input_grad = True
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    y = np.array([0, 4, 2])
    tx = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tnet(tx), torch.tensor(y))
    tloss.backward()
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(net(x), y)
    dx = net.backward(loss_fn.backward())
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    for (name, p), (tname, tp) in zip(net.named_parameters(), tnet.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    for key, value in tnet.state_dict().items():  # running statistics updated alike
        np.testing.assert_allclose(net.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    net.eval(), tnet.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net(x), tnet(torch.tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# Bad input: errors name the argument
# --------------------------------------------------------------------------------------
BAD = [
    (lambda: nn.Linear(0, 3), ValueError, "in_features"),
    (lambda: nn.Linear(3.5, 3), TypeError, "in_features"),
    (lambda: nn.Linear(3, 3, bias="yes"), TypeError, "bias"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "groups"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size"),
    (lambda: nn.Dropout(1.5), ValueError, "p"),
    (lambda: nn.BatchNorm2d(3, momentum=2), ValueError, "momentum"),
    (lambda: nn.LayerNorm(4, eps=0), ValueError, "eps"),
    (lambda: nn.GELU("fast"), ValueError, "approximate"),
    (lambda: nn.Softplus(beta=0), ValueError, "beta"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, r"modules\[1\]"),
    (lambda: nn.Sequential(nn.ReLU())[3], IndexError, "index"),
    (lambda: nn.Residual("body"), TypeError, "body"),
    (lambda: nn.Residual(nn.ReLU(), projection="yes"), ValueError, "projection"),
    (lambda: nn.Parameter([1.0, 2.0]), TypeError, "data"),
    (lambda: nn.Linear(3, 2)(np.zeros((2, 4), np.float32)), ValueError, "x: in-features mismatch"),
    (lambda: nn.Linear(3, 2)(np.zeros((2, 3))), TypeError, "x: expected dtype float32"),
    (lambda: nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32)), ValueError, "x: BatchNorm2d expects a 4-D"),
    (lambda: nn.CrossEntropyLoss("avg"), ValueError, "reduction"),
    (lambda: nn.MSELoss(backend="gpu"), ValueError, "backend"),
    (lambda: nn.L2Penalty(-1), ValueError, "coef"),
    (lambda: nn.L1Penalty(0.1)([np.zeros(3)]), TypeError, r"params\[0\]"),
    (lambda: setattr(nn.ReLU(), "need_input_grad", 1), TypeError, "need_input_grad"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_module_without_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()

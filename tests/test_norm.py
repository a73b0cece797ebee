"""Batch norm and layer norm: C++ kernels vs the NumPy reference, running statistics,
accuracy with large offsets, float64 gradient checks of the reference, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import _cpu, ops
from fastlayers import reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

RNG = np.random.default_rng(20240603)


def randn(*shape, scale=1.0, offset=0.0, dtype=np.float32):
    return (RNG.standard_normal(shape) * scale + offset).astype(dtype)


def bn_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


@pytest.fixture
def threads():
    """fastlayers.set_num_threads; conftest's autouse fixture restores the count."""
    return fl.set_num_threads


# ------------------------------------------------------------------------------------
# Batch norm: kernel vs reference. One line per case: x shape, training, affine, threads.
# ------------------------------------------------------------------------------------
BN_CASES = [
    ((2, 3), True, True, None),
    ((2, 1), True, False, None),
    ((7, 67), True, True, None),
    ((7, 67), False, True, None),
    ((5, 130), True, False, None),  # 2-D: three feature blocks, the last ragged
    ((300, 131), True, True, 3),  # 2-D threaded, blocks split unevenly
    ((2, 1, 5, 5), True, True, None),
    ((2, 3, 1, 1), True, True, None),  # H = W = 1 with N > 1
    ((1, 3, 4, 4), True, True, None),  # batch 1, statistics over H*W
    ((3, 7, 5, 3), True, False, None),
    ((3, 7, 5, 3), False, True, None),
    ((3, 7, 5, 3), False, False, None),
    ((2, 13, 11, 7), True, True, None),  # odd sizes, prime channels
    ((5, 2, 1, 2), True, True, None),
    ((4, 5, 33, 31), True, True, 3),  # threaded over channels, uneven split
    ((4, 5, 33, 31), False, True, 2),
]


@pytest.mark.parametrize("shape,training,affine,nthreads", BN_CASES)
def test_batch_norm_matches_reference(shape, training, affine, nthreads, threads):
    if nthreads:
        threads(nthreads)
    c = shape[1]
    x = randn(*shape, scale=2.0, offset=0.5)
    gamma = randn(c) if affine else None
    beta = randn(c) if affine else None
    rm0 = randn(c, scale=0.3)
    rv0 = (RNG.random(c) + 0.5).astype(np.float32)
    stats = {b: (rm0.copy(), rv0.copy()) for b in ("cpu", "reference")}
    outs = {}
    for backend, (rm, rv) in stats.items():
        outs[backend] = ops.batch_norm_forward(x, gamma, beta, rm, rv, training=training, momentum=0.2, backend=backend)
    out, cache = outs["cpu"]
    out_r, cache_r = outs["reference"]
    np.testing.assert_allclose(out, out_r, rtol=1e-5, atol=2e-5)
    for a, b in zip(stats["cpu"], stats["reference"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    dout = randn(*shape)
    grads = ops.batch_norm_backward(dout, cache)
    grads_r = ops.batch_norm_backward(dout, cache_r)
    invstd = 1 / np.sqrt((x.var(axis=bn_axes(x)) if training else rv0) + 1e-5)
    dx_terms = np.abs(dout).max() * (np.abs(gamma).max() if affine else 1.0) * invstd.max()
    for name, g, gr in zip(("dx", "dgamma", "dbeta"), grads, grads_r):
        if not affine and name != "dx":
            assert g is None and gr is None
            continue
        assert g.dtype == np.float32 and g.shape == gr.shape, name
        # dx is a difference of terms of size |dout * gamma * invstd| (for N = 2 it
        # cancels to ~0): the tolerance scales with those terms, not with dx itself.
        scale = max(np.abs(gr).max(), dx_terms if name == "dx" else 0.0)
        np.testing.assert_allclose(g, gr, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("momentum", [0.1, 0.0, 1.0])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5, 2)])
def test_running_stats_follow_pytorch_formula(shape, backend, momentum):
    """rm = (1-m) rm + m mean, rv = (1-m) rv + m var_unbiased, in place, twice."""
    c = shape[1]
    rm = randn(c)
    rv = (RNG.random(c) + 0.5).astype(np.float32)
    rm_id, rv_id = id(rm), id(rv)
    exp_m, exp_v = rm.astype(np.float64), rv.astype(np.float64)
    for _ in range(2):
        x = randn(*shape, scale=3.0, offset=1.0)
        xd = x.astype(np.float64)
        ops.batch_norm(x, None, None, rm, rv, training=True, momentum=momentum, backend=backend)
        exp_m = (1 - momentum) * exp_m + momentum * xd.mean(axis=bn_axes(x))
        exp_v = (1 - momentum) * exp_v + momentum * xd.var(axis=bn_axes(x), ddof=1)
    assert id(rm) == rm_id and id(rv) == rv_id
    np.testing.assert_allclose(rm, exp_m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, exp_v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_eval_mode_uses_and_keeps_running_stats(backend):
    x = randn(4, 3, 5, 5)
    rm = randn(3)
    rv = (RNG.random(3) + 0.5).astype(np.float32)
    rm.flags.writeable = False  # eval mode only reads them
    rv.flags.writeable = False
    before = rm.copy(), rv.copy()
    out = ops.batch_norm(x, None, None, rm, rv, training=False, backend=backend)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])
    expect = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None].astype(np.float64) + 1e-5)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)


def test_untracked_running_stats_and_strided_input():
    """running stats None in training ("don't track"); a non-contiguous x is copied."""
    base = randn(6, 10, 4, 3)
    x = base[:, ::2]  # (6, 5, 4, 3), not contiguous
    out, cache = ops.batch_norm_forward(x, None, None, None, None)
    out_r, _ = ops.batch_norm_forward(np.ascontiguousarray(x), None, None, None, None, backend="reference")
    np.testing.assert_allclose(out, out_r, rtol=1e-5, atol=1e-5)
    dout = randn(6, 10, 4, 3)[:, 1::2]
    dx, dg, db = ops.batch_norm_backward(dout, cache)
    assert dg is None and db is None
    np.testing.assert_allclose(dx.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)


# ------------------------------------------------------------------------------------
# Accuracy: large offsets and many values per channel, against float64.
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape,offset,scale",
    [
        ((8, 3, 9, 9), 1e4, 1e-2),  # mean 1e4, std 1e-2: 10 float ulps of spread
        ((64, 5), 1e4, 1e-2),  # the 2-D path
        ((16, 2, 128, 128), 3.0, 1.0),  # 262144 values per channel
        ((6, 4, 7, 7), -5e3, 0.5),
    ],
)
def test_batch_norm_accurate_against_float64(shape, offset, scale):
    x = randn(*shape, scale=scale, offset=offset)
    c = shape[1]
    gamma, beta = randn(c), randn(c)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    out, cache = ops.batch_norm_forward(x, gamma, beta, rm, rv, momentum=1.0)
    xd = x.astype(np.float64)
    out_d, cache_d = ref.batch_norm_forward(xd, gamma.astype(np.float64), beta.astype(np.float64), None, None)
    np.testing.assert_allclose(out, out_d, rtol=0, atol=2e-5 * np.abs(out_d).max())
    np.testing.assert_allclose(rm, xd.mean(axis=bn_axes(x)), rtol=1e-7)
    np.testing.assert_allclose(rv, xd.var(axis=bn_axes(x), ddof=1), rtol=1e-5)
    dout = randn(*shape)
    for g, gd in zip(ops.batch_norm_backward(dout, cache), ref.batch_norm_backward(dout.astype(np.float64), cache_d)):
        np.testing.assert_allclose(g, gd, rtol=0, atol=5e-5 * np.abs(gd).max())


def test_layer_norm_accurate_against_float64():
    x = randn(6, 300, scale=1e-2, offset=1e4)
    out, cache = ops.layer_norm_forward(x, 300)
    out_d, cache_d = ref.layer_norm_forward(x.astype(np.float64), 300)
    np.testing.assert_allclose(out, out_d, rtol=0, atol=2e-5 * np.abs(out_d).max())
    dout = randn(6, 300)
    dx, _, _ = ops.layer_norm_backward(dout, cache)
    dx_d, _, _ = ref.layer_norm_backward(dout.astype(np.float64), cache_d)
    np.testing.assert_allclose(dx, dx_d, rtol=0, atol=5e-5 * np.abs(dx_d).max())


# ------------------------------------------------------------------------------------
# Layer norm: kernel vs reference.
# ------------------------------------------------------------------------------------
LN_CASES = [
    ((3, 7), 7, True, True, None),
    ((1, 1, 5), (1, 5), True, False, None),
    ((4, 5, 17), (5, 17), True, True, None),
    ((2, 3, 4, 5), 5, False, True, None),
    ((2, 3, 4, 5), (3, 4, 5), False, False, None),
    ((1, 131), 131, True, True, None),
    ((0, 8), 8, True, True, None),  # no rows: empty output, zero parameter gradients
    ((67, 600), 600, True, True, 3),  # threaded, uneven row split
    ((128, 512), 512, True, True, 2),
]


@pytest.mark.parametrize("shape,ns,has_w,has_b,nthreads", LN_CASES)
def test_layer_norm_matches_reference(shape, ns, has_w, has_b, nthreads, threads):
    if nthreads:
        threads(nthreads)
    pshape = (ns,) if isinstance(ns, int) else ns
    x = randn(*shape, scale=1.5, offset=-0.7)
    w = randn(*pshape) if has_w else None
    b = randn(*pshape) if has_b else None
    out, cache = ops.layer_norm_forward(x, ns, w, b)
    out_r, cache_r = ops.layer_norm_forward(x, ns, w, b, backend="reference")
    np.testing.assert_allclose(out, out_r, rtol=1e-5, atol=2e-5)
    dout = randn(*shape)
    for name, g, gr in zip(("dx", "dweight", "dbias"), ops.layer_norm_backward(dout, cache),
                           ops.layer_norm_backward(dout, cache_r)):
        if (name == "dweight" and not has_w) or (name == "dbias" and not has_b):
            assert g is None and gr is None
            continue
        assert g.shape == gr.shape and g.dtype == np.float32, name
        scale = np.abs(gr).max() + 1e-3 if gr.size else 1.0
        np.testing.assert_allclose(g, gr, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


SIMD_CASES = [
    # op, x shape: the 2-D path, the 4-D path with a ragged vector tail, layer norm
    ("batch_norm", (37, 131)),
    ("batch_norm", (3, 5, 7, 9)),
    ("layer_norm", (9, 101)),
]


@pytest.mark.parametrize("op,shape", SIMD_CASES)
def test_every_simd_path_matches_reference(simd_path, op, shape):
    """The loops are compiled once per instruction set; each path is checked (training
    forward, backward and the large-offset accuracy)."""
    assert fl.get_simd_path() == simd_path
    for offset, scale in ((0.5, 2.0), (1e4, 1e-2)):
        x = randn(*shape, scale=scale, offset=offset)
        dout = randn(*shape)
        c = shape[1] if op == "batch_norm" else shape[-1]
        p, q = randn(c), randn(c)
        if op == "batch_norm":
            out, cache = ops.batch_norm_forward(x, p, q, None, None)
            out_d, cache_d = ref.batch_norm_forward(x.astype(np.float64), p, q, None, None)
            grads, grads_d = ops.batch_norm_backward(dout, cache), ref.batch_norm_backward(dout, cache_d)
        else:
            out, cache = ops.layer_norm_forward(x, c, p, q)
            out_d, cache_d = ref.layer_norm_forward(x.astype(np.float64), c, p, q)
            grads, grads_d = ops.layer_norm_backward(dout, cache), ref.layer_norm_backward(dout, cache_d)
        np.testing.assert_allclose(out, out_d, rtol=0, atol=2e-5 * np.abs(out_d).max(), err_msg=simd_path)
        for g, gd in zip(grads, grads_d):
            np.testing.assert_allclose(g, gd, rtol=0, atol=5e-5 * np.abs(gd).max(), err_msg=simd_path)


def test_layer_norm_matches_batch_norm_of_transpose():
    """Cross-check of the two kernels: layer norm over F of (N, F) == batch norm of (F, N)."""
    x = randn(9, 40)
    a = ops.layer_norm(x, 40)
    b = ops.batch_norm(np.ascontiguousarray(x.T), None, None, None, None).T
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------
# The reference's gradients in float64 by centred differences. One line per op.
# ------------------------------------------------------------------------------------
def _bn(training):
    def make(x, p, q):
        c = x.shape[1]
        if training:
            return lambda: ref.batch_norm(x, p, q, None, None, training=True)
        rm = np.linspace(-0.3, 0.3, c)
        rv = np.linspace(0.5, 1.5, c)
        return lambda: ref.batch_norm(x, p, q, rm, rv, training=False)

    def grads(x, p, q, dout, training=training):
        c = x.shape[1]
        rm = None if training else np.linspace(-0.3, 0.3, c)
        rv = None if training else np.linspace(0.5, 1.5, c)
        _, cache = ref.batch_norm_forward(x, p, q, rm, rv, training=training)
        return ref.batch_norm_backward(dout, cache)

    return make, grads


def _ln(ns):
    def make(x, p, q):
        return lambda: ref.layer_norm(x, ns, p, q)

    def grads(x, p, q, dout):
        return ref.layer_norm_backward(dout, ref.layer_norm_forward(x, ns, p, q)[1])

    return make, grads


GRADCHECK_CASES = [
    # name, x shape, parameter shape, (make forward, backward)
    ("batch_norm 2-D training", (5, 4), (4,), _bn(True)),
    ("batch_norm 4-D training", (3, 2, 3, 2), (2,), _bn(True)),
    ("batch_norm 4-D H=W=1 training", (4, 3, 1, 1), (3,), _bn(True)),
    ("batch_norm 4-D eval", (2, 3, 2, 2), (3,), _bn(False)),
    ("layer_norm 2-D", (3, 6), (6,), _ln(6)),
    ("layer_norm 3-D over two dims", (2, 3, 4), (3, 4), _ln((3, 4))),
]


@pytest.mark.parametrize("name,xshape,pshape,fns", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_reference_gradients_float64(name, xshape, pshape, fns):
    make, grads = fns
    x = randn(*xshape, scale=1.3, offset=0.4, dtype=np.float64)
    p = randn(*pshape, dtype=np.float64)
    q = randn(*pshape, dtype=np.float64)
    dout = randn(*xshape, dtype=np.float64)
    f = make(x, p, q)
    analytic = grads(x, p, q, dout)
    for arr, g in zip((x, p, q), analytic):
        num = numerical_gradient(f, arr, dout, h=1e-5)
        assert rel_error(num, g) < 1e-6, name


# ------------------------------------------------------------------------------------
# Optional: PyTorch itself.
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5, 2)])
def test_batch_norm_matches_torch(shape):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    c = shape[1]
    x, gamma, beta, dout = randn(*shape), randn(c), randn(c), randn(*shape)
    rm, rv = randn(c), (RNG.random(c) + 0.5).astype(np.float32)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    tx = torch.from_numpy(x).requires_grad_()
    tg = torch.from_numpy(gamma).requires_grad_()
    tb = torch.from_numpy(beta).requires_grad_()
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.3, eps=1e-5)
    ty.backward(torch.from_numpy(dout))
    out, cache = ops.batch_norm_forward(x, gamma, beta, rm, rv, training=True, momentum=0.3)
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-5, atol=1e-6)
    for g, t in zip(ops.batch_norm_backward(dout, cache), (tx, tg, tb)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    x, w, b, dout = randn(3, 4, 10), randn(4, 10), randn(4, 10), randn(3, 4, 10)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.layer_norm(tx, (4, 10), tw, tb, eps=1e-5)
    ty.backward(torch.from_numpy(dout))
    out, cache = ops.layer_norm_forward(x, (4, 10), w, b)
    np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-5, atol=2e-5)
    for g, t in zip(ops.layer_norm_backward(dout, cache), (tx, tw, tb)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------
# Bad input: one line per case; each runs on both backends.
# ------------------------------------------------------------------------------------
def _f32(*shape):
    return np.ones(shape, np.float32)


def _readonly(a):
    a.flags.writeable = False
    return a


X4 = _f32(2, 3, 4, 4)
BAD_BN = [
    # kwargs for batch_norm, exception, match
    (dict(x=_f32(2, 3, 4)), ValueError, r"x: expected a 2-D \(N, F\) or 4-D"),
    (dict(x=_f32(2, 3, 4, 4, 1)), ValueError, r"x: expected a 2-D"),
    (dict(x=X4.astype(np.float64)), TypeError, r"x: expected dtype float32"),
    (dict(x=[[1.0, 2.0]]), TypeError, r"x: expected a numpy.ndarray"),
    (dict(gamma=_f32(4)), ValueError, r"gamma: expected shape \(3,\) \(one value per channel of x, whose shape is \(2, 3, 4, 4\)\), got \(4,\)"),
    (dict(beta=_f32(3, 1)), ValueError, r"beta: expected shape \(3,\).*got \(3, 1\)"),
    (dict(gamma=np.ones(3)), TypeError, r"gamma: expected dtype float32"),
    (dict(running_mean=_f32(4)), ValueError, r"running_mean: expected shape \(3,\).*got \(4,\)"),
    (dict(running_var=np.ones(3)), TypeError, r"running_var: expected dtype float32"),
    (dict(running_mean=_readonly(_f32(3))), ValueError, r"running_mean: array is read-only"),
    (dict(running_var=_f32(6)[::2]), ValueError, r"running_var: expected a C-contiguous"),
    (dict(x=_f32(1, 3, 1, 1)), ValueError, r"more than 1 value per channel"),
    (dict(x=_f32(1, 5), gamma=None, beta=None, running_mean=_f32(5), running_var=_f32(5)), ValueError,
     r"more than 1 value per channel"),
    (dict(x=_f32(0, 3, 4, 4)), ValueError, r"x: expected a non-empty array"),
    (dict(eps=0.0), ValueError, r"eps: expected a number > 0"),
    (dict(eps=-1e-5), ValueError, r"eps: expected a number > 0"),
    (dict(eps=float("nan")), ValueError, r"eps: expected a number > 0"),
    (dict(momentum=1.5), ValueError, r"momentum: expected a number in \[0, 1\]"),
    (dict(training=1), TypeError, r"training: expected a bool"),
    (dict(training=False, running_mean=None), ValueError, r"required in eval mode"),
    (dict(running_var="running_mean"), ValueError, r"running_var: must not share memory with running_mean"),
]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("kwargs,exc,match", BAD_BN)
def test_batch_norm_bad_input(kwargs, exc, match, backend):
    args = dict(x=X4, gamma=_f32(3), beta=_f32(3), running_mean=np.zeros(3, np.float32),
                running_var=np.ones(3, np.float32), training=True, momentum=0.1, eps=1e-5)
    args.update(kwargs)
    if isinstance(args["running_var"], str):
        args["running_var"] = args["running_mean"]
    with pytest.raises(exc, match=match):
        ops.batch_norm(**args, backend=backend)


BAD_LN = [
    (dict(normalized_shape=5), ValueError, r"normalized_shape: expected the trailing dimensions of x, got \(5,\) for x of shape \(2, 3, 4\)"),
    (dict(normalized_shape=(2, 3, 4, 1)), ValueError, r"normalized_shape: expected the trailing"),
    (dict(normalized_shape=()), ValueError, r"normalized_shape: expected one or more positive sizes"),
    (dict(normalized_shape=4.0), TypeError, r"normalized_shape: expected an int or a tuple"),
    (dict(weight=_f32(3, 4, 1)), ValueError, r"weight: expected shape \(3, 4\).*got \(3, 4, 1\)"),
    (dict(bias=_f32(4)), ValueError, r"bias: expected shape \(3, 4\).*got \(4,\)"),
    (dict(weight=np.ones((3, 4))), TypeError, r"weight: expected dtype float32"),
    (dict(x=np.ones((2, 3, 4))), TypeError, r"x: expected dtype float32"),
    (dict(eps=0), ValueError, r"eps: expected a number > 0"),
]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("kwargs,exc,match", BAD_LN)
def test_layer_norm_bad_input(kwargs, exc, match, backend):
    args = dict(x=_f32(2, 3, 4), normalized_shape=(3, 4), weight=None, bias=None, eps=1e-5)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ops.layer_norm(**args, backend=backend)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_backward_bad_input(backend):
    _, cache = ops.batch_norm_forward(X4, None, None, None, None, backend=backend)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3, 4, 4\).*got \(2, 3, 4, 5\)"):
        ops.batch_norm_backward(_f32(2, 3, 4, 5), cache)
    with pytest.raises(TypeError, match=r"dout: expected dtype float32"):
        ops.batch_norm_backward(np.ones((2, 3, 4, 4)), cache)
    with pytest.raises(TypeError, match=r"cache: expected the cache returned by batch_norm_forward"):
        ops.batch_norm_backward(_f32(2, 3, 4, 4), (1, 2))
    _, cache = ops.layer_norm_forward(_f32(2, 5), 5, backend=backend)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 5\)"):
        ops.layer_norm_backward(_f32(5, 2), cache)


def test_kernel_bindings_recheck_sizes():
    """The C++ side re-checks what memory safety depends on, without the Python layer."""
    x = _f32(2, 3, 4, 4)
    out = np.empty_like(x)
    sm, si = np.empty(3), np.empty(3)
    with pytest.raises(ValueError, match=r"gamma: expected 3 elements, got 2"):
        _cpu.batch_norm_forward(out, sm, si, None, None, x, _f32(2), None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"out: shape differs"):
        _cpu.batch_norm_forward(_f32(2, 3, 4, 5), sm, si, None, None, x, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        _cpu.batch_norm_forward(_f32(1, 3, 1, 1), sm, si, None, _f32(3), _f32(1, 3, 1, 1), None, None,
                                True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"eps: expected > 0"):
        _cpu.batch_norm_forward(out, sm, si, None, None, x, None, None, True, 0.1, 0.0)
    with pytest.raises(TypeError, match=r"save_mean: unexpected dtype"):
        _cpu.batch_norm_forward(out, _f32(3), si, None, None, x, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"normalized_shape: 5 elements do not divide"):
        _cpu.layer_norm_forward(out, np.empty(6), np.empty(6), x, None, None, 5, 1e-5)
    with pytest.raises(ValueError, match=r"save_mean: expected 2 elements"):
        _cpu.layer_norm_backward(_f32(2, 4), None, None, _f32(2, 4), _f32(2, 4), np.empty(3), np.empty(2), None, 4)

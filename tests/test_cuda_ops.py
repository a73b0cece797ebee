"""fastlayers.ops on device arrays: the functional API runs the CUDA kernels when its
arrays live on the GPU. Here the device is the CPU emulator of CUDA (EmuArray and
fastlayers._cuda_emu, what a GPU-less machine has); every op family is called through
fastlayers.ops on EmuArrays and compared with the same call on NumPy arrays (the CPU
kernels), forward and backward, and mixing devices is an error naming the arguments.
The same calls on CuPy arrays run on a real GPU in the gpu-marked tests of
test_cuda_<family>.py."""

import numpy as np
import pytest

from fastlayers import cuda_emu, ops

RNG = np.random.default_rng(7)


def _r(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _emu(tree):
    if isinstance(tree, np.ndarray):
        return cuda_emu.asarray(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_emu(t) for t in tree)
    return tree


def _host(tree):
    if isinstance(tree, cuda_emu.EmuArray):
        return tree.get()
    if isinstance(tree, (tuple, list)):
        return type(tree)(_host(t) for t in tree)
    return tree


def _same(got, want, rtol=2e-5, atol=2e-6):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w, rtol, atol)
        return
    if want is None:
        assert got is None
        return
    if isinstance(want, np.ndarray):
        assert isinstance(got, cuda_emu.EmuArray), f"expected a device result, got {type(got).__name__}"
        np.testing.assert_allclose(got.get(), want, rtol=rtol, atol=atol)
    else:  # a loss: a float on the CPU, a 0-d float32 device array on the device
        assert isinstance(got, cuda_emu.EmuArray) and got.shape == () and got.dtype == np.float32, repr(got)
        assert float(got) == pytest.approx(want, rel=rtol, abs=atol)


def _fwd_bwd(forward, backward, args, dout_shape=None, kwargs=None, bwd_kwargs=None):
    """forward(*args) then backward(dout, cache) on the CPU and on the emulated device."""
    kwargs, bwd_kwargs = kwargs or {}, bwd_kwargs or {}
    out, cache = forward(*args, **kwargs)
    dout = _r(*(dout_shape or out.shape)) if dout_shape != () else 1.0
    grads = backward(dout, cache, **bwd_kwargs)
    d_out, d_cache = forward(*_emu(args), **kwargs)
    _same(d_out, out)
    _same(backward(_emu(dout), d_cache, **bwd_kwargs), grads)


def test_gemm():
    a, b = _r(13, 7), _r(9, 7)
    _same(ops.gemm(cuda_emu.asarray(a), cuda_emu.asarray(b), trans_b=True), ops.gemm(a, b, trans_b=True))
    c = _r(13, 9)
    got = cuda_emu.asarray(c)
    ops.gemm(cuda_emu.asarray(a), cuda_emu.asarray(b), trans_b=True, alpha=0.5, beta=2.0, out=got)
    _same(got, ops.gemm(a, b, trans_b=True, alpha=0.5, beta=2.0, out=c.copy()))


@pytest.mark.parametrize("op,kw", [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}),
                                   ("tanh", {}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
                                   ("softplus", {}), ("elu", {})])
def test_activations(op, kw):
    _fwd_bwd(getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward"), (_r(3, 37),), kwargs=kw)


def test_add_and_dropout():
    _fwd_bwd(ops.add_forward, ops.add_backward, (_r(5, 11), _r(5, 11)))
    _fwd_bwd(ops.dropout_forward, ops.dropout_backward, (_r(4, 33), 0.3, True, 1234))


def test_conv_and_linear():
    x, w, b = _r(2, 3, 9, 8), _r(4, 3, 3, 3), _r(4)
    _fwd_bwd(ops.conv2d_forward, ops.conv2d_backward, (x, w, b, 2, 1))
    _fwd_bwd(ops.conv_transpose2d_forward, ops.conv_transpose2d_backward, (x, _r(3, 2, 3, 3), _r(2), 2, 1))
    _fwd_bwd(ops.linear_forward, ops.linear_backward, (_r(6, 10), _r(5, 10), _r(5), "relu"))


def test_pooling():
    x = _r(2, 3, 9, 7)
    _fwd_bwd(ops.max_pool2d_forward, ops.max_pool2d_backward, (x, 3, 2, 1))
    _fwd_bwd(ops.avg_pool2d_forward, ops.avg_pool2d_backward, (x, 2))
    _fwd_bwd(ops.global_avg_pool2d_forward, ops.global_avg_pool2d_backward, (x,))
    _same(ops.max_pool2d(cuda_emu.asarray(x), 2), ops.max_pool2d(x, 2))


def test_losses():
    logits, labels = _r(6, 5), RNG.integers(0, 5, 6)
    _fwd_bwd(ops.softmax_forward, ops.softmax_backward, (logits,))
    _fwd_bwd(ops.log_softmax_forward, ops.log_softmax_backward, (logits,))
    loss, cache = ops.softmax_cross_entropy_forward(logits, labels)
    (dl,) = ops.softmax_cross_entropy_backward(1.0, cache)
    for dev_labels in (labels, cuda_emu.asarray(labels.astype(np.int64))):  # host or device labels
        d_loss, d_cache = ops.softmax_cross_entropy_forward(cuda_emu.asarray(logits), dev_labels)
        _same(d_loss, loss)
        _same(ops.softmax_cross_entropy_backward(1.0, d_cache)[0], dl)
        # a bad label is a ValueError either way: checked on the host, or by the kernel
        bad = labels.copy()
        bad[2] = 5
        with pytest.raises(ValueError, match="labels"):
            ops.softmax_cross_entropy_forward(cuda_emu.asarray(logits),
                                              bad if dev_labels is labels else cuda_emu.asarray(bad))
    _fwd_bwd(ops.mse_loss_forward, ops.mse_loss_backward, (_r(4, 3), _r(4, 3)), dout_shape=())
    _fwd_bwd(ops.binary_cross_entropy_with_logits_forward, ops.binary_cross_entropy_with_logits_backward,
             (_r(4, 3), RNG.random((4, 3)).astype(np.float32)), dout_shape=())


def test_normalisation():
    x, g, b = _r(4, 3, 5, 5), _r(3), _r(3)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    d_rm, d_rv = cuda_emu.asarray(rm), cuda_emu.asarray(rv)
    out, cache = ops.batch_norm_forward(x, g, b, rm, rv, True)
    d_out, d_cache = ops.batch_norm_forward(*_emu((x, g, b)), d_rm, d_rv, True)
    _same(d_out, out)
    _same((d_rm, d_rv), (rm, rv))  # the running statistics were updated in place, alike
    dout = _r(*x.shape)
    _same(ops.batch_norm_backward(cuda_emu.asarray(dout), d_cache), ops.batch_norm_backward(dout, cache))
    _fwd_bwd(ops.layer_norm_forward, ops.layer_norm_backward, (_r(4, 6), 6, _r(6), _r(6)))


def test_optimiser_steps():
    p, gr, m, v = _r(50), _r(50), _r(50), np.abs(_r(50))
    d = _emu((p, gr, m, v))
    ops.adam_step(p, gr, m, v, step=3, lr=1e-2)
    ops.adam_step(*d, step=3, lr=1e-2)
    _same(d, (p, gr, m, v))
    p, gr, vel = _r(50), _r(50), _r(50)
    d = _emu((p, gr, vel))
    ops.sgd_step(p, gr, vel, lr=0.1, momentum=0.9)
    ops.sgd_step(*d, lr=0.1, momentum=0.9)
    _same(d, (p, gr, vel))


def test_mixing_devices_is_a_type_error_naming_both():
    x = _r(2, 3, 8, 8)
    with pytest.raises(TypeError, match=r"w: is on cpu but x is on cuda-emu"):
        ops.conv2d(cuda_emu.asarray(x), _r(4, 3, 3, 3))
    with pytest.raises(TypeError, match="b: is on cuda-emu but a is on cpu"):
        ops.gemm(_r(3, 3), cuda_emu.asarray(_r(3, 3)))


def test_reference_backend_refuses_device_arrays():
    with pytest.raises(TypeError, match="'reference' runs on numpy arrays"):
        ops.relu(cuda_emu.asarray(_r(4)), backend="reference")


def test_wrong_dtype_on_device_is_a_type_error():
    with pytest.raises(TypeError, match="x: expected dtype float32, got float64"):
        ops.relu(cuda_emu.asarray(np.zeros(4)))


def test_gemm_output_aliasing_an_input_on_the_device():
    a = _r(150, 150)  # several output tiles: later tiles would read what earlier ones wrote
    d = cuda_emu.asarray(a)
    want = ops.gemm(a, a.copy(), beta=1.0, out=a.copy())  # out = a @ a + a
    ops.gemm(d, d, beta=1.0, out=d)  # out is both inputs: they are copied before the kernel writes
    np.testing.assert_allclose(d.get(), want, rtol=1e-4, atol=1e-4)

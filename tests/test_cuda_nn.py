"""Layers, optimisers and the trainer on a device: ``Module.to(device)`` moves parameters
and buffers, the optimiser keeps its state beside them and ``fastlayers.train`` moves each
batch. Checked on the CPU emulator of CUDA ("cuda-emu", what a GPU-less machine has)
against the same model on the CPU, step for step; on a GPU, "cuda" runs the same code
with CuPy arrays."""

import copy

import numpy as np
import pytest

from fastlayers import cuda_emu, nn, optim, train

RNG = np.random.default_rng(3)


def _mlp():
    return nn.Sequential(nn.Linear(12, 16, rng=np.random.default_rng(0)), nn.ReLU(),
                         nn.Linear(16, 5, rng=np.random.default_rng(1)))


def _convnet():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=np.random.default_rng(0)), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3, rng=np.random.default_rng(1)))


def _params(model):
    return [p.data.get() if isinstance(p.data, cuda_emu.EmuArray) else p.data for p in model.parameters()]


@pytest.mark.parametrize("make,x_shape,classes,opt", [
    (_mlp, (9, 12), 5, lambda ps: optim.Adam(ps, lr=1e-2)),
    # SGD here: the conv bias before batch norm gets a gradient of rounding noise only,
    # which Adam would scale up to full-size steps of arbitrary sign on either device.
    (_convnet, (6, 1, 8, 8), 3, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)),
])
def test_training_steps_match_the_cpu(make, x_shape, classes, opt):
    cpu = make()
    dev = copy.deepcopy(cpu).to("cuda-emu")
    assert dev.device == "cuda-emu" and cpu.device == "cpu"
    assert all(isinstance(p.data, cuda_emu.EmuArray) for p in dev.parameters())
    runs = []
    for model in (cpu, dev):
        loss, o = nn.CrossEntropyLoss(), opt(model.parameters())
        for step in range(3):
            rng = np.random.default_rng(step)
            x = rng.standard_normal(x_shape).astype(np.float32)
            y = rng.integers(0, classes, x_shape[0])
            if model is dev:
                x = cuda_emu.asarray(x)
            o.zero_grad()
            value = loss(model(x), y)
            model.backward(loss.backward())
            o.step()
            runs.append(value)
    n = len(runs) // 2
    np.testing.assert_allclose(runs[n:], runs[:n], rtol=1e-5)  # the losses, step by step
    for got, want in zip(_params(dev), _params(cpu)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if isinstance(cpu[1], nn.BatchNorm2d):  # running statistics were updated on the device
        np.testing.assert_allclose(dev[1].running_mean.get(), cpu[1].running_mean, rtol=1e-5, atol=1e-6)


def test_fit_and_predict_on_the_device_match_the_cpu():
    x = RNG.standard_normal((40, 12)).astype(np.float32)
    y = RNG.integers(0, 5, 40)
    hist = {}
    preds = {}
    for device in ("cpu", "cuda-emu"):
        model = _mlp().to(device)
        h = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                      (x, y), val=(x, y), epochs=2, batch_size=16, seed=0, progress=False)
        hist[device] = h
        preds[device] = train.predict(model, x, batch_size=16)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(hist["cuda-emu"][key], hist["cpu"][key], rtol=1e-5)
    assert isinstance(preds["cuda-emu"], np.ndarray)
    np.testing.assert_allclose(preds["cuda-emu"], preds["cpu"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("every", [1, 3, 16])
def test_losses_read_back_in_groups_on_the_device(monkeypatch, every):
    # On a GPU the trainer reads each batch's loss and outputs back every GPU_READBACK_EVERY
    # batches (40 examples / 4 per batch = 10 batches: groups of 3 leave a partial group
    # for the end of the epoch). The history matches the CPU's, batch for batch.
    monkeypatch.setattr(train, "GPU_READBACK_EVERY", every)
    x = RNG.standard_normal((40, 12)).astype(np.float32)
    y = RNG.integers(0, 5, 40)
    hist = {}
    for device in ("cpu", "cuda-emu"):
        model = _mlp().to(device)
        hist[device] = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05), (x, y),
                                 val=(x, y), epochs=2, batch_size=4, seed=0, progress=False,
                                 eval_batch_size=4)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(hist["cuda-emu"][key], hist["cpu"][key], rtol=1e-5)


def test_a_diverged_loss_read_back_later_says_so(monkeypatch):
    # The loss becomes NaN at some batch B. The CPU reads every batch back: B is reported
    # before its update. The device, reading back once per 16 batches (one epoch here),
    # reports the same B at the end of the group, with the updates made since.
    monkeypatch.setattr(train, "GPU_READBACK_EVERY", 16)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 12)).astype(np.float32) * 1e3
    y = rng.integers(0, 5, 64)
    msgs = {}
    for device in ("cpu", "cuda-emu"):
        model = _mlp().to(device)
        with pytest.raises(FloatingPointError, match="training diverged") as info:
            train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e6), (x, y), epochs=20,
                      batch_size=4, seed=0, progress=False)
        msgs[device] = str(info.value)
    assert "weights are those before this batch's update" in msgs["cpu"]
    bad = int(msgs["cpu"].split("batch ")[1].split(" of")[0])  # 1-based
    assert f"batch {bad} of 16" in msgs["cuda-emu"], msgs
    if bad < 16:
        assert f"read back from the GPU at batch 16: the weights have had {16 - bad} update(s) since" in \
            msgs["cuda-emu"], msgs
    else:
        assert "weights are those before this batch's update" in msgs["cuda-emu"], msgs


def test_to_moves_back_and_checks_its_argument():
    model = _convnet()
    before = _params(model)
    model.to("cuda-emu").to("cpu")
    assert model.device == "cpu"
    for got, want in zip(_params(model), before):
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="device: expected one of"):
        model.to("gpu")
    with pytest.raises(ValueError, match="the 'reference' backend runs on numpy arrays only"):
        model.to_backend("reference").to("cuda-emu")


def test_a_host_batch_for_a_device_model_is_a_type_error():
    model = _mlp().to("cuda-emu")
    with pytest.raises(TypeError, match="is on cpu but .* is on cuda-emu|is on cuda-emu but .* is on cpu"):
        model(np.zeros((2, 12), np.float32))


def test_state_dict_of_a_device_model_is_numpy_and_loads_back():
    cpu = _convnet()
    dev = copy.deepcopy(cpu).to("cuda-emu")
    state = dev.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    for key, value in cpu.state_dict().items():
        np.testing.assert_array_equal(state[key], value)
    shifted = {k: (v + 1 if v.dtype.kind == "f" else v) for k, v in state.items()}
    dev.load_state_dict(shifted)
    for key, value in dev.state_dict().items():
        np.testing.assert_array_equal(value, shifted[key])
    assert isinstance(dev[0].weight.data, cuda_emu.EmuArray)  # loaded in place, still on the device

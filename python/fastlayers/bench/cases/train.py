"""Training-step cases: one step of the zoo models ``convnet`` and ``mlp512`` on a batch
of Fashion-MNIST-shaped images (random data: the time does not depend on the values).

One step = zero_grad, forward, cross-entropy, backward, SGD with momentum 0.9. Backends:
fastlayers (the model on the "cpu" backend), the NumPy reference (the same model after
``to_backend("reference")``) and a PyTorch twin built layer for layer, loaded with the
same initial weights. GFLOP/s counts the convolutions and linear layers: forward,
weight gradient and input gradient (none for the first layer, which needs no dx).

Validation: the first call of every backend runs one step in eval mode (dropout off, so
all backends compute the same function) and returns each parameter's update; it must
match one float64 step of the reference (``model.double().to_backend("reference")``),
tensor by tensor. The update of plain SGD's first step is -lr * grad, so this checks
every gradient. Later (timed) calls run in training mode.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastlayers.bench.core import Case, to_numpy

LR, MOMENTUM = 0.01, 0.9


class Net(NamedTuple):
    name: str  # the case name
    model: str  # the zoo name
    batch: int
    flops_per_image: float  # forward flops of the conv and linear layers
    first_flops_per_image: float  # of the first of them (its dx is not computed)
    quick: bool = False

    @property
    def flops(self) -> float:
        return self.batch * (3 * self.flops_per_image - self.first_flops_per_image)


_CONVNET = (2 * 32 * 28 * 28 * 25, 2 * 64 * 14 * 14 * 32 * 25, 2 * 3136 * 1024, 2 * 1024 * 10)
_MLP512 = (2 * 784 * 512, 2 * 512 * 512, 2 * 512 * 10)
NETS = (
    Net("mlp512-b16", "mlp512", 16, sum(_MLP512), _MLP512[0], quick=True),
    Net("convnet-b128", "convnet", 128, sum(_CONVNET), _CONVNET[0]),
    Net("mlp512-b128", "mlp512", 128, sum(_MLP512), _MLP512[0]),
)


def _inputs(net: Net):
    def make():
        rng = np.random.default_rng(0)
        return rng.standard_normal((net.batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, net.batch)
    return make


def _model(net: Net, dtype=np.float32, backend: str = "cpu"):
    from fastlayers import models  # noqa: PLC0415 - keeps `fastlayers bench --filter gemm` light

    model = models.get(net.model, input_shape=(1, 28, 28), num_classes=10, rng=np.random.default_rng(0))
    if dtype != np.float32:
        model = model.double()
    return model.to_backend(backend)


def _fl_step(model, x, y, backend: str):
    from fastlayers import nn, optim  # noqa: PLC0415

    loss = nn.CrossEntropyLoss(backend=backend)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step():  # as torch's step: the loss is computed, not read back (no wait on a GPU)
        opt.zero_grad()
        loss.compute(model(x), y)
        model.backward(loss.backward())
        opt.step()

    return step


def _first_call_validates(step, params, set_training):
    """A callable whose first call is one eval-mode step returning the parameter updates
    (``params()`` returns copies of the parameters); every later call is a training-mode
    step."""
    state = {"first": True}

    def run():
        if not state["first"]:
            return step()
        state["first"] = False
        before = params()
        set_training(False)
        step()
        set_training(True)
        return tuple(a - b for a, b in zip(params(), before))

    return run


def _fl(net: Net):
    def factory(inputs, backend):
        from fastlayers.ops._device import device_of  # noqa: PLC0415

        x, y = inputs
        y = to_numpy(y)  # labels stay on the host, as the Trainer keeps them: checked there, no wait
        name = backend or "cpu"
        model = _model(net, backend=name).to(device_of(x=x).name)  # inputs on a GPU: the model too
        model.train()
        return _first_call_validates(_fl_step(model, x, y, name),
                                     lambda: [np.array(to_numpy(p.data)) for p in model.parameters()],
                                     lambda on: model.train(on))
    return factory


def _torch_twin(torch, name: str):
    tnn = torch.nn
    if name == "convnet":
        return tnn.Sequential(
            tnn.Conv2d(1, 32, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(64 * 7 * 7, 1024), tnn.ReLU(), tnn.Dropout(0.4), tnn.Linear(1024, 10))
    if name == "mlp512":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 512), tnn.Tanh(), tnn.Linear(512, 512), tnn.Tanh(),
                              tnn.Linear(512, 10))
    raise ValueError(f"name: no PyTorch twin for {name!r}")


def _torch(net: Net):
    def factory(torch, inputs, device):
        x, y = inputs
        model = _torch_twin(torch, net.model).to(device)
        state = {k: torch.from_numpy(v.copy()) for k, v in _model(net).state_dict().items()}
        model.load_state_dict(state)  # the keys of a Sequential match fastlayers'
        model.train()
        loss = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

        def step():
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()

        return _first_call_validates(step, lambda: [p.detach().clone() for p in model.parameters()],
                                     lambda on: model.train(on))
    return factory


def _expected(net: Net):
    def expected(inputs):
        x, y = inputs
        model = _model(net, np.float64, "reference")
        run = _first_call_validates(_fl_step(model, x.astype(np.float64), y, "reference"),
                                    lambda: [p.data.copy() for p in model.parameters()], lambda on: model.train(on))
        return run()
    return expected


def cases() -> list[Case]:
    return [Case(family="train", name=net.name, shape=f"{net.model} batch {net.batch}, SGD momentum",
                 make_inputs=_inputs(net), expected=_expected(net), fl=_fl(net), torch=_torch(net),
                 flops=net.flops, quick=net.quick, rtol=1e-3)
            for net in NETS]

"""Training-step benchmark: fastlayers vs PyTorch CPU on `convnet` and `mlp512`.

One step = zero_grad, forward, cross-entropy, backward, SGD-with-momentum update, on a
batch of 128 Fashion-MNIST-shaped images (random data: the time does not depend on the
values). The same architecture is built in both libraries; the two are timed
interleaved in one process, medians of several windows, at 1 and 2 threads. The epoch
estimate is 60,000 / 128 steps.

    python benchmarks/bench_train.py [--threads 1,2] [--repeat 7] [--models convnet,mlp512]
    python -m pytest benchmarks/bench_train.py --benchmark-only

PyTorch is optional (``pip install torch``): without it only fastlayers is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import nn, optim

BATCH = 128
EPOCH_IMAGES = 60_000


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def fastlayers_step(name: str, seed: int = 0):
    """A callable running one training step of the zoo model `name` in fastlayers."""
    model = fl.models.get(name, input_shape=(1, 28, 28), num_classes=10, rng=np.random.default_rng(seed))
    model.train()
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)

    def step():
        opt.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step()

    return step


def torch_step(name: str, seed: int = 0):
    """The same step in PyTorch (None when torch is not installed)."""
    torch = _torch()
    if torch is None:
        return None
    tnn = torch.nn
    torch.manual_seed(seed)
    if name == "convnet":
        model = tnn.Sequential(
            tnn.Conv2d(1, 32, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(64 * 7 * 7, 1024), tnn.ReLU(), tnn.Dropout(0.4), tnn.Linear(1024, 10))
    elif name == "mlp512":
        model = tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 512), tnn.Tanh(), tnn.Linear(512, 512), tnn.Tanh(),
                               tnn.Linear(512, 10))
    else:
        raise ValueError(f"name: no PyTorch twin for {name!r}")
    model.train()
    loss = tnn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)

    def step():
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()

    return step


def set_threads(n: int) -> None:
    fl.set_num_threads(n)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)


def time_interleaved(fns: dict, repeat: int, steps: int) -> dict:
    """Seconds per step for each callable: `repeat` windows of `steps` steps, the
    callables alternating window by window (their order rotated each round)."""
    names = list(fns)
    samples = {k: [] for k in names}
    for fn in fns.values():  # warm-up: allocations, first-touch, thread pools
        fn()
        fn()
    for r in range(repeat):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            t0 = time.perf_counter()
            for _ in range(steps):
                fns[k]()
            samples[k].append((time.perf_counter() - t0) / steps)
    return samples


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", ["convnet", "mlp512"])
@pytest.mark.parametrize("backend", ["fastlayers", "torch"])
def test_train_step(benchmark, backend, name, threads):
    set_threads(threads)
    step = fastlayers_step(name) if backend == "fastlayers" else torch_step(name)
    if step is None:
        pytest.skip("torch is not installed (optional peer)")
    benchmark.extra_info.update(model=name, threads=threads, batch=BATCH)
    benchmark(step)
    benchmark.extra_info["epoch_seconds"] = round(benchmark.stats.stats.median * EPOCH_IMAGES / BATCH, 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeat", type=int, default=7, help="timed windows per backend")
    p.add_argument("--models", default="convnet,mlp512")
    args = p.parse_args(argv)
    print(f"fastlayers {fl.__version__} ({fl.get_simd_path()}); torch "
          f"{_torch().__version__ if _torch() else 'not installed'}; batch {BATCH}, medians of {args.repeat}")
    print(f"{'model':10s} {'thr':>3s} {'fl ms/step':>11s} {'torch ms/step':>14s} {'fl s/epoch':>11s} "
          f"{'torch s/epoch':>14s} {'torch/fl':>9s}")
    for name in args.models.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            set_threads(threads)
            fns = {"fl": fastlayers_step(name)}
            ts = torch_step(name)
            if ts is not None:
                fns["torch"] = ts
            steps = 3 if name == "convnet" else 30
            s = {k: statistics.median(v) for k, v in time_interleaved(fns, args.repeat, steps).items()}
            per_epoch = EPOCH_IMAGES / BATCH
            t = s.get("torch")
            print(f"{name:10s} {threads:3d} {s['fl'] * 1e3:11.2f} "
                  f"{(t * 1e3 if t else float('nan')):14.2f} {s['fl'] * per_epoch:11.1f} "
                  f"{(t * per_epoch if t else float('nan')):14.1f} {(t / s['fl'] if t else float('nan')):9.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""fastlayers.train: fit / Trainer / evaluate / predict, History, EarlyStopping, transfer learning.

Tiny MLPs on synthetic data (blobs, spirals) so every test runs in well under a second.
"""

from __future__ import annotations

import io as _io

import numpy as np
import pytest

from fastlayers import data, nn, optim
from fastlayers.train import (
    EarlyStopping,
    History,
    Trainer,
    evaluate,
    extract_features,
    fit,
    freeze_layers,
    predict,
    replace_head,
)


def mlp(sizes, seed=0, act=nn.ReLU):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=rng))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def blobs():
    return data.get("blobs", n=600, seed=1)


@pytest.fixture(scope="module")
def spirals():
    return data.get("spirals", n=600, noise=0.02, seed=2)


def test_fit_blobs_learns_and_records_history(blobs):
    net = mlp([2, 16, 3])
    loss = nn.CrossEntropyLoss()
    before = evaluate(net, loss, blobs.test)
    hist = fit(net, loss, optim.SGD(net.parameters(), lr=0.1, momentum=0.9), blobs.train, val=blobs.test,
               epochs=5, batch_size=32, seed=0, progress=False)
    after = evaluate(net, loss, blobs.test)
    assert isinstance(hist, History) and len(hist) == 5 and hist.epoch == [1, 2, 3, 4, 5]
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "throughput"}
    for k, v in hist.history.items():
        assert len(v) == 5 and all(np.isfinite(v)), k
    assert all(s > 0 for s in hist["seconds"]) and all(t > 0 for t in hist["throughput"])
    assert hist["lr"] == [0.1] * 5
    assert hist["loss"][-1] < hist["loss"][0]
    assert after["loss"] < before["loss"] and after["accuracy"] > 0.95
    # The last epoch's validation numbers are an evaluate() of the final model.
    assert hist["val_loss"][-1] == pytest.approx(after["loss"], rel=1e-6)
    assert hist["val_accuracy"][-1] == after["accuracy"]
    rows = hist.rows()
    assert rows[0]["epoch"] == 1 and rows[-1]["val_accuracy"] == after["accuracy"]


def test_fit_spirals_reaches_high_accuracy(spirals):
    net = mlp([2, 64, 64, 2], seed=3)
    loss = nn.CrossEntropyLoss()
    hist = fit(net, loss, optim.Adam(net.parameters(), lr=0.02), spirals.train, epochs=60, batch_size=64,
               seed=0, progress=False)
    assert "val_loss" not in hist
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert evaluate(net, loss, spirals.test)["accuracy"] > 0.9


def test_fit_is_reproducible_with_a_seed(blobs):
    def run():
        net = mlp([2, 8, 3], seed=5)
        fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.05), blobs.train, epochs=2,
            batch_size=16, seed=7, progress=False)
        return net.state_dict()

    a, b = run(), run()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_trainer_continues_counting_epochs_and_schedule_steps(blobs):
    net = mlp([2, 8, 3])
    opt = optim.SGD(net.parameters(), lr=0.1)
    trainer = Trainer(net, nn.CrossEntropyLoss(), opt, batch_size=32, seed=0, progress=False,
                      schedule=optim.StepLR(opt, step_size=1, gamma=0.5))
    trainer.fit(blobs.train, epochs=2)
    hist = trainer.fit(blobs.train, epochs=1)
    assert hist.epoch == [1, 2, 3]
    assert hist["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert trainer.predict(blobs.x_test).shape == (len(blobs.x_test), 3)
    assert set(trainer.evaluate(blobs.test)) == {"loss", "accuracy"}


def test_plateau_schedule_gets_the_validation_loss(blobs):
    net = mlp([2, 8, 3])
    opt = optim.SGD(net.parameters(), lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    seen = []
    sched.step = lambda metric=None: seen.append(metric)  # record what fit passes
    hist = fit(net, nn.CrossEntropyLoss(), opt, blobs.train, val=blobs.test, epochs=2, schedule=sched,
               progress=False)
    assert seen == hist["val_loss"]


def test_model_modes_during_fit_and_evaluation(blobs):
    modes = []

    class Spy(nn.Module):
        def forward(self, x):
            modes.append((self.training, nn.is_grad_enabled()))
            return x

        def backward(self, g):
            return g

    net = nn.Sequential(nn.Linear(2, 3), Spy())
    net.eval()  # fit puts it in train mode and restores eval afterwards
    x, y = blobs.x_train[:64], blobs.y_train[:64]
    fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), (x, y), val=(x, y), epochs=1,
        batch_size=64, progress=False)
    assert modes == [(True, True), (False, False)]  # one train batch, one val batch
    assert net.training is False
    net.train()
    predict(net, x)
    assert modes[-1] == (False, False) and net.training is True


def test_early_stopping_restores_the_best_weights(blobs):
    x, y = blobs.train
    net = mlp([2, 16, 3], seed=1)
    loss = nn.CrossEntropyLoss()
    snapshots = []
    es = EarlyStopping("val_loss", patience=2)
    hist = fit(net, loss, optim.SGD(net.parameters(), lr=0.05), (x, y), val=blobs.test, epochs=3, batch_size=32,
               seed=0, progress=False, early_stopping=es,
               callbacks=[lambda e, logs: snapshots.append(net.state_dict())])
    # Make validation get worse on purpose: a high learning rate on shuffled (noise) labels.
    es2 = EarlyStopping("val_loss", patience=2)
    net2 = mlp([2, 16, 3], seed=1)
    snaps2 = []
    rng = np.random.default_rng(0)
    y_bad = rng.permutation(y)  # noise labels: validation loss gets worse after the first epoch
    hist2 = fit(net2, loss, optim.SGD(net2.parameters(), lr=0.5, momentum=0.9), (x, y_bad), val=blobs.test,
                epochs=20, batch_size=16, seed=0, progress=False, early_stopping=es2,
                callbacks=[lambda e, logs: snaps2.append(net2.state_dict())])
    assert hist2.stopped_early and len(hist2) < 20
    best = int(np.argmin(hist2["val_loss"]))
    assert hist2.best_epoch == best + 1 == es2.best_epoch
    assert len(hist2) == hist2.best_epoch + es2.patience
    restored = net2.state_dict()
    assert all(np.array_equal(restored[k], snaps2[best][k]) for k in restored)
    assert not all(np.array_equal(restored[k], snaps2[-1][k]) for k in restored)
    assert evaluate(net2, loss, blobs.test)["loss"] == pytest.approx(min(hist2["val_loss"]), rel=1e-6)
    # Without stopping early, the best epoch is still restored at the end.
    assert not hist.stopped_early and hist.best_epoch == int(np.argmin(hist["val_loss"])) + 1
    restored = net.state_dict()
    assert all(np.array_equal(restored[k], snapshots[hist.best_epoch - 1][k]) for k in restored)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(patience=-1), "patience"),
        (dict(mode="best"), "mode"),
        (dict(min_delta=-0.1), "min_delta"),
    ],
)
def test_early_stopping_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        EarlyStopping(**kwargs)


def test_early_stopping_on_val_metric_needs_val_data(blobs):
    net = mlp([2, 3])
    with pytest.raises(ValueError, match="needs val data"):
        fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), blobs.train, epochs=1,
            early_stopping=EarlyStopping(), progress=False)
    assert EarlyStopping("val_accuracy").mode == "max" and EarlyStopping("loss").mode == "min"


def test_nan_loss_stops_training_with_a_clear_message(blobs):
    net = mlp([2, 32, 3])
    x = blobs.x_train * 1e3
    with pytest.raises(FloatingPointError, match="lower learning rate") as info:
        fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=1e6), (x, blobs.y_train), epochs=50,
            batch_size=32, progress=False)
    assert "epoch" in str(info.value) and "batch" in str(info.value) and "1e+06" in str(info.value)
    assert isinstance(info.value.history, History)


def test_progress_output_without_tqdm(blobs, monkeypatch):
    import fastlayers.train as T

    monkeypatch.setattr(T, "_tqdm", lambda: None)
    net = mlp([2, 4, 3])
    buf = _io.StringIO()
    fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), blobs.train, val=blobs.test, epochs=2,
        progress=True, file=buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "val_accuracy" in lines[1] and "ex/s" in lines[1]
    buf2 = _io.StringIO()
    fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), blobs.train, epochs=1, progress=False,
        file=buf2)
    assert buf2.getvalue() == ""


def test_progress_with_a_tqdm_bar(blobs, monkeypatch):
    import fastlayers.train as T

    bars = []

    class FakeBar:
        def __init__(self, total, **kw):
            self.total, self.n, self.postfix, self.closed = total, 0, "", False
            bars.append(self)

        def set_postfix_str(self, s, refresh=True):
            self.postfix = s

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(T, "_tqdm", lambda: FakeBar)
    net = mlp([2, 4, 3])
    fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), blobs.train, epochs=2, batch_size=50,
        progress=True, file=_io.StringIO())
    n = len(blobs.x_train)
    assert len(bars) == 2 and all(b.closed and b.n == b.total == n for b in bars)
    assert "loss" in bars[0].postfix and "ex/s" in bars[0].postfix


def test_evaluate_and_predict_shapes(blobs):
    net = mlp([2, 5, 3])
    x, y = blobs.test
    out = predict(net, x, batch_size=7)
    assert out.shape == (len(x), 3) and out.dtype == np.float32
    with nn.no_grad():
        np.testing.assert_allclose(out, net(x), rtol=1e-5, atol=1e-6)
    r = evaluate(net, nn.CrossEntropyLoss(), (x, y), batch_size=7)
    assert set(r) == {"loss", "accuracy"}
    assert r["accuracy"] == pytest.approx(np.mean(out.argmax(1) == y))
    # Per-example mean loss whatever the batching (sum reduction too).
    r_sum = evaluate(net, nn.CrossEntropyLoss(reduction="sum"), data.DataLoader(x, y, batch_size=13))
    assert r_sum["loss"] == pytest.approx(r["loss"], rel=1e-5)
    # No backward caches are kept.
    assert all(m._ctx is None for m in net.modules())


@pytest.mark.parametrize(
    "out, target, loss, expected",
    [
        # integer labels, argmax of (N, C) outputs
        (np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]), nn.CrossEntropyLoss(), 2 / 3),
        # one-hot targets (Nielsen's quadratic cost)
        (np.array([[0.9, 0.1], [0.2, 0.7]]), np.array([[1.0, 0.0], [1.0, 0.0]]), nn.MSELoss(), 1 / 2),
        # one binary logit with BCE: threshold 0
        (np.array([[0.3], [-2.0], [1.0]]), np.array([[1.0], [0.0], [0.0]]), nn.BCEWithLogitsLoss(), 2 / 3),
    ],
)
def test_accuracy_rules(out, target, loss, expected):
    from fastlayers.train import _num_correct

    assert _num_correct(out.astype(np.float32), target, loss) / len(out) == pytest.approx(expected)


def test_fit_with_mse_on_one_hot_targets_and_augment_and_loader(blobs):
    x, y = blobs.train
    t = np.eye(3, dtype=np.float32)[y]
    net = nn.Sequential(nn.Linear(2, 16), nn.Sigmoid(), nn.Linear(16, 3), nn.Sigmoid())
    calls = []

    def augment(xb):
        calls.append(len(xb))
        return xb + np.float32(0.01)

    hist = fit(net, nn.MSELoss(), optim.SGD(net.parameters(), lr=2.0), (x, t), epochs=8, batch_size=50,
               seed=0, augment=augment, progress=False)
    assert sum(calls) == 8 * len(x)
    assert hist["accuracy"][-1] > 0.8 and hist["loss"][-1] < hist["loss"][0]
    loader = data.DataLoader(x, y, batch_size=40, shuffle=True, seed=0)
    net2 = mlp([2, 8, 3])
    hist2 = fit(net2, nn.CrossEntropyLoss(), optim.SGD(net2.parameters(), lr=0.1), loader, epochs=2, progress=False)
    assert len(hist2) == 2 and loader.epoch == 2
    with pytest.raises(ValueError, match="transform"):
        fit(net2, nn.CrossEntropyLoss(), optim.SGD(net2.parameters(), lr=0.1), loader, augment=augment,
            progress=False)
    with pytest.raises(TypeError, match="train"):
        fit(net2, nn.CrossEntropyLoss(), optim.SGD(net2.parameters(), lr=0.1), x, progress=False)


def test_transfer_learning_head_freeze_features(blobs):
    x, y = blobs.train
    base = mlp([2, 16, 16, 3], seed=4)
    fit(base, nn.CrossEntropyLoss(), optim.SGD(base.parameters(), lr=0.1, momentum=0.9), (x, y), epochs=3,
        progress=False)
    # New task: 2 classes (class 0 vs the rest).
    y2 = (y > 0).astype(np.int64)
    old_head = base[-1]
    head = replace_head(base, num_classes=2, rng=np.random.default_rng(0))
    assert base[-1] is head and head is not old_head and (head.in_features, head.out_features) == (16, 2)
    trainable = freeze_layers(base, upto=-1)
    assert trainable == head.parameters()
    trunk_before = {k: v for k, v in base.state_dict().items() if not k.startswith("4.")}
    fit(base, nn.CrossEntropyLoss(), optim.SGD(base.parameters(), lr=0.1, momentum=0.9), (x, y2), epochs=10,
        progress=False)
    after = base.state_dict()
    assert all(np.array_equal(after[k], v) for k, v in trunk_before.items())  # frozen trunk unchanged
    assert evaluate(base, nn.CrossEntropyLoss(), (x, y2))["accuracy"] > 0.9
    # Features computed once for the frozen trunk give the same outputs through the head.
    feats = extract_features(base[:-1], x)
    assert feats.shape == (len(x), 16)
    np.testing.assert_allclose(predict(head, feats), predict(base, x), rtol=1e-5, atol=1e-5)
    base.unfreeze()
    assert len(freeze_layers(base, upto=0)) == len(base.parameters())
    with pytest.raises(ValueError, match="exactly one"):
        replace_head(base)
    with pytest.raises(ValueError, match="upto"):
        freeze_layers(base, upto=9)
    with pytest.raises(TypeError, match="Sequential"):
        replace_head(nn.Linear(2, 2), num_classes=3)

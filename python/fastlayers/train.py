"""Training and evaluation: ``fit`` / ``Trainer``, ``evaluate``, ``predict``, early stopping,
and the transfer-learning helpers (``replace_head``, ``freeze_layers``, ``extract_features``).

The loop is the one fastlayers.nn documents, run once per mini-batch (never per sample)::

    optimizer.zero_grad(); out = model(xb); l = loss(out, yb)
    model.backward(loss.backward()); optimizer.step()

Keras' ``model.fit`` / ``evaluate`` / ``predict`` are the model for the API and the history
layout (``History.history = {"loss": [...], "val_loss": [...], ...}``, one value per epoch);
torch has no built-in trainer (its equivalent is that hand-written loop).

>>> import fastlayers.nn as nn
>>> from fastlayers import optim, data
>>> from fastlayers.train import fit, evaluate
>>> ds = data.get("blobs")
>>> net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
>>> hist = fit(net, nn.CrossEntropyLoss(), optim.Adam(net.parameters(), lr=0.01), ds.train,
...            val=ds.test, epochs=5, batch_size=32, seed=0, progress=False)
>>> evaluate(net, nn.CrossEntropyLoss(), ds.test)["accuracy"] > 0.9
True

Modes: the model is in ``train()`` mode while fitting (dropout on, BatchNorm on batch
statistics) and in ``eval()`` mode, under ``nn.no_grad()`` (no backward caches kept), for
``evaluate``/``predict`` and the per-epoch validation; each call restores the modes it found.

Progress: with ``progress=True`` a tqdm bar per epoch shows the running loss and the
throughput (examples/s), then one summary line per epoch is printed. tqdm is optional and
imported lazily; without it only the per-epoch lines are printed.

On a GPU (``model.to("cuda")``) each batch is moved to the device once, and the batches'
losses and outputs are read back to the host once per ``GPU_READBACK_EVERY`` (16)
batches rather than after every batch, so that no step waits for the GPU. A diverged
loss is then reported with the batch it came from and the number of updates made since.

Transfer learning (the recipe)::

    base = fastlayers.io.load("pretrained.npz")          # or load_into(model, path)
    head = replace_head(base, num_classes=5)              # new Linear for the new task
    freeze_layers(base, upto=-1)                          # train only the head ...
    fit(base, loss, optim.SGD(base.parameters(), lr=0.01, momentum=0.9), train, epochs=3)
    base.unfreeze()                                       # ... then fine-tune everything
    fit(base, loss, optim.SGD(base.parameters(), lr=0.001, momentum=0.9), train, epochs=3)

With a frozen trunk the trunk's outputs never change, so compute them once:
``feats = extract_features(base[:-1], x)`` and fit the head alone on ``(feats, y)``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from fastlayers import nn
from fastlayers.data.loader import DataLoader
from fastlayers.ops._device import is_device_array, move

__all__ = [
    "EarlyStopping",
    "History",
    "Trainer",
    "evaluate",
    "extract_features",
    "fit",
    "freeze_layers",
    "predict",
    "replace_head",
]


# ----------------------------------------------------------------------------- history


class History:
    """What ``fit`` returns: per-epoch series in Keras' layout.

    Attributes:
        history: {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds",
            "throughput"} -> list with one value per completed epoch. "accuracy" keys exist
            only when accuracy is defined for the loss/targets (see ``fit``), "val_*" only
            with validation data. "seconds" is the wall time of the whole epoch (training
            and validation), "throughput" the training examples per second.
        epoch: epoch numbers (1-based) in the same order.
        stopped_early: True when early stopping ended the run.
        best_epoch: the epoch whose weights early stopping restored (None without it).
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.stopped_early = False
        self.best_epoch = None

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def rows(self) -> list[dict]:
        """One dict per epoch: {"epoch": k, "loss": ..., ...} (for JSON and tables)."""
        return [{"epoch": e, **{k: v[i] for k, v in self.history.items()}} for i, e in enumerate(self.epoch)]

    def __repr__(self):
        last = self.rows()[-1] if self.epoch else {}
        return f"History(epochs={len(self)}, last={last})"


# ----------------------------------------------------------------------------- early stopping


class EarlyStopping:
    """Stop when a monitored metric has not improved for ``patience`` epochs
    (keras.callbacks.EarlyStopping; torch has none built in).

    Args:
        monitor: a history key, "val_loss" (default), "val_accuracy", "loss", ...
        patience: epochs without improvement tolerated; training stops after the
            ``patience``-th such epoch in a row.
        min_delta: an improvement must beat the best by more than this.
        mode: "min", "max" or "auto" (max for names containing "acc", min otherwise).
        restore_best_weights: at the end of training (stopped early or not), load the
            weights (parameters and buffers) of the best epoch back into the model.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = True):
        if isinstance(patience, bool) or int(patience) != patience or patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta: expected a number >= 0, got {min_delta!r}")
        if mode not in ("min", "max", "auto"):
            raise ValueError(f"mode: expected 'min', 'max' or 'auto', got {mode!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = bool(restore_best_weights)
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_state = None
        self.wait = 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, logs: dict, model) -> bool:
        """Record one epoch's logs; returns True when training should stop."""
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: monitored metric {self.monitor!r} is not in the epoch logs "
                           f"(have {sorted(logs)}); pass val data for 'val_*' metrics")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = model.state_dict()  # copies
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model) -> bool:
        """Load the best epoch's weights into ``model``; False when there is nothing to restore."""
        if not self.restore_best_weights or self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
                f"mode={self.mode!r}, restore_best_weights={self.restore_best_weights})")


# ----------------------------------------------------------------------------- helpers


def _loader(data, batch_size, shuffle=False, seed=None, transform=None, name="data") -> DataLoader:
    """A DataLoader from an (x, y) pair, or the given DataLoader itself."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=transform)
    raise TypeError(f"{name}: expected an (x, y) pair or a fastlayers.data.DataLoader, got {type(data).__name__}")


def _host(a):
    """A device array's contents as numpy (metrics are computed on the host)."""
    return a.get() if is_device_array(a) else a


def _to_model(model, xb, yb=None):
    """A batch on the model's device: the inputs, and float targets (MSE, BCE); integer
    labels stay on the host, where the loss checks them before copying them over."""
    dev = model.device
    if dev == "cpu":
        return xb, yb
    if yb is not None and np.dtype(yb.dtype).kind == "f":
        yb = move(yb, dev)
    return move(xb, dev), yb


def _num_correct(out: np.ndarray, target: np.ndarray, loss):
    """Correctly classified examples in a batch, or None when accuracy is not defined.

    (N, C) outputs with (N,) integer labels: argmax. Same-shape (N, C) outputs and
    one-hot targets (C > 1, e.g. Nielsen's quadratic cost): argmax of both. A single
    binary output (N,) or (N, 1) with 0/1 targets: threshold 0 for BCEWithLogitsLoss
    (logits), 0.5 otherwise (probabilities).
    """
    out, target = _host(out), np.asarray(_host(target))
    if out.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu" and out.shape[1] > 1:
        return int(np.count_nonzero(out.argmax(axis=1) == target))
    if out.shape == target.shape and out.ndim == 2 and out.shape[1] > 1 and not isinstance(loss, nn.BCEWithLogitsLoss):
        return int(np.count_nonzero(out.argmax(axis=1) == target.argmax(axis=1)))
    if out.size == len(out) and target.size == len(target) and len(out) == len(target):
        cut = 0.0 if isinstance(loss, nn.BCEWithLogitsLoss) else 0.5
        return int(np.count_nonzero((out.reshape(-1) > cut) == (target.reshape(-1) > 0.5)))
    return None


def _per_example(loss, value: float, out: np.ndarray) -> float:
    """A batch loss as a per-example mean ("sum" reduction divided by the batch size)."""
    return value / len(out) if getattr(loss, "reduction", "mean") == "sum" else value


#: On a GPU the batches' losses and outputs are read back (which waits for the GPU) once
#: per this many batches, so that training does not stall at every step.
GPU_READBACK_EVERY = 16


def _compute_loss(loss, out, target):
    """loss(out, target) without waiting for a GPU: ``Loss.compute`` where the loss has it
    (a 0-d device array on a GPU), else whatever the callable returns."""
    compute = getattr(loss, "compute", None)
    return compute(out, target) if compute is not None else loss(out, target)


class _Running:
    """Running loss and accuracy over the batches of an epoch. A batch's loss and outputs
    are kept as they are (device arrays on a GPU) and read back ``every`` batches: after
    each batch on the CPU, in groups on a GPU."""

    def __init__(self, loss, every: int = 1, stop_at_nonfinite: bool = True):
        self.loss, self.every, self.stop = loss, every, stop_at_nonfinite
        self.total, self.seen, self.correct = 0.0, 0, 0
        self.pending = []  # (batch number, loss, outputs, targets)

    def add(self, batch: int, value, out, target):
        """Adds a batch; returns (batch number, loss) of the first non-finite loss met when
        this call reads back, else None."""
        self.pending.append((batch, value, out, target))
        return self.flush() if len(self.pending) >= self.every else None

    def flush(self):
        """Reads back the pending batches. With stop_at_nonfinite, stops at the first
        non-finite loss and returns (batch number, loss); else adds it in (the mean becomes
        NaN or inf) and returns None."""
        pending, self.pending = self.pending, []
        for batch, value, out, target in pending:
            value = _per_example(self.loss, float(value), out)
            if self.stop and not math.isfinite(value):
                return batch, value
            self.total += value * len(out)
            self.seen += len(out)
            c = _num_correct(out, target, self.loss)
            self.correct = None if (c is None or self.correct is None) else self.correct + c
        return None

    def logs(self) -> dict:
        out = {"loss": self.total / max(self.seen, 1)}
        if self.correct is not None:
            out["accuracy"] = self.correct / max(self.seen, 1)
        return out


class _Modes:
    """Puts a model in eval() (or train()) mode and restores every module's mode after."""

    def __init__(self, model, training: bool):
        self.model, self.training = model, training

    def __enter__(self):
        self.saved = [(m, m.training) for m in self.model.modules()]
        self.model.train(self.training)
        return self.model

    def __exit__(self, *exc):
        for m, mode in self.saved:
            m.__dict__["training"] = mode
        return False


def _fmt(logs: dict) -> str:
    parts = []
    for k, v in logs.items():
        if k in ("seconds",):
            parts.append(f"{k} {v:.2f}")
        elif k == "throughput":
            parts.append(f"{v:,.0f} ex/s")
        elif k == "lr":
            parts.append(f"lr {v:.3g}")
        else:
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)


def _tqdm():
    """tqdm.tqdm when installed, else None (tqdm is optional)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


# ----------------------------------------------------------------------------- evaluate / predict


def predict(model, x, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on x, batch by batch, in eval mode under no_grad (keras
    ``Model.predict``; torch: ``model.eval()`` + ``torch.no_grad()`` + a loop).

    Returns the concatenated outputs, e.g. (N, C) logits (take ``.argmax(1)`` for classes).
    The model's train/eval modes are restored afterwards.
    """
    x = np.asarray(x)
    outs = []
    with _Modes(model, training=False), nn.no_grad():
        for xb in DataLoader(x, None, batch_size=batch_size):
            outs.append(_host(model(_to_model(model, xb)[0])))
    if not outs:
        raise ValueError("predict: x has no examples")
    return np.concatenate(outs, axis=0)


def evaluate(model, loss, data, batch_size: int = 256) -> dict:
    """Mean loss (and accuracy when defined, see ``fit``) over ``data`` ((x, y) or a
    DataLoader), in eval mode under no_grad (keras ``Model.evaluate``).

    Returns {"loss": float, "accuracy": float} ("accuracy" only when defined). The loss
    is averaged per example (batches weighted by their size).
    """
    loader = _loader(data, batch_size, name="data")
    running = _Running(loss, 1 if model.device == "cpu" else GPU_READBACK_EVERY, stop_at_nonfinite=False)
    with _Modes(model, training=False), nn.no_grad():
        for b, (xb, yb) in enumerate(loader):
            xb, yb = _to_model(model, xb, yb)
            out = model(xb)
            running.add(b, _compute_loss(loss, out, yb), out, yb)
    running.flush()
    loss._ctx = None  # drop the last batch's cache: no backward follows an evaluation
    if running.seen == 0:
        raise ValueError("evaluate: data has no examples")
    return running.logs()


# ----------------------------------------------------------------------------- Trainer


class Trainer:
    """Holds a model, its loss, optimiser and training options; ``fit`` runs epochs.

    Args: as ``fit`` (everything except the data and the number of epochs). A Trainer may
    call ``fit`` several times: the history grows and epochs keep counting.
    """

    def __init__(self, model, loss, optimizer, *, batch_size: int = 32, shuffle: bool = True, seed=None,
                 schedule=None, early_stopping: EarlyStopping | None = None, augment=None, progress: bool = True,
                 eval_batch_size: int = 256, callbacks=(), file=None):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.augment = augment
        self.progress = progress
        self.eval_batch_size = eval_batch_size
        self.callbacks = list(callbacks)
        self.file = file
        self.history = History()
        self._loader = None
        self._loader_key = None

    # ---- one epoch -----------------------------------------------------------------------

    def _train_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> dict:
        model, loss_fn, opt = self.model, self.loss, self.optimizer
        tqdm = _tqdm() if self.progress else None
        bar = None
        if tqdm is not None:
            bar = tqdm(total=loader.num_examples, desc=f"epoch {epoch}/{epochs}", unit="ex", leave=False,
                       file=self.file or sys.stderr, dynamic_ncols=True)
        # On a GPU, losses are read back in groups (GPU_READBACK_EVERY): a diverged batch is
        # then seen up to that many batches later, and the weights have had those updates.
        on_gpu = model.device != "cpu"
        running = _Running(loss_fn, GPU_READBACK_EVERY if on_gpu else 1)
        start = time.perf_counter()
        try:
            for b, (xb, yb) in enumerate(loader):
                xb, yb = _to_model(model, xb, yb)  # once per batch, on a GPU
                opt.zero_grad()
                out = model(xb)
                seen_before = running.seen
                bad = running.add(b, _compute_loss(loss_fn, out, yb), out, yb)
                if bad is not None:  # read back before this batch's update
                    self._diverged(bad, b - bad[0], f"batch {b + 1}", epoch, len(loader), opt.lr)
                model.backward(loss_fn.backward())
                opt.step()
                if bar is not None and running.seen > seen_before:
                    rate = running.seen / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix_str(f"loss {running.total / running.seen:.4f}, {rate:,.0f} ex/s", refresh=False)
                    bar.update(running.seen - seen_before)
            bad = running.flush()
            if bad is not None:  # read back after the last batch's update
                self._diverged(bad, len(loader) - bad[0], "the end of the epoch", epoch, len(loader), opt.lr)
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - start
        logs = running.logs()
        logs["throughput"] = running.seen / max(elapsed, 1e-9)
        return logs

    def _diverged(self, bad, updates_since: int, read_at: str, epoch: int, batches: int, lr: float):
        """Raises FloatingPointError for the non-finite loss ``bad = (batch, value)``
        (batch numbered from 0), read back at ``read_at`` after ``updates_since`` more
        optimiser steps."""
        b, value = bad
        if updates_since == 0:
            weights = "The model's weights are those before this batch's update."
        else:
            weights = (f"The loss was read back from the GPU at {read_at}: the weights have had "
                       f"{updates_since} update(s) since.")
        err = FloatingPointError(
            f"training diverged: the loss is {value} at epoch {epoch}, batch {b + 1} of {batches} "
            f"(learning rate {lr:g}); try a lower learning rate (e.g. {lr / 10:g}), "
            f"standardised inputs, or gradient-friendlier initialisation. {weights}"
        )
        err.history = self.history
        raise err

    def _train_loader(self, train) -> DataLoader:
        if isinstance(train, DataLoader):
            if self.augment is not None:
                raise ValueError("augment: pass the augmentation as the DataLoader's transform, not to fit, "
                                 "when train is a DataLoader")
            return train
        # One loader per (x, y): its Generator gives a new permutation every epoch.
        key = tuple(id(a) for a in train) if isinstance(train, (tuple, list)) else None
        if self._loader is None or key != self._loader_key:
            self._loader = _loader(train, self.batch_size, self.shuffle, self.seed, self.augment, name="train")
            self._loader_key = key
        return self._loader

    # ---- fit -----------------------------------------------------------------------------

    def fit(self, train, val=None, epochs: int = 1) -> History:
        """Train for ``epochs`` epochs; returns the (growing) History. See ``fit``."""
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
            raise ValueError(f"epochs: expected an integer >= 0, got {epochs!r}")
        loader = self._train_loader(train)
        val_loader = None if val is None else _loader(val, self.eval_batch_size, name="val")
        es = self.early_stopping
        if es is not None and es.monitor.startswith("val_") and val_loader is None:
            raise ValueError(f"early_stopping monitors {es.monitor!r}, which needs val data")
        first = len(self.history) + 1
        last = first + int(epochs) - 1
        try:
            for epoch in range(first, last + 1):
                t0 = time.perf_counter()
                lr = self.optimizer.lr
                with _Modes(self.model, training=True):
                    logs = self._train_epoch(loader, epoch, last)
                if val_loader is not None:
                    v = evaluate(self.model, self.loss, val_loader)
                    logs.update({"val_" + k: val for k, val in v.items()})
                logs["lr"] = lr
                logs["seconds"] = time.perf_counter() - t0
                # Keras' key order: loss, accuracy, val_loss, val_accuracy, lr, seconds, throughput.
                logs["throughput"] = logs.pop("throughput")
                self.history.append(epoch, logs)
                if self.progress:
                    print(f"epoch {epoch}/{last}  {_fmt(logs)}", file=self.file or sys.stdout, flush=True)
                self._step_schedule(logs)
                for cb in self.callbacks:
                    cb(epoch, logs)
                if es is not None and es.update(epoch, logs, self.model):
                    self.history.stopped_early = True
                    if self.progress:
                        print(f"early stopping: no improvement of {es.monitor} for {es.patience} epochs; "
                              f"best epoch {es.best_epoch} ({es.monitor} {es.best:.4f})",
                              file=self.file or sys.stdout, flush=True)
                    break
        finally:
            if es is not None and es.restore(self.model):
                self.history.best_epoch = es.best_epoch
        return self.history

    def _step_schedule(self, logs: dict) -> None:
        from fastlayers.optim import ReduceLROnPlateau

        if self.schedule is None:
            return
        if isinstance(self.schedule, ReduceLROnPlateau):
            # A plateau schedule watches the validation loss when there is one.
            self.schedule.step(logs.get("val_loss", logs["loss"]))
        else:
            self.schedule.step()

    def evaluate(self, data, batch_size: int | None = None) -> dict:
        return evaluate(self.model, self.loss, data, batch_size or self.eval_batch_size)

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        return predict(self.model, x, batch_size or self.eval_batch_size)


def fit(model, loss, optimizer, train, val=None, epochs: int = 1, batch_size: int = 32, *, shuffle: bool = True,
        seed=None, schedule=None, early_stopping: EarlyStopping | None = None, augment=None, progress: bool = True,
        eval_batch_size: int = 256, callbacks=(), file=None) -> History:
    """Train ``model`` with mini-batch gradient descent (keras ``Model.fit``).

    Args:
        model: an nn.Module (put in train() mode for the epochs, modes restored after).
        loss: an nn loss (CrossEntropyLoss, MSELoss, BCEWithLogitsLoss, ...).
        optimizer: a fastlayers.optim optimiser over the model's parameters.
        train: (x, y) arrays, or a DataLoader (then batch_size/shuffle/seed/augment are its own).
        val: optional (x, y) or DataLoader evaluated after every epoch (eval mode).
        epochs, batch_size, shuffle: as usual; seed: the shuffling order's seed (int,
            None or np.random.Generator).
        schedule: a learning-rate schedule stepped once per epoch (ReduceLROnPlateau gets
            the validation loss, or the training loss without val data).
        early_stopping: an EarlyStopping; restores the best weights at the end when asked.
        augment: a callable applied to every training batch of x (e.g.
            ``fastlayers.data.default_augmentation(seed)``); never to validation data.
        progress: a tqdm bar per epoch (when tqdm is installed) and one line per epoch.
        callbacks: callables ``cb(epoch, logs)`` run after every epoch.
        file: stream for the progress output (default: bar on stderr, lines on stdout).

    Accuracy is recorded when defined: integer labels with (N, C) outputs (argmax),
    one-hot targets of the outputs' shape, or one binary output. The training accuracy
    and loss are averaged over the epoch's batches as they were trained (Keras' convention).

    Raises FloatingPointError (with the history so far as ``err.history``) as soon as a
    batch loss is NaN or infinite: the usual cause is a learning rate that is too high.

    Returns the History.
    """
    trainer = Trainer(model, loss, optimizer, batch_size=batch_size, shuffle=shuffle, seed=seed, schedule=schedule,
                      early_stopping=early_stopping, augment=augment, progress=progress,
                      eval_batch_size=eval_batch_size, callbacks=callbacks, file=file)
    return trainer.fit(train, val, epochs)


# ----------------------------------------------------------------------------- transfer learning


def _last_linear(model):
    """(parent Sequential, index) of the last Linear layer reachable through Sequentials."""
    for i in range(len(model) - 1, -1, -1):
        m = model[i]
        if isinstance(m, nn.Linear):
            return model, i
        if isinstance(m, nn.Sequential) and len(m):
            found = _last_linear(m)
            if found is not None:
                return found
        if m.parameters():
            return None  # a parametrised non-Linear layer after the head: not a plain classifier
    return None


def replace_head(model, num_classes: int | None = None, head=None, rng=None):
    """Replace a Sequential classifier's last Linear layer with a new one (transfer learning).

    Give either ``num_classes`` (a fresh ``Linear(in_features, num_classes)`` with the default
    initialisation; ``rng``, an np.random.Generator, makes it reproducible) or ``head``, any
    Module. The layers after the old Linear (e.g. none, or a Softmax) stay. Returns the new
    head. torch: ``model.fc = nn.Linear(model.fc.in_features, num_classes)``.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: replace_head works on a Sequential, got {type(model).__name__}; "
                        f"assign the new head to its attribute yourself")
    if (num_classes is None) == (head is None):
        raise ValueError("replace_head: give exactly one of num_classes and head")
    found = _last_linear(model)
    if found is None:
        raise ValueError("replace_head: no Linear layer at the end of the model to replace")
    parent, i = found
    if head is None:
        old = parent[i]
        head = nn.Linear(old.in_features, int(num_classes), bias=old.bias is not None, rng=rng)
    parent[i] = head
    return head


def freeze_layers(model, upto: int):
    """Freeze the first ``upto`` layers of a Sequential (all but the last ``-upto`` when
    negative), unfreeze the rest; returns the list of still-trainable Parameters.

    torch: ``for p in model[:upto].parameters(): p.requires_grad = False``. Optimisers skip
    frozen parameters, so ``model.parameters()`` can still be passed to them.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: freeze_layers works on a Sequential, got {type(model).__name__}")
    n = len(model)
    k = upto if upto >= 0 else n + upto
    if not 0 <= k <= n:
        raise ValueError(f"upto: {upto} is out of range for a Sequential of {n} layers")
    for i, m in enumerate(model):
        (m.freeze if i < k else m.unfreeze)()
    return [p for p in model.parameters() if p.requires_grad]


def extract_features(trunk, x, batch_size: int = 256) -> np.ndarray:
    """The outputs of a frozen trunk on x, computed once (eval mode, no_grad), to train a
    head on directly: ``fit(head, loss, opt, (extract_features(trunk, x), y), ...)``.

    Equivalent to ``predict(trunk, x)``; the name says what it is for. Only valid while the
    trunk is frozen and has no random layers in training mode (augmentation or dropout
    in the trunk would make the features change every epoch).
    """
    return predict(trunk, x, batch_size)

"""`fastlayers train`: train a zoo model on a dataset, report, save a checkpoint and plots.

    fastlayers train --model convnet --dataset fashion-mnist --epochs 5 --batch-size 128 \\
        --optimizer sgd --lr 0.01 --momentum 0.9 [--augment] [--out DIR] [--json FILE]
    fastlayers train --model mlp --dataset spirals --epochs 30 --optimizer adam --lr 0.01

Steps: load the dataset (``fastlayers.data.get``; synthetic ones need no files), optionally
keep the first ``--limit`` training examples, hold out a stratified validation part
(``--val-fraction``), standardise with the training statistics, build the model with
``fastlayers.io.build_model(name, input_shape=..., num_classes=...)`` (the zoo, or a
name registered with ``fastlayers.io.register_model``), train with ``fastlayers.train.fit``,
then evaluate on the test set and print accuracy, the per-class precision/recall/F1
(``metrics.classification_report``) and the confusion matrix. With ``--out DIR``: the
checkpoint ``DIR/model.npz`` (with the normalisation statistics in its metadata) and,
when matplotlib is installed, ``DIR/curves.png`` and ``DIR/confusion.png``. With
``--json FILE`` ("-" for stdout): a summary with ``test_accuracy``, the per-epoch history
(``epochs``, with ``seconds`` per epoch) and the report.

The loss follows the model: a model with a ``default_loss`` attribute ("mse",
"cross_entropy", "bce" or an nn loss instance; e.g. Nielsen's network uses the quadratic
cost on one-hot targets) gets that one, any other CrossEntropyLoss.

Bad arguments are argparse usage errors (exit 2); missing data files exit 1 with the
loader's message on how to get them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _zoo_names() -> tuple:
    """The model zoo's names (fastlayers.models); names registered with
    fastlayers.io.register_model are accepted too."""
    from fastlayers import models

    return tuple(models.names())

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")


def _checked(convert, ok, what: str):
    """An argparse ``type``: ``convert(s)`` accepted when ``ok(value)``, else a usage error
    saying ``expected <what>``."""

    def parse(s: str):
        try:
            v = convert(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}")
        return v

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: 0 < v < float("inf"), "a positive number")  # NaN fails too
_nonneg_float = _checked(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
_fraction = _checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def add_parser(sub) -> argparse.ArgumentParser:
    """Registers the ``train`` subcommand on ``sub`` (the main parser's subparsers)."""
    from fastlayers.data.datasets import DATASETS

    p = sub.add_parser(
        "train",
        help="train a model from the zoo on a dataset and report test metrics",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model", required=True, help=f"model name: {', '.join(_zoo_names())}")
    p.add_argument("--dataset", required=True, help=f"dataset name: {', '.join(DATASETS)}")
    p.add_argument("--data", metavar="PATH", help="folder of the IDX files (fashion-mnist, mnist)")
    p.add_argument("--epochs", type=_positive_int, default=5)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate")
    p.add_argument("--momentum", type=_nonneg_float, default=0.0, help="SGD/RMSprop momentum")
    p.add_argument("--weight-decay", type=_nonneg_float, default=0.0)
    p.add_argument("--augment", action="store_true", help="random flips/shifts of training images")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for the kernels")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to train: the CPU kernels, or the CUDA kernels on CuPy arrays (needs a GPU and cupy)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed for initialisation, shuffling, splits (default 0)")
    p.add_argument("--limit", type=_positive_int, help="use only the first N training examples (smoke tests)")
    p.add_argument("--val-fraction", type=_fraction, default=0.1,
                   help="stratified share of the training set held out for validation (0: none; default 0.1)")
    p.add_argument("--patience", type=_positive_int, help="early stopping on val_loss, restoring the best weights")
    p.add_argument("--out", metavar="DIR", help="write DIR/model.npz and plots")
    p.add_argument("--json", metavar="FILE", help="write a JSON summary to FILE ('-' for stdout)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(_parser=p)  # usage errors found after parsing print this subcommand's usage
    return p


def _make_optimizer(args, params):
    from fastlayers import optim

    wd = args.weight_decay
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=wd)
    if args.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=args.lr, momentum=args.momentum, weight_decay=wd)
    if args.optimizer == "adagrad":
        return optim.Adagrad(params, lr=args.lr, weight_decay=wd)
    if args.optimizer == "adam":
        return optim.Adam(params, lr=args.lr, weight_decay=wd)
    return optim.AdamW(params, lr=args.lr, weight_decay=wd if wd else 1e-2)


def _make_loss(model):
    """(loss, one_hot_targets) for the model (see the module docstring)."""
    from fastlayers import nn

    spec = getattr(model, "default_loss", None)
    if spec is None or spec == "cross_entropy":
        return nn.CrossEntropyLoss(), False
    if isinstance(spec, nn.Loss):
        return spec, isinstance(spec, (nn.MSELoss, nn.BCEWithLogitsLoss))
    if spec == "mse":
        return nn.MSELoss(), True
    if spec == "bce":
        return nn.BCEWithLogitsLoss(), True
    raise ValueError(f"model.default_loss: expected 'cross_entropy', 'mse', 'bce' or an nn loss, got {spec!r}")


def _one_hot(y, c):
    import numpy as np

    out = np.zeros((len(y), c), np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def _print_matrix(cm, names) -> str:
    """The confusion matrix as text: rows the true class, columns the predicted one."""
    names = [str(n) for n in names]
    w = max(5, *(len(n) for n in names), len(str(int(cm.max(initial=0))))) + 1  # (columns)
    corner = "true \\ pred"
    w0 = max(len(corner), *(len(n) for n in names)) + 1  # (the row-label column)
    lines = [f"{corner:<{w0}}" + "".join(f"{n[:w - 1]:>{w}}" for n in names)]
    for n, row in zip(names, cm):
        lines.append(f"{n:<{w0}}" + "".join(f"{int(v):>{w}}" for v in row))
    return "\n".join(lines)


def run(args, parser: argparse.ArgumentParser) -> int:
    """Runs ``fastlayers train`` with parsed ``args``; returns the exit status."""
    import numpy as np

    import fastlayers
    from fastlayers import data, metrics, nn
    from fastlayers import io as flio
    from fastlayers.train import EarlyStopping, evaluate, fit, predict

    parser = getattr(args, "_parser", parser)
    zoo = _zoo_names()
    if args.model not in zoo and args.model not in flio._EXTRA_MODELS:
        parser.error(f"--model: unknown model {args.model!r}; known: {', '.join(zoo)}")
    key = args.dataset.lower().replace("_", "-")
    if key not in data.DATASETS:
        parser.error(f"--dataset: unknown dataset {args.dataset!r}; known: {', '.join(data.DATASETS)}")
    if args.patience is not None and args.val_fraction == 0:
        parser.error("--patience needs validation data: give --val-fraction > 0")
    if args.threads is not None:
        fastlayers.set_num_threads(args.threads)

    try:
        ds = data.get(key, args.data, seed=args.seed)
    except FileNotFoundError as e:
        print(f"fastlayers train: {e}", file=sys.stderr)
        return 1
    x_train, y_train = ds.train
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    if args.augment and x_train.ndim != 4:
        parser.error(f"--augment needs image data (N, C, H, W); {ds.name} examples have shape {ds.input_shape}")
    x_val = y_val = None
    if args.val_fraction > 0 and len(x_train) >= 10:
        x_train, y_train, x_val, y_val = data.train_val_split(
            x_train, y_train, val_fraction=args.val_fraction, seed=args.seed, stratify=True)
    norm = data.Standardize.fit(x_train)
    x_train, x_test = norm(x_train), norm(ds.x_test)
    x_val = None if x_val is None else norm(x_val)

    np.random.seed(args.seed)  # legacy global seed, in case a zoo model draws from it
    nn.init.seed(args.seed)
    try:
        model = flio.build_model(args.model, input_shape=tuple(ds.input_shape), num_classes=ds.num_classes)
    except (ImportError, TypeError, ValueError) as e:
        print(f"fastlayers train: cannot build model {args.model!r} for {ds.name} "
              f"(input {ds.input_shape}, {ds.num_classes} classes): {e}", file=sys.stderr)
        return 1
    if not isinstance(model, nn.Module):  # the perceptron learns by its own rule
        return _run_perceptron(model, ds, x_train, y_train, x_test, args, log=sys.stderr if args.json == "-" else sys.stdout)
    if args.device != "cpu":
        from fastlayers.ops._device import cuda_unavailable

        why = cuda_unavailable()
        if why is not None:
            print(f"fastlayers train: --device cuda: {why}", file=sys.stderr)
            return 1
        model.to(args.device)
    loss, one_hot = _make_loss(model)
    t_train = _one_hot(y_train, ds.num_classes) if one_hot else y_train
    t_val = None if y_val is None else (_one_hot(y_val, ds.num_classes) if one_hot else y_val)
    opt = _make_optimizer(args, model.parameters())
    augment = None
    if args.augment:
        augment = data.default_augmentation(seed=args.seed, flip=key != "mnist")
    early = EarlyStopping("val_loss", patience=args.patience) if args.patience else None
    quiet = args.no_progress or args.json == "-"
    log = sys.stderr if args.json == "-" else sys.stdout

    print(f"fastlayers train: {args.model} ({model.num_parameters():,} parameters) on {ds.name}: "
          f"{len(x_train)} train, {0 if x_val is None else len(x_val)} val, {len(x_test)} test; "
          f"{args.optimizer} lr {args.lr:g}, batch {args.batch_size}, {args.epochs} epochs", file=log)
    t0 = time.perf_counter()
    try:
        history = fit(model, loss, opt, (x_train, t_train), None if x_val is None else (x_val, t_val),
                      epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, augment=augment,
                      early_stopping=early, progress=not quiet, file=None if not quiet else log)
    except FloatingPointError as e:
        print(f"fastlayers train: {e}", file=sys.stderr)
        return 1
    train_seconds = time.perf_counter() - t0

    scores = predict(model, x_test)
    y_pred = scores.argmax(axis=1) if scores.ndim == 2 and scores.shape[1] > 1 else (
        scores.reshape(-1) > (0.0 if isinstance(loss, nn.BCEWithLogitsLoss) else 0.5)).astype(np.int64)
    t_test = _one_hot(ds.y_test, ds.num_classes) if one_hot else ds.y_test
    test = evaluate(model, loss, (x_test, t_test))
    test_acc = metrics.accuracy(ds.y_test, y_pred)
    names = list(ds.classes)
    report = metrics.classification_report(ds.y_test, y_pred, class_names=names, num_classes=ds.num_classes,
                                           output_dict=True)
    cm = metrics.confusion_matrix(ds.y_test, y_pred, num_classes=ds.num_classes)
    print(f"\ntest accuracy {test_acc:.4f}  test loss {test['loss']:.4f}  "
          f"(training {train_seconds:.1f} s)\n", file=log)
    print(metrics.classification_report(ds.y_test, y_pred, class_names=names, num_classes=ds.num_classes), file=log)
    print("confusion matrix (rows: true class, columns: predicted)", file=log)
    print(_print_matrix(cm, names), file=log)

    written = {}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        meta = {"dataset": ds.name, "classes": names, "test_accuracy": test_acc,
                "normalize": {"mean": norm.mean.tolist(), "std": norm.std.tolist()}, "args": vars_json(args)}
        written["checkpoint"] = flio.save(model, os.path.join(args.out, "model.npz"), metadata=meta)
        try:
            from fastlayers import plots

            written["curves"] = plots.plot_history(
                history.history, os.path.join(args.out, "curves.png"),
                metrics=[m for m in ("loss", "accuracy") if m in history],
                title=f"{args.model} on {ds.name}")
            written["confusion"] = plots.plot_confusion_matrix(cm, os.path.join(args.out, "confusion.png"),
                                                               class_names=names)
        except ImportError as e:
            print(f"(no plots: {e})", file=log)
        for what, path in written.items():
            print(f"wrote {what}: {path}", file=log)

    if args.json:
        summary = {
            "model": args.model,
            "dataset": ds.name,
            "num_parameters": int(model.num_parameters()),
            "args": vars_json(args),
            "num_train": int(len(x_train)),
            "num_val": 0 if x_val is None else int(len(x_val)),
            "num_test": int(len(x_test)),
            "test_accuracy": float(test_acc),
            "test_loss": float(test["loss"]),
            "epochs": history.rows(),
            "epoch_seconds": [float(s) for s in history["seconds"]],
            "train_seconds": train_seconds,
            "stopped_early": history.stopped_early,
            "best_epoch": history.best_epoch,
            "report": report,
            "confusion_matrix": cm.tolist(),
            "classes": names,
            "files": written,
            "fastlayers_version": fastlayers.__version__,
            "threads": fastlayers.get_num_threads(),
        }
        text = json.dumps(summary, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


def _run_perceptron(model, ds, x_train, y_train, x_test, args, log) -> int:
    """Rosenblatt's rule on a two-class dataset: report convergence and test accuracy."""
    from fastlayers import metrics

    if ds.num_classes != 2:
        print(f"fastlayers train: the perceptron separates two classes; {ds.name} has {ds.num_classes}",
              file=sys.stderr)
        return 1
    result = model.fit(x_train.reshape(len(x_train), -1), y_train, max_epochs=args.epochs, warn=False)
    y_pred = model.predict(x_test.reshape(len(x_test), -1))
    test_acc = metrics.accuracy(ds.y_test, y_pred)
    print(f"{result.message}\ntest accuracy {test_acc:.4f}", file=log)
    if args.json:
        summary = {"model": args.model, "dataset": ds.name, "converged": bool(result.converged),
                   "epochs_run": int(result.epochs), "message": result.message,
                   "test_accuracy": float(test_acc), "args": vars_json(args)}
        text = json.dumps(summary, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


def vars_json(args) -> dict:
    """The parsed arguments as a JSON-ready dict."""
    return {k: v for k, v in vars(args).items() if k not in ("command", "_parser") and isinstance(v, (str, int, float, bool, type(None)))}

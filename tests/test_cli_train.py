"""`fastlayers train` end to end on synthetic data, with a tiny model registered through
fastlayers.io.register_model (the zoo's stand-in), and its usage errors (exit status 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fastlayers import io as flio
from fastlayers import nn
from fastlayers.cli.main import main


def tiny_mlp(input_shape, num_classes, hidden=32):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def tiny_cnn(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * (h // 2) * (w // 2), num_classes))


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch):
    monkeypatch.setattr(flio, "_EXTRA_MODELS", {})
    flio.register_model("tiny-mlp", tiny_mlp)
    flio.register_model("tiny-cnn", tiny_cnn)


def test_train_blobs_end_to_end(tmp_path, capsys):
    out, js = tmp_path / "run", tmp_path / "summary.json"
    rc = main(["train", "--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "4", "--batch-size", "32",
               "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--threads", "1", "--seed", "0",
               "--out", str(out), "--json", str(js)])
    assert rc == 0
    text = capsys.readouterr().out
    for needle in ("epoch 1/4", "epoch 4/4", "test accuracy", "precision", "recall", "f1", "confusion matrix"):
        assert needle in text, needle
    s = json.loads(js.read_text())
    for key in ("model", "dataset", "test_accuracy", "test_loss", "epochs", "epoch_seconds", "report",
                "confusion_matrix", "classes", "num_parameters", "files", "args"):
        assert key in s, key
    assert s["model"] == "tiny-mlp" and s["dataset"] == "blobs" and s["args"]["lr"] == 0.1
    assert s["test_accuracy"] > 0.9  # chance is 1/3
    assert len(s["epochs"]) == 4 == len(s["epoch_seconds"]) and all(t > 0 for t in s["epoch_seconds"])
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(s["epochs"][0])
    cm = np.array(s["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == s["num_test"]
    assert s["report"]["accuracy"] == pytest.approx(s["test_accuracy"])
    assert math.isclose(np.trace(cm) / cm.sum(), s["test_accuracy"])
    # The checkpoint rebuilds the model by name and gives the same accuracy.
    assert s["files"]["checkpoint"] == str(out / "model.npz")
    model = flio.load(out / "model.npz")
    meta = model.checkpoint_meta
    assert meta["zoo_name"] == "tiny-mlp" and meta["zoo_kwargs"] == {"input_shape": [2], "num_classes": 3}
    assert meta["metadata"]["test_accuracy"] == s["test_accuracy"]


def test_train_json_to_stdout_and_limit(capsys):
    rc = main(["train", "--model", "tiny-mlp", "--dataset", "spirals", "--epochs", "40", "--batch-size", "32",
               "--optimizer", "adam", "--lr", "0.02", "--limit", "400", "--val-fraction", "0", "--json", "-"])
    assert rc == 0
    captured = capsys.readouterr()
    s = json.loads(captured.out)  # stdout holds only the JSON; the report went to stderr
    assert s["num_train"] == 400 and s["num_val"] == 0
    assert s["test_accuracy"] > 0.8  # chance is 1/2
    assert "test accuracy" in captured.err


def test_train_images_with_augment_and_early_stopping(tmp_path, monkeypatch):
    from fastlayers import data

    rng = np.random.default_rng(0)
    # A 2-class 8x8 image set: a bright square in the top or the bottom half.
    y = rng.integers(0, 2, 160)
    x = rng.normal(0, 0.1, (160, 1, 8, 8)).astype(np.float32)
    x[y == 0, :, 1:3, 2:6] += 1.0
    x[y == 1, :, 5:7, 2:6] += 1.0
    ds = data.Dataset(x[:120], y[:120], x[120:], y[120:], classes=("top", "bottom"), name="fashion-mnist")
    monkeypatch.setattr(data, "get", lambda name, path=None, **kw: ds)
    js = tmp_path / "s.json"
    rc = main(["train", "--model", "tiny-cnn", "--dataset", "fashion-mnist", "--epochs", "6", "--batch-size", "16",
               "--optimizer", "adam", "--lr", "0.01", "--augment", "--patience", "2", "--json", str(js),
               "--no-progress"])
    assert rc == 0
    s = json.loads(js.read_text())
    assert s["test_accuracy"] > 0.8 and s["classes"] == ["top", "bottom"]


def test_missing_data_exits_1_with_the_loaders_message(monkeypatch, capsys):
    from fastlayers import data

    def missing(name, path=None, **kw):
        raise FileNotFoundError("Fashion-MNIST not found; apt-get install dataset-fashion-mnist")

    monkeypatch.setattr(data, "get", missing)
    assert main(["train", "--model", "tiny-mlp", "--dataset", "fashion-mnist"]) == 1
    assert "dataset-fashion-mnist" in capsys.readouterr().err


def test_diverging_run_exits_1_suggesting_a_lower_lr(capsys):
    rc = main(["train", "--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "20", "--lr", "1e12",
               "--no-progress"])
    assert rc == 1
    assert "lower learning rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "blobs"], "--model"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "0"], "--epochs"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "x"], "--epochs"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--lr", "-1"], "--lr"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--optimizer", "lbfgs"], "--optimizer"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--batch-size", "0"], "--batch-size"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--val-fraction", "1.5"], "--val-fraction"),
        (["--model", "nosuchnet", "--dataset", "blobs"], "unknown model"),
        (["--model", "tiny-mlp", "--dataset", "cifar"], "unknown dataset"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--augment"], "--augment needs image data"),
        (["--model", "tiny-mlp", "--dataset", "blobs", "--patience", "2", "--val-fraction", "0"], "--patience"),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: fastlayers train" in err and message in err


def test_plots_written_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (optional)")
    out = tmp_path / "run"
    assert main(["train", "--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert (out / "curves.png").stat().st_size > 0 and (out / "confusion.png").stat().st_size > 0


# --- the zoo through the CLI ----------------------------------------------------------------

@pytest.mark.parametrize("dataset, converged, accuracy", [("and", True, 1.0), ("xor", False, None)])
def test_perceptron_learns_and_fails_on_xor(dataset, converged, accuracy, capsys):
    assert main(["train", "--model", "perceptron", "--dataset", dataset, "--epochs", "50", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["converged"] is converged
    if accuracy is not None:
        assert out["test_accuracy"] == accuracy
    else:
        assert "not linearly separable" in out["message"]


FASHION = "/usr/share/datasets/fashion-mnist"


def test_fashion_mnist_smoke(capsys):
    # The real data set (Debian's dataset-fashion-mnist, which .ci/run installs): a
    # subset, one epoch of the zoo's softmax regression, accuracy well above chance (10%).
    import os

    if not os.path.isdir(FASHION):
        pytest.skip(f"optional dataset not installed ({FASHION}: apt-get install dataset-fashion-mnist)")
    argv = ["train", "--model", "softmax", "--dataset", "fashion-mnist", "--epochs", "1", "--limit", "6000",
            "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--json", "-"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_test"] == 10000 and out["test_accuracy"] > 0.7


def test_device_cuda_without_a_usable_gpu_exits_1_saying_why(capsys):
    from fastlayers.ops._device import cuda_unavailable

    if cuda_unavailable() is None:
        pytest.skip("a GPU is usable here: --device cuda would train")
    assert main(["train", "--model", "tiny-mlp", "--dataset", "blobs", "--epochs", "1", "--device", "cuda"]) == 1
    assert "--device cuda:" in capsys.readouterr().err

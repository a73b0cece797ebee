"""fastlayers.io: checkpoint round trip, atomic save (an interrupted save keeps the old file),
rebuilding zoo models by name, and clear load errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fastlayers import io as flio
from fastlayers import nn
from fastlayers.train import predict


def small_net(seed=0, hidden=8):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, hidden, rng=rng), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, 3, rng=rng))


def trained_bn(net, rng):
    """Give BatchNorm non-default running statistics so buffers are tested too."""
    net.train()
    with nn.no_grad():
        net(rng.standard_normal((32, 4)).astype(np.float32) * 3 + 1)
    return net


@pytest.fixture
def zoo(monkeypatch):
    """A tiny architecture registered as a model name (the zoo's stand-in)."""
    monkeypatch.setattr(flio, "_EXTRA_MODELS", {})
    flio.register_model("tiny", lambda hidden=8, seed=0: small_net(seed, hidden))
    return flio


def test_round_trip_same_predictions(tmp_path, rng):
    net = trained_bn(small_net(), rng)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    path = tmp_path / "ck.npz"
    assert flio.save(net, path, metadata={"dataset": "blobs", "acc": np.float32(0.5)}) == str(path)
    other = small_net(seed=1)
    meta = flio.load_into(other, path)
    assert meta["metadata"] == {"dataset": "blobs", "acc": 0.5}
    assert meta["model_class"] == "Sequential" and meta["zoo_name"] is None
    np.testing.assert_array_equal(predict(other, x), predict(net, x))
    for (k, a), (k2, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and np.array_equal(a, b)
    # Plain NumPy can read it, without pickle.
    with np.load(path, allow_pickle=False) as z:
        assert "state/0.weight" in z.files and "state/1.running_mean" in z.files
        assert json.loads(str(z["__meta__"]))["format"] == "fastlayers-checkpoint"


def test_load_rebuilds_zoo_models(tmp_path, rng, zoo):
    net = trained_bn(flio.build_model("tiny", hidden=6, seed=3), rng)
    assert net.zoo_name == "tiny" and net.zoo_kwargs == {"hidden": 6, "seed": 3}
    path = tmp_path / "zoo.npz"
    flio.save(net, path)
    back = flio.load(path)
    assert back is not net and back.zoo_name == "tiny" and back.checkpoint_meta["zoo_kwargs"] == {"hidden": 6, "seed": 3}
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(predict(back, x), predict(net, x))


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, rng, monkeypatch):
    net = small_net()
    path = tmp_path / "model.npz"
    flio.save(net, path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip archive")  # part of the data reaches the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    changed = small_net(seed=9)
    with pytest.raises(OSError, match="No space"):
        flio.save(changed, path)
    assert path.read_bytes() == before  # the old checkpoint is intact ...
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # ... and no temporary file is left
    monkeypatch.undo()
    restored = small_net(seed=5)
    flio.load_into(restored, path)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(predict(restored, x), predict(net, x))


def test_interrupt_during_rename_keeps_old_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    flio.save(small_net(), path)
    before = path.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        flio.save(small_net(seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["model.npz"]


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "model.npz"
    flio.save(small_net(seed=0), path)
    new = small_net(seed=1)
    flio.save(new, path)
    fresh = small_net(seed=2)
    flio.load_into(fresh, path)
    assert all(np.array_equal(a, b) for a, b in zip(fresh.state_dict().values(), new.state_dict().values()))


@pytest.mark.parametrize(
    "make_target, strict, error",
    [
        (lambda: small_net(hidden=5), True, r"0\.weight: expected shape \(5, 4\).*got \(8, 4\)"),
        (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU()), True, "unexpected keys"),
        (lambda: nn.Sequential(small_net(), nn.ReLU()), True, "missing keys"),
        (lambda: small_net().double(), True, "dtype"),
    ],
)
def test_load_into_errors_name_the_problem(tmp_path, make_target, strict, error):
    path = tmp_path / "ck.npz"
    flio.save(small_net(), path)
    with pytest.raises(ValueError, match=error) as info:
        flio.load_into(make_target(), path, strict=strict)
    assert "ck.npz" in str(info.value)


def test_load_into_non_strict_loads_the_common_keys(tmp_path):
    src = small_net(seed=0)
    path = tmp_path / "ck.npz"
    flio.save(src, path)
    trunk = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    flio.load_into(trunk, path, strict=False)
    np.testing.assert_array_equal(trunk[0].weight.data, src[0].weight.data)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        flio.load(tmp_path / "nope.npz")
    flio.save(small_net(), tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="load_into"):
        flio.load(tmp_path / "plain.npz")  # not from the zoo: cannot be rebuilt by name
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastlayers checkpoint"):
        flio.load_checkpoint(tmp_path / "foreign.npz")
    good = (tmp_path / "plain.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        flio.load_checkpoint(tmp_path / "truncated.npz")


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="metadata"):
        flio.save(small_net(), tmp_path / "x.npz", metadata={"f": object()})
    assert not os.listdir(tmp_path)
    with pytest.raises(TypeError, match="factory"):
        flio.register_model("bad", 3)

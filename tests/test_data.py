"""Tests of fastlayers.data: IDX files, datasets, batching, splits, normalisation, augmentation.

Real Fashion-MNIST is not needed: a tiny set in the Debian package's layout (the four gzipped
IDX files in one folder) is written with write_idx to a temporary folder. One extra test
checks the real files when the optional dataset-fashion-mnist package is installed.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from fastlayers import data
from fastlayers.data import augment, datasets
from fastlayers.data.idx import read_idx, write_idx

# ============================================================================= IDX files

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _sample(dtype, shape, rng):
    """Random values of dtype that include its extremes (to catch sign or byte-order slips)."""
    if np.dtype(dtype).kind == "f":
        a = rng.standard_normal(shape).astype(dtype) * 1e3
        flat = a.reshape(-1)
        flat[:3] = [np.finfo(dtype).max, np.finfo(dtype).tiny, -0.0]
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        flat = a.reshape(-1)
        flat[:2] = [info.min, info.max]
    return a


@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (2, 1, 3, 2)])
def test_idx_round_trip(tmp_path, rng, dtype, name, shape):
    a = _sample(dtype, shape, rng)
    path = tmp_path / name
    write_idx(path, a)
    with open(path, "rb") as f:
        is_gz = f.read(2) == b"\x1f\x8b"
    assert is_gz == name.endswith(".gz")
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == shape
    np.testing.assert_array_equal(b, a)
    b[...] = 0  # the result is an ordinary writable array


def test_idx_writer_follows_the_format(tmp_path):
    # Header and data bytes spelled out by hand: 00 00, dtype code, ndim, big-endian sizes, big-endian data.
    write_idx(tmp_path / "x", np.array([[1, -2, 3], [256, 0, -1]], dtype=np.int16))
    expected = bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes.fromhex("0001 fffe 0003 0100 0000 ffff")
    assert (tmp_path / "x").read_bytes() == expected


def test_idx_reader_reads_a_hand_written_file(tmp_path):
    # An MNIST-style label file and a float32 file, written without write_idx.
    (tmp_path / "labels").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 9, 0, 0, 3]))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), np.array([9, 0, 0, 3], np.uint8))
    (tmp_path / "f").write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 2]) + bytes.fromhex("3fc00000 c0200000"))
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), np.array([1.5, -2.5], np.float32))


def test_idx_gzip_is_detected_by_content_not_name(tmp_path, rng):
    a = _sample(np.uint8, (4, 3), rng)
    write_idx(tmp_path / "gz-without-suffix", a, compress=True)
    write_idx(tmp_path / "raw-named.gz", a, compress=False)  # e.g. a browser already unpacked it
    np.testing.assert_array_equal(read_idx(tmp_path / "gz-without-suffix"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-named.gz"), a)


def test_idx_gzip_output_is_deterministic(tmp_path, rng):
    a = _sample(np.float32, (5, 5), rng)
    write_idx(tmp_path / "1.gz", a)
    write_idx(tmp_path / "2.gz", a)
    assert (tmp_path / "1.gz").read_bytes() == (tmp_path / "2.gz").read_bytes()


_GOOD = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))  # (2, 3) uint8
CORRUPT_FILES = [
    # (case, file content, expected message fragment)
    ("empty", b"", "too short for an IDX header"),
    ("short magic", b"\x00\x00\x08", "too short for an IDX header"),
    ("nonzero first bytes", b"\x01\x00" + _GOOD[2:], "two zero bytes"),
    ("text file", b"hello world\n", "two zero bytes"),
    ("unknown dtype code", _GOOD[:2] + b"\x0a" + _GOOD[3:], "unknown IDX dtype code 0x0A"),
    ("zero dimensions", b"\x00\x00\x08\x00", "0 dimensions"),
    ("truncated header", _GOOD[:10], "declares 2 dimensions"),
    ("truncated data", _GOOD[:-1], "only 5 data bytes are present"),
    ("header only", _GOOD[:12], "only 0 data bytes"),
    ("trailing garbage", _GOOD + b"GARBG", "5 bytes of trailing garbage"),
    ("wrong ndim", b"\x00\x00\x08\x03" + _GOOD[4:], "truncated"),
    ("absurd sizes", bytes([0, 0, 0x0E, 3]) + b"\xff" * 12 + bytes(8), "truncated"),
]


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case,content,message", CORRUPT_FILES, ids=[c[0] for c in CORRUPT_FILES])
def test_idx_corrupt_files_are_clear_errors(tmp_path, case, content, message, compressed):
    path = tmp_path / ("bad.idx.gz" if compressed else "bad.idx")
    path.write_bytes(gzip.compress(content, mtime=0) if compressed else content)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)  # the message names the file


def test_idx_valid_sample_used_above_reads(tmp_path):
    # Guards the table above: without corruption the same bytes read fine.
    (tmp_path / "ok").write_bytes(_GOOD)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok"), np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize("how", ["cut in half", "flipped byte", "garbage after stream"])
def test_idx_broken_gzip_stream(tmp_path, rng, how):
    write_idx(tmp_path / "ok.gz", _sample(np.float64, (50, 50), rng))
    blob = bytearray((tmp_path / "ok.gz").read_bytes())
    if how == "cut in half":
        blob = blob[: len(blob) // 2]
    elif how == "flipped byte":
        blob[len(blob) // 2] ^= 0xFF
    else:
        blob += b"not gzip"
    (tmp_path / "bad.gz").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz")


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize(
    "array,error,message",
    [
        (np.zeros(3, np.int64), TypeError, "int64 has no IDX code"),
        (np.zeros(3, np.uint16), TypeError, "uint8, int8, int16, int32, float32, float64"),
        (np.zeros(3, np.complex64), TypeError, "no IDX code"),
        (np.array(5, np.uint8), ValueError, "1 to 255 dimensions"),
    ],
)
def test_idx_writer_rejects(tmp_path, array, error, message):
    with pytest.raises(error, match=message):
        write_idx(tmp_path / "x", array)
    assert not os.listdir(tmp_path)  # nothing left behind


def test_idx_writer_converts_byte_order(tmp_path):
    a = np.array([1.0, -2.0, 3.5], dtype=">f8")
    write_idx(tmp_path / "x", a.astype("<f8"))
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), a)


# ============================================================================= Fashion-MNIST / MNIST

DEBIAN_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}


def write_tiny_set(folder, rng, n_train=12, n_test=5, names=DEBIAN_NAMES, side=28):
    """Writes a tiny MNIST-format set (uint8 images, labels 0..9) and returns the arrays."""
    os.makedirs(folder, exist_ok=True)
    arrays = {
        ("train", "images"): rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        ("train", "labels"): (np.arange(n_train) % 10).astype(np.uint8),
        ("test", "images"): rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        ("test", "labels"): (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    arrays[("train", "images")][0, 0, 0] = 255  # so the [0, 1] scaling is checked at its top
    for key, a in arrays.items():
        write_idx(os.path.join(folder, names[key]), a)
    return arrays


def check_tiny(ds, arrays, classes):
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[:, 0] * 255, arrays[("train", "images")].astype(np.float32))
    np.testing.assert_array_equal(ds.x_test[:, 0] * 255, arrays[("test", "images")].astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, arrays[("train", "labels")])
    np.testing.assert_array_equal(ds.y_test, arrays[("test", "labels")])
    assert ds.x_train.max() == 1.0 and ds.x_train.min() >= 0.0
    assert ds.classes == classes and ds.num_classes == 10 and ds.input_shape == (1, 28, 28)
    x, y = ds.train
    assert x is ds.x_train and y is ds.y_train


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def test_fashion_mnist_from_path_in_debian_layout(tmp_path, rng):
    arrays = write_tiny_set(tmp_path, rng)
    ds = data.fashion_mnist(tmp_path)
    check_tiny(ds, arrays, FASHION_CLASSES)
    assert ds.name == "fashion-mnist"


@pytest.mark.parametrize(
    "layout",
    [
        {k: v[:-3] for k, v in DEBIAN_NAMES.items()},  # uncompressed
        {k: v.replace("-idx", ".idx") for k, v in DEBIAN_NAMES.items()},  # mirrors' dotted spelling
    ],
    ids=["raw", "dotted"],
)
def test_fashion_mnist_other_file_names(tmp_path, rng, layout):
    arrays = write_tiny_set(tmp_path, rng, names=layout)
    check_tiny(data.fashion_mnist(str(tmp_path)), arrays, FASHION_CLASSES)


@pytest.mark.parametrize("sub", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_fashion_mnist_from_env_var(tmp_path, rng, monkeypatch, sub):
    arrays = write_tiny_set(tmp_path / sub, rng)
    monkeypatch.setenv("FASTLAYERS_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "not-there"))
    check_tiny(data.fashion_mnist(), arrays, FASHION_CLASSES)


def test_fashion_mnist_default_dir(tmp_path, rng, monkeypatch):
    arrays = write_tiny_set(tmp_path / "share", rng)
    monkeypatch.delenv("FASTLAYERS_DATA", raising=False)
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "share"))
    check_tiny(data.fashion_mnist(), arrays, FASHION_CLASSES)


def test_fashion_mnist_env_var_wins_over_default(tmp_path, rng, monkeypatch):
    write_tiny_set(tmp_path / "default", rng, n_train=12)
    env_arrays = write_tiny_set(tmp_path / "env", rng, n_train=12)
    monkeypatch.setenv("FASTLAYERS_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "default"))
    check_tiny(data.fashion_mnist(), env_arrays, FASHION_CLASSES)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTLAYERS_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "default"))
    with pytest.raises(FileNotFoundError) as err:
        data.fashion_mnist()
    msg = str(err.value)
    for fragment in ("apt-get install dataset-fashion-mnist", "FASTLAYERS_DATA", str(tmp_path / "env"),
                     str(tmp_path / "default"), "train-images-idx3-ubyte"):
        assert fragment in msg


def test_fashion_mnist_explicit_path_is_the_only_place_searched(tmp_path, rng, monkeypatch):
    write_tiny_set(tmp_path / "env", rng)
    monkeypatch.setenv("FASTLAYERS_DATA", str(tmp_path / "env"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        data.fashion_mnist(tmp_path / "empty")


def test_fashion_mnist_incomplete_set_is_not_found(tmp_path, rng):
    write_tiny_set(tmp_path, rng)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.fashion_mnist(tmp_path)


def test_fashion_mnist_mismatched_files(tmp_path, rng):
    write_tiny_set(tmp_path, rng)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(ValueError, match="12 images but .*train-labels-idx1-ubyte.gz has 11 labels"):
        data.fashion_mnist(tmp_path)


def test_fashion_mnist_bad_label(tmp_path, rng):
    write_tiny_set(tmp_path, rng)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels.*\[0, 10\)"):
        data.fashion_mnist(tmp_path)


def test_fashion_mnist_truncated_file_is_named(tmp_path, rng):
    write_tiny_set(tmp_path, rng)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: truncated"):
        data.fashion_mnist(tmp_path)


def test_mnist_from_path_and_env(tmp_path, rng, monkeypatch):
    arrays = write_tiny_set(tmp_path / "mnist", rng)
    digits = tuple(str(d) for d in range(10))
    check_tiny(data.mnist(tmp_path / "mnist"), arrays, digits)
    monkeypatch.setenv("FASTLAYERS_DATA", str(tmp_path))  # finds the mnist/ sub-folder
    ds = data.mnist()
    check_tiny(ds, arrays, digits)
    assert ds.name == "mnist"


def test_mnist_without_path_or_env(monkeypatch):
    monkeypatch.delenv("FASTLAYERS_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="pass path= or set \\$FASTLAYERS_DATA"):
        data.mnist()


def test_get_loads_idx_sets_by_name(tmp_path, rng):
    arrays = write_tiny_set(tmp_path, rng)
    check_tiny(data.get("fashion-mnist", path=tmp_path), arrays, FASHION_CLASSES)
    check_tiny(data.get("fashion_mnist", path=tmp_path), arrays, FASHION_CLASSES)


def test_real_fashion_mnist_when_installed():
    folder = datasets.DEFAULT_FASHION_MNIST_DIR
    if not os.path.isdir(folder):
        pytest.skip(f"optional data: the dataset-fashion-mnist package is not installed ({folder} absent)")
    ds = data.fashion_mnist(folder)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 1000))
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert 0.2 < ds.x_train.mean() < 0.4  # Fashion-MNIST's mean pixel is about 0.286


# ============================================================================= synthetic sets

TRUTH_TABLES = [
    ("and", data.logical_and, [0, 0, 0, 1]),
    ("or", data.logical_or, [0, 1, 1, 1]),
    ("xor", data.xor, [0, 1, 1, 0]),
]


@pytest.mark.parametrize("name,fn,expected", TRUTH_TABLES, ids=[t[0] for t in TRUTH_TABLES])
def test_truth_tables(name, fn, expected):
    for x, y in (fn(), data.truth_table(name)):
        np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
        np.testing.assert_array_equal(y, expected)
        assert x.dtype == np.float32 and y.dtype == np.int64
    ds = data.get(name)
    np.testing.assert_array_equal(ds.y_train, expected)
    np.testing.assert_array_equal(ds.y_test, expected)


def test_truth_table_unknown():
    with pytest.raises(ValueError, match="op must be one of"):
        data.truth_table("implies")


@pytest.mark.parametrize("classes,n", [(2, 400), (3, 301)])
def test_spirals_lie_on_their_arms(classes, n):
    turns = 1.25
    x, y = data.spirals(n, classes, noise=0.0, turns=turns, seed=3)
    assert x.shape == (n, 2) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y, minlength=classes)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    # Without noise, each point is at radius t and angle 2*pi*(turns*t + k/classes) (mod 2*pi).
    r = np.hypot(x[:, 0], x[:, 1]).astype(np.float64)
    expected_angle = 2 * np.pi * (turns * r + y / classes)
    d = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected_angle)))
    assert np.abs(d).max() < 1e-4
    assert (r <= 1.0 + 1e-6).all()


def test_spirals_seed_noise_and_alias():
    a, ya = data.two_spirals(200, noise=0.1, seed=1)
    b, yb = data.spirals(200, 2, noise=0.1, seed=1)
    c, _ = data.two_spirals(200, noise=0.1, seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)
    clean, yc = data.two_spirals(200, noise=0.0, seed=1)
    np.testing.assert_array_equal(ya, yc)  # same points, only the noise differs
    resid = (a - clean).astype(np.float64)
    assert 0.08 < resid.std() < 0.12


def test_blobs():
    x, y = data.blobs(n=600, classes=4, dims=3, std=0.5, seed=7)
    assert x.shape == (600, 3) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [150] * 4)
    means = np.stack([x[y == k].mean(axis=0) for k in range(4)])
    within = np.concatenate([x[y == k] - means[k] for k in range(4)])
    assert 0.45 < within.std() < 0.55
    assert (np.abs(means) <= 5.5).all()  # centres drawn in the default box (-5, 5)
    x2, y2 = data.blobs(n=600, classes=4, dims=3, std=0.5, seed=7)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("fn,kw,message", [
    (data.blobs, dict(n=2, classes=3), "n must be an integer >= classes"),
    (data.blobs, dict(classes=0), "classes must be a positive integer"),
    (data.blobs, dict(dims=0), "dims must be"),
    (data.spirals, dict(n=1, classes=2), "n must be"),
])
def test_synthetic_bad_arguments(fn, kw, message):
    with pytest.raises(ValueError, match=message):
        fn(**kw)


@pytest.mark.parametrize("name,classes,features", [("spirals", 2, 2), ("blobs", 3, 2)])
def test_get_synthetic_splits(name, classes, features):
    ds = data.get(name, n=400, seed=5)
    assert len(ds.x_train) == 300 and len(ds.x_test) == 100
    assert ds.x_train.shape[1] == features and ds.num_classes == classes
    per_class = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert np.abs(np.bincount(ds.y_test) - per_class * 0.25).max() < 1  # stratified
    again = data.get(name, n=400, seed=5)
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def test_get_unknown():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*fashion-mnist"):
        data.get("cifar")


# ============================================================================= DataLoader


def _epoch(loader):
    return [(xb.copy(), yb.copy()) for xb, yb in loader]


@pytest.mark.parametrize(
    "n,batch_size,drop_last,sizes",
    [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, True, [4, 4]), (3, 5, False, [3]), (3, 5, True, [])],
)
def test_loader_batches_in_order(n, batch_size, drop_last, sizes):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    loader = data.DataLoader(x, y, batch_size=batch_size, drop_last=drop_last)
    batches = _epoch(loader)
    assert [len(yb) for _, yb in batches] == sizes and len(loader) == len(sizes)
    if sizes:
        np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), np.arange(sum(sizes)))
        np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), x[: sum(sizes)])


def test_loader_shuffle_covers_everything_once_and_keeps_pairs():
    n = 23
    x = (np.arange(n) * 10).astype(np.float32)[:, None]
    loader = data.DataLoader(x, np.arange(n), batch_size=5, shuffle=True, seed=0)
    orders = []
    for _ in range(3):
        batches = _epoch(loader)
        ys = np.concatenate([yb for _, yb in batches])
        np.testing.assert_array_equal(np.sort(ys), np.arange(n))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb * 10)  # x and y stay aligned
        orders.append(ys)
    assert not np.array_equal(orders[0], np.arange(n))  # shuffled
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])  # new each epoch
    assert loader.epoch == 3


def test_loader_seed_reproducible():
    x, y = np.arange(50.0)[:, None], np.arange(50)

    def run(seed):
        loader = data.DataLoader(x, y, batch_size=8, shuffle=True, seed=seed)
        return [np.concatenate([yb for _, yb in loader]) for _ in range(2)]

    a, b, c = run(1), run(1), run(2)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], c[0])


def test_loader_order_is_drawn_at_epoch_start():
    # Breaking out of an epoch early does not change the following epochs' orders.
    x, y = np.arange(40.0)[:, None], np.arange(40)
    full = data.DataLoader(x, y, batch_size=8, shuffle=True, seed=3)
    partial = data.DataLoader(x, y, batch_size=8, shuffle=True, seed=3)
    _epoch(full)
    next(iter(partial))
    np.testing.assert_array_equal(
        np.concatenate([yb for _, yb in full]), np.concatenate([yb for _, yb in partial])
    )


def test_loader_shuffle_drop_last_and_no_labels():
    x = np.arange(10.0)[:, None]
    loader = data.DataLoader(x, batch_size=3, shuffle=True, seed=0, drop_last=True)
    batches = list(loader)
    assert [b.shape for b in batches] == [(3, 1)] * 3 and loader.num_examples == 9
    assert len(np.unique(np.concatenate(batches))) == 9


def test_loader_transform_applied_and_source_untouched():
    x = np.ones((6, 1, 2, 2), np.float32)
    loader = data.DataLoader(x, np.arange(6), batch_size=4, transform=lambda b: b * 2)
    xb, _ = next(iter(loader))
    assert (xb == 2).all() and (x == 1).all()


@pytest.mark.parametrize("kw,message", [
    (dict(x=np.zeros(3), y=np.zeros(4)), "x has 3 examples but y has 4"),
    (dict(x=np.zeros(3), batch_size=0), "batch_size must be a positive integer"),
    (dict(x=np.zeros(3), batch_size=2.5), "batch_size"),
    (dict(x=np.float32(1)), "at least one dimension"),
])
def test_loader_bad_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        data.DataLoader(**kw)


# ============================================================================= train_val_split


def test_split_sizes_disjoint_aligned():
    n = 100
    x = np.arange(n)[:, None] * 3
    y = np.arange(n) % 7
    x_tr, y_tr, x_val, y_val = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    assert len(x_tr) == 80 and len(x_val) == 20
    ids = np.concatenate([x_tr[:, 0], x_val[:, 0]]) // 3
    np.testing.assert_array_equal(np.sort(ids), np.arange(n))  # a partition
    np.testing.assert_array_equal(y_tr, (x_tr[:, 0] // 3) % 7)  # pairs kept
    np.testing.assert_array_equal(y_val, (x_val[:, 0] // 3) % 7)
    again = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again[2], x_val)
    other = data.train_val_split(x, y, val_fraction=0.2, seed=1)
    assert not np.array_equal(other[2], x_val)


@pytest.mark.parametrize(
    "counts,fraction,val_counts",
    [
        ([50, 30, 20], 0.1, [5, 3, 2]),
        ([7, 7, 6], 0.5, [4, 3, 3]),  # 3.5, 3.5, 3 -> total 10; the tie goes to the smaller label
        ([90, 9, 1], 0.2, [18, 2, 0]),  # 18, 1.8, 0.2 -> total 20; class 1 has the largest remainder
        ([10, 10], 0.0, [0, 0]),
    ],
)
def test_split_stratified_counts(counts, fraction, val_counts):
    y = np.repeat(np.arange(len(counts)), counts)
    x = np.arange(len(y))
    x_tr, y_tr, x_val, y_val = data.train_val_split(x, y, val_fraction=fraction, seed=4, stratify=True)
    np.testing.assert_array_equal(np.bincount(y_val, minlength=len(counts)), val_counts)
    np.testing.assert_array_equal(np.bincount(y_tr, minlength=len(counts)), np.subtract(counts, val_counts))
    np.testing.assert_array_equal(y[x_val], y_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([x_tr, x_val])), x)


def test_split_stratified_beats_plain_on_a_rare_class():
    y = np.repeat([0, 1], [95, 5])
    x = np.arange(100)
    for seed in range(5):
        _, _, _, y_val = data.train_val_split(x, y, val_fraction=0.2, seed=seed, stratify=True)
        assert (y_val == 1).sum() == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction must be in"):
        data.train_val_split(np.zeros(4), np.zeros(4), val_fraction=fraction)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        data.train_val_split(np.zeros(4), np.zeros(3))


# ============================================================================= normalisation


def test_standardize_per_channel_uses_train_statistics(rng):
    scale, shift = np.array([2.0, 0.5, 10.0])[:, None, None], np.array([1.0, -3.0, 50.0])[:, None, None]
    train = (rng.standard_normal((40, 3, 4, 5)) * scale + shift).astype(np.float32)
    test = rng.standard_normal((7, 3, 4, 5)).astype(np.float32)
    tr, te = data.standardize(train, test)
    assert tr.dtype == np.float32 and te.dtype == np.float32 and te.shape == test.shape
    np.testing.assert_allclose(tr.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(tr.std(axis=(0, 2, 3)), 1, atol=1e-5)
    m = train.astype(np.float64).mean(axis=(0, 2, 3))[None, :, None, None]
    s = train.astype(np.float64).std(axis=(0, 2, 3))[None, :, None, None]
    np.testing.assert_allclose(te, (test - m) / s, rtol=1e-5, atol=1e-5)  # train's statistics, not test's


def test_standardize_features_global_constant_and_inverse(rng):
    x = rng.standard_normal((30, 4)).astype(np.float32) * 3 + 1
    x[:, 2] = 7.0  # a constant feature
    norm = data.Standardize.fit(x)
    out = norm(x)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 2], 0)  # centred, not divided by zero
    np.testing.assert_allclose(out[:, [0, 1, 3]].std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(norm.inverse(out), x, rtol=1e-5, atol=1e-5)
    (g,) = data.standardize(x, per_channel=False)
    assert abs(g.mean()) < 1e-5 and abs(g.std() - 1) < 1e-5
    assert np.asarray(data.Standardize.fit(x, per_channel=False).mean).shape == ()


def test_standardize_integer_images_become_float32():
    x = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2)
    (out,) = data.standardize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), (np.arange(8) - 3.5) / np.std(np.arange(8)), rtol=1e-6)


# ============================================================================= augmentation


@pytest.fixture
def batch(rng):
    return rng.random((6, 2, 9, 11)).astype(np.float32)


RANDOM_TRANSFORMS = [
    ("hflip", lambda s: data.RandomHorizontalFlip(p=0.5, seed=s)),
    ("vflip", lambda s: data.RandomVerticalFlip(p=0.5, seed=s)),
    ("translate", lambda s: data.RandomTranslate(2, seed=s)),
    ("rotation", lambda s: data.RandomRotation(20, seed=s)),
    ("scale", lambda s: data.RandomScale((0.8, 1.2), seed=s)),
    ("shear", lambda s: data.RandomShear(15, seed=s)),
    ("affine", lambda s: data.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5, seed=s)),
    ("contrast", lambda s: data.RandomContrast(0.5, seed=s)),
    ("noise", lambda s: data.GaussianNoise(0.1, seed=s)),
    ("compose", lambda s: data.Compose([data.RandomHorizontalFlip(), data.RandomRotation(10),
                                        data.GaussianNoise(0.01)], seed=s)),
    ("default", lambda s: data.default_augmentation(seed=s)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,make", RANDOM_TRANSFORMS, ids=[t[0] for t in RANDOM_TRANSFORMS])
def test_augment_shape_dtype_seed(batch, name, make, dtype):
    x = batch.astype(dtype)
    before = x.copy()
    a = make(0)(x)
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_array_equal(make(0)(x), a)  # same seed, same result
    assert not np.array_equal(make(1)(x), a)  # another seed, another result
    assert not np.array_equal(a, x)  # it did something
    t = make(0)
    assert not np.array_equal(t(x), t(x))  # a new draw on every call


@pytest.mark.parametrize("name,make", RANDOM_TRANSFORMS[:-2], ids=[t[0] for t in RANDOM_TRANSFORMS[:-2]])
def test_augment_p0_is_identity(batch, name, make):
    t = make(0)
    t.p = 0.0
    np.testing.assert_array_equal(t(batch), batch)


def test_flip_twice_is_identity_and_flips_whole_images(batch):
    np.testing.assert_array_equal(augment.hflip(augment.hflip(batch)), batch)
    np.testing.assert_array_equal(augment.hflip(batch)[..., 0], batch[..., -1])
    np.testing.assert_array_equal(augment.vflip(batch)[..., 0, :], batch[..., -1, :])
    np.testing.assert_array_equal(data.RandomHorizontalFlip(p=1.0)(batch), batch[..., ::-1])
    big = np.random.default_rng(0).random((400, 1, 2, 3)).astype(np.float32)
    out = data.RandomHorizontalFlip(p=0.5, seed=0)(big)
    flipped = (out == big[..., ::-1]).all(axis=(1, 2, 3))
    kept = (out == big).all(axis=(1, 2, 3))
    assert (flipped | kept).all()  # every image is either mirrored or untouched
    assert 160 < flipped.sum() < 240


@pytest.mark.parametrize("dy,dx", [(2, 3), (-1, 0), (0, -4), (-3, 2), (0, 0)])
def test_translate_moves_a_pixel_by_k(dy, dx):
    x = np.zeros((1, 1, 8, 9), np.float32)
    x[0, 0, 4, 4] = 1.0
    out = augment.translate(x, dy, dx)
    assert out[0, 0, 4 + dy, 4 + dx] == 1.0 and out.sum() == 1.0


def test_translate_per_image_zero_fill(batch):
    shifts = [(1, 2), (-2, 0), (0, -3), (3, 3), (0, 0), (-1, -1)]
    dy, dx = np.array(shifts).T
    out = augment.translate(batch, dy, dx)
    h, w = batch.shape[2:]
    for n, (sy, sx) in enumerate(shifts):  # checked one image at a time, against slicing
        expected = np.zeros_like(batch[n])
        expected[:, max(sy, 0):h + min(sy, 0), max(sx, 0):w + min(sx, 0)] = \
            batch[n][:, max(-sy, 0):h - max(sy, 0), max(-sx, 0):w - max(sx, 0)]
        np.testing.assert_array_equal(out[n], expected)
    with pytest.raises(ValueError, match="whole numbers"):
        augment.translate(batch, 0.5, 0)


def test_random_translate_stays_within_max_shift(batch):
    out = data.RandomTranslate((1, 2), seed=5)(batch)
    for n in range(len(batch)):
        matches = [(dy, dx) for dy in range(-1, 2) for dx in range(-2, 3)
                   if np.array_equal(out[n], augment.translate(batch[n:n + 1], dy, dx)[0])]
        assert matches, f"image {n} is not a shift of at most (1, 2)"


def test_rotation_by_zero_and_identity_affine_are_exact(batch):
    np.testing.assert_array_equal(augment.affine(batch, angle=0.0), batch)
    np.testing.assert_array_equal(augment.affine(batch, angle=0.0, scale=1.0, shear=0.0, translate=(0, 0)), batch)
    np.testing.assert_array_equal(data.RandomRotation((0, 0), seed=0)(batch), batch)


@pytest.mark.parametrize("angle,k", [(90, 1), (180, 2), (-90, -1), (270, 3)])
def test_rotation_by_right_angles_is_rot90(rng, angle, k):
    x = rng.random((3, 2, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(augment.affine(x, angle=angle), np.rot90(x, k, axes=(2, 3)), atol=1e-5)
    rot = data.RandomRotation((angle, angle), seed=0)(x)  # the random form uses its drawn angle
    np.testing.assert_allclose(rot, np.rot90(x, k, axes=(2, 3)), atol=1e-5)


def test_affine_per_image_parameters(rng):
    x = rng.random((3, 1, 6, 6)).astype(np.float32)
    out = augment.affine(x, angle=np.array([0.0, 90.0, 180.0]))
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_allclose(out[1], np.rot90(x[1], 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(out[2], x[2, :, ::-1, ::-1], atol=1e-5)


def test_scaling_moves_pixels_away_from_the_centre():
    x = np.zeros((1, 1, 9, 9), np.float32)
    x[0, 0, 4, 4], x[0, 0, 5, 6] = 2.0, 1.0  # the centre and a pixel at offset (dy, dx) = (1, 2)
    out = augment.affine(x, scale=2.0)
    assert out[0, 0, 4, 4] == 2.0  # the centre stays
    assert out[0, 0, 6, 8] == 1.0  # offset doubled: (2, 4)
    np.testing.assert_allclose(data.RandomScale((2, 2), seed=0)(x), out)
    small = augment.affine(np.ones((1, 1, 9, 9), np.float32), scale=0.5)
    assert small[0, 0, 4, 4] == 1.0 and small[0, 0, 0, 0] == 0.0  # shrunk: the border is filled


def test_shear_shifts_rows_by_their_offset(rng):
    x = rng.random((2, 1, 7, 7)).astype(np.float32)
    out = augment.affine(x, shear=45.0)  # x' = x + tan(45 deg) * y: row i moves right by i - 3
    for i in range(7):
        d = i - 3
        lo, hi = max(d, 0), 7 + min(d, 0)
        np.testing.assert_allclose(out[:, :, i, lo:hi], x[:, :, i, lo - d:hi - d], atol=1e-5)
        np.testing.assert_allclose(out[:, :, i, :lo], 0, atol=1e-5)
        np.testing.assert_allclose(out[:, :, i, hi:], 0, atol=1e-5)
    np.testing.assert_allclose(data.RandomShear((45, 45), seed=0)(x), out)


def test_affine_translation_and_bilinear_half_pixel(batch):
    np.testing.assert_allclose(augment.affine(batch, translate=(2, -1)), augment.translate(batch, -1, 2), atol=1e-6)
    half = augment.affine(batch, translate=(0.5, 0))  # each pixel is the mean of two neighbours
    np.testing.assert_allclose(half[..., 1:], (batch[..., 1:] + batch[..., :-1]) / 2, atol=1e-6)
    np.testing.assert_allclose(half[..., 0], batch[..., 0] / 2, atol=1e-6)  # half from the zero fill


def test_affine_fill(rng):
    ones = np.ones((2, 1, 8, 8), np.float32)
    rotated = augment.affine(ones, angle=45)
    assert rotated[0, 0, 0, 0] == 0 and rotated[0, 0, 4, 4] == 1
    np.testing.assert_allclose(augment.affine(ones, angle=45, fill=1.0), 1.0, atol=1e-6)
    np.testing.assert_allclose(data.RandomAffine(30, scale=(0.5, 0.7), fill=1.0, seed=0)(ones), 1.0, atol=1e-6)


def test_contrast(batch):
    np.testing.assert_allclose(augment.adjust_contrast(batch, 1.0), batch, atol=1e-6)
    f = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    out = augment.adjust_contrast(batch, f)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), batch.mean(axis=(1, 2, 3)), atol=1e-5)  # mean kept
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), f * batch.std(axis=(1, 2, 3)), rtol=1e-4, atol=1e-6)
    clipped = augment.adjust_contrast(batch, 3.0, clip=(0, 1))
    assert clipped.min() == 0 and clipped.max() == 1
    r = data.RandomContrast((0.5, 0.8), seed=0)(batch)
    ratio = r.std(axis=(1, 2, 3)) / batch.std(axis=(1, 2, 3))
    assert ((ratio > 0.5 - 1e-4) & (ratio < 0.8 + 1e-4)).all()


def test_gaussian_noise_statistics():
    x = np.full((64, 1, 28, 28), 0.5, np.float32)
    out = data.GaussianNoise(std=0.1, seed=0)(x)
    noise = (out - x).astype(np.float64)
    assert abs(noise.mean()) < 4 * 0.1 / np.sqrt(noise.size)
    assert abs(noise.std() - 0.1) < 0.002
    assert abs(np.corrcoef(noise.ravel()[:-1], noise.ravel()[1:])[0, 1]) < 0.02  # independent pixels
    clipped = data.GaussianNoise(std=1.0, clip=(0, 1), seed=0)(x)
    assert clipped.min() == 0 and clipped.max() == 1


def test_compose_order_and_shared_generator(batch):
    flip, noise = data.RandomHorizontalFlip(p=1.0), data.GaussianNoise(0.0)
    np.testing.assert_array_equal(data.Compose([flip, noise])(batch), batch[..., ::-1])
    # Compose's generator drives its members: same seed, same stream as calling them in turn.
    members = [data.RandomRotation(30), data.GaussianNoise(0.1)]
    via_compose = data.Compose(members, seed=9)(batch)
    g = np.random.default_rng(9)
    by_hand = members[1](members[0](batch, g), g)
    np.testing.assert_array_equal(via_compose, by_hand)


@pytest.mark.parametrize("x,error,message", [
    (np.zeros((2, 3, 4), np.float32), ValueError, r"use x\[None\]"),
    (np.zeros((2, 1, 3, 4), np.uint8), TypeError, "float32"),
    ([[[[0.0]]]], TypeError, "numpy.ndarray"),
])
def test_augment_bad_input(x, error, message):
    with pytest.raises(error, match=message):
        data.RandomHorizontalFlip()(x)
    with pytest.raises(error, match=message):
        augment.affine(x, angle=1)


def test_augment_bad_parameters():
    with pytest.raises(ValueError, match="p must be in"):
        data.GaussianNoise(p=1.5)
    with pytest.raises(ValueError, match="scale must be > 0"):
        data.RandomScale((0.0, 1.0))
    with pytest.raises(ValueError, match="min > max"):
        data.RandomRotation((10, -10))
    with pytest.raises(ValueError, match="max_shift"):
        data.RandomTranslate(-1)


def test_augmentation_in_a_loader_is_reproducible(batch):
    x = np.repeat(batch, 4, axis=0)
    y = np.arange(len(x))

    def run():
        loader = data.DataLoader(x, y, batch_size=5, shuffle=True, seed=1, transform=data.default_augmentation(seed=2))
        return np.concatenate([xb for xb, _ in loader])

    np.testing.assert_array_equal(run(), run())

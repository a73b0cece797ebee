"""IDX files: the format of MNIST and Fashion-MNIST, read and written, raw or gzip-compressed.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"), all integers big-endian:

    bytes 0-1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim (number of dimensions, >= 1)
    then        ndim sizes, one uint32 each (4 * ndim bytes)
    then        prod(sizes) items of the dtype, big-endian, C order (last index fastest)

The reader checks every part of this against the file: the magic number, the header
length, and that the data is exactly prod(sizes) * itemsize bytes long — a truncated
download or trailing garbage is a ``ValueError`` that names the file and says what is
wrong, never a silently short or misshaped array. A gzip stream is recognised by its own
magic number (1f 8b), whatever the file is called, so a ``.gz`` that a browser already
unpacked still reads.

There is no torch equivalent; ``torchvision.datasets.mnist.read_sn3_pascalvincent_tensor``
is the closest.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

# dtype code -> big-endian numpy dtype, as the format defines them.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# numpy kind+size -> dtype code, for the writer (byte order is ignored: the writer converts).
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path) -> bool:
    """True when the file starts with the gzip magic number (the extension is not trusted)."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _read_exact(f: BinaryIO, n: int) -> bytes:
    """Reads up to n bytes (fewer only at the end of the stream).

    Reads in chunks of at most 16 MiB: gzip reads may return short, and a corrupt header that
    promises terabytes must not make us allocate them before the stream runs out.
    """
    chunks, got = [], 0
    while got < n:
        chunk = f.read(min(n - got, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_idx(path) -> np.ndarray:
    """Reads an IDX file (raw or gzip) into a native-byte-order, writable NumPy array.

    Args:
        path: file name (str or os.PathLike). Gzip is detected from the file's first two
            bytes, not from its name.

    Returns:
        An array of the stored dtype (uint8, int8, int16, int32, float32 or float64) and the
        stored shape, e.g. (60000, 28, 28) uint8 for MNIST training images.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad magic number (non-zero first bytes, unknown dtype code, ndim 0), a
            header or data section shorter than the header promises (truncated file), extra
            bytes after the data (trailing garbage), or a corrupt/truncated gzip stream. The
            message names the file.
    """
    path = os.fspath(path)
    compressed = _is_gzip(path)
    what = "gzip-compressed IDX file" if compressed else "IDX file"
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            magic = _read_exact(f, 4)
            if len(magic) < 4:
                raise ValueError(
                    f"{path}: {what} is too short for an IDX header ({len(magic)} bytes, need at least 4)"
                )
            if magic[0] != 0 or magic[1] != 0:
                raise ValueError(
                    f"{path}: not an IDX file: the magic number must start with two zero bytes, "
                    f"got {magic.hex(' ')}"
                )
            code, ndim = magic[2], magic[3]
            if code not in IDX_DTYPES:
                known = ", ".join(f"0x{c:02X} {IDX_DTYPES[c].name}" for c in IDX_DTYPES)
                raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02X} in the magic number (known: {known})")
            if ndim == 0:
                raise ValueError(f"{path}: the IDX magic number says 0 dimensions; expected at least 1")
            dims_bytes = _read_exact(f, 4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise ValueError(
                    f"{path}: truncated {what}: the header declares {ndim} dimensions "
                    f"({4 * ndim} bytes of sizes) but only {len(dims_bytes)} bytes follow the magic number"
                )
            shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
            dtype = IDX_DTYPES[code]
            count = 1
            for d in shape:
                count *= d
            nbytes = count * dtype.itemsize
            # Read one byte more than needed so trailing garbage is seen without reading it all.
            data = _read_exact(f, nbytes + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({e})") from e
    header = 4 + 4 * ndim
    if len(data) < nbytes:
        raise ValueError(
            f"{path}: truncated {what}: the header says shape {shape} of {dtype.name} "
            f"= {nbytes} data bytes ({header + nbytes} bytes in all), but only {len(data)} data bytes are present"
        )
    if len(data) > nbytes:
        # Count what is left for the message (bounded by the file itself).
        extra = len(data) - nbytes
        if compressed:
            with gzip.open(path, "rb") as f:
                f.seek(header + nbytes + extra)
                while chunk := f.read(1 << 20):
                    extra += len(chunk)
        else:
            extra = os.path.getsize(path) - header - nbytes
        raise ValueError(
            f"{path}: {extra} bytes of trailing garbage after the data: the header says shape "
            f"{shape} of {dtype.name} = {header + nbytes} bytes in all"
        )
    # astype to native order also makes the array writable (frombuffer over bytes is not).
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array, compress: bool | None = None) -> None:
    """Writes an array as an IDX file; ``read_idx`` gives the same array back.

    Args:
        path: file name. Written to a temporary file in the same folder and then renamed, so
            a failure never leaves a half-written file under this name.
        array: array-like of dtype uint8, int8, int16, int32, float32 or float64, at least 1-D,
            every dimension < 2**32. Other dtypes are a TypeError (convert first, e.g. int64
            labels with ``.astype(np.uint8)``), so no value is silently truncated.
        compress: gzip the file; None (default) compresses when the name ends in ".gz".
    """
    path = os.fspath(path)
    a = np.asarray(array)
    code = _CODE_OF.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        names = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise TypeError(f"write_idx: dtype {a.dtype} has no IDX code; supported dtypes are {names}")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"write_idx: the array must have 1 to 255 dimensions, got {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"write_idx: every dimension must be < 2**32, got shape {a.shape}")
    if compress is None:
        compress = path.endswith(".gz")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes()
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as raw:
            if compress:
                # mtime=0 and no file name in the gzip header: the same array gives the same bytes.
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                    f.write(header)
                    f.write(body)
            else:
                raw.write(header)
                raw.write(body)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

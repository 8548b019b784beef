"""Read and write IDX files, the format of MNIST and its relatives.

An IDX file is a header (magic ``0x00 0x00 <type code> <ndims>``, then ``ndims`` big-endian
uint32 dimensions) followed by the array in C order, big-endian. Files may be gzip-compressed;
compression is detected from the first two bytes (``1f 8b``), not from the file name.

    X, y = load_idx("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
"""

from __future__ import annotations

import gzip as _gzip
import math
import os
import struct
import zlib

import numpy as np

from .._checks import IsADirectoryPathError, as_path, check_dtype, check_finite, describe
from .._io import atomic_write_bytes

__all__ = ["load_idx", "read_idx", "save_idx"]

# IDX type code -> big-endian dtype of the payload.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read(path, name: str) -> np.ndarray:
    """Parse one IDX file; errors name the argument ``name`` and the path."""
    path = as_path(path, name)
    where = f"{name} {path!r}"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryPathError(f"{where}: is a directory, expected an IDX file")
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = _gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{where}: corrupt gzip stream ({exc})") from None

    if len(data) < 4:
        raise ValueError(f"{where}: {len(data)} byte(s), too short for an IDX header (4 bytes)")
    zero0, zero1, code, ndims = data[:4]
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(
            f"{where}: not an IDX file: magic number 0x{data[:4].hex().upper()}; expected "
            f"0x0000TTDD with TT a type code in ({codes}) and DD the number of dimensions"
        )
    header = 4 + 4 * ndims
    if len(data) < header:
        raise ValueError(
            f"{where}: truncated header: {len(data)} bytes, expected {header} for {ndims} dimensions"
        )
    dims = struct.unpack(f">{ndims}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated payload" if got < expected else "trailing data after payload"
        raise ValueError(
            f"{where}: {kind}: {got} bytes after the header, expected "
            f"prod{tuple(dims)} * {dtype.itemsize} = {expected} for dtype {dtype.newbyteorder('=')}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """The array stored in one IDX file (plain or gzip), in native byte order."""
    return _read(path, "path")


def load_idx(images_path, labels_path=None, *, dtype=np.float32):
    """Load an MNIST-format pair of IDX files: ``X, y = load_idx(images_path, labels_path)``.

    ``images_path`` must hold a 3-D array (N, H, W); ``X`` is returned as ``dtype`` (float32 or
    float64) shaped (N, 1, H, W), divided by 255 when the file stores unsigned bytes (so MNIST
    lands in [0, 1]) and left unscaled otherwise. ``labels_path`` must hold a 1-D integer array
    of N labels; ``y`` is int64, or None when ``labels_path`` is None.
    """
    dt = check_dtype(dtype)
    images = _read(images_path, "images_path")
    ipath = as_path(images_path, "images_path")
    if images.ndim != 3:
        raise ValueError(
            f"images_path {ipath!r}: expected a 3-D IDX array (N, H, W), got {images.ndim}-D "
            f"with dims {images.shape}"
        )
    if 0 in images.shape[1:]:
        raise ValueError(f"images_path {ipath!r}: images of {images.shape[1]}x{images.shape[2]} sites; "
                         f"expected at least 1x1")
    check_finite(images, f"images_path {ipath!r}")
    if images.dtype == np.uint8:
        X = images.astype(dt) / dt.type(255)
    else:
        X = images.astype(dt)
    X = X.reshape(images.shape[0], 1, *images.shape[1:])
    if labels_path is None:
        return X, None

    labels = _read(labels_path, "labels_path")
    lpath = as_path(labels_path, "labels_path")
    if labels.ndim != 1:
        raise ValueError(
            f"labels_path {lpath!r}: expected a 1-D IDX array (N,), got {labels.ndim}-D "
            f"with dims {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels_path {lpath!r}: expected integer labels, got dtype {labels.dtype}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels_path {lpath!r}: {labels.shape[0]} labels, but images_path {ipath!r} holds "
            f"{images.shape[0]} images; expected one label per image"
        )
    return X, labels.astype(np.int64)


def save_idx(path, array, gzip: bool = False) -> None:
    """Write ``array`` to ``path`` as an IDX file (gzip-compressed if ``gzip``), atomically.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (convert others with
    ``.astype``). The file is written to a temporary name in the same folder and then renamed,
    so a reader never sees a half-written file.
    """
    path = as_path(path, "path")
    if not isinstance(gzip, (bool, np.bool_)):
        raise TypeError(f"gzip: expected a bool, got {describe(gzip)}")
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array: expected a numpy array, got {describe(array)}")
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        names = ", ".join(str(dt.newbyteorder("=")) for dt in IDX_DTYPES.values())
        raise TypeError(
            f"array: IDX cannot store dtype {array.dtype}; expected one of {names} "
            f"(convert with array.astype(...))"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array: expected 1 to 255 dimensions, got shape {array.shape}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"array: every dimension must be < 2**32, got shape {array.shape}")
    check_finite(array, "array")

    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if gzip:
        payload = _gzip.compress(payload, mtime=0)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryPathError(f"path {path!r}: is a directory, expected a file name")
    atomic_write_bytes(path, payload, make_dirs=False)

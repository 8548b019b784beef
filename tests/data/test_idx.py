"""IDX (MNIST format) reading and writing."""

import gzip
import os
import struct

import numpy as np
import pytest

from hamiltonian_cnn.data import load_idx, read_idx, save_idx


def mnist_bytes(images=None, labels=None):
    """IDX bytes built by hand, independently of save_idx."""
    if images is not None:
        n, h, w = images.shape
        return struct.pack(">4B3I", 0, 0, 0x08, 3, n, h, w) + images.astype(np.uint8).tobytes()
    return struct.pack(">4BI", 0, 0, 0x08, 1, len(labels)) + labels.astype(np.uint8).tobytes()


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    return images, labels


def write(path, data):
    path.write_bytes(data)
    return str(path)


def test_handmade_mnist_file_plain_and_gzip(tmp_path, pair):
    images, labels = pair
    for opener in (lambda b: b, gzip.compress):
        ip = write(tmp_path / "imgs", opener(mnist_bytes(images=images)))
        lp = write(tmp_path / "labs", opener(mnist_bytes(labels=labels)))
        X, y = load_idx(ip, lp)
        assert X.shape == (7, 1, 5, 4) and X.dtype == np.float32
        assert y.dtype == np.int64 and np.array_equal(y, labels)
        assert np.allclose(X[:, 0] * 255, images, atol=1e-4)
        assert X.min() == 0.0 and X.max() == 1.0


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_pair(tmp_path, pair, compress):
    images, labels = pair
    ip, lp = tmp_path / "i.idx", tmp_path / "l.idx"
    save_idx(ip, images, gzip=compress)
    save_idx(lp, labels, gzip=compress)
    assert (ip.read_bytes()[:2] == b"\x1f\x8b") == compress
    X, y = load_idx(ip, lp, dtype=np.float64)
    assert X.dtype == np.float64
    assert np.array_equal(np.round(X[:, 0] * 255).astype(np.uint8), images)
    assert np.array_equal(y, labels)
    X_only, y_none = load_idx(ip)
    assert y_none is None and X_only.shape == X.shape


def test_save_idx_matches_handmade_bytes(tmp_path, pair):
    images, labels = pair
    save_idx(tmp_path / "i", images)
    save_idx(tmp_path / "l", labels)
    assert (tmp_path / "i").read_bytes() == mnist_bytes(images=images)
    assert (tmp_path / "l").read_bytes() == mnist_bytes(labels=labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type_code(tmp_path, dtype, compress):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    rng = np.random.default_rng(1)
    arr = rng.uniform(-1, 1, size=(3, 2, 4)) * min(float(info.max), 1e6)
    if np.dtype(dtype).kind == "u":
        arr = np.abs(arr)
    arr = arr.astype(dtype)
    arr.flat[0] = info.max  # extreme value survives the byte-order conversion
    path = tmp_path / "a.idx"
    save_idx(path, arr, gzip=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert np.array_equal(back, arr)


def test_gzip_detected_by_magic_not_extension(tmp_path, pair):
    images, labels = pair
    plain_named_gz = tmp_path / "images.gz"
    gz_named_plain = tmp_path / "labels.idx"
    save_idx(plain_named_gz, images, gzip=False)
    save_idx(gz_named_plain, labels, gzip=True)
    X, y = load_idx(plain_named_gz, gz_named_plain)
    assert np.array_equal(y, labels) and X.shape == (7, 1, 5, 4)


def test_non_ubyte_images_are_not_scaled(tmp_path):
    images = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    save_idx(tmp_path / "i", images)
    X, _ = load_idx(tmp_path / "i")
    assert np.array_equal(X[:, 0], images.astype(np.float32))


def test_missing_file_names_path(tmp_path, pair):
    images, _ = pair
    save_idx(tmp_path / "i", images)
    missing = str(tmp_path / "nope-images")
    with pytest.raises(FileNotFoundError) as info:
        load_idx(missing)
    assert "images_path" in str(info.value) and missing in str(info.value)
    missing = str(tmp_path / "nope-labels")
    with pytest.raises(FileNotFoundError) as info:
        load_idx(tmp_path / "i", missing)
    assert "labels_path" in str(info.value) and missing in str(info.value)


def test_corrupted_magic(tmp_path, pair):
    images, _ = pair
    good = mnist_bytes(images=images)
    for bad_magic in (b"\x01\x00\x08\x03", b"\x00\x00\x07\x03"):
        path = write(tmp_path / "bad", bad_magic + good[4:])
        with pytest.raises(ValueError) as info:
            load_idx(path)
        msg = str(info.value)
        assert "images_path" in msg and path in msg
        assert bad_magic.hex().upper() in msg  # what was found
        assert "0x0000TTDD" in msg  # what was expected


def test_truncated_and_trailing_payload(tmp_path, pair):
    images, labels = pair
    good = mnist_bytes(labels=labels)
    for data, word in ((good[:-1], "truncated"), (good + b"\x00", "trailing")):
        for opener in (lambda b: b, gzip.compress):
            lp = write(tmp_path / "l", opener(data))
            with pytest.raises(ValueError) as info:
                read_idx(lp)
            msg = str(info.value)
            assert word in msg and lp in msg and "path" in msg
            assert f"= {len(labels)}" in msg  # the expected payload size
    short_header = write(tmp_path / "h", good[:6])
    with pytest.raises(ValueError, match="truncated header"):
        read_idx(short_header)
    with pytest.raises(ValueError, match="too short"):
        read_idx(write(tmp_path / "e", b""))


def test_corrupt_gzip_stream(tmp_path, pair):
    images, _ = pair
    data = gzip.compress(mnist_bytes(images=images))
    path = write(tmp_path / "g", data[: len(data) // 2])
    with pytest.raises(ValueError) as info:
        load_idx(path)
    assert "gzip" in str(info.value) and path in str(info.value)


def test_label_count_mismatch(tmp_path, pair):
    images, labels = pair
    ip = write(tmp_path / "i", mnist_bytes(images=images))
    lp = write(tmp_path / "l", mnist_bytes(labels=labels[:-1]))
    with pytest.raises(ValueError) as info:
        load_idx(ip, lp)
    msg = str(info.value)
    assert "labels_path" in msg and lp in msg and ip in msg and "6 labels" in msg and "7 images" in msg


def test_wrong_ranks_and_label_dtype(tmp_path, pair):
    images, labels = pair
    ip = write(tmp_path / "i", mnist_bytes(images=images))
    lp = write(tmp_path / "l", mnist_bytes(labels=labels))
    with pytest.raises(ValueError) as info:
        load_idx(lp, lp)  # labels given as images: 1-D
    assert "images_path" in str(info.value) and "3-D" in str(info.value)
    with pytest.raises(ValueError) as info:
        load_idx(ip, ip)  # images given as labels: 3-D
    assert "labels_path" in str(info.value) and "1-D" in str(info.value)
    save_idx(tmp_path / "f", labels.astype(np.float32))
    with pytest.raises(ValueError) as info:
        load_idx(ip, tmp_path / "f")
    assert "labels_path" in str(info.value) and "float32" in str(info.value)


def test_non_finite_float_images_refused(tmp_path):
    images = np.zeros((2, 2, 2), dtype=np.float32)
    raw = struct.pack(">4B3I", 0, 0, 0x0D, 3, 2, 2, 2) + images.astype(">f4").tobytes()
    raw = raw[:-4] + struct.pack(">f", np.nan)
    path = write(tmp_path / "nan", raw)
    with pytest.raises(ValueError) as info:
        load_idx(path)
    assert "images_path" in str(info.value) and "NaN" in str(info.value)


def test_bad_argument_types(tmp_path):
    with pytest.raises(TypeError, match="images_path"):
        load_idx(3)
    with pytest.raises(TypeError, match="dtype"):
        load_idx(tmp_path / "x", dtype=np.int64)


def test_save_idx_refuses_bad_arrays(tmp_path):
    path = tmp_path / "x"
    with pytest.raises(TypeError) as info:
        save_idx(path, np.arange(3))  # int64 has no IDX type code
    assert "array" in str(info.value) and "int64" in str(info.value) and "uint8" in str(info.value)
    with pytest.raises(TypeError, match="array"):
        save_idx(path, [1, 2, 3])
    with pytest.raises(ValueError, match="array"):
        save_idx(path, np.array(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        save_idx(path, np.array([1.0, np.inf]))
    with pytest.raises(TypeError, match="gzip"):
        save_idx(path, np.zeros(2, np.uint8), gzip="yes")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_idx(tmp_path / "no" / "x", np.zeros(2, np.uint8))
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_save_idx_is_atomic_and_respects_umask(tmp_path):
    path = tmp_path / "x.idx"
    save_idx(path, np.zeros(4, np.uint8))
    save_idx(path, np.ones(5, np.uint8), gzip=True)  # replaces the old file
    assert np.array_equal(read_idx(path), np.ones(5, np.uint8))
    assert os.listdir(tmp_path) == ["x.idx"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask

"""Fuzz hc.data: load, load_idx / read_idx on missing and corrupt files, save_idx, shift, shuffle_sites, cat_info."""

import gzip

import numpy as np
import pytest
from fuzz_harness import ERRORS, bad_arrays, expect_error, expect_same, odd_layouts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hamiltonian_cnn import data

LOAD = [
    (("mnist",), {}, "name"), ((3,), {}, "name"), ((None,), {}, "name"), (("Digits",), {}, "name"),
    (("digits",), {"foo": 1}, "load('digits')"), (("cat",), {"size": 0}, "size"), (("cat",), {"size": 2}, "template"),
    (("cat",), {"size": (4, 4, 4)}, "size"), (("cat",), {"size": "8"}, "size"), (("cat",), {"n_train": -1}, "n_train"),
    (("cat",), {"n_test": 1.5}, "n_test"), (("cat",), {"noise": float("nan")}, "noise"),
    (("cat",), {"noise": -1.0}, "noise"), (("cat",), {"noise": "high"}, "noise"), (("cat",), {"task": "where"}, "task"),
    (("cat",), {"template": "abc"}, "template"), (("cat",), {"template": np.array([[None]])}, "template"),
    (("cat",), {"template": np.ones((2, 2, 2))}, "template"),
    (("cat",), {"template": np.ones((2, 2), complex)}, "template"),
    (("cat",), {"template": np.full((2, 2), np.nan)}, "template"),
    (("cat",), {"template": np.zeros((2, 2))}, "template"),
    (("cat",), {"template": [[1], [1, 2]]}, "template"), (("cat",), {"template": np.ones((0, 3))}, "template"),
    (("cat",), {"seed": -1}, "seed"), (("cat",), {"seed": 2**32}, "seed"), (("cat",), {"dtype": np.int8}, "dtype"),
    (("digits",), {"test_size": 0}, "test_size"), (("digits",), {"test_size": 2.0}, "test_size"),
    (("digits",), {"test_size": float("nan")}, "test_size"), (("digits",), {"test_size": "0.2"}, "test_size"),
    (("digits",), {"seed": 1.5}, "seed"), (("digits",), {"dtype": "float16"}, "dtype"),
]


@settings(max_examples=len(LOAD) * 2)
@given(case=st.sampled_from(LOAD))
def test_load_rejects_bad_arguments(case):
    args, kwargs, name = case
    expect_error("data load", lambda: data.load(*args, **kwargs), (name,))


@settings(max_examples=40)
@given(size=st.sampled_from([0, -1, (4, 4, 4), "8", None, 1.5, (3,)]),
       template=st.sampled_from([None, [[1], [1, 2]], np.zeros((2, 2)), np.ones((9, 9))]))
def test_cat_info_rejects_bad_arguments(size, template):
    names = ("size", "template")
    expect_error("data cat_info", lambda: data.cat_info(size, template), names)


@pytest.fixture(scope="module")
def idx_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    data.save_idx(folder / "images", images)
    data.save_idx(folder / "labels.gz", labels, gzip=True)
    return folder, (folder / "images").read_bytes(), (folder / "labels.gz").read_bytes()


def _load_or_error(group, images_path, labels_path):
    """Corrupt bytes raise naming the file's argument; bytes that happen to form a valid pair load."""
    try:
        X, y = data.load_idx(images_path, labels_path)
    except ERRORS as exc:
        return expect_error(group, lambda exc=exc: (_ for _ in ()).throw(exc), ("images_path", "labels_path"))
    expect_same(group, lambda: (X.ndim, y is None or len(y) == len(X), bool(np.all(np.isfinite(X)))), (4, True, True))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data_=st.data())
def test_load_idx_refuses_corrupt_files(idx_files, data_):
    folder, images, labels = idx_files
    which = data_.draw(st.sampled_from(["images", "labels"]))
    raw = images if which == "images" else labels
    kind = data_.draw(st.sampled_from(["truncate", "flip", "junk", "header"]))
    if kind == "truncate":
        blob = raw[:data_.draw(st.integers(0, len(raw) - 1))]
    elif kind == "flip":
        blob = bytearray(raw)
        for _ in range(data_.draw(st.integers(1, 3))):
            blob[data_.draw(st.integers(0, len(raw) - 1))] ^= data_.draw(st.integers(1, 255))
        blob = bytes(blob)
    elif kind == "junk":
        blob = data_.draw(st.binary(max_size=200))
        if data_.draw(st.booleans()):
            blob = gzip.compress(blob)
    else:  # a valid magic number with random dimensions (some absurdly large)
        code = data_.draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0A, 0xFF]))
        ndims = data_.draw(st.integers(0, 4))
        dims = [data_.draw(st.integers(0, 2**32 - 1)) for _ in range(ndims)]
        blob = bytes([0, 0, code, ndims]) + b"".join(d.to_bytes(4, "big") for d in dims)
        blob += data_.draw(st.binary(max_size=64))
    target = folder / f"corrupt-{which}"
    target.write_bytes(blob)
    if which == "images":
        _load_or_error(f"load_idx: corrupt {kind}", target, folder / "labels.gz")
    else:
        _load_or_error(f"load_idx: corrupt {kind}", folder / "images", target)


def test_load_idx_refuses_missing_files_and_bad_paths(idx_files):
    folder, _, _ = idx_files
    expect_error("load_idx: missing", lambda: data.load_idx(folder / "nope", None), ("images_path",),
                 (FileNotFoundError,))
    expect_error("load_idx: missing", lambda: data.load_idx(folder / "images", folder / "nope"), ("labels_path",),
                 (FileNotFoundError,))
    expect_error("load_idx: missing", lambda: data.read_idx(folder / "nope"), ("path",), (FileNotFoundError,))
    for bad in (3, None, "", ["images"]):
        expect_error("load_idx: path", lambda: data.load_idx(bad, None), ("images_path",))
    expect_error("load_idx: path", lambda: data.load_idx(folder / "images", 3), ("labels_path",))
    exc = expect_error("load_idx: directory", lambda: data.load_idx(folder, None), ("images_path",))
    assert isinstance(exc, IsADirectoryError)  # an OSError as open() would raise, and a ValueError
    expect_error("load_idx: dtype", lambda: data.load_idx(folder / "images", None, dtype=np.int8), ("dtype",))


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), seed=st.integers(0, 99), gz=st.booleans())
def test_save_idx_rejects_bad_arrays_and_paths_and_accepts_odd_layouts(tmp_path, pick, seed, gz):
    rng = np.random.default_rng(seed)
    array = rng.normal(size=(3, 4)).astype(np.float32)
    target = tmp_path / "out.idx"
    bad = [array.astype(np.int64), array.astype(np.complex64), array.astype(object), array.astype(str),
           array > 0, np.float32(1.0), np.array(1.0, np.float32), array.tolist(), None,
           np.where(array > 0, np.nan, array), np.full_like(array, np.inf)][pick % 11]
    expect_error("save_idx: bad array", lambda: data.save_idx(target, bad, gzip=gz), ("array",))
    bad_path = [3, None, "", tmp_path / "missing" / "out.idx", tmp_path][pick % 5]
    expect_error("save_idx: bad path", lambda: data.save_idx(bad_path, array, gzip=gz), ("path",))
    expect_error("save_idx: bad gzip", lambda: data.save_idx(target, array, gzip=[1, "yes", None][pick % 3]), ("gzip",))
    for odd in odd_layouts(array[None]).values():
        def roundtrip(odd=odd):
            data.save_idx(target, odd[0], gzip=gz)
            return data.read_idx(target)
        expect_same("save_idx: odd layout", roundtrip, array)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left over


@settings(max_examples=100)
@given(transform=st.sampled_from(["shift", "shuffle_sites"]), pick=st.integers(0, 10**6), seed=st.integers(0, 99),
       ndim=st.sampled_from([3, 4]))
def test_transforms_reject_bad_arguments_and_accept_odd_layouts(transform, pick, seed, ndim):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, 2, 5) if ndim == 3 else (2, 1, 4, 5))
    if transform == "shift":
        def fn(X_, **kw):
            return data.shift(X_, **{"dx": 1, "dy": 0, **kw})
        arg_cases = [({"dx": 1.0}, "dx"), ({"dx": "1"}, "dx"), ({"dx": None}, "dx"), ({"dy": 1.5}, "dy"),
                     ({"dx": True}, "dx")] + ([({"dy": 1}, "dy")] if ndim == 3 else [])
    else:
        def fn(X_, **kw):
            return data.shuffle_sites(X_, **{"seed": 3, **kw})
        arg_cases = [({"seed": -1}, "seed"), ({"seed": None}, "seed"), ({"seed": 1.5}, "seed"),
                     ({"seed": 2**32}, "seed"), ({"inverse": 1}, "inverse"), ({"inverse": "yes"}, "inverse")]
    reference = fn(X.copy())
    # pure numpy: any real dtype is kept, long double too
    cases = [c for c in bad_arrays(X, rng) if c[0] not in ("bool", "longdouble")] + [
        ("bool", X > 0, (TypeError,)), ("rank", X[0, 0], (ValueError,)), ("rank", X[None, None], (ValueError,)),
        ("list", X.tolist(), (TypeError,)), ("zero sites", X[..., :0], (ValueError,))]
    _, bad, types = cases[pick % len(cases)]
    expect_error(f"{transform}: bad X", lambda: fn(bad), ("X",), types)
    kwargs, name = arg_cases[pick % len(arg_cases)]
    expect_error(f"{transform}: bad argument", lambda: fn(X, **kwargs), (name,))
    for odd in odd_layouts(X).values():
        expect_same(f"{transform}: odd layout", lambda: fn(odd), reference)


def test_site_permutation_rejects_bad_arguments():
    for shape in (0, (0,), (3, -1), "33", None, (), 1.5):
        expect_error("site_permutation", lambda: data.site_permutation(shape, 0), ("sites_shape",))
    for seed in (-1, 1.5, None, "0"):
        expect_error("site_permutation", lambda: data.site_permutation((3, 3), seed), ("seed",))

"""The register-blocked micro-kernels (kernels/tiles.py) and their vectors (kernels/simd.py)
against plain numpy sums, and the direct path with Numba switched off (the plain-Python vectors)."""

import json
import os
import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import DTYPES, KERNEL_SETTINGS

from hamiltonian_cnn.kernels import simd, tiles

# both tile families on every machine: the kernels use the one for this CPU's register count
SHIFTED_ROWS = [tiles.shifted_rows_narrow, tiles.shifted_rows_wide]
OUTER_DOTS = [tiles.outer_dots_narrow, tiles.outer_dots_wide]


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@KERNEL_SETTINGS
@given(st.integers(1, 17), st.integers(0, 3), st.integers(1, 13), st.integers(0, 70), st.sampled_from(DTYPES),
       st.integers(0, 2**32 - 1), st.sampled_from(SHIFTED_ROWS))
def test_shifted_rows_is_a_sum_of_shifted_rows(n_rows, row0, n_taps, length, dtype, seed, shifted_rows):
    """out[r, q] = sum_t w[row0 + r, t] src[offs[t] + q]: every count of rows (tiles of 4, 2, 1),
    lengths with and without a partial tile, and rows outside ``length`` left alone."""
    rng = np.random.default_rng(seed)
    offs = rng.integers(0, 40, n_taps).astype(np.int64)
    src = rng.standard_normal(40 + length + simd.lanes(dtype) - 1).astype(dtype)  # the slack the last vector reads
    w = rng.standard_normal((row0 + n_rows + 1, n_taps + 2)).astype(dtype)[:, 1:n_taps + 1]
    out_full = rng.standard_normal((n_rows + 1, length + 3)).astype(dtype)
    before = out_full.copy()
    shifted_rows(src, w, row0, n_rows, offs, length, out_full[:, :length])
    shifted = np.stack([src[o:o + length] for o in offs])  # (taps, length)
    want = w[row0:row0 + n_rows] @ shifted if length else np.zeros((n_rows, 0), dtype)
    np.testing.assert_allclose(out_full[:n_rows, :length], want, **tolerance(dtype))
    np.testing.assert_array_equal(out_full[:, length:], before[:, length:])
    np.testing.assert_array_equal(out_full[n_rows:], before[n_rows:])


@KERNEL_SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 19), st.integers(0, 5),
       st.sampled_from(DTYPES), st.integers(0, 2**32 - 1), st.sampled_from(OUTER_DOTS))
def test_outer_dots_is_a_sum_of_outer_products(n_vecs, tap_groups, n_rows, run, gap, dtype, seed, outer_dots):
    """acc[t, o] = sum_i sum_q src[offs[t] + i row_stride + q] d[(i run + q) o_pad + o], for one to
    three vectors of channels (tiles of 2 vectors and of 1), taps in groups of 8."""
    rng = np.random.default_rng(seed)
    o_pad = n_vecs * simd.lanes(dtype)
    n_taps = 8 * tap_groups
    row_stride = run + gap
    offs = rng.integers(0, 30, n_taps).astype(np.int64)
    src = rng.standard_normal(30 + n_rows * row_stride).astype(dtype)
    d = rng.standard_normal(n_rows * run * o_pad).astype(dtype)
    acc = np.full((n_taps, o_pad), np.nan, dtype)
    outer_dots(src, row_stride, n_rows, run, offs, d, o_pad, acc)
    d3 = d.reshape(n_rows, run, o_pad)
    want = np.zeros((n_taps, o_pad))
    for t, o in enumerate(offs):
        for i in range(n_rows):
            want[t] += src[o + i * row_stride:o + i * row_stride + run].astype(np.float64) @ d3[i]
    np.testing.assert_allclose(acc, want, **tolerance(dtype))


def test_the_kernels_call_the_family_for_this_cpu():
    wide = simd.VECTOR_BYTES == 64
    assert tiles.shifted_rows is (tiles.shifted_rows_wide if wide else tiles.shifted_rows_narrow)
    assert tiles.outer_dots is (tiles.outer_dots_wide if wide else tiles.outer_dots_narrow)
    assert tiles.TILE_ROWS == (8 if wide else 4)


def test_plain_python_vectors():
    """The NUMBA_DISABLE_JIT versions of the vector operations do what the intrinsics do."""
    for dtype in DTYPES:
        n = simd.lanes(dtype)
        assert n == simd.VECTOR_BYTES // np.dtype(dtype).itemsize and simd.VECTOR_BYTES in (32, 64)
        a = np.arange(2 * n + 3, dtype=dtype)
        v = simd._py_vload(a, 3)
        np.testing.assert_array_equal(v, a[3:3 + n])
        np.testing.assert_array_equal(simd._py_vsplat(dtype(2.5)), np.full(n, 2.5, dtype))
        np.testing.assert_array_equal(simd._py_vsplat_at(a, 4), np.full(n, 4, dtype))
        np.testing.assert_array_equal(simd._py_vfma(v, v, v), v * v + v)
        simd._py_vstore(a, 0, -v)
        np.testing.assert_array_equal(a[:n], -np.arange(3, 3 + n, dtype=dtype))
        src, dst = np.arange(n * (n + 2) + 1, dtype=dtype), np.zeros(n * (n + 3) + 2, dtype)
        simd._py_vtranspose(src, 1, n + 2, dst, 2, n + 3)
        np.testing.assert_array_equal(dst[2:2 + n * (n + 3)].reshape(n, n + 3)[:, :n],
                                      src[1:1 + n * (n + 2)].reshape(n, n + 2)[:, :n].T)


def _without_avx512(features: str) -> str:
    """Numba's CPU features with AVX-512 switched off (what an AVX2-only machine compiles for)."""
    kept = [f for f in features.split(",") if f and not f[1:].startswith("avx512")]
    return ",".join(kept + ["-avx512f"])


def test_vector_width_follows_the_cpu_numba_compiles_for():
    """64-byte vectors only where Numba may use AVX-512 registers."""
    code = "from hamiltonian_cnn.kernels import simd; print(simd.VECTOR_BYTES)"
    for features, want in (("+avx,+avx2,+fma,-avx512f", "32"), ("+avx,+avx2,+fma,+avx512f", "64")):
        env = dict(os.environ, NUMBA_CPU_FEATURES=features)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == want


def test_direct_path_runs_without_numba():
    """With NUMBA_DISABLE_JIT=1 the direct kernels run as plain Python (the vectors become small
    numpy arrays) and give what the compiled kernels give, with this CPU's vectors and with
    32-byte ones (an AVX-512 machine compiling as an AVX2 one)."""
    from numba.core import codegen

    code = (
        "import json, numpy as np, hamiltonian_cnn as hc\n"
        "rng = np.random.default_rng(0)\n"
        "layer = hc.nn.SharedConv2d(3, 5, 3, padding=1, seed=0, dtype=np.float64)\n"
        "x = rng.standard_normal((3, 3, 5, 6))\n"
        "y = layer.forward(x)\n"
        "dx = layer.backward(np.cos(y))\n"
        "from hamiltonian_cnn.kernels.simd import VECTOR_BYTES\n"
        "print(VECTOR_BYTES, json.dumps([y.tolist(), dx.tolist(), layer.grads['J'].tolist(),"
        " layer.grads['b'].tolist()]))\n"
    )
    runs, widths = [], []
    narrow = {"NUMBA_CPU_FEATURES": _without_avx512(codegen.get_host_cpu_features())}
    for extra in ({"NUMBA_DISABLE_JIT": "1"}, {"NUMBA_DISABLE_JIT": "0"}, narrow):
        env = dict(os.environ, **extra)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        width, arrays = done.stdout.split(" ", 1)
        widths.append(int(width))
        runs.append([np.array(a) for a in json.loads(arrays)])
    assert widths[0] == widths[1] and widths[2] == 32
    for plain, compiled, narrow in zip(*runs):
        np.testing.assert_allclose(plain, compiled, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(narrow, compiled, rtol=1e-12, atol=1e-12)

"""Full coupling (one BLAS product + the fused activation epilogue, and the backward prologue)
against tests/reference.py."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import DTYPES, KERNEL_SETTINGS, assert_close, code, delta_for, random_array, ref

from hamiltonian_cnn.nn.full import full_backward, full_forward


@KERNEL_SETTINGS
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 12), st.sampled_from(ref.ACTIVATIONS),
       st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_full_forward_backward_match_reference(n, n_in, n_out, act, dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (n, n_in), dtype)
    w = random_array(rng, (n_out, n_in), dtype, scale=0.5)
    b = random_array(rng, (n_out,), dtype)
    h_ref = ref.full(x, w, b)
    y = full_forward(x, w, b, code(act))
    assert y.dtype == dtype
    assert_close(y, ref.activate(h_ref, act), dtype, "y")
    dy = random_array(rng, y.shape, dtype)
    dx, dw, db = full_backward(x, w, y, dy, code(act))
    assert dx.dtype == dtype and dw.dtype == dtype and db.dtype == dtype
    delta = delta_for(h_ref, y, dy, act)
    assert_close(dx, delta @ w.astype(np.float64), dtype, "dx")
    assert_close(dw, np.einsum("nk,nf->kf", delta, x.astype(np.float64)), dtype, "dJ")
    assert_close(db, delta.sum(axis=0), dtype, "db")

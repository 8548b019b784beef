"""Numerically stable activations as Numba scalar functions (fields up to |h| = 1e4 and beyond).

Codes used by the fused kernels: 0 none, 1 sigmoid, 2 tanh, 3 relu, 4 softplus.
The derivative of each activation is written in terms of its *output* y, so backward passes
only need the saved activation.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

NONE, SIGMOID, TANH, RELU, SOFTPLUS = 0, 1, 2, 3, 4

#: fast-math flags for loops that reduce (sums, dot products): reassociation lets LLVM vectorise
#: them; no "nnan"/"ninf", so NaN and Inf keep their IEEE meaning.
REASSOC = {"reassoc", "contract", "nsz"}

CODES = {None: NONE, "none": NONE, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "softplus": SOFTPLUS}


@njit(cache=True, inline="always")
def sigmoid(h):
    """1 / (1 + e^-h), without overflow for either sign."""
    if h >= 0:
        return 1.0 / (1.0 + math.exp(-h))
    e = math.exp(h)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def softplus(h):
    """log(1 + e^h) = max(h, 0) + log1p(e^-|h|)."""
    return max(h, 0.0) + math.log1p(math.exp(-abs(h)))


@njit(cache=True, inline="always")
def log_sigmoid(h):
    """log sigmoid(h) = -softplus(-h)."""
    return min(h, 0.0) - math.log1p(math.exp(-abs(h)))


@njit(cache=True, inline="always")
def log_2cosh(h):
    """log(2 cosh h) = |h| + log1p(e^{-2|h|})."""
    a = abs(h)
    return a + math.log1p(math.exp(-2.0 * a))


@njit(cache=True, inline="always")
def activate(h, code):
    """y = g(h) for the activation ``code``."""
    if code == SIGMOID:
        return sigmoid(h)
    if code == TANH:
        return math.tanh(h)
    if code == RELU:
        return h if h > 0.0 else 0.0
    if code == SOFTPLUS:
        return softplus(h)
    return h


@njit(cache=True, inline="always")
def derivative_from_output(y, code):
    """g'(h) expressed through y = g(h): sigmoid y(1-y), tanh 1-y^2, relu [y>0], softplus 1-e^{-y}."""
    if code == SIGMOID:
        return y * (1.0 - y)
    if code == TANH:
        return 1.0 - y * y
    if code == RELU:
        return 1.0 if y > 0.0 else 0.0
    if code == SOFTPLUS:
        return -math.expm1(-y)
    return 1.0


# A vectorisable exp for the sigmoid of the hot loops. LLVM cannot vectorise a call to libm's exp,
# so exp(x) for x <= 0 is written out (Cephes' expf / exp): x = k ln2 + r with |r| <= ln2 / 2, a
# polynomial (float32) or rational (float64) approximation of exp(r), and 2^k built from its bits.
# Accurate to ~2 ulp; 0 where exp(x) is below the smallest normal number (x < -87 or -708).


@intrinsic
def _bits_as_float(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32, of an int64 as a float64."""
    if bits == types.int32:
        target, sig = ir.FloatType(), types.float32(types.int32)
    elif bits == types.int64:
        target, sig = ir.DoubleType(), types.float64(types.int64)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], target)

    return sig, codegen


def exp_nonpositive(x):
    """exp(x) for x <= 0 (as plain Python: with NUMBA_DISABLE_JIT=1 the kernels call this)."""
    return math.exp(x)


@overload(exp_nonpositive)
def _exp_nonpositive(x):
    if x == types.float32:
        def exp32(x):
            k = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
            r = x - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            p = p * r * r + r + np.float32(1.0)
            scale = _bits_as_float(np.int32((k + np.float32(127.0)) * np.float32(8388608.0)))
            return p * scale if x >= np.float32(-87.0) else np.float32(0.0)
        return exp32
    if x == types.float64:
        def exp64(x):
            k = np.floor(x * 1.4426950408889634 + 0.5)
            r = x - k * 6.93145751953125e-1 - k * 1.42860682030941723212e-6
            rr = r * r
            p = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1)
            q = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                 + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0
            e = 1.0 + 2.0 * (p / (q - p))
            scale = _bits_as_float(np.int64((k + 1023.0) * 4503599627370496.0))
            return e * scale if x >= -708.0 else 0.0
        return exp64
    return None


# Array versions for the hot loops of the convolution kernels: one branch-free loop per activation
# (the activation test sits outside the loop, so LLVM can vectorise what it can), and constants
# of the array's own dtype (a float64 literal would turn float32 arithmetic into float64).


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def activate_inplace(a, code):
    """a[k] = g(a[k]) on a contiguous 1D array (the sigmoid vectorised: see exp_nonpositive; its
    polynomial's multiply-adds fused, which made it 1.6x faster)."""
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    if code == SIGMOID:
        for k in range(a.shape[0]):
            h = a[k]
            e = exp_nonpositive(-abs(h))  # in [0, 1]: no overflow for any h
            s = one / (one + e)
            a[k] = s if h >= zero else e * s
    elif code == TANH:
        for k in range(a.shape[0]):
            a[k] = math.tanh(a[k])
    elif code == RELU:
        for k in range(a.shape[0]):
            h = a[k]
            a[k] = h if h > zero else zero
    elif code == SOFTPLUS:
        for k in range(a.shape[0]):
            h = a[k]
            a[k] = max(h, zero) + math.log1p(math.exp(-abs(h)))


@njit(cache=True, fastmath=REASSOC, error_model="numpy")
def delta_from_output(y, dy, code, out):
    """out[k] = dy[k] g'(h_k) with g' read from the saved output y (1D arrays); returns sum(out)
    (summed in the arrays' dtype: callers pass one plane at a time and add the sums up in float64)."""
    one = y.dtype.type(1)
    zero = y.dtype.type(0)
    total = zero
    if code == SIGMOID:
        for k in range(y.shape[0]):
            v = dy[k] * (y[k] * (one - y[k]))
            out[k] = v
            total += v
    elif code == TANH:
        for k in range(y.shape[0]):
            v = dy[k] * (one - y[k] * y[k])
            out[k] = v
            total += v
    elif code == RELU:
        for k in range(y.shape[0]):
            v = dy[k] if y[k] > zero else zero
            out[k] = v
            total += v
    elif code == SOFTPLUS:
        for k in range(y.shape[0]):
            v = dy[k] * -math.expm1(-y[k])
            out[k] = v
            total += v
    else:
        for k in range(y.shape[0]):
            v = dy[k]
            out[k] = v
            total += v
    return total

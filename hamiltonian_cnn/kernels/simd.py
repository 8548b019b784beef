"""Short vectors in registers: the accumulators of the register-blocked micro-kernels.

LLVM vectorises a loop over an array, but it cannot keep a block of accumulators in registers
across a loop over taps when they live in an array (a store to it may alias the input), and it
does not assemble scalar accumulators into vectors reliably. So the micro-kernels (kernels/tiles.py)
use a vector type of their own: ``Vector`` is an LLVM ``<lanes x float>`` value of one machine
register, passed by value, so that a handful of them stay in registers for a whole loop: 64
bytes (16 float32 or 8 float64 lanes) where the CPU Numba compiles for has AVX-512, else 32
(one AVX register; CPUs without AVX split it into what they have).

    vload(a, i)        a[i : i + lanes] as a vector (a: 1D float array of unit stride; no bounds check)
    vstore(a, i, v)    a[i : i + lanes] = v
    vstore_first(a, i, v, n)   a[i : i + n] = v[:n], the first n lanes only (0 <= n <= lanes)
    vsplat(x)          every lane x (the vector type follows x's dtype)
    vsplat_at(a, i)    every lane a[i] (no bounds check)
    vfma(a, b, c)      a * b + c lane by lane (fused where the CPU has FMA)
    vtranspose(src, s_off, s_stride, dst, d_off, d_stride)
                       dst[d_off + k d_stride + r] = src[s_off + r s_stride + k] for r, k < lanes:
                       one lanes x lanes block transposed in registers (lanes row loads, log2(lanes)
                       rounds of two-source shuffles, lanes row stores)

With NUMBA_DISABLE_JIT=1 the same names run as plain Python on small numpy arrays, so the
kernels that use them still run (slowly) without compilation.
"""

import numpy as np
from llvmlite import ir
from numba import config, types
from numba.core import cgutils, codegen
from numba.extending import intrinsic, models, register_model


def _vector_bytes() -> int:
    """64 where the code Numba generates may use AVX-512 registers, else 32. The features are
    the ones Numba compiles for (NUMBA_CPU_FEATURES, else the host's); its cache keeps kernels
    per CPU, so a cached kernel always matches this width."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else codegen.get_host_cpu_features()
    return 64 if "+avx512f" in features.split(",") else 32


#: bytes in one vector (one AVX-512 or AVX register)
VECTOR_BYTES = _vector_bytes()


def lanes(dtype) -> int:
    """Lanes of one vector of this dtype (with AVX-512 16 for float32 and 8 for float64, else 8 and 4)."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


class Vector(types.Type):
    """A vector of ``lanes`` values of the float type ``dtype``, held in registers."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vector({dtype}, {self.lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _float_array(a) -> bool:
    return isinstance(a, types.Array) and a.ndim == 1 and a.dtype in (types.float32, types.float64)


def _element_pointer(context, builder, aryty, ary_value, index, vecty):
    """Pointer to a[index] as a pointer to the vector type. The lanes are the entries that follow
    a[index] in memory: the callers pass 1D arrays of unit stride (a row or slice of a
    C-contiguous array, which Numba may type as layout "A")."""
    ary = context.make_array(aryty)(context, builder, ary_value)
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [index])
    return builder.bitcast(ptr, ir.PointerType(vecty))


@intrinsic
def _vload(typingctx, a, i):
    if not _float_array(a) or not isinstance(i, types.Integer):
        return None
    vt = Vector(a.dtype)

    def codegen(context, builder, signature, args):
        vecty = context.get_value_type(vt)
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = _element_pointer(context, builder, signature.args[0], args[0], index, vecty)
        return builder.load(ptr, align=a.dtype.bitwidth // 8)

    return vt(a, i), codegen


@intrinsic
def _vstore(typingctx, a, i, v):
    if not _float_array(a) or not isinstance(i, types.Integer) or v != Vector(a.dtype):
        return None

    def codegen(context, builder, signature, args):
        vecty = context.get_value_type(v)
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = _element_pointer(context, builder, signature.args[0], args[0], index, vecty)
        builder.store(args[2], ptr, align=a.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(a, i, v), codegen


@intrinsic
def _vstore_first(typingctx, a, i, v, n):
    if (not _float_array(a) or not isinstance(i, types.Integer) or v != Vector(a.dtype)
            or not isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        element = context.get_value_type(a.dtype)
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        count = context.cast(builder, args[3], signature.args[3], types.intp)
        ptr = _element_pointer(context, builder, signature.args[0], args[0], index, element)
        with cgutils.for_range(builder, count) as loop:
            lane = builder.trunc(loop.index, ir.IntType(32))
            builder.store(builder.extract_element(args[2], lane), builder.gep(ptr, [loop.index]))
        return context.get_dummy_value()

    return types.none(a, i, v, n), codegen


def _splat(builder, value, vecty, n_lanes):
    one = builder.insert_element(ir.Constant(vecty, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vecty, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), n_lanes), [0] * n_lanes))


@intrinsic
def _vsplat(typingctx, x):
    if x not in (types.float32, types.float64):
        return None
    vt = Vector(x)

    def codegen(context, builder, signature, args):
        return _splat(builder, args[0], context.get_value_type(vt), vt.lanes)

    return vt(x), codegen


@intrinsic
def _vsplat_at(typingctx, a, i):
    if not _float_array(a) or not isinstance(i, types.Integer):
        return None
    vt = Vector(a.dtype)

    def codegen(context, builder, signature, args):
        element = context.get_value_type(a.dtype)
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = _element_pointer(context, builder, signature.args[0], args[0], index, element)
        return _splat(builder, builder.load(ptr), context.get_value_type(vt), vt.lanes)

    return vt(a, i), codegen


@intrinsic
def _vfma(typingctx, a, b, c):
    if not isinstance(a, Vector) or a != b or a != c:
        return None

    def codegen(context, builder, signature, args):
        vecty = context.get_value_type(a)
        name = f"llvm.fmuladd.v{a.lanes}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vecty, [vecty] * 3), name)
        return builder.call(fn, list(args))

    return a(a, b, c), codegen


def _butterfly_masks(n_lanes):
    """The shuffles that transpose an n x n block of rows (n a power of 2): in the round for bit h,
    rows r and r | h (r without h) trade the entries whose column has bit h set in one row and not
    in the other, which swaps bit h between row and column; after every round (r, c) -> (c, r)."""
    rounds, h = [], 1
    while h < n_lanes:
        low = [c if c & h == 0 else n_lanes + (c ^ h) for c in range(n_lanes)]
        high = [n_lanes + c if c & h else c ^ h for c in range(n_lanes)]
        rounds.append((h, low, high))
        h *= 2
    return rounds


@intrinsic
def _vtranspose(typingctx, src, s_off, s_stride, dst, d_off, d_stride):
    if (not _float_array(src) or not _float_array(dst) or src.dtype != dst.dtype
            or not all(isinstance(k, types.Integer) for k in (s_off, s_stride, d_off, d_stride))):
        return None
    vt = Vector(src.dtype)
    n_lanes = vt.lanes

    def codegen(context, builder, signature, args):
        vecty = context.get_value_type(vt)
        offs = [context.cast(builder, args[k], signature.args[k], types.intp) for k in (1, 2, 4, 5)]
        s_at, s_step, d_at, d_step = offs
        intp = s_at.type
        align = src.dtype.bitwidth // 8
        rows = []
        for r in range(n_lanes):
            index = builder.add(s_at, builder.mul(s_step, ir.Constant(intp, r)))
            rows.append(builder.load(_element_pointer(context, builder, signature.args[0], args[0], index, vecty),
                                     align=align))
        mask_type = ir.VectorType(ir.IntType(32), n_lanes)
        for h, low, high in _butterfly_masks(n_lanes):
            for r in range(n_lanes):
                if r & h:
                    continue
                a, b = rows[r], rows[r | h]
                rows[r] = builder.shuffle_vector(a, b, ir.Constant(mask_type, low))
                rows[r | h] = builder.shuffle_vector(a, b, ir.Constant(mask_type, high))
        for k in range(n_lanes):
            index = builder.add(d_at, builder.mul(d_step, ir.Constant(intp, k)))
            builder.store(rows[k], _element_pointer(context, builder, signature.args[3], args[3], index, vecty),
                          align=align)
        return context.get_dummy_value()

    return types.none(src, s_off, s_stride, dst, d_off, d_stride), codegen


# With NUMBA_DISABLE_JIT=1 the kernels run as Python and call these plain versions on small
# numpy arrays instead; compiled code calls the intrinsics directly (no overload layer to type).

def _py_vload(a, i):
    v = np.zeros(lanes(a.dtype), a.dtype)  # lanes past the end of ``a`` (garbage when compiled) read as 0
    part = a[i:i + v.shape[0]]
    v[:part.shape[0]] = part
    return v


def _py_vstore(a, i, v):
    a[i:i + v.shape[0]] = v


def _py_vstore_first(a, i, v, n):
    a[i:i + n] = v[:n]


def _py_vsplat(x):
    return np.full(lanes(type(x)), x)


def _py_vsplat_at(a, i):
    return np.full(lanes(a.dtype), a[i])


def _py_vfma(a, b, c):
    return a * b + c


def _py_vtranspose(src, s_off, s_stride, dst, d_off, d_stride):
    n = lanes(src.dtype)
    for r in range(n):
        for k in range(n):
            dst[d_off + k * d_stride + r] = src[s_off + r * s_stride + k]


if config.DISABLE_JIT:
    vload, vstore, vstore_first = _py_vload, _py_vstore, _py_vstore_first
    vsplat, vsplat_at, vfma, vtranspose = _py_vsplat, _py_vsplat_at, _py_vfma, _py_vtranspose
else:
    vload, vstore, vstore_first = _vload, _vstore, _vstore_first
    vsplat, vsplat_at, vfma, vtranspose = _vsplat, _vsplat_at, _vfma, _vtranspose

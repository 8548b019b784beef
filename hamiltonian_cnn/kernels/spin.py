"""Waiting without the GIL: poll a counter for a fraction of a millisecond before going to sleep.

Waking a sleeping thread costs tens of microseconds on a virtual machine (the idle core has to be
woken too), about what a small layer call takes. The layers' worker threads (nn.base.run_chunks)
therefore poll for their next piece of work, and the caller for their results, for a bounded time
before they block, as OpenMP runtimes do. Each poll is an atomic load (LLVM cannot hoist it out
of the loop) followed by the CPU's spin-wait hint (``pause`` on x86, ``yield`` on ARM), so that a
waiting thread leaves the execution units to a hyperthread sibling that is doing the work.
"""

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_MACHINE = platform.machine().lower()
_HINT = ("x86" if _MACHINE in ("x86_64", "amd64", "i386", "i686") else
         "arm" if _MACHINE in ("aarch64", "arm64") else "")


def _is_counters(counters) -> bool:
    return isinstance(counters, types.Array) and counters.dtype == types.int64 and counters.ndim == 1


def _counter_pointer(context, builder, signature, args):
    """Pointer to counters[index] for the intrinsics below (args[0] the array, args[1] the index)."""
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])


@intrinsic
def _load_acquire(typingctx, counters, index):
    """counters[index] read with acquire ordering (int64 1D array): re-read on every call."""
    if not _is_counters(counters):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_counter_pointer(context, builder, signature, args), "acquire", 8)

    return types.int64(counters, types.intp), codegen


@intrinsic
def _store_release(typingctx, counters, index, value):
    """counters[index] = value with release ordering (int64 1D array): visible after all earlier writes."""
    if not _is_counters(counters):
        return None

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, _counter_pointer(context, builder, signature, args), "release", 8)
        return context.get_dummy_value()

    return types.none(counters, types.intp, types.int64), codegen


@intrinsic
def _spin_hint(typingctx):
    """The CPU's spin-wait hint (nothing where none is known)."""

    def codegen(context, builder, signature, args):
        if _HINT == "x86":  # the PAUSE instruction
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        elif _HINT == "arm":  # HINT #1 = YIELD
            fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(32)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.aarch64.hint")
            builder.call(fn, [ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()

    return types.none(), codegen


@njit(cache=True, nogil=True)
def spin_until(counters, index, target, polls, mark, mark_index, mark_value, linger):
    """True once counters[index] >= target, False after ``polls`` reads without it (then block instead).
    Once the target is seen, ``linger`` more spin hints before returning (and taking the GIL back):
    a worker told to start while its caller still holds the GIL would otherwise block on it, and be
    woken tens of microseconds after the caller enters its kernel; a little later, the GIL is free.

    ``mark[mark_index] = mark_value`` first (``mark_index`` >= 0), written once the GIL is
    released: a thread that announces "done" this way lets the thread waiting for it take the
    GIL at once, instead of finding it still held (a blocked GIL hand-off costs tens of
    microseconds here)."""
    if mark_index >= 0:
        _store_release(mark, mark_index, mark_value)
    for _ in range(polls):
        if _load_acquire(counters, index) >= target:
            for _ in range(linger):
                _spin_hint()
            return True
        _spin_hint()
    return False

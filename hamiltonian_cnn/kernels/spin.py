"""Waiting without the GIL: poll a counter for a fraction of a millisecond before going to sleep.

Waking a sleeping thread costs tens of microseconds on a virtual machine (the idle core has to be
woken too), about what a small layer call takes. The layers' worker threads (nn.base.run_chunks)
therefore poll for their next piece of work, and the caller for their results, for a bounded time
before they block, as OpenMP runtimes do. Each poll is an atomic load (LLVM cannot hoist it out
of the loop) followed by the CPU's spin-wait hint (``pause`` on x86, ``yield`` on ARM), so that a
waiting thread leaves the execution units to a hyperthread sibling that is doing the work.
"""

import platform
import time

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_MACHINE = platform.machine().lower()
_HINT = ("x86" if _MACHINE in ("x86_64", "amd64", "i386", "i686") else
         "arm" if _MACHINE in ("aarch64", "arm64") else "")


@intrinsic
def _load_acquire(typingctx, counters, index):
    """counters[index] read with acquire ordering (int64 1D array): re-read on every call."""
    if not (isinstance(counters, types.Array) and counters.dtype == types.int64 and counters.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(counters, types.intp), codegen


@intrinsic
def _store_release(typingctx, counters, index, value):
    """counters[index] = value with release ordering (int64 1D array): visible after all earlier writes."""
    if not (isinstance(counters, types.Array) and counters.dtype == types.int64 and counters.ndim == 1):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        builder.store_atomic(context.cast(builder, args[2], signature.args[2], types.int64), ptr, "release", 8)
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
def _spin_until(counters, index, target, polls, mark, mark_index, mark_value):
    if mark_index >= 0:  # the mark is written once the GIL is released (see spin_until)
        _store_release(mark, mark_index, mark_value)
    for _ in range(polls):
        if _load_acquire(counters, index) >= target:
            return True
        _spin_hint()
    return False


def spin_until(counters, index: int, target: int, polls: int, mark=None, mark_index: int = -1,
               mark_value: int = 0) -> bool:
    """True once counters[index] >= target, False after ``polls`` reads without it (then block instead).

    ``mark[mark_index] = mark_value`` first, written after the GIL is released: a thread that
    announces "done" this way lets the thread waiting for it take the GIL at once, instead of
    finding it still held (a blocked GIL hand-off costs tens of microseconds here)."""
    if config.DISABLE_JIT:  # plain Python could not release the GIL: never poll
        if mark is not None and mark_index >= 0:
            mark[mark_index] = mark_value
        return counters[index] >= target
    return _spin_until(counters, index, target, polls, counters if mark is None else mark, mark_index, mark_value)


def polls_per_second() -> float:
    """How many polls (read + hint) this machine does per second, measured once (a few milliseconds)."""
    global _RATE
    if _RATE is None:
        counters = np.zeros(16, np.int64)[::8]  # strided, like the workers' padded counters: one compiled version
        spin_until(counters, 0, 1, 10)  # compile or load from the cache
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            spin_until(counters, 0, 1, 20_000)
            best = min(best, time.perf_counter() - start)
        _RATE = 20_000 / max(best, 1e-7)
    return _RATE


_RATE = None

"""Waiting without the GIL: poll a counter a few hundred microseconds before going to sleep.

Waking a sleeping thread costs tens of microseconds on a virtual machine (the idle core has to be
woken too), about what a small layer call takes. The layers' worker threads (nn.base.run_chunks)
therefore poll for their next piece of work, and the caller for their results, for a bounded time
before they block, as OpenMP runtimes do. The poll is an atomic load in a loop that LLVM cannot
hoist, in a function that releases the GIL.
"""

from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic


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


@njit(cache=True, nogil=True)
def _spin_until(counters, index, target, polls):
    for _ in range(polls):
        if _load_acquire(counters, index) >= target:
            return True
    return False


def spin_until(counters, index: int, target: int, polls: int) -> bool:
    """True once counters[index] >= target, False after ``polls`` reads without it (then block instead)."""
    if config.DISABLE_JIT:  # plain Python could not release the GIL: never poll
        return counters[index] >= target
    return _spin_until(counters, index, target, polls)

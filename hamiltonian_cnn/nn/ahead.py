"""Compile ahead: a second process compiles the backward kernels while this one runs the forward.

A cold first training step is mostly Numba compiling: the forward kernels, then the backward
ones, one after the other (Numba compiles one function at a time in a process). With two or more
cores, ``Model.fit`` or ``Model.loss_and_grad`` asks once, before the first forward, a helper process
(``python -m hamiltonian_cnn.nn._ahead_worker``) to compile the backward kernels its layers will call,
with the signatures they will call them with (``Layer.backward_kernels``). The helper writes them
to Numba's on-disk cache; when a layer's backward comes to a kernel the helper is compiling, it
waits for it and then loads it from the cache. A kernel the helper has not started yet is
compiled here as usual (the helper then finds it in the cache), and so is anything the helper
could not provide (it failed or is gone): what is computed never depends on the helper.

Off with HAMILTONIAN_CNN_COMPILE_AHEAD=0, and whenever it cannot pay: Numba's JIT disabled,
one core, a kernel without a usable cache, or every requested kernel already compiled or cached.

The helper and this process may save cache entries of the same function at the same time. Numba
numbers a function's entries in one index file, so that is safe only when both save the same
signature, which is why the kernels keep one signature per dtype for the callees they share.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import subprocess
import sys
import threading

ENV_SWITCH = "HAMILTONIAN_CNN_COMPILE_AHEAD"
WORKER = "hamiltonian_cnn.nn._ahead_worker"  # the helper's module (run with python -m)
_WORKER_ENV = "HAMILTONIAN_CNN_AHEAD_WORKER"

#: seconds a backward waits at most for the helper to finish the kernel it is compiling (one
#: kernel compiles in well under 20 s; past this the helper is taken to be stuck)
WAIT_LIMIT_S = 60.0


class _Helper:
    """One helper process, its job list, and what it has reported (a reader thread)."""

    def __init__(self, jobs):
        self.keys = [key for key, _ in jobs]
        self.pid = os.getpid()  # a forked child inherits this object, but not the helper's pipe or reader
        self.finished = False
        self.started = set()
        self.done = {}
        self.changed = threading.Condition()
        payload = pickle.dumps([(d.py_func.__module__, d.py_func.__name__, sig) for _, (d, sig) in jobs])
        env = dict(os.environ, **{_WORKER_ENV: "1"})
        self.process = subprocess.Popen([sys.executable, "-m", WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.process.stdin.write(payload)
        self.process.stdin.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for line in self.process.stdout:
                word, _, index = line.decode(errors="replace").strip().partition(" ")
                if word not in ("start", "done", "failed") or not index.isdigit() or int(index) >= len(self.keys):
                    continue  # not a report (nothing else should reach stdout)
                with self.changed:
                    key = self.keys[int(index)]
                    if word == "start":
                        self.started.add(key)
                    else:
                        self.done[key] = word == "done"
                    self.changed.notify_all()
            self.process.wait()
        finally:
            with self.changed:
                self.finished = True
                self.changed.notify_all()

    def wait(self, key) -> None:
        """Until the helper has finished ``key``, if it has started it (and is still there)."""
        with self.changed:
            self.changed.wait_for(lambda: self.finished or key in self.done or key not in self.started,
                                  timeout=WAIT_LIMIT_S)

    def active(self) -> bool:
        """Still running, and this process is the one that started it."""
        return not self.finished and self.pid == os.getpid()

    def stop(self):
        if self.pid == os.getpid() and self.process.poll() is None:
            self.process.kill()


_helper: _Helper | None = None
_requested: set = set()


def enabled() -> bool:
    """Whether compiling ahead can pay here (see the module docstring)."""
    from numba import config

    if os.environ.get(ENV_SWITCH, "1") == "0" or os.environ.get(_WORKER_ENV) or config.DISABLE_JIT:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


def _key(dispatcher, sig):
    return (dispatcher.py_func.__module__, dispatcher.py_func.__qualname__, sig)


def _ready(dispatcher, sig) -> bool | None:
    """True: compiled in this process or in the on-disk cache; False: neither; None: cannot tell
    (no cache, or a Numba whose cache internals differ): then nothing is sent to the helper."""
    if sig in dispatcher.overloads:
        return True
    try:
        cache = dispatcher._cache
        if not hasattr(cache, "_cache_file"):  # NullCache: cache=False, or no writable cache dir
            return None
        key = cache._index_key(sig, dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # pragma: no cover - Numba internals changed
        return None


def request(kernels) -> bool:
    """Start a helper compiling ``kernels`` ([(dispatcher, signature)], the longest first) that
    are neither compiled nor cached yet; returns whether one started. At most one helper at a time."""
    global _helper
    if not enabled() or pending():
        return False
    jobs, seen = [], set()
    for dispatcher, sig in kernels:
        key = _key(dispatcher, sig)
        if key in seen or key in _requested:
            continue
        seen.add(key)
        ready = _ready(dispatcher, sig)
        if ready is None:
            return False
        if not ready:
            jobs.append((key, (dispatcher, sig)))
    if not jobs:
        return False
    try:
        _helper = _Helper(jobs)
    except OSError:  # pragma: no cover - cannot start a process here, or it died at once (broken pipe)
        _helper = None
        return False
    _requested.update(key for key, _ in jobs)
    return True


def wait(kernels) -> None:
    """Before calling ``kernels``: wait for those the helper is compiling right now."""
    helper = _helper
    if helper is None or not helper.active():
        return
    for dispatcher, sig in kernels:
        key = _key(dispatcher, sig)
        if key in _requested and sig not in dispatcher.overloads:
            helper.wait(key)


def pending() -> bool:
    """Whether a helper is still running."""
    return _helper is not None and _helper.active()


@atexit.register
def _stop_helper():
    if _helper is not None:
        _helper.stop()


def _work(stream_in, stream_out) -> None:
    """The helper's loop (nn/_ahead_worker.py): compile each (module, name, signature) read from
    ``stream_in`` (a pickle), in order, reporting "start i" and "done i" (or "failed i") on
    ``stream_out``."""
    data = stream_in.read()
    jobs = pickle.loads(data) if data else []  # nothing on stdin (started by hand): nothing to do
    for index, (module, name, sig) in enumerate(jobs):
        stream_out.write(f"start {index}\n")
        stream_out.flush()
        try:
            getattr(importlib.import_module(module), name).compile(sig)
            word = "done"
        except Exception:
            word = "failed"
        stream_out.write(f"{word} {index}\n")
        stream_out.flush()

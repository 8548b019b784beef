"""Running experiment sweeps without losing anything.

* every output is written atomically (temporary file in the same folder, fsync, rename), so a
  killed process leaves either the old file or the new one, never half of one;
* a sweep is a list of cells (small dicts of parameters); each finished cell is stored as its own
  JSON file, so a sweep that is killed and started again skips the cells it already finished;
* cells can run serially, in worker processes (``workers``), or on a Dask cluster;
* ``provenance`` records what produced a result: git commit, package versions, arguments, seed,
  wall time, machine.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from ._io import atomic_write_bytes


def atomic_write_json(path, obj) -> str:
    """Write ``obj`` as JSON to ``path`` atomically (NaN is refused: results must be numbers)."""
    from ._checks import as_path

    path = as_path(path)
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_jsonable)
    except ValueError as exc:  # NaN or Inf somewhere: refuse to write a result that is not a number
        raise ValueError(f"obj: cannot be written as strict JSON ({exc}); results must be finite numbers") from None
    except TypeError as exc:
        raise TypeError(f"obj: cannot be written as JSON ({exc})") from None
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_savefig(fig, path, **kwargs) -> str:
    """Save a matplotlib figure atomically."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", **kwargs)
    return atomic_write_bytes(path, buffer.getvalue())


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def git_commit(path=None) -> str | None:
    """The commit of the repository holding ``path`` (None outside a git checkout)."""
    here = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or None
        if commit:
            dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def cpu_model(cpuinfo="/proc/cpuinfo") -> str | None:
    """The processor's name (Linux: the "model name" of ``cpuinfo``; elsewhere platform.processor()):
    timings and the last bits of a result depend on it."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def output_folder(out, script) -> str:
    """The folder a script writes to, created: ``out`` when given, else
    ``<the script's folder>/results/<the script's name>/<date-time>``."""
    if out is None:
        name = os.path.splitext(os.path.basename(script))[0]
        out = os.path.join(os.path.dirname(os.path.abspath(script)), "results", name, time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    return out


def print_outputs(out, started: float) -> None:
    """Say where a script's results.json and figures (every PNG in ``out``) went, and how long it took."""
    print(f"results: {os.path.join(out, 'results.json')} ({time.perf_counter() - started:.1f} s)")
    figures = sorted(name for name in os.listdir(out) if name.endswith(".png"))
    if figures:
        print("figures: " + ", ".join(os.path.join(out, name) for name in figures))


def mean_ci(values) -> dict:
    """Mean, std, the half-width of a 95 % Student-t interval of the mean (None for one value),
    n, min and max of a list of numbers (one per seed)."""
    from scipy import stats

    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"values: expected a non-empty list of numbers, got {values!r}")
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(a) - 1) * std / np.sqrt(len(a))) if len(a) > 1 else None
    return {"mean": float(a.mean()), "std": std, "ci95": half, "n": int(len(a)), "min": float(a.min()),
            "max": float(a.max())}


def provenance(args=None, seed=None, **extra) -> dict:
    """What produced a result: commit, versions, arguments, seed, machine, time."""
    from importlib import metadata

    versions = {}
    for name in ("hamiltonian_cnn", "numpy", "scipy", "numba", "scikit-learn", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {
        "git_commit": git_commit(),
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "command": " ".join(sys.argv),
        "arguments": dict(vars(args)) if args is not None and not isinstance(args, dict) else args,
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    info.update(extra)
    return info


def check_cli_args(parser, args, seeds=("seed",), finite=(), out="out") -> None:
    """Checks every experiment script shares, reported with ``parser.error`` (exit status 2, the
    option named): seeds are integers >= 0, ``finite`` floats are finite, and the ``--out`` folder
    (when given) exists or can be created and is a folder."""
    import math

    def option(name):
        return "--" + name.replace("_", "-")

    for name in seeds:
        value = getattr(args, name)
        if value is not None and value < 0:
            parser.error(f"{option(name)}: expected an integer >= 0, got {value}")
    for name in finite:
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            parser.error(f"{option(name)}: expected a finite number, got {value}")
    folder = getattr(args, out, None) if out else None
    if folder is not None:
        folder = os.fspath(folder)
        if not folder:
            parser.error(f"{option(out)}: expected a folder, got ''")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            parser.error(f"{option(out)}: cannot use {folder!r} as the output folder ({exc.strerror or exc})")
        if not os.access(folder, os.W_OK | os.X_OK):
            parser.error(f"{option(out)}: the output folder {folder!r} is not writable")


def cell_key(cell: dict) -> str:
    """A stable file name for a cell: readable parameters plus a short hash."""
    text = json.dumps(cell, sort_keys=True, default=_jsonable)
    readable = "-".join(f"{k}={cell[k]}" for k in sorted(cell) if isinstance(cell[k], (str, int)))
    readable = "".join(ch if ch.isalnum() or ch in "=-_." else "_" for ch in readable)[:120]
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


class CellStore:
    """One JSON file per finished cell, in ``<out>/cells/``."""

    def __init__(self, out_dir):
        from ._checks import as_path

        self.dir = os.path.join(as_path(out_dir, "out_dir"), "cells")
        os.makedirs(self.dir, exist_ok=True)

    def path(self, cell) -> str:
        return os.path.join(self.dir, cell_key(cell) + ".json")

    def done(self, cell) -> bool:
        path = self.path(cell)
        if not os.path.exists(path):
            return False
        try:
            with open(path) as fh:
                stored = json.load(fh)
            return (isinstance(stored, dict) and "result" in stored
                    and stored.get("cell") == json.loads(json.dumps(cell, default=_jsonable)))
        except (OSError, ValueError):
            return False  # unreadable or not ours: recompute it

    def save(self, cell, result) -> None:
        atomic_write_json(self.path(cell), {"cell": cell, "result": result})

    def load(self, cell) -> dict:
        with open(self.path(cell)) as fh:
            return json.load(fh)["result"]


def _limit_threads(threads: int) -> None:
    """A worker process's initialiser: Numba and BLAS use ``threads`` threads in it."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(threads)


def run_cells(fn, cells, store: CellStore, workers=1, executor="local", scheduler=None, progress=True,
              desc="cells"):
    """Run ``fn(cell) -> dict`` for every cell not already in ``store``; return all results in order.

    executor "local": ``workers`` = 1 runs serially, more uses worker processes, each with its share
    of the cores as Numba and BLAS threads (cpu_count // workers, at least 1: oversubscribed BLAS
    threads slow a fit many-fold); the calling process is left as it is.
    executor "dask": submit to the Dask scheduler at ``scheduler`` (an address, or a Client).
    Each result is stored the moment it arrives, so an interruption loses at most running cells.
    """
    from tqdm.auto import tqdm

    from ._checks import as_int

    if not callable(fn):
        raise TypeError(f"fn: expected a function cell -> dict, got {type(fn).__name__}")
    if not isinstance(store, CellStore):
        raise TypeError(f"store: expected a CellStore, got {type(store).__name__}")
    workers = as_int(workers, "workers", 1)
    if executor not in ("local", "dask"):
        raise ValueError(f"executor: expected 'local' or 'dask', got {executor!r}")
    cells = list(cells)
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise TypeError(f"cells[{i}]: expected a dict of parameters, got {type(cell).__name__}")
    todo = [c for c in cells if not store.done(c)]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=desc, disable=not progress, unit="cell")
    try:
        if executor == "dask":
            _run_dask(fn, todo, store, scheduler, bar)
        elif executor != "local":
            raise ValueError(f"executor: expected 'local' or 'dask', got {executor!r}")
        elif workers <= 1:
            for cell in todo:
                store.save(cell, fn(cell))
                bar.update(1)
        else:
            # spawn, not fork: a fresh interpreter per worker, safe whatever threads the parent runs
            share = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_limit_threads, initargs=(share,)) as pool:
                pending = {pool.submit(fn, cell): cell for cell in todo}
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        cell = pending.pop(future)
                        store.save(cell, future.result())
                        bar.update(1)
    finally:
        bar.close()
    return [store.load(c) for c in cells]


def _run_dask(fn, todo, store, scheduler, bar):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ImportError("executor 'dask' needs the optional extra: pip install 'hamiltonian_cnn[dist]'") from None
    module = sys.modules.get(getattr(fn, "__module__", None))
    if module is not None and module.__name__ != "__main__" and not module.__name__.startswith("hamiltonian_cnn"):
        # a script imported by path is not importable on the workers: ship its code with the task
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = {client.submit(fn, cell, pure=False): i for i, cell in enumerate(todo)}
        for future in as_completed(futures):
            cell = todo[futures[future]]
            store.save(cell, future.result())
            bar.update(1)
    finally:
        if client is not scheduler:
            client.close()

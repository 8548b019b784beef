"""Numba settings the package needs, applied before the first kernel compiles.

* Cache (``cache=True``): Numba writes it beside the source files. When the package is installed
  read-only that fails, so unless the user chose NUMBA_CACHE_DIR we point it at a per-user cache
  directory.
* Threading layer: unless the user chose NUMBA_THREADING_LAYER, use Numba's own "workqueue"
  layer. The OpenMP layer spin-waits, which on a busy machine makes small parallel kernels 10-100x
  slower, and it is not fork-safe (worker processes of a sweep would abort).
"""

import os
import sys


def configure_threading_layer() -> str:
    layer = os.environ.get("NUMBA_THREADING_LAYER")
    if not layer:
        layer = "workqueue"
        os.environ["NUMBA_THREADING_LAYER"] = layer
        if "numba" in sys.modules:
            import numba

            numba.config.THREADING_LAYER = layer
    return layer


def configure_cache_dir() -> str | None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    package_dir = os.path.dirname(os.path.abspath(__file__))
    kernels_dir = os.path.join(package_dir, "kernels")
    cache_dir = os.path.join(kernels_dir, "__pycache__")
    probe = cache_dir if os.path.isdir(cache_dir) else kernels_dir
    if os.access(probe, os.W_OK):
        return None  # Numba's default, beside the sources
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    target = os.path.join(base, "hamiltonian_cnn", "numba")
    try:
        os.makedirs(target, exist_ok=True)
    except OSError:
        import tempfile

        target = os.path.join(tempfile.gettempdir(), f"hamiltonian_cnn-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
        os.makedirs(target, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = target
    if "numba" in sys.modules:  # numba read its config already: make it read it again
        import numba.core.config

        numba.core.config.reload_config()
    return target

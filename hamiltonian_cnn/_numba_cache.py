"""Where Numba keeps compiled kernels (``cache=True``).

Numba writes its cache beside the source files. When the package is installed read-only that
fails, so unless the user chose NUMBA_CACHE_DIR we point it at a per-user cache directory.
Must run before the first kernel is compiled.
"""

import os
import sys


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

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


def _writable_dir(path: str) -> bool:
    """Can this process create files in ``path`` (made if missing)? Tried for real, not with
    os.access: root passes every permission check, yet a read-only mount or a package copied
    read-only to another user refuses the write."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hamiltonian_cnn-probe-", dir=path)
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return True


def user_cache_dir() -> str | None:
    """A writable per-user folder for the Numba cache: $XDG_CACHE_HOME or ~/.cache, then the temp dir."""
    import tempfile

    candidates = []
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(os.path.join(base, "hamiltonian_cnn", "numba"))
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    candidates.append(os.path.join(tempfile.gettempdir(), f"hamiltonian_cnn-numba-{user}"))
    for target in candidates:
        if _writable_dir(target):
            return target
    return None


def configure_cache_dir() -> str | None:
    """Where Numba will cache compiled kernels: None means beside the sources (Numba's default).

    The user's NUMBA_CACHE_DIR wins. Otherwise, if kernels/__pycache__ cannot be written (tried
    for real), NUMBA_CACHE_DIR is set to a per-user cache folder. If nothing is writable the cache
    is left to Numba, which then compiles without caching.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    package_dir = os.path.dirname(os.path.abspath(__file__))
    cache_dir = os.path.join(package_dir, "kernels", "__pycache__")
    if _writable_dir(cache_dir):
        return None  # Numba's default, beside the sources
    target = user_cache_dir()
    if target is None:
        return None
    os.environ["NUMBA_CACHE_DIR"] = target
    if "numba" in sys.modules:  # numba read its config already: make it read it again
        import numba.core.config

        numba.core.config.reload_config()
    return target

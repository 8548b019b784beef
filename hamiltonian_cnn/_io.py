"""Atomic file writes (nothing half-written survives a crash or a kill) and JSON-ready values.

The bytes go to a temporary file in the target's folder, are flushed to disk, and the file is then
renamed over the target (``os.replace`` is atomic on POSIX and Windows). A reader sees either the
old file or the new one, never a mixture; a killed writer leaves at most a stray ``.tmp`` file.
"""

from __future__ import annotations

import os
import secrets


def atomic_write_bytes(path, data: bytes, make_dirs: bool = True) -> str:
    """Write ``data`` to ``path`` atomically; returns the path. Permissions follow the umask."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def jsonable(value):
    """Tuples (also nested) as lists, numpy scalars as Python ones: for ``config()`` and JSON files."""
    import numpy as np

    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value

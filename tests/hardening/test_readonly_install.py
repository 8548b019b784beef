"""Read-only install: the package imports and runs kernels when its folder cannot be written.

Numba caches compiled kernels beside the sources (kernels/__pycache__). When that folder cannot be
written, ``hamiltonian_cnn._numba_cache`` points NUMBA_CACHE_DIR at a per-user cache folder. The
decision is made by really creating a file, not by ``os.access``, which says "writable" to root.

The end-to-end test copies the package into a temporary folder, makes the copy read-only, and
imports it in a fresh interpreter that calls a kernel. Running as root, permissions do not stop
writes, so the interpreter runs as the unprivileged user ``nobody`` (setpriv or runuser); as any
other user, chmod is enough.
"""

import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import hamiltonian_cnn
from hamiltonian_cnn import _numba_cache

PACKAGE = pathlib.Path(hamiltonian_cnn.__file__).resolve().parent

CHILD = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import hamiltonian_cnn as hc
    y = hc.nn.MaxPool1d(2).forward(np.arange(8.0).reshape(1, 1, 8))
    print(json.dumps({"file": hc.__file__, "cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
                      "y": y.ravel().tolist(), "uid": os.getuid() if hasattr(os, "getuid") else None}))
    """
)


def _unprivileged_prefix():
    """A command prefix that runs as ``nobody``, or None when there is no way to."""
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None, None
    if shutil.which("setpriv"):
        prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    elif shutil.which("runuser"):
        prefix = ["runuser", "-u", "nobody", "--"]
    else:
        return None, None
    return prefix, nobody


def _make_readonly(root: pathlib.Path):
    for path in sorted(root.rglob("*"), reverse=True) + [root]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root: pathlib.Path):
    for path in [root] + sorted(root.rglob("*")):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_readonly_package_falls_back_to_a_user_cache_dir():
    prefix = []
    nobody = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        prefix, nobody = _unprivileged_prefix()
        if prefix is None:
            pytest.skip("running as root and neither setpriv nor runuser nor a 'nobody' user is available, "
                        "so a read-only folder cannot be made unwritable for the test")
    elif not hasattr(os, "geteuid"):
        pytest.skip("POSIX permissions needed")
    # a folder every user can read (pytest's tmp_path is private to root)
    top = pathlib.Path(tempfile.mkdtemp(prefix="hc-readonly-"))
    try:
        top.chmod(0o755)
        site = top / "site"
        site.mkdir(mode=0o755)
        shutil.copytree(PACKAGE, site / "hamiltonian_cnn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        home = top / "home"
        home.mkdir(mode=0o755)
        if nobody is not None:
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
        _make_readonly(site)
        env = {k: v for k, v in os.environ.items()
               if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH", "NUMBA_DISABLE_JIT")}
        env["HOME"] = str(home)
        if prefix:
            probe = subprocess.run(prefix + [sys.executable, "-c", "import numpy, numba"], cwd=top, env=env,
                                   capture_output=True, text=True, timeout=120)
            if probe.returncode != 0:
                pytest.skip(f"running as root, and the interpreter cannot import numpy/numba as 'nobody': "
                            f"{probe.stderr.strip()[-300:]}")
        run = subprocess.run(prefix + [sys.executable, "-c", CHILD, str(site)], cwd=top, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        import json

        report = json.loads(run.stdout.strip().splitlines()[-1])
        assert report["file"].startswith(str(site)), report  # the read-only copy was imported
        assert report["y"] == [1.0, 3.0, 5.0, 7.0]
        expected = home / ".cache" / "hamiltonian_cnn" / "numba"
        assert report["cache_dir"] == str(expected)
        # the compiled kernel was cached in the fallback folder, nothing was written into the copy
        assert list(expected.rglob("*.nbi")), sorted(p.name for p in expected.rglob("*"))
        assert not list(site.rglob("__pycache__"))
        assert "cannot cache" not in run.stderr.lower(), run.stderr
    finally:
        _make_writable(top)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def clean_cache_env(monkeypatch, tmp_path):
    """No NUMBA_CACHE_DIR, XDG_CACHE_HOME in tmp_path, and numba's config left alone; the
    environment is restored afterwards (configure_cache_dir writes os.environ itself)."""
    import numba.core.config

    saved = {key: os.environ.get(key) for key in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    calls = []
    monkeypatch.setattr(numba.core.config, "reload_config", lambda: calls.append(os.environ.get("NUMBA_CACHE_DIR")))
    os.environ.pop("NUMBA_CACHE_DIR", None)
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    yield calls
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_unwritable_kernels_dir_uses_the_user_cache_even_for_root(monkeypatch, tmp_path, clean_cache_env):
    # os.access says yes (as it does for root), but creating a file fails: fall back
    real_mkstemp = tempfile.mkstemp

    def refuse_in_package(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(PACKAGE)):
            raise PermissionError(13, "Permission denied", dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_in_package)
    monkeypatch.setattr(os, "access", lambda *a, **k: True)
    target = _numba_cache.configure_cache_dir()
    assert target == str(tmp_path / "xdg" / "hamiltonian_cnn" / "numba")
    assert os.environ["NUMBA_CACHE_DIR"] == target and os.path.isdir(target)
    assert clean_cache_env == [target]  # numba re-read its config
    assert not [p for p in os.listdir(target) if p.startswith(".hamiltonian_cnn-probe")]  # probe removed


def test_writable_kernels_dir_keeps_numbas_default(monkeypatch, clean_cache_env):
    assert _numba_cache.configure_cache_dir() is None
    assert "NUMBA_CACHE_DIR" not in os.environ and clean_cache_env == []


def test_user_choice_wins(tmp_path, clean_cache_env):
    os.environ["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    assert _numba_cache.configure_cache_dir() == str(tmp_path / "mine")


def test_unwritable_home_falls_back_to_the_temp_dir(monkeypatch, tmp_path, clean_cache_env):
    real_mkstemp = tempfile.mkstemp
    blocked = (str(PACKAGE), str(tmp_path / "xdg"))

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(blocked):
            raise PermissionError(13, "Permission denied", dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    target = _numba_cache.configure_cache_dir()
    assert target is not None and target.startswith(str(tmp_path / "tmp"))
    assert os.environ["NUMBA_CACHE_DIR"] == target

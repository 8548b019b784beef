"""Read-only install: the package imports and runs kernels when its folder cannot be written.

Numba caches compiled kernels beside the sources (kernels/__pycache__). When that folder cannot be
written, Numba itself falls back to a per-user cache folder ($XDG_CACHE_HOME/numba, by default
~/.cache/numba): the package sets nothing, and ``import hamiltonian_cnn`` writes no environment
variable and no file.

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
        expected = home / ".cache" / "numba"  # Numba's own user-wide cache
        assert report["cache_dir"] is None  # nobody set NUMBA_CACHE_DIR
        # the compiled kernel was cached in the fallback folder, nothing was written into the copy
        assert list(expected.rglob("*.nbi")), sorted(p.name for p in expected.rglob("*"))
        assert not list(site.rglob("__pycache__"))
        assert "cannot cache" not in run.stderr.lower(), run.stderr
    finally:
        _make_writable(top)
        shutil.rmtree(top, ignore_errors=True)


def test_import_changes_nothing_process_wide(tmp_path):
    """``import hamiltonian_cnn`` (and building and training a model) writes no environment
    variable and no file into the package folder. (scikit-learn, which loads the digits, sets
    KMP_* variables when it is imported: it is imported before the snapshot.)"""
    code = textwrap.dedent("""
        import json, os, sys
        import sklearn.datasets
        before = dict(os.environ)
        import hamiltonian_cnn as hc
        after_import = dict(os.environ)
        import numpy as np
        X, y = hc.data.load("digits")[:2]
        hc.models.build("shared", (1, 8, 8), 10).fit(X[:64], y[:64], epochs=1, progress=False)
        print(json.dumps({"import": after_import == before, "fit": dict(os.environ) == before}))
    """)
    listing = sorted(p.name for p in PACKAGE.iterdir())
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_THREADING_LAYER")}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    import json

    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"import": True, "fit": True}
    assert sorted(p.name for p in PACKAGE.iterdir()) == listing

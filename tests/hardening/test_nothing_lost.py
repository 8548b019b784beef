"""Nothing lost: every output is written atomically (temporary file + rename), a crash between the
write and the rename leaves the previous file intact, and a sweep killed midway leaves a consistent
folder that a restart completes without recomputing finished cells.

The main experiment's own kill-and-resume test is tests/experiments/test_sharing_vs_coupling.py::
test_killed_process_resumes_from_a_consistent_folder; here the same is checked on a fast synthetic
sweep killed at an arbitrary moment.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import hamiltonian_cnn as hc
from hamiltonian_cnn import _io, sweep

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

# direct writes that would not be atomic; the scripts must go through hamiltonian_cnn._io / sweep
FORBIDDEN = [
    (r"\bopen\([^)]*['\"][wax]b?\+?['\"]", "open() for writing"),
    (r"\.savefig\(", "Figure.savefig (use sweep.atomic_savefig)"),
    (r"\bnp\.save\(", "np.save"),
    (r"\bnp\.savez(_compressed)?\((?!\s*buffer\b)", "np.savez to a path (save to a BytesIO, then atomic_write_bytes)"),
    (r"\bjson\.dump\(", "json.dump to a file (use sweep.atomic_write_json)"),
    (r"\.write_(text|bytes)\(", "Path.write_text/write_bytes"),
    (r"\.tofile\(", "ndarray.tofile"),
    (r"\bshutil\.(copy|copyfile|move)", "shutil copies"),
]


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "experiments").glob("*.py")))
def test_experiment_scripts_write_only_through_the_atomic_helpers(script):
    source = (ROOT / "experiments" / script).read_text()
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    found = [(what, m.group(0)) for pattern, what in FORBIDDEN for m in re.finditer(pattern, code)]
    assert not found, f"{script} writes outside the atomic helpers: {found}"


def test_every_file_of_an_experiment_is_put_in_place_by_a_rename(tmp_path, monkeypatch):
    renamed = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        renamed.append(os.path.abspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", spy)
    module = load_script("parameter_counting")
    module.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    files = sorted(os.path.abspath(p) for p in tmp_path.rglob("*") if p.is_file())
    assert files and {"results.json", "parameters_vs_side.png"} <= {os.path.basename(f) for f in files}
    assert set(files) <= set(renamed), set(files) - set(renamed)


# ------------------------------------------------------------------ a crash between write and rename

def _writers(folder):
    model = hc.models.build("shared", (1, 4, 4), 2, channels=(1,), seed=0)

    def figure(path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(1, 1))
        try:
            sweep.atomic_savefig(fig, path)
        finally:
            plt.close(fig)

    store = sweep.CellStore(folder)
    return {
        "results.json": lambda p: sweep.atomic_write_json(p, {"accuracy": 0.5}),
        "model.npz": lambda p: model.save(p),
        "images.idx": lambda p: hc.data.save_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3)),
        "figure.png": figure,
        "cell": lambda p: store.save({"i": 1}, {"value": 2}),
        "bytes.bin": lambda p: _io.atomic_write_bytes(p, b"new"),
    }


@pytest.mark.parametrize("name", ["results.json", "model.npz", "images.idx", "figure.png", "cell", "bytes.bin"])
@pytest.mark.parametrize("crash", ["kill before rename", "disk full at fsync"])
def test_a_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch, name, crash):
    writers = _writers(tmp_path)
    path = tmp_path / name if name != "cell" else pathlib.Path(sweep.CellStore(tmp_path).path({"i": 1}))
    write = writers[name]
    write(str(path))
    previous = path.read_bytes()
    assert previous

    class Killed(BaseException):
        pass

    if crash == "kill before rename":
        def fail(*args, **kwargs):
            raise Killed()
        monkeypatch.setattr(os, "replace", fail)
        expected = Killed
    else:
        def fail(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(os, "fsync", fail)
        expected = OSError
    with pytest.raises(expected):
        write(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == previous
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_cell_store_recomputes_unreadable_or_foreign_cells(tmp_path):
    store = sweep.CellStore(tmp_path)
    cell = {"i": 3}
    path = pathlib.Path(store.path(cell))
    for content in ("", "{not json", "[1, 2]", json.dumps({"cell": cell}), json.dumps({"cell": {"i": 4}, "result": 1})):
        path.write_text(content)
        assert not store.done(cell), content
    store.save(cell, {"value": 9})
    assert store.done(cell) and store.load(cell) == {"value": 9}


# ------------------------------------------------------------------ a sweep killed at an arbitrary moment

CHILD = """
import json, os, sys, time
from hamiltonian_cnn.sweep import CellStore, atomic_write_json, run_cells

def square(cell):
    time.sleep(0.02)
    return {"value": cell["i"] ** 2, "pid": os.getpid()}

out = sys.argv[1]
cells = [{"i": i, "name": "square"} for i in range(int(sys.argv[2]))]
store = CellStore(out)
print(json.dumps({"todo": sum(not store.done(c) for c in cells)}), flush=True)
results = run_cells(square, cells, store, progress=False)
atomic_write_json(os.path.join(out, "results.json"), {"results": results})
"""


def _consistent(folder):
    """Every visible file is complete JSON; hidden .tmp files are the only possible debris."""
    names = []
    for path in sorted(pathlib.Path(folder).rglob("*")):
        if path.is_dir() or path.name.endswith(".tmp"):
            continue
        data = json.loads(path.read_text())
        if path.parent.name == "cells":
            assert set(data) == {"cell", "result"} and data["result"]["value"] == data["cell"]["i"] ** 2
            names.append(path.name)
    return names


@pytest.mark.parametrize("kill_after", [3, 17])
def test_a_killed_sweep_leaves_a_consistent_folder_and_resumes(tmp_path, kill_after):
    n = 30
    args = [sys.executable, "-c", CHILD, str(tmp_path), str(n)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cells = tmp_path / "cells"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if cells.exists() and len(list(cells.glob("*.json"))) >= kill_after:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    done = _consistent(tmp_path)
    assert kill_after <= len(done) < n
    assert not (tmp_path / "results.json").exists()
    before = {name: (cells / name).stat().st_mtime_ns for name in done}
    restart = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    assert json.loads(restart.stdout.splitlines()[0]) == {"todo": n - len(done)}  # finished cells are skipped
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["value"] for r in results] == [i * i for i in range(n)]
    assert len(_consistent(tmp_path)) == n
    for name, mtime in before.items():  # finished cells were not rewritten
        assert (cells / name).stat().st_mtime_ns == mtime


def test_sweep_helpers_reject_bad_arguments(tmp_path):
    from fuzz_harness import expect_error

    store = sweep.CellStore(tmp_path)
    good = [{"i": 1}]
    for kwargs, name in [
        (dict(fn=3), "fn"), (dict(store="folder"), "store"), (dict(workers=0), "workers"),
        (dict(workers=1.5), "workers"), (dict(executor="ray"), "executor"), (dict(cells=[1, 2]), "cells[0]"),
    ]:
        args = {"fn": lambda cell: {"v": 1}, "cells": good, "store": store, "progress": False, **kwargs}
        expect_error("sweep run_cells", lambda: sweep.run_cells(**args), (name,))
    for obj in ({"accuracy": float("nan")}, [float("inf")], {"x": object()}):
        expect_error("sweep atomic_write_json", lambda: sweep.atomic_write_json(tmp_path / "r.json", obj), ("obj",))
    assert not (tmp_path / "r.json").exists()  # nothing half-written either
    for bad in (3, None, ""):
        expect_error("sweep atomic_write_json", lambda: sweep.atomic_write_json(bad, {}), ("path",))
        expect_error("sweep CellStore", lambda: sweep.CellStore(bad), ("out_dir",))

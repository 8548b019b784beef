"""The main experiment: outputs, resume after a kill, parallel and Dask runs equal the serial run."""

import importlib
import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "sharing_vs_coupling.py"
SMALL = ["--sizes", "60,all", "--seeds", "1", "--epochs", "1", "--shifts", "0,1", "--no-progress"]


def load_script():
    # a real import from experiments/ (on sys.path, which spawned worker processes inherit), so
    # that worker processes can find run_cell by name
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("sharing_vs_coupling")


def numbers(report):
    return [(c["cell"], c["result"]["test_accuracy"], c["result"]["shift_accuracy"]) for c in report["cells"]]


def test_outputs_hold_every_measurement(tmp_path):
    script = load_script()
    report = script.main(SMALL + ["--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["summary"] == report["summary"]
    for name in ("accuracy_vs_size.png", "accuracy_vs_shift.png", "parameters.png"):
        assert (tmp_path / name).stat().st_size > 1000
    summary = on_disk["summary"]
    assert set(summary) == {"shared", "local", "full"}
    for family in summary:
        assert set(summary[family]) == {"original", "shuffled"}
        for row in summary[family]["original"].values():
            assert 0.0 <= row["test_accuracy"]["mean"] <= 1.0
    n_params = {f: next(iter(summary[f]["original"].values()))["n_params"] for f in summary}
    assert n_params["shared"] < n_params["local"] < n_params["full"]
    prov = on_disk["provenance"]
    assert prov["versions"]["numpy"] and prov["arguments"]["epochs"] == 1 and prov["wall_time"] > 0
    assert len(on_disk["cells"]) == 3 * 2 * 2
    assert set(on_disk["shift"]["shared"]["original"]) == {"0", "1"}


def test_restart_skips_finished_cells_and_loses_nothing(tmp_path):
    script = load_script()
    first = script.main(SMALL + ["--out", str(tmp_path), "--couplings", "shared"])
    cells = sorted((tmp_path / "cells").iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in cells}
    # simulate a kill midway: one finished cell vanished, the results file was never written
    cells[0].unlink()
    (tmp_path / "results.json").unlink()
    calls = []
    original = script.run_cell
    script.run_cell = lambda cell: calls.append(cell) or original(cell)
    try:
        second = script.main(SMALL + ["--out", str(tmp_path), "--couplings", "shared"])
    finally:
        script.run_cell = original
    assert len(calls) == 1
    for p in (tmp_path / "cells").iterdir():
        if p.name != cells[0].name:
            assert p.stat().st_mtime_ns == stamps[p.name]
    assert numbers(first) == numbers(second)


@pytest.mark.slow
def test_killed_process_resumes_from_a_consistent_folder(tmp_path):
    args = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--couplings", "shared,local", *SMALL]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells_dir = tmp_path / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and not (cells_dir.exists() and len(list(cells_dir.glob("*.json"))) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list(cells_dir.glob("*.json"))
    assert finished, "no cell finished before the kill"
    for path in finished:  # every file present is complete JSON
        json.loads(path.read_text())
    before = {p.name: p.stat().st_mtime_ns for p in finished}
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, timeout=600)
    report = json.loads((tmp_path / "results.json").read_text())
    assert len(report["cells"]) == 2 * 2 * 2
    for path in cells_dir.glob("*.json"):
        if path.name in before:
            assert path.stat().st_mtime_ns == before[path.name]
    assert not list(tmp_path.glob(".*.tmp")) and not list(cells_dir.glob(".*.tmp"))


@pytest.mark.slow
def test_workers_and_dask_equal_the_serial_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    script = load_script()
    base = SMALL + ["--couplings", "shared", "--no-control"]
    serial = script.main(base + ["--out", str(tmp_path / "serial")])
    parallel = script.main(base + ["--out", str(tmp_path / "parallel"), "--workers", "2"])
    assert numbers(serial) == numbers(parallel)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask_run = script.main(base + ["--out", str(tmp_path / "dask"), "--executor", "dask",
                                       "--scheduler", cluster.scheduler_address])
    assert numbers(serial) == numbers(dask_run)


def test_help_and_bad_arguments():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--quick" in out.stdout and "--workers" in out.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT), "--couplings", "tied"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "--couplings" in bad.stderr

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
SMALL = ["--dataset", "digits", "--sizes", "60,all", "--seeds", "1", "--epochs", "1", "--lrs", "0.01", "--no-progress"]


def load_script():
    # a real import from experiments/ (on sys.path, which spawned worker processes inherit), so
    # that worker processes can find run_cell by name
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module("sharing_vs_coupling")


def numbers(report):
    return [(r["dataset"], r["coupling"], r["shuffled"], r["n_train"], r["seed"], r["test_accuracy"],
             r.get("shift_accuracy")) for r in report["records"]]


RECORD_KEYS = {"dataset", "coupling", "head", "shuffled", "n_train", "seed", "test_accuracy", "lr", "steps",
               "best_epoch", "val_accuracy", "n_params"}


def test_outputs_hold_every_measurement(tmp_path):
    script = load_script()
    args = ["--dataset", "mnist1d,translated", "--couplings", "shared,sparse,full", "--sizes", "300,all", "--seeds",
            "2", "--epochs", "1", "--lrs", "0.01,0.05", "--no-progress", "--out", str(tmp_path)]
    report = script.main(args)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["records"] == report["records"]
    for name in ("accuracy_vs_size.png", "accuracy_vs_shift.png", "unseen_positions.png", "equivariance.png"):
        assert (tmp_path / name).stat().st_size > 1000
    records = on_disk["records"]
    # mnist1d: 3 families x 2 controls x 2 sizes x 2 seeds; translated: 3 families x 2 heads x 2 sizes x 2 seeds
    assert len(records) == 24 + 24
    for r in records:
        assert RECORD_KEYS <= set(r) and 0.0 <= r["test_accuracy"] <= 1.0
        assert 1 <= r["best_epoch"] <= r["epochs"]
    # the same step budget at every training-set size (up to one pass over the smallest subset)
    for dataset in ("mnist1d", "translated"):
        budget = on_disk["protocol"]["steps"][dataset]
        for r in (r for r in records if r["dataset"] == dataset):
            assert abs(r["steps"] - budget) <= -(-r["n_train"] // 32) / 2 + 1
    assert {r["head"] for r in records if r["dataset"] == "translated"} == {"dense", "gap"}
    assert all("unseen_accuracy" in r for r in records if r["dataset"] == "translated")
    assert all(set(r["shift_accuracy"]) == {"0", "1", "2", "4"} for r in records if r["dataset"] == "mnist1d")
    # parameters: shared << sparse < full
    n_params = {r["coupling"]: r["n_params"] for r in records if r["dataset"] == "mnist1d"}
    assert n_params["shared"] < n_params["sparse"] < n_params["full"]
    # the lr of every group is the one with the best validation accuracy (smaller on ties)
    for r in records:
        tried = [t for t in on_disk["lr_selection"] if (t["dataset"], t["coupling"], t["head"],
                 t["control"] == "shuffled") == (r["dataset"], r["coupling"], r["head"], r["shuffled"])]
        assert len(tried) == 2
        best = max(tried, key=lambda t: (t["val_accuracy"], -t["lr"]))
        assert r["lr"] == best["lr"]
    # summary rows carry 95 % intervals over the two seeds; paired differences exist for every other family
    row = on_disk["summary"][0]
    assert row["test_accuracy"]["n"] == 2 and row["test_accuracy"]["ci95"] is not None
    versus = {(p["dataset"], p["versus"], p["metric"]) for p in on_disk["paired"]}
    assert ("translated", "full", "unseen_accuracy") in versus and ("mnist1d", "sparse", "test_accuracy") in versus
    eq = [e for r in records if r["dataset"] == "translated" and not r["shuffled"] for e in r["equivariance"]]
    assert eq and all(e["circular"] >= 0 and e["zero"] >= 0 for e in eq)
    prov = on_disk["provenance"]
    assert prov["versions"]["numpy"] and prov["arguments"]["epochs"] == 1 and prov["wall_time"] > 0


def test_lr_selection_cell_is_reused_as_the_first_seed(tmp_path):
    script = load_script()
    script.main(SMALL + ["--couplings", "shared", "--out", str(tmp_path)])
    # 2 controls x (1 tuning cell at the full size, reused as seed 0's full-size cell, + 1 cell at n = 60)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 4


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
    assert len(report["records"]) == 2 * 2 * 2
    for path in cells_dir.glob("*.json"):
        if path.name in before:
            assert path.stat().st_mtime_ns == before[path.name]
    assert not list(tmp_path.glob(".*.tmp")) and not list(cells_dir.glob(".*.tmp"))


@pytest.mark.slow
def test_workers_and_dask_equal_the_serial_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    script = load_script()
    base = SMALL + ["--couplings", "shared"]
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
    bad = subprocess.run([sys.executable, str(SCRIPT), "--dataset", "mnist"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "--dataset" in bad.stderr


@pytest.mark.slow
def test_quick_default_shows_the_answer(tmp_path):
    """The README's first command: on MNIST-1D, shared is clearly ahead of full on the original
    sequences, and the gap is gone when the sites are shuffled."""
    report = load_script().main(["--quick", "--no-progress", "--out", str(tmp_path)])
    gap = {p["shuffled"]: p["shared_minus"]["mean"] for p in report["paired"]
           if p["versus"] == "full" and p["metric"] == "test_accuracy"}
    assert gap[False] > 0.15
    assert gap[True] < 0.05

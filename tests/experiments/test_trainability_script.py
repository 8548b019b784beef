"""experiments/trainability.py: a tiny sweep in-process; records, figures, the summary and resuming."""

import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def test_trainability_records_figures_and_resume(tmp_path):
    script = load_script("trainability")
    args = ["--out", str(tmp_path), "--no-progress", "--ensembles", "binary,centred", "--inits", "glorot,variance",
            "--models", "stack", "--depths", "2,3", "--canvases", "8", "--seeds", "2", "--epochs", "2",
            "--n-train", "200"]
    report = script.main(args)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    records = on_disk["records"]
    assert len(records) == 2 * 2 * 2 * 2  # ensembles x inits x depths x seeds
    for r in records:
        assert {"ensemble", "init", "depth", "canvas", "seed", "test_accuracy", "loss", "grad_norm_init",
                "grad_norm_epoch1"} <= set(r)
        assert len(r["loss"]) == 2
        assert len(r["grad_norm_init"]) == r["depth"] + 1 == len(r["grad_norm_epoch1"])  # blocks + the head
        assert 0.0 <= r["test_accuracy"] <= 1.0
    # the summary is the mean and t-interval of the records
    for s in on_disk["summary"]:
        accs = [r["test_accuracy"] for r in records if (r["ensemble"], r["init"], r["depth"], r["canvas"])
                == (s["ensemble"], s["init"], s["depth"], s["canvas"])]
        assert s["n_seeds"] == len(accs) == 2
        assert np.isclose(s["mean"], np.mean(accs)) and s["ci95"] >= 0
    # centred blocks with the variance init learn in 2 epochs; the uncentred Glorot stack barely moves
    def mean(ensemble, init):
        return np.mean([r["test_accuracy"] for r in records if r["ensemble"] == ensemble and r["init"] == init])

    assert mean("centred", "variance") > mean("binary", "glorot") + 0.15
    for name in ("trainability.png", "trainability_gradients.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
    assert on_disk["provenance"]["arguments"]["epochs"] == 2 and report["records"] == records
    # a second run with the same --out computes nothing anew: every cell is read back
    cells = sorted((tmp_path / "cells").iterdir())
    stamps = [os.stat(p).st_mtime_ns for p in cells]
    again = script.main(args)
    assert [os.stat(p).st_mtime_ns for p in cells] == stamps
    assert [r["test_accuracy"] for r in again["records"]] == [r["test_accuracy"] for r in records]


def test_trainability_lenet_cells(tmp_path):
    """--models lenet5: one LeNet-5 cell per ensemble x init x seed, on the 8x8 digits, in the table and figure."""
    script = load_script("trainability")
    report = script.main(["--out", str(tmp_path), "--no-progress", "--ensembles", "centred", "--inits",
                          "variance,fan_in", "--models", "lenet5", "--seeds", "1", "--epochs", "1", "--n-train", "200"])
    records = report["records"]
    assert [(r["model"], r["init"], r["canvas"], r["depth"]) for r in records] == [
        ("lenet5", "variance", 8, 3), ("lenet5", "fan_in", 8, 3)]
    assert all(len(r["grad_norm_init"]) == 5 for r in records)  # C1, C3, C5, F6, logits
    assert {s["model"] for s in report["summary"]} == {"lenet5"}
    assert (tmp_path / "trainability.png").read_bytes()[:8] == PNG


def test_trainability_resnet_and_plain_cells(tmp_path):
    """--models resnet,plain: the ResNet preset and the same couplings without skips, gradients of
    every coupling inside the residual blocks included."""
    script = load_script("trainability")
    report = script.main(["--out", str(tmp_path), "--no-progress", "--ensembles", "centred", "--inits", "variance",
                          "--models", "resnet,plain", "--resnet-depth", "2", "--seeds", "1", "--epochs", "1",
                          "--n-train", "200"])
    records = {r["model"]: r for r in report["records"]}
    assert sorted(records) == ["plain", "resnet"]
    # stem + 2 blocks of 2 couplings + logits, in both (the shortcuts of equal widths are identities)
    assert len(records["resnet"]["grad_norm_init"]) == len(records["plain"]["grad_norm_init"]) == 6
    assert records["resnet"]["n_params"] == records["plain"]["n_params"]

"""experiments/rbm_exact.py: one seed in-process; its exact gradient against central differences."""

import json
import pathlib
import sys

import numpy as np

import hamiltonian_cnn as hc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402


def test_exact_gradient_is_the_derivative_of_the_exact_log_likelihood():
    script = load_script("rbm_exact")
    X = script.data()[::3]
    rbm = hc.RBM.build("shared", script.SHAPE, channels=2, kernel_size=2, seed=4)
    g = script.exact_gradient(rbm, X, script.all_inputs())
    J = rbm.params["J"].reshape(-1)
    for i in (0, 3, 7):
        old = J[i]
        J[i] = old + 1e-5
        up = rbm.log_likelihood(X)
        J[i] = old - 1e-5
        down = rbm.log_likelihood(X)
        J[i] = old
        assert np.isclose(g["J"].reshape(-1)[i], (up - down) / 2e-5, rtol=1e-5, atol=1e-7)
    assert script.relative_error(g, g) == 0.0


def test_one_seed_run(tmp_path):
    script = load_script("rbm_exact")
    report = script.main(["--seeds", "1", "--ais-chains", "20", "--ais-betas", "200", "--negatives", "300",
                          "--out", str(tmp_path), "--no-progress"])
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["records"] == report["records"] and len(report["records"]) == 1
    r = report["records"][0]
    assert r["training"]["build"]["pcd"] > r["training"]["build"]["before"]
    assert abs(r["ais"] - r["log_z"]) < 0.5 and r["ais_se"] > 0
    errors = r["gradient_relative_error"]
    assert errors["pcd1"] < errors["cd1"]
    assert (tmp_path / "rbm_exact.png").stat().st_size > 3000

"""experiments/relax_coupling.py: the relaxation run writes its numbers and figure, and what it measures holds."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import hamiltonian_cnn as hc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "relax_coupling.py"


def test_unshared_fraction_is_zero_on_the_shared_subspace_and_one_off_it():
    script = load_script("relax_coupling")
    model = hc.models.build("shared", (1, 12), 10, seed=0, dtype=np.float64)
    (i, coupling, shape, counts), *_ = script.shared_subspaces(model)
    local = model.untie()
    assert script.unshared_fraction(local.layers[i], coupling, shape, counts) < 1e-12
    assert script.unshared_fraction(model.to_full().layers[i], coupling, shape, counts) < 1e-12
    # a coupling orthogonal to every tied one: alternating signs over the sites of one tap
    J = local.layers[i].params["J"]
    J[...] = 0.0
    J[0, :, 0, 1] = np.where(np.arange(J.shape[1]) % 2 == 0, 1.0, -1.0)
    assert script.unshared_fraction(local.layers[i], coupling, shape, counts) == pytest.approx(1.0)


@pytest.mark.slow
def test_quick_run_writes_results_and_figure(tmp_path):
    script = load_script("relax_coupling")
    report = script.main(["--quick", "--targets", "full", "--no-progress", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["records"] == report["records"]
    assert (tmp_path / "relaxation.png").stat().st_size > 1000
    by_tw = {r["t_w"]: r for r in on_disk["records"]}
    assert set(by_tw) == {None, 0, 2, 8}
    assert by_tw[2]["accuracy_change_at_switch"] < 1e-6  # the embedded network computes the same function
    assert by_tw[8]["curves"]["unshared"][-1] == [0.0] * 4 and by_tw[2]["curves"]["unshared"][-1][0] > 0
    assert len(by_tw[2]["curves"]["test_accuracy"]) == 8


def test_bad_arguments():
    for args in (["--switch", "3,x"], ["--switch", "30"], ["--targets", "sparse"], ["--lr-after", "-1"]):
        out = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, args

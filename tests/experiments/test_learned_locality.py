"""experiments/learned_locality.py: the locality measures against hand computations, and the quick run."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "learned_locality.py"


def load_script():
    spec = importlib.util.spec_from_file_location("learned_locality_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_locality_measures_by_hand():
    script = load_script()
    J = np.zeros((1, 4, 1, 4))
    J[0, 0, 0, 0] = 1.0            # site 0: all weight at distance 0
    J[0, 1, 0, 3] = 2.0            # site 1: all weight at distance 2 (outside the window of 3)
    J[0, 2, 0, 1], J[0, 2, 0, 3] = 1.0, 1.0   # site 2: distance 1 and 1, both inside
    m = script.locality(J)          # site 3 has no weight: a dead site, left out of spread and inside
    assert m["spread"] == pytest.approx((0 + 2 + 1) / 3)
    assert m["inside"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["zeros"] == pytest.approx(12 / 16) and m["dead_sites"] == pytest.approx(0.25)
    uniform = script.uniform_reference(40, 40)
    assert uniform["inside"] < 0.1 and uniform["spread"] > 10


@pytest.mark.slow
def test_quick_run(tmp_path):
    script = load_script()
    script.main(["--quick", "--no-progress", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "receptive_fields.png").stat().st_size > 1000
    rows = {r["method"]: r for r in report["summary"]}
    assert set(rows) == {"full+adam", "full+beta_lasso", "local", "shared"}
    assert rows["shared"]["inside"]["mean"] == pytest.approx(1.0)
    assert rows["local"]["inside"]["mean"] == pytest.approx(1.0)
    assert rows["full+beta_lasso"]["zeros"]["mean"] > 0.5 > rows["full+adam"]["zeros"]["mean"]

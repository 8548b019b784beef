"""experiments/learned_locality.py: the locality measures against hand computations, and the quick run."""

import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402


def test_locality_measures_by_hand():
    script = load_script("learned_locality")
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
    script = load_script("learned_locality")
    script.main(["--quick", "--no-progress", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "receptive_fields.png").stat().st_size > 1000
    rows = {r["method"]: r for r in report["summary"]}
    assert set(rows) == {"full+adam", "full+beta_lasso", "local", "shared"}
    assert rows["shared"]["inside"]["mean"] == pytest.approx(1.0)
    assert rows["local"]["inside"]["mean"] == pytest.approx(1.0)
    assert rows["full+beta_lasso"]["zeros"]["mean"] > 0.5 > rows["full+adam"]["zeros"]["mean"]

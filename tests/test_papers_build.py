"""papers/build.py turns an experiment's results.json into the paper's results section."""

import importlib.util
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_writes_tables_from_results_json(tmp_path):
    results = tmp_path / "run"
    svc = load(ROOT / "experiments" / "sharing_vs_coupling.py", "svc_for_build")
    svc.main(["--sizes", "60,all", "--seeds", "2", "--epochs", "1", "--shifts", "0,1", "--no-progress",
              "--couplings", "shared,full", "--out", str(results)])
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load(ROOT / "papers" / "build.py", "paper_build")
    build.main(["--results", str(results / "results.json"), "--paper", str(paper)])
    text = paper.read_text()
    report = json.loads((results / "results.json").read_text())
    shared_full = report["summary"]["shared"]["original"][str(report["sizes"][-1])]
    assert f"{shared_full['test_accuracy']['mean']:.3f} ± {shared_full['test_accuracy']['std']:.3f}" in text
    assert f"{shared_full['n_params']:,}" in text
    assert "(figures/accuracy_vs_size.png)" in text
    assert (paper.parent / "figures" / "accuracy_vs_size.png").exists()
    assert json.loads((paper.parent / "data" / "sharing_vs_coupling.json").read_text()) == report
    # the markers survive, so the section can be rebuilt; everything outside them is unchanged
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert text.split("<!-- results:begin -->")[0] == original.split("<!-- results:begin -->")[0]
    assert text.split("<!-- results:end -->")[1] == original.split("<!-- results:end -->")[1]
    build.main(["--results", str(results / "results.json"), "--paper", str(paper)])
    assert paper.read_text() == text


def test_every_test_the_paper_cites_exists():
    """The write-up points each equation to a test: those tests must exist."""
    import re

    text = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(cited) >= 8
    for path, name in cited:
        source = (ROOT / path).read_text()
        assert f"def {name}(" in source, f"{path}::{name} is cited by the paper but missing"
    for relative in re.findall(r"`::(\w+)`", text):
        assert any(f"def {relative}(" in p.read_text() for p in (ROOT / "tests").rglob("test_*.py")), relative

"""papers/build.py turns an experiment's results.json into the paper's results section."""

import json
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from scripts import load_script  # noqa: E402


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A small sweep on two datasets, its provenance marked as a clean commit (the test tree may be dirty)."""
    results = tmp_path_factory.mktemp("run")
    svc = load_script("sharing_vs_coupling")
    svc.main(["--dataset", "digits,translated", "--sizes", "60,all", "--seeds", "2", "--epochs", "1", "--lrs", "0.01",
              "--no-progress", "--couplings", "shared,full", "--out", str(results)])
    report = json.loads((results / "results.json").read_text())
    report["provenance"]["git_commit"] = "0" * 40
    (results / "results.json").write_text(json.dumps(report))
    return results


def test_build_writes_tables_from_results_json(tmp_path, small_run):
    results = small_run
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    build.main(["--results", str(results / "results.json"), "--paper", str(paper)])
    text = paper.read_text()
    report = json.loads((results / "results.json").read_text())
    row = next(r for r in report["summary"] if (r["dataset"], r["coupling"], r["head"], r["shuffled"]) ==
               ("translated", "shared", "gap", False))
    acc, unseen = row["test_accuracy"], row["unseen_accuracy"]
    assert f"| shared | gap | {row['n_params']:,} | {acc['mean']:.3f} ± {acc['ci95']:.3f} | " \
           f"{unseen['mean']:.3f} ± {unseen['ci95']:.3f} |" in text
    diff = next(p["shared_minus"] for p in report["paired"] if (p["dataset"], p["versus"], p["shuffled"], p["metric"])
                == ("digits", "full", False, "test_accuracy") and p["n_train"] == max(r["n_train"] for r in
                                                                                       report["records"]
                                                                                       if r["dataset"] == "digits"))
    assert f"shared − full = {diff['mean']:+.3f} ± {diff['ci95']:.3f}" in text
    assert "### 8.1 Discussion" in text and "0" * 40 in text
    assert "(figures/unseen_positions.png)" in text
    assert (paper.parent / "figures" / "unseen_positions.png").exists()
    assert json.loads((paper.parent / "data" / "sharing_vs_coupling.json").read_text()) == report
    # the markers survive, so the section can be rebuilt; everything outside them is unchanged
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert text.split("<!-- results:begin -->")[0] == original.split("<!-- results:begin -->")[0]
    assert text.split("<!-- results:end -->")[1] == original.split("<!-- results:end -->")[1]
    build.main(["--results", str(results / "results.json"), "--paper", str(paper)])
    assert paper.read_text() == text


@pytest.mark.parametrize("commit", ["abc123-dirty", None])
def test_build_refuses_dirty_or_missing_commits(tmp_path, small_run, commit):
    report = json.loads((small_run / "results.json").read_text())
    report["provenance"]["git_commit"] = commit
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(report))
    paper = tmp_path / "hamiltonian_cnn.md"
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    with pytest.raises(SystemExit, match="dirty|no git commit"):
        build.main(["--results", str(bad), "--paper", str(paper)])
    assert paper.read_text() == (ROOT / "papers" / "hamiltonian_cnn.md").read_text()


def test_discussion_calls_a_difference_only_when_the_interval_excludes_zero():
    build = load_script("build", "papers")
    assert build.verdict({"mean": 0.05, "ci95": 0.02}).startswith("shared ahead")
    assert build.verdict({"mean": -0.05, "ci95": 0.02}).startswith("shared behind")
    assert "no difference" in build.verdict({"mean": 0.05, "ci95": 0.08})
    assert "no interval" in build.verdict({"mean": 0.05, "ci95": None})


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


def _clean(results_dir):
    report = json.loads((results_dir / "results.json").read_text())
    report["provenance"]["git_commit"] = "1" * 40
    (results_dir / "results.json").write_text(json.dumps(report))
    return report


def test_build_writes_the_relaxation_and_locality_sections(tmp_path):
    relax = load_script("relax_coupling")
    relax.main(["--epochs", "2", "--switch", "0,1,epochs", "--targets", "local", "--seeds", "2", "--no-progress",
                "--out", str(tmp_path / "relax")])
    locality = load_script("learned_locality")
    locality.main(["--epochs", "1", "--seeds", "2", "--no-progress", "--out", str(tmp_path / "locality")])
    relax_report, locality_report = _clean(tmp_path / "relax"), _clean(tmp_path / "locality")
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    build.main(["--relax", str(tmp_path / "relax" / "results.json"),
                "--locality", str(tmp_path / "locality" / "results.json"), "--paper", str(paper)])
    text = paper.read_text()
    cnn = next(r for r in relax_report["summary"] if r["t_w"] == 2)
    assert f"| local | 2 (never: the CNN) | {cnn['n_params']:,} | {build.fmt(cnn['final_test_accuracy'])} |" in text
    lasso = next(r for r in locality_report["summary"] if r["method"] == "full+beta_lasso")
    assert f"| full+beta_lasso | {lasso['n_params']:,} | {build.fmt(lasso['test_accuracy'])} |" in text
    assert "(figures/relaxation.png)" in text and (paper.parent / "figures" / "receptive_fields.png").exists()
    # everything outside the two sections (§8's results included) is untouched
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert text.split("<!-- relax:begin -->")[0] == original.split("<!-- relax:begin -->")[0]
    assert text.split("<!-- locality:end -->")[1] == original.split("<!-- locality:end -->")[1]


def test_build_writes_the_classic_networks_section(tmp_path):
    counting = load_script("parameter_counting")
    counting.main(["--quick", "--no-progress", "--out", str(tmp_path / "counting")])
    report = _clean(tmp_path / "counting")
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    build.main(["--counting", str(tmp_path / "counting" / "results.json"), "--paper", str(paper)])
    text = paper.read_text()
    section = text.split("<!-- classic:begin -->")[1].split("<!-- classic:end -->")[0]
    assert "27/49 = 55.1%" in section and "18/25 = 72.0%" in section
    assert "3 x 3x3 couplings see 7×7 input sites by (14) and 7×7 by the response" in section
    assert "the recursion and the impulse response agree" in section
    five = report["classic"]["inception_bottleneck"]["branches"][1]
    assert f"| {five['direct_weights']:,} | {five['bottleneck_weights']:,} | {five['ratio']:.3f} |" in section
    vgg = report["classic"]["preset_params"]["digits/vgg/shared"]["n_params"]
    assert f"| digits | vgg | {vgg:,} |" in section
    acc = report["classic"]["preset_accuracy"]["resnet/shared"]
    assert f"| resnet | shared | {acc['n_params']:,} | {acc['test_accuracy'][0]:.3f} |" in section
    assert (paper.parent / "data" / "parameter_counting.json").exists()
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert text.split("<!-- classic:begin -->")[0] == original.split("<!-- classic:begin -->")[0]
    assert text.split("<!-- classic:end -->")[1] == original.split("<!-- classic:end -->")[1]


def test_build_writes_the_rbm_and_generative_sections(tmp_path):
    exact = load_script("rbm_exact")
    exact.main(["--seeds", "2", "--ais-chains", "10", "--ais-betas", "100", "--negatives", "60", "--no-progress",
                "--out", str(tmp_path / "exact")])
    generative = load_script("generative_sharing")
    generative.main(["--datasets", "cat", "--sizes", "40,80", "--steps", "10", "--lrs", "0.1", "--sklearn-lrs", "0.1",
                     "--seeds", "2", "--ais-chains", "5", "--ais-betas", "30", "--sample-steps", "2", "--no-progress",
                     "--out", str(tmp_path / "generative")])
    exact_report, generative_report = _clean(tmp_path / "exact"), _clean(tmp_path / "generative")
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    build.main(["--rbm", str(tmp_path / "exact" / "results.json"),
                "--generative", str(tmp_path / "generative" / "results.json"), "--paper", str(paper)])
    text = paper.read_text()
    t = exact_report["summary"]["training"]["build"]
    assert f"| {build.fmt2(t['before'])} | {build.fmt2(t['cd1'])} | {build.fmt2(t['pcd'])} |" in text
    shared = next(s for s in generative_report["summary"] if s["family"] == "shared" and s["n_train"] == 80)
    assert f"| cat | shared | {shared['n_params']:,} | 0.1 |" in text and build.fmt2(shared) in text
    assert (paper.parent / "figures" / "samples.png").exists() and (paper.parent / "figures" / "rbm_exact.png").exists()
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert text.split("<!-- rbm:begin -->")[0] == original.split("<!-- rbm:begin -->")[0]
    assert text.split("<!-- generative:end -->")[1] == original.split("<!-- generative:end -->")[1]


def test_build_writes_the_skip_comparison(tmp_path):
    train = load_script("trainability")
    train.main(["--models", "resnet,plain", "--resnet-depth", "2", "--ensembles", "centred", "--inits", "variance",
                "--seeds", "2", "--epochs", "1", "--n-train", "120", "--no-progress", "--out", str(tmp_path / "skips")])
    report = _clean(tmp_path / "skips")
    paper = tmp_path / "paper" / "hamiltonian_cnn.md"
    paper.parent.mkdir()
    shutil.copyfile(ROOT / "papers" / "hamiltonian_cnn.md", paper)
    build = load_script("build", "papers")
    build.main(["--skips", str(tmp_path / "skips" / "results.json"), "--paper", str(paper)])
    section = paper.read_text().split("<!-- skips:begin -->")[1].split("<!-- skips:end -->")[0]
    resnet = next(s for s in report["summary"] if s["model"] == "resnet")
    plain = next(s for s in report["summary"] if s["model"] == "plain")
    accs = ", ".join(f"{r['test_accuracy']:.3f}" for r in sorted(
        (r for r in report["records"] if r["model"] == "plain"), key=lambda r: r["seed"]))
    assert "| no skips | centred | variance | 2 | " in section and f"| {accs} | {build.fmt(plain)} |" in section
    assert f"with skips against without: {build.fmt(resnet)} against {build.fmt(plain)}" in section
    assert (paper.parent / "data" / "trainability_skips.json").exists()
    original = (ROOT / "papers" / "hamiltonian_cnn.md").read_text()
    assert paper.read_text().split("<!-- skips:begin -->")[0] == original.split("<!-- skips:begin -->")[0]
    with pytest.raises(SystemExit):
        build.render_skips({"provenance": {}, "summary": [], "records": []})

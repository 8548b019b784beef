"""The README's tour runs as written, and the main-job script runs from a fresh process."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_tour_runs(tmp_path, monkeypatch):
    src = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", src, re.S)
    assert len(blocks) >= 2, "README lost its python blocks"
    monkeypatch.chdir(tmp_path)  # the tour saves a model file
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["shared"].n_params == 40
    assert namespace["model"].n_params > 0 and (tmp_path / "full.npz").exists()


def test_readme_commands_name_the_test_command_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest' in readme
    assert 'pip install -e ".[test]" && python -m pytest' in ci


def test_derivation_check_script():
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "derivation_check.py"), "--sites", "16"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "max |enum - closed|" in out
    rates = re.findall(r"= ([0-9.e+]+) per second", out)
    assert rates and float(rates[0]) > 0
    for value in re.findall(r"max \|enum - closed\| = ([0-9.e+-]+)", out):
        assert float(value) < 1e-12

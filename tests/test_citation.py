"""CITATION.cff is valid and the version lives in one place."""

import pathlib
import re
import shutil
import subprocess
import sys

import hamiltonian_cnn as hc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_citation_cff_validates():
    exe = shutil.which("cffconvert") or str(pathlib.Path(sys.executable).parent / "cffconvert")
    out = subprocess.run([exe, "--validate", "-i", str(ROOT / "CITATION.cff")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_version_is_single_sourced():
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", cff, re.M).group(1) == hc.__version__
    readme = (ROOT / "README.md").read_text()
    assert f"version = {{{hc.__version__}}}" in readme  # the BibTeX entry
    assert 'version = { attr = "hamiltonian_cnn._version.__version__" }' in (ROOT / "pyproject.toml").read_text()

"""Sphinx configuration: API reference from the docstrings, the paper, the notebooks executed at
build time (myst-nb, cached), and how the kernels work.

    pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import hamiltonian_cnn  # noqa: E402

# The paper and its notebooks live in papers/; Sphinx reads sources inside docs/ only, so they are
# copied into docs/_generated/ (git-ignored) at every build.
GENERATED = os.path.join(HERE, "_generated")
shutil.rmtree(GENERATED, ignore_errors=True)
shutil.copytree(os.path.join(ROOT, "papers", "notebooks"), os.path.join(GENERATED, "notebooks"),
                ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
shutil.copytree(os.path.join(ROOT, "papers", "figures"), os.path.join(GENERATED, "figures"))
shutil.copyfile(os.path.join(ROOT, "papers", "hamiltonian_cnn.md"), os.path.join(GENERATED, "paper.md"))

project = "hamiltonian_cnn"
author = "hamiltonian_cnn developers"
release = hamiltonian_cnn.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
numpydoc_show_class_members = False
numpydoc_validation_checks = set()

# the notebooks run at build time; a cache keeps unchanged ones from running again
nb_execution_mode = "cache"
nb_execution_cache_path = os.path.join(HERE, "_build", ".jupyter_cache")
nb_execution_timeout = 900
nb_execution_raise_on_error = True
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

html_theme = "alabaster"
html_title = "hamiltonian_cnn"


# The docstrings are written for the terminal (``help()``): shapes such as (N, C, *sites) and norms
# such as |J| read as reStructuredText markup. Outside ``literals`` they are escaped here.
def _escape(line: str) -> str:
    import re

    parts = line.split("``")
    for i in range(0, len(parts), 2):  # the even parts lie outside ``literals``
        parts[i] = re.sub(r"(?<![\\*])\*(?=[^\s*])", r"\\*", parts[i]).replace("|", r"\|")
    return "``".join(parts)


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = [_escape(line) for line in lines]


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing setters (set_*_request) are its API, documented there
    return True if name.endswith("_request") else skip


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("autodoc-skip-member", _skip_member)

"""The scripts under test: experiments/*.py and papers/build.py loaded as modules, each call a fresh one."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script(name, folder="experiments"):
    """A fresh module from ``ROOT/folder/name.py`` (not entered in sys.modules, so tests do not share state)."""
    path = ROOT / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

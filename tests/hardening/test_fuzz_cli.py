"""Fuzz the experiment command lines: every bad option value ends in a usage error (exit status 2)
that names the option, before any work starts (only ``parse_args`` runs here)."""

import pathlib
import sys

import pytest
from fuzz_harness import COUNTS
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from scripts import load_script  # noqa: E402

SCRIPTS = ("sharing_vs_coupling", "boltzmann_ensembles", "parameter_counting", "receptive_field", "learned_filters",
           "benchmark_kernels", "derivation_check", "generative_sharing", "rbm_exact")
_MODULES = {}


def script(name):
    if name not in _MODULES:
        _MODULES[name] = load_script(name)
    return _MODULES[name]


NOT_A_FOLDER = ROOT / "pyproject.toml"  # an existing file: not usable as an output folder
COMMON_OUT = [str(NOT_A_FOLDER), str(NOT_A_FOLDER / "sub"), "/proc/hamiltonian_cnn_cannot_create_this", ""]
SEEDS = ["-1", "-7", "x", "1.5", ""]

# script: {option: [bad values]}
BAD = {
    "sharing_vs_coupling": {
        "--sizes": ["abc", "", "0", "-5", "10,,20", "1.5", "all,x"], "--seeds": ["0", "-1", "x"],
        "--seed": SEEDS, "--epochs": ["0", "-3", "1e3"], "--lrs": ["a", "-1", "0", "nan", "inf", "0.1,,x", ""],
        "--couplings": ["", "tied", "shared,tied"], "--dataset": ["mnist", "", "digits,nope"],
        "--workers": ["0", "-2", "two"],
        "--executor": ["ray"], "--out": COMMON_OUT,
    },
    "boltzmann_ensembles": {
        "--seed": SEEDS, "--samples": ["0", "-1"], "--scale": ["nan", "inf", "-1", "0", "x"],
        "--fd-step": ["0", "nan", "-1e-5", "inf"], "--rate-units": ["1", "27", "30", "0"],
        "--sweep-units": ["1", "21"], "--points": ["1", "0", "-4"], "--out": COMMON_OUT,
    },
    "parameter_counting": {
        "--side": ["0", "-10"], "--window": ["0", "-1", "2000"], "--kernels": ["0", "-5"],
        "--small-side": ["2", "41", "x"], "--seed": SEEDS, "--out": COMMON_OUT,
        "--accuracy-seeds": ["-1", "x"], "--accuracy-families": ["", "dense", "shared,x"],
    },
    "receptive_field": {"--channels": ["0", "-1"], "--outputs": ["0", "-3"], "--seed": SEEDS, "--out": COMMON_OUT},
    "learned_filters": {
        "--channels": ["0", "-1"], "--kernel": ["0", "9", "-3"], "--padding": ["x", "-1", "1.5", "3"],
        "--epochs": ["0", "-2"], "--lr": ["0", "-1", "nan", "inf", "x"], "--seeds": ["0", "-1"], "--seed": SEEDS,
        "--optimizer": ["rms", ""], "--out": COMMON_OUT,
    },
    "benchmark_kernels": {
        "--repeats": ["0", "-1"], "--threads": ["0", "-1", "100000"], "--seed": SEEDS,
        "--out": COMMON_OUT[:-1],  # a pathlib.Path option: '' is the current folder
    },
    "derivation_check": {"--sites": ["0", "-3", "27", "x"], "--seed": SEEDS},
    "generative_sharing": {
        "--datasets": ["", "mnist", "cat,x"], "--families": ["", "tied"], "--sizes": ["", "5", "x", "10,,-1"],
        "--steps": ["0", "-1", "x"], "--lrs": ["", "0", "-1", "nan", "inf", "x"], "--sklearn-lrs": ["0", "nan"],
        "--ais-chains": ["1", "0"], "--ais-betas": ["9", "-1"], "--sample-steps": ["-1"], "--seeds": ["0", "-1"],
        "--seed": SEEDS, "--out": COMMON_OUT,
    },
    "rbm_exact": {"--seeds": ["0", "-1"], "--ais-chains": ["1"], "--ais-betas": ["9"], "--negatives": ["29", "x"],
                  "--seed": SEEDS, "--out": COMMON_OUT},
}
CASES = [(name, option, value) for name in SCRIPTS for option, values in BAD[name].items() for value in values]


@settings(max_examples=len(CASES) * 2)
@given(case=st.sampled_from(CASES))
def test_bad_options_are_usage_errors_naming_the_option(case):
    name, option, value = case
    group = "experiment CLIs"
    COUNTS[group][0] += 1
    module = script(name)
    argv = [option, value]
    if option == "--padding" and value == "3":
        argv += ["--kernel", "3"]  # padding as wide as the window
    import contextlib
    import io

    err = io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(err):
        module.parse_args(argv)
    message = err.getvalue()
    assert info.value.code == 2, message
    assert option in message, message
    COUNTS[group][1] += 1


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as info:
        script(name).parse_args(["--help"])
    assert info.value.code == 0
    assert "--seed" in capsys.readouterr().out

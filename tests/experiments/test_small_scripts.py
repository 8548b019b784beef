"""The one-question scripts: boltzmann_ensembles, parameter_counting, receptive_field, learned_filters.

Each script's ``main`` runs in-process in --quick mode (compiled kernels are reused) and its
results.json must hold the numbers the derivation predicts.
"""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from scripts import load_script  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def run_quick(name, out, *extra):
    report = load_script(name).main(["--quick", "--out", str(out), "--no-progress", *extra])
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["provenance"]["seed"] == 0
    assert on_disk["provenance"]["arguments"]["quick"] is True
    assert on_disk["provenance"]["wall_time"] > 0
    return report, on_disk


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5000, path


@pytest.fixture(scope="module")
def boltzmann(tmp_path_factory):
    out = tmp_path_factory.mktemp("boltzmann")
    return out, run_quick("boltzmann_ensembles", out)[1]


def test_boltzmann_enumeration_matches_closed_forms(boltzmann):
    out, r = boltzmann
    assert_png(out / "ensembles.png")
    assert_png(out / "enumeration_error.png")
    done = [s for s in r["systems"] if "skipped" not in s]
    assert {s["ensemble"] for s in done} == {"binary", "spin", "onehot"}
    for s in done:
        units = math.prod(s["shape"])
        if s["ensemble"] == "onehot":
            assert s["configurations"] == math.prod(s["shape"][1:]) ** s["shape"][0]
        else:
            assert s["configurations"] == 2 ** units
        tol = 1e-12
        assert s["marginal_max_error"] < tol, s
        assert s["log_z_max_error"] < 10 * tol, s
        assert s["dlogz_dh_complex_step_max_error"] < tol, s
        assert s["closed_form_vs_longdouble_log_z_error"] < 1e-12, s
        if "bruteforce_marginal_max_error" in s:  # numpy, one row per configuration
            assert s["bruteforce_marginal_max_error"] < 1e-12 and s["bruteforce_log_z_max_error"] < 1e-12, s
            assert s["dlogz_dh_finite_difference_max_error"] < 1e-6, s
    # systems beyond 2**26 configurations are refused, not silently truncated
    assert any(s["configurations"] > 2 ** 26 and "skipped" in s for s in r["systems"])
    assert max(s["configurations"] for s in done) >= 2 ** 20


def test_boltzmann_sweep_and_rate(boltzmann):
    _, r = boltzmann
    for name, activation in (("binary", "sigmoid"), ("spin", "tanh"), ("onehot", "softmax")):
        sweep = r["sweep"][name]
        h = np.array(sweep["h"])
        enumerated = np.array(sweep["enumerated"])
        assert r["per_ensemble"][name]["activation"] == activation
        assert sweep["max_error"] < 1e-12
        assert np.all(np.diff(enumerated) > 0)  # <d_0> rises with its own field
        if name == "binary":
            np.testing.assert_allclose(enumerated, 1 / (1 + np.exp(-h)), atol=1e-14)
        elif name == "spin":
            np.testing.assert_allclose(enumerated, np.tanh(h), atol=1e-14)
        rate = r["rate"][name]
        assert rate["configurations"] >= 2 ** 18 and rate["configurations_per_second"] > 0
        assert rate["log_z_error"] < 1e-12


def test_parameter_counting(tmp_path):
    _, r = run_quick("parameter_counting", tmp_path)
    assert_png(tmp_path / "parameters_vs_side.png")
    w = r["seed002"]["weights"]
    assert r["seed002"]["hidden_units"] == 10 ** 6
    assert w["full"] == 10 ** 12
    assert w["local"] == 10 ** 8
    assert w["shared"] == 10 ** 2
    assert w["shared_100_kernels"] == 10 ** 4
    assert r["seed002"]["with_bias"]["full"] == 10 ** 12 + 10 ** 6
    lenet, vgg = r["tables"]["lenet5"], r["tables"]["vgg16"]
    assert [row["params"] for row in lenet["layers"]] == [156, 0, 2416, 0, 48120, 10164, 850]
    assert lenet["total"] == 61_706 and vgg["total"] == 138_357_544
    assert lenet["built_n_params"] == lenet["families_by_formula"]
    assert lenet["built_n_params"]["shared"] < lenet["built_n_params"]["local"] < lenet["built_n_params"]["full"]
    for row in r["small_sizes"]:
        assert row["formula"] == row["coupling_n_params"] == row["layer_n_params"], row
        assert row["field_max_gap"] < 1e-10
    first = r["small_sizes"][0]  # 1 -> 1 channel, 5x5 window, 28x28 -> 24x24
    assert first["formula"] == {"shared": 26, "local": 24 * 24 * 26, "full": 24 * 24 * (28 * 28 + 1)}
    # seed 002: two 3x3 see 5x5 with 18/25 of its weights, three see 7x7 with 27/49 = 55 %
    two, three = r["classic"]["stacked_windows"]
    assert two["rf_impulse_stack"] == two["rf_impulse_single"] == [5, 5] and two["rf_recursion_stack"] == 5
    assert three["rf_impulse_stack"] == three["rf_impulse_single"] == [7, 7] and three["rf_recursion_stack"] == 7
    assert math.isclose(two["ratio"], 18 / 25) and round(three["ratio"], 2) == 0.55
    assert all(c["stack_weights"] * 49 == c["single_weights"] * 27 for c in three["channels"])
    assert two["match"] and three["match"]
    # the Inception bottleneck (module 3a): 5x5 192 -> 32 through 16: 192*16 + 25*16*32 against 25*192*32
    five = r["classic"]["inception_bottleneck"]["branches"][1]
    assert five["bottleneck_weights"] == 192 * 16 + 25 * 16 * 32 and five["direct_weights"] == 25 * 192 * 32
    assert five["layers_match"] and math.isclose(five["ratio"], five["ratio_formula"])
    assert five["bottleneck_mult_adds"] == five["bottleneck_weights"] * 28 * 28
    counts = r["classic"]["preset_params"]
    for data in ("digits", "mnist1d", "canvas32"):
        for preset in ("vgg", "resnet", "inception"):
            n = {f: counts[f"{data}/{preset}/{f}"]["n_params"] for f in ("shared", "local", "full")}
            assert n["shared"] < n["local"] < n["full"], (data, preset, n)
    assert counts["digits/lenet5/shared"]["n_params"] == 61_706
    assert all(v["formula_matches"] for v in counts.values() if "formula_matches" in v)
    acc = r["classic"]["preset_accuracy"]
    assert set(acc) == {"lenet5/shared", "vgg/shared", "resnet/shared", "inception/shared"}
    assert all(0.0 <= v["mean"] <= 1.0 and v["n_params"] > 0 for v in acc.values())


def test_impulse_response_sees_the_receptive_field():
    from hamiltonian_cnn import nn

    pc = load_script("parameter_counting")
    layers = [nn.SharedConv2d(1, 1, 3, padding="same", activation=None, bias=False, dtype=np.float64, seed=s)
              for s in range(2)]
    for layer in layers:
        layer.params["J"][...] = 1.0
    assert pc.impulse_extent(layers, 9) == [5, 5]
    layers[1].params["J"][...] = 0.0
    layers[1].params["J"][0, 0, 1, 1] = 1.0  # the second layer an identity: one 3x3 window's reach
    assert pc.impulse_extent(layers, 9) == [3, 3]


def test_receptive_field_measured_equals_formula(tmp_path):
    _, r = run_quick("receptive_field", tmp_path)
    assert_png(tmp_path / "receptive_field.png")
    assert r["all_match"]
    for s in r["stacks"]:
        for activation in ("linear", "sigmoid"):
            m = s[f"measured_{activation}"]
            assert m["size"] == s["formula"], s
            assert [m["rows"][0], m["cols"][0]] == s["expected_start"], s
            # the input is larger than the window, so the measurement could have come out larger
            assert all(n > f for n, f in zip(s["input_sites"], s["formula"])), s
    names = {s["stack"] for s in r["stacks"]}
    assert any("dilation" in n for n in names) and any("/s2" in n for n in names)
    claims = r["seed002"]["claims"]
    assert claims["two_3x3_see"] == [5, 5] and claims["three_3x3_see"] == [7, 7]
    assert claims["percent"] == 55 and claims["holds"]
    for row in r["seed002"]["parameters"]:
        assert row["ratio_weights"] == pytest.approx(27 / 49, abs=1e-15)
        if "layers_ratio_weights" in row:
            assert row["layers_ratio_weights"] == pytest.approx(27 / 49, abs=1e-15)
            assert row["layers_match_formula"]


def test_learned_filters(tmp_path):
    _, r = run_quick("learned_filters", tmp_path)
    assert_png(tmp_path / "filters.png")
    assert_png(tmp_path / "sharing.png")
    s = r["summary"]
    for name in ("shared", "local", "local_tied"):
        assert 0.7 < s[name]["test_accuracy"] <= 1.0
    assert s["shared"]["first_layer_params"] == 8 * 9 + 8
    assert s["local"]["first_layer_params"] == 6 * 6 * (8 * 9 + 8)
    # the tied local network starts as the shared one: same logits, zero unshared fraction
    assert s["tied_start_max_logit_gap"] < 1e-4
    assert s["local_tied"]["init"]["unshared_fraction"] < 1e-12
    assert s["local_tied"]["init"]["mean_correlation"] == pytest.approx(1.0)
    assert abs(s["local"]["init"]["unshared_fraction"] - s["local"]["iid_unshared_fraction"]) < 0.05
    assert s["local_tied"]["trained"]["unshared_fraction"] > 0  # training untied it
    values = [v for run in ("local", "local_tied") for when in ("init", "trained")
              for v in s[run][when].values()]
    values += [s["tied_vs_shared_filter_correlation"], s["local_best_match_to_shared"]]
    assert np.all(np.isfinite(values))
    couplings = np.load(tmp_path / "couplings.npz")
    assert couplings["local"].shape == (8, 6, 6, 1, 3, 3) and couplings["shared"].shape == (8, 1, 3, 3)


def test_sharing_stats_on_known_couplings():
    stats = load_script("learned_filters").sharing_stats
    rng = np.random.default_rng(0)
    window = rng.normal(size=(2, 1, 3, 3))
    tied = np.broadcast_to(window[:, None, None], (2, 4, 5, 1, 3, 3)).copy()
    s = stats(tied)
    assert np.allclose(s["unshared_fraction"], 0, atol=1e-20) and np.allclose(s["mean_correlation"], 1)
    noise = rng.normal(size=tied.shape)
    noise -= noise.mean(axis=(1, 2), keepdims=True)  # orthogonal to the tied subspace
    s = stats(tied + noise)
    expected = (noise ** 2).sum(axis=(1, 2, 3, 4, 5)) / ((tied + noise) ** 2).sum(axis=(1, 2, 3, 4, 5))
    np.testing.assert_allclose(s["unshared_fraction"], expected, rtol=1e-12)


def test_script_help_runs_as_a_subprocess():
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "parameter_counting.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "--quick" in out.stdout and "seed 002" in out.stdout.lower()

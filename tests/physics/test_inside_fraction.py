"""inside_fraction(geometry) against a brute-force count over every output site and window tap."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hamiltonian_cnn.physics.formulas import inside_fraction, make_geometry


def brute_force(in_sites, kernel, stride, pads, dilation):
    """(taps inside the input) / (output sites x taps), visiting each pair; also the output sites."""
    nd = len(in_sites)
    out_sites = tuple((in_sites[a] + pads[a][0] + pads[a][1] - (kernel[a] - 1) * dilation[a] - 1) // stride[a] + 1
                      for a in range(nd))
    inside = total = 0
    for site in itertools.product(*(range(m) for m in out_sites)):
        for tap in itertools.product(*(range(k) for k in kernel)):
            total += 1
            idx = [stride[a] * site[a] + dilation[a] * tap[a] - pads[a][0] for a in range(nd)]
            inside += all(0 <= idx[a] < in_sites[a] for a in range(nd))
    return inside / total, out_sites


def as_tuple(value, nd):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


def explicit_pads(padding, in_sites, kernel, stride, dilation):
    """(start, end) per axis, worked out here from the definitions of the modes."""
    pads = []
    for n, k, s, d in zip(in_sites, kernel, stride, dilation):
        span = (k - 1) * d + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "full":
            pads.append((span - 1, span - 1))
        elif padding == "same":  # the smallest total giving ceil(n / s) outputs, the extra one at the end
            total = 0
            while (n + total - span) // s + 1 < math.ceil(n / s) or n + total < span:
                total += 1
            pads.append((total // 2, total - total // 2))
        else:
            pads.append((padding, padding))
    return tuple(pads)


@st.composite
def geometries(draw):
    nd = draw(st.sampled_from([1, 2]))
    in_sites = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = draw(st.one_of(st.integers(0, 4), st.sampled_from(["same", "valid", "full"])))
    return in_sites, kernel, stride, padding, dilation


@settings(max_examples=80, deadline=None)
@given(geometries())
def test_inside_fraction_matches_brute_force(case):
    in_sites, kernel, stride, padding, dilation = case
    pads = explicit_pads(padding, in_sites, kernel, stride, dilation)
    spans_fit = all(n + p0 + p1 >= (k - 1) * d + 1 for n, (p0, p1), k, d in zip(in_sites, pads, kernel, dilation))
    if not spans_fit:
        with pytest.raises(ValueError):
            make_geometry(in_sites, kernel, stride, padding, dilation)
        assume(False)
    geo = make_geometry(in_sites, kernel, stride, padding, dilation)
    expected, out_sites = brute_force(in_sites, kernel, stride, pads, dilation)
    if padding == "same":
        assert geo.out_sites == tuple(math.ceil(n / s) for n, s in zip(in_sites, stride))
    assert geo.padding == pads and geo.out_sites == out_sites
    assert inside_fraction(geo) == pytest.approx(expected, rel=1e-12, abs=0)
    assert 0.0 <= inside_fraction(geo) <= 1.0
    if padding in (0, "valid"):
        assert inside_fraction(geo) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(1, 3))
def test_inside_fraction_with_asymmetric_pairs(h, w, kh, kw, a0, a1, b0, b1, s):
    pads = ((a0, a1), (b0, b1))
    assume(h + a0 + a1 >= kh and w + b0 + b1 >= kw)
    geo = make_geometry((h, w), (kh, kw), s, pads, 1)
    expected, out_sites = brute_force((h, w), (kh, kw), (s, s), pads, (1, 1))
    assert geo.padding == pads and geo.out_sites == out_sites
    assert inside_fraction(geo) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "sites, kernel, stride, padding, dilation, expected",
    [
        ((1, 1), 3, 1, "same", 1, 1 / 9),
        ((1,), 3, 1, "same", 1, 1 / 3),
        ((1, 1), 5, 1, "same", 1, 1 / 25),
        ((8, 8), 3, 1, "valid", 1, 1.0),
        ((8, 8), 3, 1, 0, 1, 1.0),
        ((8, 8), 3, 1, "same", 1, (22 / 24) ** 2),      # each axis: 8 sites x 3 taps, 2 on padding
        ((5,), 3, 1, 1, 1, 13 / 15),
        ((4, 4), 3, 1, 1, 1, (10 / 12) ** 2),
        ((2, 2), 3, 1, "same", 1, (4 / 6) ** 2),
        ((3,), 2, 1, "full", 1, 6 / 8),                  # 4 windows x 2 taps, the two ends half outside
        ((6,), 3, 2, "same", 2, 7 / 9),                  # span 5, padding (1, 2): taps -1 and 7 outside
        ((4,), 1, 3, [(0, 2)], 1, 1.0),                  # sites 0 and 3: the padding at the end is never read
        ((4,), 1, 3, [(2, 0)], 1, 0.5),                  # sites -2 and 1
    ],
)
def test_inside_fraction_known_values(sites, kernel, stride, padding, dilation, expected):
    geo = make_geometry(sites, kernel, stride, padding, dilation)
    nd = len(sites)
    brute, _ = brute_force(sites, as_tuple(kernel, nd), as_tuple(stride, nd), geo.padding, as_tuple(dilation, nd))
    assert brute == pytest.approx(expected, rel=1e-12)
    assert inside_fraction(geo) == pytest.approx(expected, rel=1e-12)


def test_inside_fraction_is_what_the_variance_init_divides_by():
    """A window with every tap outside but the centre: fan_in * inside_fraction = 1 tap on average."""
    geo = make_geometry((1, 1), 3, 1, "same", 1)
    assert geo.out_sites == (1, 1) and geo.padding == ((1, 1), (1, 1))
    assert 9 * inside_fraction(geo) == pytest.approx(1.0)
    assert 4 / math.sqrt(inside_fraction(geo)) == pytest.approx(12.0)
    assert np.isclose(inside_fraction(make_geometry((7, 3), (2, 3), (2, 1), "valid", (3, 1))), 1.0)

"""The paraxial model's Gaussian averages and mean-field recursion against docs/theory.md §1.

References: Poole et al. 2016 (length and correlation maps), Schoenholz et al. 2017 (χ₁, depth
scales, critical line), Cho & Saul 2009 (arc-cosine kernel).
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import integrate, special

from netlens.paraxial import gaussian, meanfield
from netlens.paraxial.gaussian import correlation_map, moments, slope_correlation
from netlens.paraxial.meanfield import (chi1, critical_layer_sigma_w2, critical_sigma_w2, depth_scales,
                                        fixed_point_q)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- gaussian.py

# docs/theory.md's table at z ~ N(0, 1): (E[φ], E[φ²], E[φ'²]).
# selu's E[φ'²] is 1.071575, exact from the closed form tested below; the often-quoted 1.07161 is 3e-5 high.
TABLE = {
    "identity": (0.0, 1.0, 1.0),
    "relu": (0.39894, 0.5, 0.5),
    "tanh": (0.0, 0.39429, 0.46440),
    "gelu": (0.28209, 0.42522, 0.45585),
    "silu": (0.20662, 0.35578, 0.37948),
    "elu": (0.16052, 0.64495, 0.66810),
    "selu": (0.0, 1.0, 1.07157),
    "sigmoid": (0.5, 0.29338, 0.04484),
}


@pytest.mark.parametrize("name", TABLE)
def test_activation_table_at_unit_variance(name):
    m = moments(name, 1.0)
    assert (m.mean, m.power, m.slope) == pytest.approx(TABLE[name], abs=1e-5)


def test_selu_slope_agrees_with_theory_md_to_its_precision():
    assert moments("selu", 1.0).slope == pytest.approx(1.07161, rel=1e-4)


@pytest.mark.parametrize("q", [0.0, 0.1, 1.0, 7.0, 1e6])
def test_relu_closed_forms_are_homogeneous(q):
    m = moments("relu", q)
    assert m.mean == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-15, abs=1e-300)
    assert m.power == pytest.approx(q / 2, rel=1e-15)
    assert (m.slope, m.slope_var) == (0.5, 1.0)


@pytest.mark.parametrize("a", [0.01, 0.2, 1.0])
def test_leaky_relu_closed_forms(a):
    m = moments("leaky_relu", 3.0, slope=a)
    assert m.mean == pytest.approx((1 - a) * math.sqrt(3.0 / (2 * math.pi)))
    assert m.power == pytest.approx((1 + a * a) * 3.0 / 2)
    assert m.slope == pytest.approx((1 + a * a) / 2)
    # φ'² is 1 or a² with probability 1/2 each
    assert m.slope_var == pytest.approx(((1 - a * a) / (1 + a * a)) ** 2)


def test_slope_var_is_one_for_relu_and_zero_for_identity():
    assert moments("relu", 2.0).slope_var == 1.0
    assert moments("identity", 2.0).slope_var == 0.0
    assert moments("leaky_relu", 1.0).slope_var == pytest.approx(0.95, rel=0.1)  # default slope 0.01


@pytest.mark.parametrize("q", [0.0, 1e-4, 1.0, 25.0, 1e4])
def test_quadrature_is_exact_across_the_relu_kink(q):
    # elu with alpha = 0 is relu, but goes through the split quadrature rather than the closed form
    # (at q = 0 the rule stands in a 1e-150 standard deviation to keep the sides of the kink apart)
    quad, exact = moments("elu", q, alpha=0.0), moments("relu", q)
    assert quad.mean == pytest.approx(exact.mean, rel=1e-12, abs=1e-140)
    assert quad.power == pytest.approx(exact.power, rel=1e-12, abs=1e-140)
    assert (quad.slope, quad.slope_var) == pytest.approx((exact.slope, exact.slope_var), rel=1e-12)


@pytest.mark.parametrize("q", [0.01, 1.0, 4.0, 100.0])
def test_elu_family_matches_its_closed_form(q):
    # E[e^{kz}; z < 0] = e^{k²q/2}·Φ(−k√q) gives elu's moments exactly, at any q
    def neg_exp(k):
        return math.exp(k * k * q / 2 + special.log_ndtr(-k * math.sqrt(q)))

    elu = moments("elu", q)
    assert elu.mean == pytest.approx(math.sqrt(q / (2 * math.pi)) + neg_exp(1) - 0.5, rel=1e-10)
    assert elu.slope == pytest.approx(0.5 + neg_exp(2), rel=1e-10)
    selu = moments("selu", q)
    a, s = gaussian.SELU_ALPHA, gaussian.SELU_SCALE
    assert selu.slope == pytest.approx(s * s * (0.5 + a * a * neg_exp(2)), rel=1e-10)


@pytest.mark.parametrize("q", [4.0, 25.0])
def test_smooth_quadrature_holds_at_large_q(q):
    # plain 150-node Gauss–Hermite is off by 4e-6 at q = 4 and 10% at q = 25 here
    def integrand(z):
        return math.cosh(z) ** -4 * math.exp(-z * z / (2 * q)) / math.sqrt(2 * math.pi * q)

    reference = integrate.quad(integrand, -40, 40, points=[0], epsabs=1e-14, limit=200)[0]
    assert moments("tanh", q).slope == pytest.approx(reference, rel=1e-10)


def test_zero_variance_is_the_small_variance_limit():
    assert moments("tanh", 0.0).slope == 1.0
    assert moments("sigmoid", 0.0).mean == 0.5
    assert moments("elu", 0.0).slope == pytest.approx(moments("elu", 1e-12).slope, abs=1e-5)


@pytest.mark.parametrize("name", ["tanh", "gelu", "elu", "selu"])
def test_correlation_map_limits(name):
    m = moments(name, 1.3)
    assert correlation_map(name, 1.3, 1.0) == pytest.approx(m.power, rel=1e-12)
    assert slope_correlation(name, 1.3, 1.0) == pytest.approx(m.slope, rel=1e-12)
    assert correlation_map(name, 1.3, 0.0) == pytest.approx(m.mean ** 2, abs=1e-12)


@pytest.mark.parametrize("c", [-1.0, -0.4, 0.0, 0.5, 0.99])
def test_correlation_map_matches_the_arc_cosine_kernel(c):
    # quadrature (elu, alpha = 0) against relu's closed form (Cho & Saul 2009)
    for pair in (correlation_map, slope_correlation):
        assert pair("elu", 2.0, c, alpha=0.0) == pytest.approx(pair("relu", 2.0, c), abs=1e-12)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="did you mean 'tanh'"):
        moments("tahn", 1.0)
    with pytest.raises(ValueError, match="does not take alpha"):
        moments("tanh", 1.0, alpha=2.0)
    with pytest.raises(ValueError, match="≥ 0"):
        moments("relu", -1.0)
    with pytest.raises(ValueError, match="correlation"):
        correlation_map("tanh", 1.0, 1.5)


def test_activation_sets():
    assert set(gaussian.ACTIVATIONS) >= gaussian.EXACT | gaussian.APPROXIMATE
    assert gaussian.EXACT == {"relu", "leaky_relu", "identity"}
    assert gaussian.APPROXIMATE == {"gelu", "silu"}


# --------------------------------------------------------------------------- meanfield.py

# docs/theory.md: tanh's critical line σ_w²_c(σ_b²).
CRITICAL_LINE = [(1e-4, 1.0860), (0.01, 1.4242), (0.05, 1.7610), (0.1, 1.9861), (0.5, 2.8432),
                 (1.0, 3.4432)]


@pytest.mark.parametrize("sigma_b2, sigma_w2", CRITICAL_LINE)
def test_tanh_critical_line(sigma_b2, sigma_w2):
    assert critical_sigma_w2("tanh", sigma_b2) == pytest.approx(sigma_w2, rel=1e-3)


def test_tanh_critical_point_without_bias_is_one_with_q_star_zero():
    sigma_w2 = critical_sigma_w2("tanh", 0.0)
    assert sigma_w2 == pytest.approx(1.0, abs=1e-6)
    assert fixed_point_q("tanh", sigma_w2, 0.0) == pytest.approx(0.0, abs=1e-6)
    assert fixed_point_q("tanh", 0.9, 0.0) == 0.0
    assert chi1("tanh", 0.9, 0.0) == pytest.approx(0.9)  # q* → 0 leaves χ₁ = σ_w²·φ'(0)²


@pytest.mark.parametrize("sigma_b2, q_star", [(1e-4, 0.0457), (0.05, 0.5700)])
def test_q_star_on_the_critical_line(sigma_b2, q_star):
    sigma_w2 = critical_sigma_w2("tanh", sigma_b2)
    assert fixed_point_q("tanh", sigma_w2, sigma_b2) == pytest.approx(q_star, rel=1e-3)


# Along σ_b² = 0.05 (docs/theory.md §1 and the §2 checks): σ_w² → (χ₁, q*, ξ_c or None).
ALONG_005 = [(1.0, 0.7590, 0.1936, 3.63), (1.76, 0.9998, 0.5695, None), (2.5, 1.1335, None, 11.8),
             (3.0, 1.2089, 1.428, None), (4.0, 1.3424, None, 6.98)]


@pytest.mark.parametrize("sigma_w2, chi, q_star, xi_c", ALONG_005)
def test_tanh_depth_scales_along_sigma_b2_005(sigma_w2, chi, q_star, xi_c):
    scales = depth_scales("tanh", sigma_w2, 0.05)
    assert scales.chi1 == pytest.approx(chi, rel=1e-3)
    assert scales.xi_grad == pytest.approx(-1 / math.log(scales.chi1))
    if q_star is not None:
        assert scales.q_star == pytest.approx(q_star, rel=1e-3)
    if xi_c is not None:
        assert scales.xi_c == pytest.approx(xi_c, rel=0.02)
    assert (scales.c_star == 1.0) == (scales.chi1 < 1)  # c* < 1 only in the chaotic phase


def test_pytorch_tanh_gain_is_chaotic():
    assert chi1("tanh", (5 / 3) ** 2, 0.0) == pytest.approx(1.21, rel=1e-3)


def test_relu_family_critical_points_are_exact():
    assert critical_sigma_w2("relu", 0.0) == 2.0
    assert critical_sigma_w2("relu", 0.3) == 2.0
    assert critical_sigma_w2("identity", 0.1) == 1.0
    for a in (0.01, 0.2, 0.5):
        assert critical_sigma_w2("leaky_relu", 0.0, slope=a) == pytest.approx(2 / (1 + a * a), rel=1e-14)


def test_relu_fixed_points():
    assert fixed_point_q("relu", 1.5, 0.0) == 0.0              # ordered: the signal collapses
    assert fixed_point_q("relu", 2.0, 0.0, q0=3.0) == 3.0      # He: every q is preserved
    assert fixed_point_q("relu", 2.5, 0.0) == math.inf         # chaotic: it explodes
    assert fixed_point_q("relu", 1.5, 0.1) == pytest.approx(0.1 / (1 - 1.5 / 2), rel=1e-12)
    scales = depth_scales("relu", 2.0, 0.0)
    assert (scales.chi1, scales.xi_grad, scales.xi_c) == (1.0, math.inf, math.inf)


def test_selu_fixed_points():
    assert fixed_point_q("selu", 1.0, 0.0) == pytest.approx(1.0, rel=1e-6)   # LeCun: self-normalizing
    assert fixed_point_q("selu", 0.75 ** 2, 0.0) == pytest.approx(0.023, rel=0.02)  # torch's gain 3/4


def test_no_critical_point_raises():
    with pytest.raises(ValueError, match="sigmoid has no critical"):
        critical_sigma_w2("sigmoid", 0.05)
    with pytest.raises(ValueError, match="jumps"):  # gelu: q* jumps from 0 to ∞, χ₁ never equals 1
        critical_sigma_w2("gelu", 0.0)


def test_critical_layer_sigma_w2():
    assert critical_layer_sigma_w2("relu", 1.7, 100, 50) == 2.0 * 100 / 50
    assert critical_layer_sigma_w2("tanh", 0.0, 64, 64) == pytest.approx(1.0)  # linear regime: φ'(0) = 1
    sigma_w2 = critical_layer_sigma_w2("tanh", 1.0, 100, 200)
    gain = sigma_w2 * (200 / 100) * moments("tanh", sigma_w2 * 1.0).slope
    assert gain == pytest.approx(1.0, rel=1e-10)
    with pytest.raises(ValueError, match="positive"):
        critical_layer_sigma_w2("tanh", 1.0, 0, 10)


def test_meanfield_does_not_import_torch():
    code = "import sys, netlens.paraxial.meanfield; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
    assert meanfield.__name__ == "netlens.paraxial.meanfield"

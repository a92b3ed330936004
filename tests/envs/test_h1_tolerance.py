"""tolerance (spec §3) and the reward building blocks (spec §2.4): hand-computed values and properties."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.h1 import rewards
from envs.h1.tolerance import SIGMOIDS, tolerance

finite = st.floats(-1e3, 1e3, allow_nan=False)


@pytest.mark.parametrize(
    ("distance", "expected"), [(0.5, 0.5623413251903491), (1.0, 0.1), (2.0, 1e-4)]
)
def test_gaussian_is_value_at_margin_to_the_distance_squared(distance, expected):
    assert tolerance(distance, margin=1.0) == pytest.approx(expected, rel=1e-12)
    assert tolerance(-distance, margin=1.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("sigmoid", "expected_at_half"),
    [
        ("gaussian", 0.1**0.25),  # v^(d²)
        ("hyperbolic", 1 / math.cosh(0.5 * math.acosh(10))),
        ("long_tail", 1 / (0.25 * 9 + 1)),
        ("reciprocal", 1 / (0.5 * 9 + 1)),
        ("cosine", (1 + math.cos(math.pi * 0.5 * math.acos(-0.8) / math.pi)) / 2),
        ("linear", 1 - 0.5 * 0.9),
        ("quadratic", 1 - 0.25 * 0.9),
        ("tanh_squared", 1 - math.tanh(0.5 * math.atanh(math.sqrt(0.9))) ** 2),
    ],
)
def test_every_sigmoid_at_half_a_margin(sigmoid, expected_at_half):
    assert tolerance(2.5, bounds=(0.0, 2.0), margin=1.0, sigmoid=sigmoid) == pytest.approx(expected_at_half, rel=1e-12)


@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_sigmoids_are_one_inside_and_value_at_margin_one_margin_out(sigmoid):
    assert tolerance(1.0, bounds=(1.0, 1.0), margin=0.3, sigmoid=sigmoid) == 1.0  # bounds are inclusive
    assert tolerance(1.3, bounds=(0.0, 1.0), margin=0.3, sigmoid=sigmoid, value_at_margin=0.2) == pytest.approx(0.2)


@pytest.mark.parametrize("sigmoid", ["linear", "quadratic", "cosine"])
def test_finite_support_sigmoids_reach_zero_at_the_margin_when_value_at_margin_is_zero(sigmoid):
    assert tolerance(1.0, margin=1.0, sigmoid=sigmoid, value_at_margin=0.0) == 0.0
    assert tolerance(0.999, margin=1.0, sigmoid=sigmoid, value_at_margin=0.0) > 0.0
    assert tolerance(7.0, margin=1.0, sigmoid=sigmoid, value_at_margin=0.0) == 0.0


def test_zero_margin_is_an_indicator_and_infinite_bounds_work():
    assert tolerance(0.5, bounds=(0.0, 1.0)) == 1.0
    assert tolerance(1.5, bounds=(0.0, 1.0)) == 0.0
    assert tolerance(1e9, bounds=(2.0, np.inf), margin=1.0) == 1.0


def test_scalar_gives_float_and_array_gives_array():
    assert type(tolerance(0.3, margin=1.0)) is float
    assert type(tolerance(np.float64(0.3), margin=1.0)) is float
    out = tolerance(np.zeros((2, 3)), margin=1.0)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)


@given(st.lists(finite, min_size=1, max_size=8), finite, st.floats(0, 10), st.just(0.0) | st.floats(1e-3, 5),
       st.sampled_from(SIGMOIDS), st.floats(0.01, 0.99))
def test_array_input_equals_elementwise_scalar_input_and_stays_in_unit_interval(xs, lo, width, margin, sigmoid, v):
    bounds = (lo, lo + width)
    array = tolerance(np.array(xs), bounds, margin, sigmoid, v)
    scalars = [tolerance(x, bounds, margin, sigmoid, v) for x in xs]
    np.testing.assert_array_equal(array, scalars)
    assert np.all((array >= 0) & (array <= 1))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"bounds": (1.0, 0.0)}, "bounds"),
        ({"margin": -1.0}, "margin"),
        ({"sigmoid": "relu", "margin": 1.0}, "sigmoid"),
        ({"margin": 1.0, "value_at_margin": 0.0}, "value_at_margin"),  # gaussian never reaches 0
        ({"margin": 1.0, "value_at_margin": 1.0}, "value_at_margin"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, key):
    with pytest.raises(ValueError, match=key):
        tolerance(0.5, **kwargs)


def test_reward_blocks_match_the_spec_unit_checks():
    assert rewards.standing(1.5) == pytest.approx(0.737511, abs=1e-6)
    assert rewards.standing(1.2375) == pytest.approx(0.1, abs=1e-12)
    assert rewards.standing(1.7) == 1.0
    assert rewards.standing(2.02 - 0.4125, height=2.02) == pytest.approx(0.1)  # margin stays 1.65/4
    assert rewards.upright(0.0) == pytest.approx(0.526316, abs=1e-6)
    assert rewards.upright(0.5) == pytest.approx(0.789474, abs=1e-6)
    assert rewards.small_control(np.full(19, 5.0)) == pytest.approx(0.95)
    assert rewards.small_control(np.full(19, 300.0)) == 0.8
    assert rewards.dont_move(1.0, 0.0) == pytest.approx(0.781171, abs=1e-6)
    assert rewards.dont_move(2.0, 0.0) == pytest.approx(0.55)
    assert rewards.move(-3.0, 1.0) == pytest.approx(1 / 6)
    assert rewards.move(2.5, 5.0) == pytest.approx((5 * 0.5 + 1) / 6)
    assert rewards.move(9.0, 5.0) == 1.0


@given(st.lists(st.floats(-400, 400), min_size=19, max_size=19))
def test_small_control_closed_form_equals_its_tolerance_definition(forces):
    f = np.array(forces)
    by_tolerance = (4 + np.mean(tolerance(f, margin=10.0, sigmoid="quadratic", value_at_margin=0.0))) / 5
    assert rewards.small_control(f) == by_tolerance

"""Newton-Schulz and SVD polar factors against exact float64 references (spec 1.2, 1.5)."""

import math

import pytest
import torch
from fire_reference import matrix_with_spectrum, predicted_newton_schulz, relative_error
from hypothesis import given, settings
from hypothesis import strategies as st

from fire import newton_schulz, polar_svd, sfe

SHAPES = [(1, 1), (1, 7), (1, 64), (7, 1), (8, 8), (32, 32), (48, 16), (16, 48), (40, 3), (3, 40), (24, 30)]


def well_conditioned(m: int, n: int, seed: int) -> torch.Tensor:
    """Singular values spread over [0.5, 1]: after Frobenius normalisation every s > 0.07 for min(m, n)
    <= 48, well above the ~0.04 that 10 cubic steps need to reach 1 (spec 1.5)."""
    k = min(m, n)
    return matrix_with_spectrum(m, n, torch.linspace(0.5, 1.0, k), seed).float()


def exact_polar(W: torch.Tensor) -> torch.Tensor:
    U, _, Vh = torch.linalg.svd(W.double(), full_matrices=False)
    return U @ Vh


@pytest.mark.parametrize("shape", SHAPES)
def test_ten_steps_reach_the_polar_factor_on_well_conditioned_matrices(shape):
    W = well_conditioned(*shape, seed=sum(shape))
    X = newton_schulz(W, iterations=10)
    assert X.dtype == torch.float32
    assert relative_error(X, exact_polar(W)) < 1e-4
    sigma = torch.linalg.svdvals(X.double())
    assert torch.allclose(sigma, torch.ones_like(sigma), atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
def test_svd_polar_is_u_vt(shape):
    W = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    assert relative_error(polar_svd(W), exact_polar(W)) < 1e-5


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 24),
    n=st.integers(1, 24),
    log10_condition=st.floats(0.0, 8.0),
    iterations=st.sampled_from([1, 5, 10, 20]),
    seed=st.integers(0, 2**16),
)
def test_newton_schulz_equals_the_spectral_prediction_for_any_matrix(m, n, log10_condition, iterations, seed):
    """N steps give exactly U diag(f^N(s)) V^T, however ill-conditioned W is (spec 1.5)."""
    k = min(m, n)
    spectrum = torch.logspace(0.0, -log10_condition, k, dtype=torch.float64)
    W = matrix_with_spectrum(m, n, spectrum, seed)
    expected = predicted_newton_schulz(W, iterations)
    assert relative_error(newton_schulz(W, iterations, eps=0.0), expected) < 1e-10  # float64 in, float64 out
    # float32 rounding is amplified where f^N is steep (slope up to ~1.5^N near s ~ 0.01), hence 1e-3.
    assert relative_error(newton_schulz(W.float(), iterations, eps=0.0), expected) < 1e-3


def test_five_steps_are_far_from_orthogonal_on_a_large_random_matrix():
    """The LLM setting (spec 1.5): singular values stay well below 1 after 5 steps."""
    W = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    sigma = torch.linalg.svdvals(newton_schulz(W, iterations=5))
    assert sigma.median() < 0.7


def test_batched_call_equals_a_loop_over_matrices():
    W = torch.randn(3, 4, 10, 6, generator=torch.Generator().manual_seed(2))
    looped = torch.stack([torch.stack([newton_schulz(w) for w in row]) for row in W])
    torch.testing.assert_close(newton_schulz(W), looped, atol=1e-6, rtol=0)
    looped_svd = torch.stack([torch.stack([polar_svd(w) for w in row]) for row in W])
    torch.testing.assert_close(polar_svd(W), looped_svd, atol=1e-6, rtol=0)


@pytest.mark.parametrize("wide", [False, True])
def test_strided_batches_as_fire_conv_makes_them_equal_a_loop(wide):
    # fire_conv hands newton_schulz a movedim view (taps first, non-contiguous), the layout that once
    # took a slow per-matrix copy path; values must not depend on the layout.
    kernel = torch.randn(6, 10, 3, 2, generator=torch.Generator().manual_seed(4))
    if wide:
        kernel = kernel.transpose(0, 1)
    taps = kernel.movedim((0, 1), (-2, -1))  # (3, 2, d_out, d_in), strided
    assert not taps.is_contiguous()
    looped = torch.stack([torch.stack([newton_schulz(w.contiguous()) for w in row]) for row in taps])
    torch.testing.assert_close(newton_schulz(taps), looped, atol=1e-6, rtol=0)
    assert newton_schulz(taps).shape == taps.shape


def test_each_matrix_of_a_batch_is_normalised_on_its_own():
    W = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(3))
    W[1] *= 1000.0
    torch.testing.assert_close(newton_schulz(W)[1], newton_schulz(W[1]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("polar", [newton_schulz, polar_svd])
def test_zero_and_rank_deficient_matrices_give_finite_outputs(polar):
    assert torch.equal(newton_schulz(torch.zeros(5, 3)), torch.zeros(5, 3))
    assert torch.isfinite(polar(torch.zeros(5, 3))).all()
    rank_one = torch.outer(torch.arange(1.0, 7.0), torch.arange(1.0, 5.0))
    out = polar(rank_one)
    assert torch.isfinite(out).all()
    # The one nonzero direction is mapped to singular value 1 (1.0 exactly for the normalised rank-1 case).
    assert torch.linalg.svdvals(out)[0] == pytest.approx(1.0, abs=1e-5)


def test_rank_deficient_newton_schulz_matches_prediction_with_zero_singular_values():
    W = matrix_with_spectrum(12, 8, torch.tensor([1.0, 0.8, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0]), seed=4)
    assert relative_error(newton_schulz(W), predicted_newton_schulz(W, 10)) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_returns_the_input_dtype(dtype):
    W = torch.randn(6, 4).to(dtype)
    assert newton_schulz(W).dtype == dtype
    assert polar_svd(W).dtype == dtype


def test_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dims"):
        newton_schulz(torch.ones(3))


def random_orthogonal(m: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """Haar-random (m, n) matrix with orthonormal columns (m >= n) or rows (m < n)."""
    tall = max(m, n), min(m, n)
    Q, R = torch.linalg.qr(torch.randn(*tall, generator=generator, dtype=torch.float64))
    Q = Q * torch.sign(torch.diagonal(R))
    return Q if m >= n else Q.mT


@pytest.mark.parametrize("shape", [(8, 8), (12, 5), (5, 12)])
def test_procrustes_polar_factor_beats_random_orthogonal_matrices(shape):
    g = torch.Generator().manual_seed(5)
    W = torch.randn(*shape, generator=g, dtype=torch.float64)
    best = sfe(W, polar_svd(W))
    assert all(best < sfe(W, random_orthogonal(*shape, g)) for _ in range(100))
    # Closed form: ||W - UV^T||^2 = sum (sigma - 1)^2.
    sigma = torch.linalg.svdvals(W)
    assert best == pytest.approx(float(((sigma - 1) ** 2).sum()), rel=1e-10)
    if min(shape) > 1:
        W_conditioned = well_conditioned(*shape, seed=6).double()
        assert sfe(W_conditioned, newton_schulz(W_conditioned)) == pytest.approx(
            sfe(W_conditioned, polar_svd(W_conditioned)), rel=1e-6
        )


def test_one_by_n_rows_are_normalised_exactly():
    w = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(newton_schulz(w), torch.tensor([[0.6, 0.8]]))
    assert math.isclose(float(polar_svd(w).norm()), 1.0, rel_tol=1e-6)

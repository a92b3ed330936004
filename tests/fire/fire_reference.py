"""Test helpers: matrices with a chosen spectrum and the float64 reference for N Newton-Schulz steps."""

import torch


def matrix_with_spectrum(m: int, n: int, singular_values: torch.Tensor, seed: int) -> torch.Tensor:
    """float64 (m, n) = U diag(s) V^T with Haar-random orthonormal U, V."""
    g = torch.Generator().manual_seed(seed)
    k = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    return U @ torch.diag(singular_values.double()) @ V.mT


def predicted_newton_schulz(W: torch.Tensor, iterations: int) -> torch.Tensor:
    """U diag(f^N(s)) V^T, f(s) = 1.5 s - 0.5 s^3, s = sigma / ||W||_F, all in float64 (spec 1.5)."""
    W = W.double()
    U, sigma, Vh = torch.linalg.svd(W, full_matrices=False)
    s = sigma / torch.linalg.matrix_norm(W)
    for _ in range(iterations):
        s = 1.5 * s - 0.5 * s**3
    return U @ torch.diag(s) @ Vh


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a.double() - b.double()) / torch.linalg.matrix_norm(b.double()))

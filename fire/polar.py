"""Orthogonal polar factor of (batches of) matrices: cubic Newton-Schulz and the exact SVD route."""

from __future__ import annotations

import torch
from torch import Tensor

from fire.lapack import one_thread

# Cubic Newton-Schulz coefficients: each singular value follows s -> 1.5 s - 0.5 s^3, fixed point 1.
# Not Muon's quintic: the FIRE authors rejected it because it does not drive singular values to 1.
NS_A = 1.5
NS_B = -0.5


def _compute_dtype(W: Tensor) -> torch.dtype:
    return torch.float64 if W.dtype == torch.float64 else torch.float32


def _check_matrix(W: Tensor, name: str) -> None:
    if W.ndim < 2:
        raise ValueError(f"{name}: W must have at least 2 dims (..., m, n), got shape {tuple(W.shape)}")


def newton_schulz(W: Tensor, iterations: int = 10, eps: float = 1e-7) -> Tensor:
    """Approximate polar factor U V^T of every matrix in W (..., m, n) by cubic Newton-Schulz.

    Each matrix is Frobenius-normalised on its own, X0 = W / (||W||_F + eps), so all singular values
    lie in [0, 1]; the eps keeps an all-zero matrix at zero instead of NaN (the official PyTorch code
    has no eps). Then X <- 1.5 X - 0.5 X (X^T X), computed on the transposed matrix when W is wide so
    the Gram matrix is always min(m, n) square. N steps give exactly U diag(f^N(s)) V^T with
    f(s) = 1.5 s - 0.5 s^3 and s = sigma / ||W||_F: small singular values (s below ~0.04 for N = 10) are
    still damped, so this is the polar factor only for well-conditioned W (spec section 1.5).

    Computes in float32 (float64 if W is float64) and returns W's dtype. Leading dims are a batch:
    all taps of a conv kernel go through one call.
    """
    _check_matrix(W, "newton_schulz")
    if iterations < 0:
        raise ValueError(f"newton_schulz: iterations must be >= 0, got {iterations}")
    X = W.to(_compute_dtype(W))
    wide = X.shape[-2] < X.shape[-1]
    if wide:
        X = X.mT
    # One contiguous (batch, m, n) block: CPU bmm on strided batches (conv taps after a movedim, or the
    # transpose above) copies every matrix on its own, which made batched taps no faster than a loop.
    tall_shape = X.shape
    X = X.reshape(-1, *tall_shape[-2:]).contiguous()
    X = X / (torch.linalg.matrix_norm(X, keepdim=True) + eps)
    for _ in range(iterations):
        gram = X.mT @ X  # (batch, n, n) with n = min(m, n) of the original
        X = torch.baddbmm(X, X, gram, beta=NS_A, alpha=NS_B)  # NS_A * X + NS_B * (X @ gram)
    X = X.reshape(tall_shape)
    if wide:
        X = X.mT
    return X.to(W.dtype)


def polar_svd(W: Tensor) -> Tensor:
    """Exact orthogonal polar factor U V^T of every matrix in W (..., m, n) from a thin SVD.

    This is the Procrustes solution argmin ||W - Q||_F over Q with orthonormal columns (tall W) or rows
    (wide W). For rank-deficient W the factor is not unique; the SVD's arbitrary completion of the null
    directions is returned (finite, orthonormal). Computes in float32 (float64 if given), returns
    W's dtype.
    """
    _check_matrix(W, "polar_svd")
    with one_thread():  # the same bits at any thread count (fire/lapack.py)
        U, _, Vh = torch.linalg.svd(W.to(_compute_dtype(W)), full_matrices=False)
    return (U @ Vh).to(W.dtype)

"""Per-layer measurements taken during training: spectra, stable rank, kappas, Newton–Schulz error, basis angles.

Small formulas are implemented here (probes does not import ``analysis``). For a matrix M with singular values
s_1 >= ... >= s_p (p = min of its dims):

* stable rank          srank(M) = ||M||_F^2 / s_1^2                       (in [1, rank M])
* ``kappa_cond``       cond(M) = s_1 / s_p                                 (inf when s_p = 0)
* ``kappa_gram``       cond(M M^T) = (s_1 / s_p)^2  on the p x p Gram matrix (SUMO §3: the conditioning of M M^T)
* ``kappa_defect``     1 - s_1^2 / ||M||_F^2                               (0 iff rank one; SUMO Lemma 3.1's quantity)
* Newton–Schulz error  ||NS_k(M) - U V^T||_F (absolute) and divided by ||U V^T||_F = sqrt(rank M) (relative),
  with ``subspace.newton_schulz`` (Muon quintic, 5 steps, Frobenius pre-normalisation) and ``subspace.polar``.
* principal angles     theta_i = arccos(sigma_i(Q_old^T Q_new)) between consecutive r-dim bases; ``overlap`` =
  ||Q_old^T Q_new||_F^2 / r (1: same subspace, r/k on average for independent uniform subspaces).

Spaces: the optimizer core keeps, for W (m x n) with k = min(m, n), a basis Q (k x r) of the smaller side and the
moment in subspace coordinates, R (r x l) with A = G (m < n) or G^T (m >= n). ``project`` computes Q^T A and
``lift`` maps a subspace moment back to the m x n full space (Q R, transposed when m >= n).
Non-finite results (e.g. cond of a singular matrix) are written as ``"nan"``/``"inf"`` in the JSONL rows
(``records.encoding``). ``state_bytes`` is ``records.state_bytes``, re-exported.
"""
from __future__ import annotations

import math

import torch

import subspace
from records import state_bytes

__all__ = ["singular_values", "spectral_stats", "ns_error", "principal_angles", "basis_stats", "orient",
           "project", "lift", "state_bytes", "layer_report"]


def _work(M: torch.Tensor) -> torch.Tensor:
    return M.detach().to(torch.float64 if M.dtype == torch.float64 else torch.float32)


def singular_values(M: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) in float32 or better, on the CPU; a float64 retry if LAPACK fails."""
    W = _work(M.reshape(M.shape[0], -1))
    try:
        s = torch.linalg.svdvals(W)
    except torch.linalg.LinAlgError:
        s = torch.linalg.svdvals(W.double())
    return s.cpu()


def spectral_stats(s: torch.Tensor) -> dict:
    """Stable rank and the three kappa definitions from singular values ``s`` (descending)."""
    s = s.double()
    fro2 = float((s * s).sum())
    s1 = float(s[0]) if s.numel() else 0.0
    smin = float(s[-1]) if s.numel() else 0.0
    if s1 == 0.0:
        return {"fro_norm": 0.0, "sigma_max": 0.0, "sigma_min": 0.0, "stable_rank": 0.0, "kappa_cond": math.nan,
                "kappa_gram": math.nan, "kappa_defect": math.nan}
    cond = s1 / smin if smin > 0 else math.inf
    return {"fro_norm": math.sqrt(fro2), "sigma_max": s1, "sigma_min": smin, "stable_rank": fro2 / s1 ** 2,
            "kappa_cond": cond, "kappa_gram": cond * cond, "kappa_defect": 1.0 - s1 ** 2 / fro2}


def ns_error(M: torch.Tensor, steps: int = 5, coeffs="muon") -> dict:
    """Distance of Newton–Schulz's output from the exact polar factor U V^T of M (both in float32 or better)."""
    W = _work(M)
    O = subspace.polar(W)
    X = subspace.newton_schulz(W, steps=steps, coeffs=coeffs)
    err = float(torch.linalg.matrix_norm(X - O))
    ref = float(torch.linalg.matrix_norm(O))
    return {"ns_error_fro": err, "ns_error_rel": err / ref if ref > 0 else math.nan,
            "ns_error_spectral": float(torch.linalg.matrix_norm(X - O, ord=2))}


def principal_angles(Q_old: torch.Tensor, Q_new: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between the column spans of two orthonormal k x r bases."""
    c = torch.linalg.svdvals(_work(Q_old).mT @ _work(Q_new)).clamp(0.0, 1.0)
    return torch.arccos(c).flip(0).cpu()


def basis_stats(Q_old: torch.Tensor, Q_new: torch.Tensor) -> dict:
    """Principal angles plus summary numbers (largest angle, overlap ||Q_old^T Q_new||_F^2 / r)."""
    ang = principal_angles(Q_old, Q_new)
    r = Q_new.shape[1]
    cos2 = torch.cos(ang.double()) ** 2
    return {"principal_angles": ang.tolist(), "max_angle": float(ang.max()), "overlap": float(cos2.sum() / r)}


def orient(G: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(A, left) with A = G when m < n (left projection), else G^T: the core's convention."""
    G2 = G.reshape(G.shape[0], -1)
    left = G2.shape[0] < G2.shape[1]
    return (G2 if left else G2.mT), left


def project(G: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Subspace coordinates Q^T A (r x l) of a full-space matrix G."""
    A, _ = orient(G)
    return _work(Q).mT @ _work(A)


def lift(R: torch.Tensor, Q: torch.Tensor, shape) -> torch.Tensor:
    """Full-space (m x n) image Q R of subspace coordinates R (r x l), transposed back when m >= n."""
    m = shape[0]
    n = math.prod(shape[1:])
    full = _work(Q) @ _work(R)
    return full if m < n else full.mT


_MOMENT_KEYS = ("exp_avg", "momentum_buffer")


def _moment(state: dict):
    for k in _MOMENT_KEYS:
        if k in state and torch.is_tensor(state[k]) and state[k].ndim >= 2:
            return state[k]
    return None


def layer_report(param: torch.Tensor, state: dict, *, ns_steps: int = 5, ns_coeffs="muon",
                 max_sv: int | None = None) -> dict[str, object]:
    """All instruments of one matrix parameter after an optimizer step (its ``.grad`` still set).

    Returns ``{metric: value}`` with metrics ``{space}.{stat}`` for spaces ``grad`` (full gradient),
    ``grad_proj`` (Q^T A), ``moment_full`` (the first moment in the full space), ``moment_proj`` (in subspace
    coordinates) and ``moment.ns_*`` (Newton–Schulz error of the moment the core would orthogonalize), plus
    ``grad_proj.captured`` = ||Q^T A||_F^2 / ||G||_F^2 and ``state.bytes``.
    """
    out: dict[str, object] = {}

    def spectra(space, M):
        s = singular_values(M)
        out[f"{space}.sv"] = (s[:max_sv] if max_sv else s).tolist()
        for k, v in spectral_stats(s).items():
            out[f"{space}.{k}"] = v

    Q = state.get("basis")
    G = param.grad
    if G is not None:
        spectra("grad", G)
        if Q is not None:
            Rg = project(G, Q)
            spectra("grad_proj", Rg)
            g2 = float(_work(G).pow(2).sum())
            out["grad_proj.captured"] = float(Rg.pow(2).sum()) / g2 if g2 > 0 else math.nan
    M = _moment(state)
    if M is not None:
        if Q is not None and M.shape[0] == Q.shape[1]:
            spectra("moment_proj", M)
            spectra("moment_full", lift(M, Q, tuple(param.shape)))
        else:
            spectra("moment_full", M)
        if float(_work(M).abs().max()) > 0:
            for k, v in ns_error(M, steps=ns_steps, coeffs=ns_coeffs).items():
                out[f"moment.{k}"] = v
    out["state.bytes"] = state_bytes(state)
    return out

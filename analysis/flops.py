"""Floating-point operation counts of the subspace-selection and orthogonalisation kernels.

Convention: one real multiplication or addition = 1 FLOP, so a dense product (p x q)(q x s) costs 2pqs
(q multiplications and q - 1 additions per entry, rounded to 2q). Random number generation, square roots of
scalars and memory traffic are not counted. Matrix shapes are m x n with the iteration run on the orientation
stated in each function.

Dense factorisation counts (Golub & Van Loan, *Matrix Computations*, 4th ed., §5.2 and Fig. 8.6.1 / Table 5.4.1):
* Householder QR of an p x q matrix (p >= q): R only 2 p q^2 - 2 q^3/3; forming the thin Q explicitly costs the
  same again, total 4 p q^2 - 4 q^3/3.
* Thin SVD of an p x q matrix (p >= q): singular values only 4 p q^2 - 4 q^3/3; with the thin U and V by the
  R-SVD 6 p q^2 + 20 q^3 (for p >> q), by Golub–Reinsch 14 p q^2 + 8 q^3 (full-U variant 4p^2 q + 8 p q^2 + 9 q^3).

SUMO Remark 3.7's own formulas (paper-claims §1.5) are in ``sumo_remark37_flops`` and, symbolically, in
``analysis.symbolic``.
"""
from __future__ import annotations

__all__ = ["flops_matmul", "flops_qr", "flops_svd", "flops_randomized_svd", "flops_ns_step", "flops_ns",
           "flops_online_pca_step", "flops_qr_gaussian", "sumo_remark37_flops"]


def flops_matmul(p: int, q: int, s: int) -> int:
    """(p x q) @ (q x s): 2 p q s."""
    return 2 * p * q * s


def flops_qr(p: int, q: int, *, form_q: bool = True) -> float:
    """Householder QR of p x q (p >= q): 2pq^2 - 2q^3/3 for R; doubled when the thin Q is formed."""
    if p < q:
        p, q = q, p
    base = 2 * p * q ** 2 - 2 * q ** 3 / 3
    return 2 * base if form_q else base


def flops_svd(m: int, n: int, *, vectors: bool = True, method: str = "r-svd") -> float:
    """Thin SVD of m x n (counts use p = max(m, n), q = min(m, n)).

    vectors=False: 4 p q^2 - 4 q^3 / 3. vectors=True: R-SVD 6 p q^2 + 20 q^3 (``method="r-svd"``) or
    Golub–Reinsch 14 p q^2 + 8 q^3 (``method="golub-reinsch"``).
    """
    p, q = max(m, n), min(m, n)
    if not vectors:
        return 4 * p * q ** 2 - 4 * q ** 3 / 3
    if method == "r-svd":
        return 6 * p * q ** 2 + 20 * q ** 3
    if method == "golub-reinsch":
        return 14 * p * q ** 2 + 8 * q ** 3
    raise ValueError(f"method must be 'r-svd' or 'golub-reinsch', got {method!r}")


def flops_randomized_svd(m: int, n: int, r: int, *, oversample: int = 5, power_iters: int = 2) -> float:
    """Halko–Martinsson–Tropp range finder + small SVD (as ``subspace.randomized_svd_basis``), l = r + p:

    Y = A Omega: 2mnl; QR(Y) (m x l, thin Q): 4ml^2 - 4l^3/3; each of q power iterations: A^T Q (2mnl), QR of
    n x l, A Z (2mnl), QR of m x l; B = Q^T A: 2mnl; SVD of the l x n matrix B with vectors (R-SVD); U = Q U_B[:, :r]:
    2mlr. Total (2q + 2) 2mnl + (q + 1) QR(m, l) + q QR(n, l) + SVD(l, n) + 2mlr.
    """
    l = min(r + oversample, m, n)
    q = power_iters
    total = (2 * q + 2) * flops_matmul(m, n, l)
    total += (q + 1) * flops_qr(m, l) + q * flops_qr(n, l)
    total += flops_svd(l, n, vectors=True) + flops_matmul(m, l, r)
    return total


def flops_ns_step(m: int, n: int, *, degree: int = 5) -> int:
    """One Newton–Schulz step on X in R^{m x n}, run on the wide orientation (q = min, p = max):

    quintic (Muon, ``degree=5``): A = X X^T 2q^2 p; A A 2q^3; B = bA + cA^2 3q^2; B X 2q^2 p; aX + BX 2pq
        -> 4 p q^2 + 2 q^3 + 3 q^2 + 2 p q.
    cubic (``degree=3``): A = X X^T 2q^2 p; A X 2q^2 p; aX + bAX 3pq -> 4 p q^2 + 3 p q.
    """
    p, q = max(m, n), min(m, n)
    if degree == 5:
        return 4 * p * q ** 2 + 2 * q ** 3 + 3 * q ** 2 + 2 * p * q
    if degree == 3:
        return 4 * p * q ** 2 + 3 * p * q
    raise ValueError("degree must be 3 or 5")


def flops_ns(m: int, n: int, steps: int = 5, *, degree: int = 5) -> int:
    """Frobenius normalisation (2mn for the norm, mn for the division) plus ``steps`` NS steps."""
    return 3 * m * n + steps * flops_ns_step(m, n, degree=degree)


def flops_online_pca_step(m: int, n: int, r: int, *, lam: bool = True, optimizer_per_entry: int = 2) -> int:
    """One gradient step of OSD's online PCA (eq. (6)) on P in R^{m x r} for G in R^{m x n}, using the analytic
    gradient 2 P (P^T A P) + 2 (A P)(P^T P) - 4 A P [+ 4 lam P (P^T P - I)], A = G~ G~^T never formed:

    G~ = G/||G||_F: 3mn; G~^T P: 2mnr; A P = G~ (G~^T P): 2mnr; P^T P: 2mr^2; P^T (AP): 2mr^2; P (P^T A P): 2mr^2;
    (AP)(P^T P): 2mr^2; combination 2P.. + 2.. - 4AP: 5mr; [lam term: P (P^T P - I) 2mr^2 + r + 2mr];
    update P <- P - lr grad: ``optimizer_per_entry`` * mr (2 for SGD; Adam is about 10).
    Total 4mnr + 3mn + 8mr^2 + 5mr [+ 2mr^2 + 2mr + r] + c mr.
    """
    total = 3 * m * n + 4 * m * n * r + 8 * m * r ** 2 + 5 * m * r
    if lam:
        total += 2 * m * r ** 2 + 2 * m * r + r
    return total + optimizer_per_entry * m * r


def flops_qr_gaussian(m: int, r: int) -> float:
    """A GoLore Stiefel draw (``subspace.stiefel``): Householder QR of the m x r Gaussian with thin Q,
    4mr^2 - 4r^3/3, plus the sign fix (mr). Sampling the Gaussian is not counted."""
    return flops_qr(m, r, form_q=True) + m * r


def sumo_remark37_flops(n: int, r: int) -> dict:
    """SUMO Remark 3.7's formulas for A in R^{n x r} (paper-claims §1.5, [V]):
    SVD route 4nr^2 + 8r^3 + rn^2 + r^2 n; NS5 route nr^2 + r^2 n + 20r^3 + 10r^2; and their ratio.
    At r = 8, n = 1024: 8,720,384 vs 141,952, ratio ~61.4 (the paper says "approximately twice")."""
    svd = 4 * n * r ** 2 + 8 * r ** 3 + r * n ** 2 + r ** 2 * n
    ns5 = n * r ** 2 + r ** 2 * n + 20 * r ** 3 + 10 * r ** 2
    return {"svd": svd, "ns5": ns5, "ratio": svd / ns5}


def linear_layer_flops(m: int, n: int, r: int, b: int, *, rho_per_entry: int = 3, update_per_entry: int = 2) -> dict:
    """One training step of an m x n linear layer y = W x on a batch of b inputs (x: n x b, y: m x b), counted
    product by product (GoLore talk, "Improving the computational efficiency"), in two forms:

    ``galore`` (W <- W + P rho(P^T grad_W), P: m x r): forward W x 2bmn; backward grad_x = W^T grad_y 2bmn and
    grad_W = grad_y x^T 2bmn; projection P^T grad_W 2rmn; rho on the r x n projected gradient ``rho_per_entry`` rn;
    back-projection P (.) 2rmn; the update of W ``update_per_entry`` mn (scale and add).
    ``factorized`` (y = W0 x + B (A x), B = P: m x r, A: r x n; A <- A + rho(grad_A)): forward W0 x 2bmn, A x 2brn,
    B (A x) 2brm, the sum bm; backward u = B^T grad_y 2brm, grad_A = u x^T 2brn, grad_x = W0^T grad_y 2bmn plus
    A^T u 2brn and their sum bn; rho ``rho_per_entry`` rn; the update of A ``update_per_entry`` rn.
    The slides' table is these counts with rho = 3 and update = 2 per entry, minus the two sums bm + bn of the
    factorized form.  Refresh steps (SVD or Stiefel draw; merging W0 <- W0 + B A, 2rmn + mn) are amortised over
    the update gap and not counted.  Returns {"galore": {item: flops}, "factorized": {...}, "totals": {...}}.
    """
    g = {"forward": 2 * b * m * n, "grad_x": 2 * b * m * n, "grad_W": 2 * b * m * n, "project": 2 * r * m * n,
         "rho": rho_per_entry * r * n, "back_project": 2 * r * m * n, "update": update_per_entry * m * n}
    f = {"forward_W0x": 2 * b * m * n, "forward_Ax": 2 * b * r * n, "forward_BAx": 2 * b * r * m, "forward_sum": b * m,
         "backward_BTgy": 2 * b * r * m, "grad_A": 2 * b * r * n, "grad_x_W0": 2 * b * m * n,
         "grad_x_AT": 2 * b * r * n, "grad_x_sum": b * n, "rho": rho_per_entry * r * n,
         "update": update_per_entry * r * n}
    return {"galore": g, "factorized": f, "totals": {"galore": sum(g.values()), "factorized": sum(f.values())}}


def golore_table_flops(m: int, n: int, r: int, b: int) -> dict:
    """The slides' table: GaLore 6bmn + 4rmn + 2mn + 3rn, the ReLoRA-like form 4bmn + 4brm + 6brn + 5rn; memory
    mn + rm + rn + bm and mn + rm + 2rn + bm + br."""
    return {"galore": 6 * b * m * n + 4 * r * m * n + 2 * m * n + 3 * r * n,
            "factorized": 4 * b * m * n + 4 * b * r * m + 6 * b * r * n + 5 * r * n,
            "memory_galore": m * n + r * m + r * n + b * m,
            "memory_factorized": m * n + r * m + 2 * r * n + b * m + b * r}

"""Sharded linear algebra for the step on FSDP2 parameters (DTensor, ``Shard(0)`` on a 1-D mesh).

FSDP2 splits a weight W (m x n) by rows: rank i of P holds W_i = W[a_i:b_i] with torch.chunk's sizes (ceil(m/P)
rows each, the last ones short or empty), and after the reduce-scatter the same rows G_i of the gradient. The
optimizer works on these local blocks. ``Rows`` says which rows are local and gives the only two collectives the
mathematics needs: ``sum`` (all-reduce of a partial result that contracts the row index) and ``gather``
(all-gather of row blocks). A single-process parameter gets ``Rows.whole(m)``, for which both are the identity
and ``take`` is the whole matrix, so one code path serves both and the single-process step is unchanged.

What crosses the network, per matrix and step (A = G, k = m for a left projection; A = G^T, k = n for a right
one; r the rank, l the other side; the step's oriented quantities keep W's rows on one axis):

==========================================  ==========================================================  =========
stage                                       how                                                          payload
==========================================  ==========================================================  =========
left projection R = Q^T A                   sum_i Q_i^T G_i, Q_i the local rows of the replicated Q       r x n
right projection R = Q^T G^T                local: R_i = Q^T G_i^T, R split by columns like W's rows      --
back-projection Q D (+ s (A - Q R))         local rows                                                    --
Adam / momentum / EMA of R                  elementwise; left: replicated r x n; right: split like R      --
exact refresh, right (k = n), m > 4 n       the k x k Gram G^T G = sum_i G_i^T G_i (float64)              n x n /T
exact refresh, otherwise, or official SVD   the k x k Gram G G^T couples rows of different ranks, a        m x n /T
                                            float64 n x n Gram of a less tall G sends more than G, and
                                            the official codes' SVD signs need the SVD of the same matrix:
                                            all-gather G once per refresh (every T steps)
randomized SVD (Halko)                      sketches: each product with A that contracts the split axis  (r+p) x l
                                            is one all-reduce; a split tall factor is orthonormalised     per product
                                            from its (r+p) x (r+p) Gram (twice, CholeskyQR2-style)
Stiefel draw (GoLore)                       none: the CPU generators draw the same numbers on every rank  --
                                            (seeded per parameter and step, or shared in step order)
exact polar U V^T of a split r x l D        (D D^T)^{-1/2} D from the r x r Gram sum_i D_i D_i^T          r x r
  (right projection, ``polar_method=gram``)  (float64; a gather of D when l < 4 r)
official polar (float32 SVD) of a split D   all-gather of the r x l factor (a rank-r object)              r x l
Newton–Schulz, split along the long side    per iteration the small Gram X X^T = sum_i X_i X_i^T, plus    steps x
  (right projection; Muon on m > 10 n)      one scalar for the Frobenius scale, when the steps' Grams     r x r
                                            send less than one gather of D (else the gather below)
Newton–Schulz, split along the short side   all-gather of the m x n direction (Muon on most W), then the   m x n
  (or a gather is cheaper)                  single-process iteration; dion's owner-based all-to-all
                                            would divide the compute by P, not the bytes
norm-growth limiter, OSD's ||A||_F          one scalar each                                               1
Subset-Norm statistic (heuristic)           m >= n: one per row, local; m < n: one per column, summed     n
online PCA (OSD), left / right              A R^T gathered (k x r) / summed (k x r); R R^T local / summed  k x r
non-finite screen                           one flag per parameter, all-reduced: every rank raises or     #params
                                            skips together
==========================================  ==========================================================  =========

Where a stage could either all-reduce a small Gram or gather the matrix, it takes the route that sends fewer bytes
per rank (``Rows.reduce_is_cheaper``); both give the single-process result up to round-off. An all-gather of every
matrix gradient (the baseline the table avoids) moves m x n per matrix and step.
``counting()`` records what the optimizer sends (``analysis.comm_bench`` prints it per preset).

Optimizer state: the basis Q (k x r), OSD's P and its moments, the limiter's norm and the step counters are small
replicated objects (plain tensors, identical on every rank); moments of a right projection (r x m) and of an
unprojected matrix (m x n), the dense rule's moments and the per-row Subset-Norm statistic are split like W's
rows and stored as DTensors (``Rows.zeros``), so ``torch.distributed.checkpoint`` reshards them to any world size.
"""
from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist

from . import orthogonalize
from .updates import subset_norm_stat

__all__ = ["Rows", "local", "is_dtensor", "counting", "Ledger", "project", "fro", "subset_stat", "subset_axis",
           "orthonormal", "polar", "newton_schulz"]

try:  # torch >= 2.5
    from torch.distributed.tensor import DTensor, Replicate, Shard
except ImportError:  # pragma: no cover - torch without DTensor: no parameter is ever sharded
    DTensor = Replicate = Shard = None


def is_dtensor(t) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def local(t):
    """The local shard of a DTensor (a view: in-place updates reach the DTensor), or the tensor itself."""
    return t.to_local() if DTensor is not None and isinstance(t, DTensor) else t


# ------------------------------------------------------------------------------------------------ byte ledger
class Ledger:
    """Collectives recorded while ``counting()`` is active: ``payload[op]`` bytes (the all-reduced tensor, or the
    gathered result), ``calls[op]``, and ``sent`` = bytes each rank sends under ring algorithms
    (all-reduce 2 (P-1)/P N, all-gather (P-1)/P N)."""

    def __init__(self):
        self.payload, self.calls, self.sent = Counter(), Counter(), 0.0

    def record(self, op: str, nbytes: int, world: int) -> None:
        self.payload[op] += nbytes
        self.calls[op] += 1
        self.sent += (2.0 if op == "all_reduce" else 1.0) * (world - 1) / world * nbytes

    @property
    def total(self) -> int:
        return sum(self.payload.values())


_LEDGERS: list[Ledger] = []


@contextlib.contextmanager
def counting():
    """``with counting() as ledger: opt.step()``: the optimizer's collectives in ``ledger``."""
    ledger = Ledger()
    _LEDGERS.append(ledger)
    try:
        yield ledger
    finally:
        _LEDGERS.remove(ledger)


def _record(op: str, t: torch.Tensor, world: int) -> None:
    for ledger in _LEDGERS:
        ledger.record(op, t.numel() * t.element_size(), world)


# ------------------------------------------------------------------------------------------------ the layout
@dataclass(frozen=True)
class Rows:
    """Rows [start, stop) of an m-row matrix that this rank holds; ``group`` None: one process holds them all."""
    start: int
    stop: int
    size: int
    group: Any = None
    mesh: Any = None

    @classmethod
    def whole(cls, m: int) -> "Rows":
        return cls(0, m, m)

    @classmethod
    def of(cls, p: torch.Tensor) -> "Rows":
        """The rows of parameter ``p``: a plain tensor or a replicated DTensor holds all of them; a DTensor
        ``Shard(0)`` on a 1-D mesh holds torch.chunk's block. Other layouts raise NotImplementedError."""
        m = p.shape[0] if p.ndim else 1
        if DTensor is None or not isinstance(p, DTensor) or all(isinstance(x, Replicate) for x in p.placements):
            return cls.whole(m)
        if p.device_mesh.ndim != 1 or tuple(p.placements) != (Shard(0),):
            raise NotImplementedError(f"sharded parameters must be Shard(0) on a 1-D mesh (FSDP2's fully_shard); "
                                      f"got {tuple(p.placements)} on a {p.device_mesh.ndim}-D mesh")
        mesh = p.device_mesh
        chunk = -(-m // mesh.size())
        start = min(mesh.get_local_rank() * chunk, m)
        return cls(start, min(start + chunk, m), m, mesh.get_group(), mesh)

    @property
    def world(self) -> int:
        return 1 if self.group is None else self.mesh.size()

    def sizes(self) -> list[int]:
        chunk = -(-self.size // self.world)
        return [max(0, min(chunk, self.size - i * chunk)) for i in range(self.world)]

    def take(self, X: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """This rank's rows of a replicated tensor whose ``dim`` indexes W's rows."""
        return X if self.group is None else X.narrow(dim, self.start, self.stop - self.start)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) of each rank's partial ``x``, in place; every rank gets the same bits."""
        if self.group is not None:
            x = x.contiguous()
            _record("all_reduce", x, self.world)
            dist.all_reduce(x, group=self.group)
        return x

    def gather(self, x: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """All ranks' blocks of ``x`` along ``dim`` (W's rows) concatenated in rank order: the whole tensor."""
        if self.group is None:
            return x
        sizes = self.sizes()
        block = x.movedim(dim, 0)
        padded = block.new_zeros((sizes[0],) + tuple(block.shape[1:]))
        padded[: block.shape[0]] = block
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded, group=self.group)
        whole = torch.cat([part[:s] for part, s in zip(parts, sizes)])
        _record("all_gather", whole, self.world)
        return whole.movedim(0, dim)

    def reduce_is_cheaper(self, reduce_bytes: float, gather_bytes: float) -> bool:
        """Whether all-reducing ``reduce_bytes`` sends less per rank than all-gathering a ``gather_bytes`` result
        (ring algorithms: 2 (P-1)/P N against (P-1)/P N): how each stage picks its route (the results agree to
        round-off either way; the gathered route computes the single-process result itself)."""
        return 2 * reduce_bytes < gather_bytes

    def zeros(self, shape, dim: Optional[int], **kw) -> torch.Tensor:
        """A zero state tensor of global ``shape``: split along ``dim`` like W's rows (a DTensor, so a distributed
        checkpoint reshards it), or replicated (``dim`` None: a plain tensor)."""
        if self.group is None or dim is None:
            return torch.zeros(shape, **kw)
        shape = tuple(shape)
        part = torch.zeros(shape[:dim] + (self.stop - self.start,) + shape[dim + 1:], **kw)
        stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
        return DTensor.from_local(part, self.mesh, [Shard(dim)], run_check=False, shape=torch.Size(shape),
                                  stride=stride)


# ------------------------------------------------------------------------------------------------ projection
def project(rows: Rows, Q: torch.Tensor, A: torch.Tensor, left: bool) -> torch.Tensor:
    """R = Q^T A. Left (A = G: A's rows are W's): sum_i Q_i^T A_i, one all-reduce of r x l. Right (A = G^T):
    Q^T A_i, local; R is then split by columns like A."""
    return rows.sum(rows.take(Q).mT @ A) if left else Q.mT @ A


def fro(rows: Rows, X: torch.Tensor, split: bool) -> torch.Tensor:
    """||X||_F; for an X split across ranks (``split``) from the all-reduced sum of squares (one scalar)."""
    if rows.group is None or not split:
        return torch.linalg.matrix_norm(X)
    return rows.sum(X.square().sum()).sqrt()


def subset_stat(rows: Rows, G: torch.Tensor, subset, reduce: str):
    """Subset-Norm statistic ``updates.subset_norm_stat`` of the local rows G_i.

    Heuristic subsets of an m x n gradient: m >= n, one per row, local (split like W); m < n, one per column,
    the column sums of squares all-reduced (1 x n, replicated). Integer chunk sizes of a split matrix straddle
    ranks and are refused (NotImplementedError)."""
    if rows.group is not None and subset != "heuristic":
        raise NotImplementedError("Subset-Norm with an integer subset size on a sharded parameter: chunks of the "
                                  "flattened matrix straddle ranks; use subset='heuristic'")
    return subset_norm_stat(G, subset, reduce, rows.size, rows.sum)


def subset_axis(m: int, n: int, subset) -> Optional[int]:
    """Axis of the Subset-Norm statistic that follows W's rows (None: replicated)."""
    return 0 if subset == "heuristic" and m >= n else None


def orthonormal(rows: Rows, Y: torch.Tensor, split: bool) -> torch.Tensor:
    """An orthonormal basis of range(Y) for a tall Y (k x w): Householder QR, or, for Y split by rows across
    ranks (``split``), Y (Y^T Y)^{-1/2} from the all-reduced w x w Gram, applied twice (the second pass restores
    orthogonality to eps64 after the first's eps64 kappa(Y)^2). Same range; the basis differs by a rotation."""
    if rows.group is None or not split:
        return torch.linalg.qr(Y)[0]
    for _ in range(2):
        w, V = torch.linalg.eigh(rows.sum(Y.mT @ Y))
        keep = w > w[-1:].clamp_min(0) * (Y.shape[1] * torch.finfo(w.dtype).eps)
        Y = Y @ ((V * torch.where(keep, w.clamp_min(torch.finfo(w.dtype).tiny).rsqrt(), 0.0)) @ V.mT)
    return Y


# ------------------------------------------------------------------------------------------------ orthogonalizers
def polar(rows: Rows, D: torch.Tensor, axis: Optional[int], method: str) -> torch.Tensor:
    """Exact polar factor of D whose ``axis`` is split like W's rows (None: replicated, local).

    Split along its long side with ``method="gram"``: O = (X X^T)^{-1/2} X on the wide orientation X from the
    all-reduced small Gram (float64, s x s for the short side s), when that sends less than gathering D.
    Otherwise (the short side split, or the official float32 SVD whose output must be the single-process one):
    all-gather D, the single-process polar on every rank, keep the local block."""
    if rows.group is None or axis is None:
        return orthogonalize.polar(D, method=method)
    tall, long_split = _wide(D, axis, rows)
    short = D.shape[1 - axis]
    if not (long_split and method == "gram"
            and rows.reduce_is_cheaper(8 * short ** 2, short * rows.size * D.element_size())):
        return rows.take(orthogonalize.polar(rows.gather(D, axis), method=method), axis)
    X = (D.mT if tall else D).to(torch.float64)
    O = orthogonalize.polar_from_gram(X, rows.sum(X @ X.mT), max(X.shape[0], rows.size))
    return (O.mT if tall else O).to(D.dtype)


def newton_schulz(rows: Rows, D: torch.Tensor, axis: Optional[int], *, steps: int, coeffs, normalize: str,
                  dtype: Optional[torch.dtype]) -> torch.Tensor:
    """Newton–Schulz of D whose ``axis`` is split like W's rows (None: replicated, local).

    Split along its long side: the iteration on the wide orientation X needs X X^T = sum_i X_i X_i^T per step
    (all-reduce of the small s x s Gram, accumulated in float32 or better and rounded once, as one GEMM would) and
    the Frobenius (one scalar) or spectral (the same Gram's top eigenvalue) scale; taken when those ``steps``
    all-reduces send less than one gather of D (for float32, s x l with l > 2 steps s: r x l factors of the
    subspace methods, rarely a whole matrix). Otherwise (and when the short side is split): all-gather D, the
    single-process iteration on every rank, keep the local block."""
    kw = dict(steps=steps, coeffs=coeffs, normalize=normalize, dtype=dtype)
    if rows.group is None or axis is None:
        return orthogonalize.newton_schulz(D, **kw)
    tall, long_split = _wide(D, axis, rows)
    short = D.shape[1 - axis]
    if not (long_split and rows.reduce_is_cheaper(steps * 4 * short ** 2, short * rows.size * D.element_size())):
        return rows.take(orthogonalize.newton_schulz(rows.gather(D, axis), **kw), axis)
    X = (D.mT if tall else D).to(dtype or D.dtype)
    wide = X.to(torch.float64) if X.dtype == torch.float64 else X.float()
    if normalize == "frobenius":
        norm = rows.sum(wide.square().sum()).sqrt()
    else:
        norm = rows.sum(wide.double() @ wide.double().mT).eigvalsh()[-1].clamp_min(0).sqrt()
    gram = lambda Y: rows.sum(_accurate(Y) @ _accurate(Y).mT).to(Y.dtype)  # noqa: E731
    X = orthogonalize.ns_iterate(X / (norm.to(X.dtype) + 1e-7), orthogonalize.resolve_schedule(coeffs, steps), gram)
    return (X.mT if tall else X).to(D.dtype)


def _accurate(X: torch.Tensor) -> torch.Tensor:
    return X if X.dtype == torch.float64 else X.float()


def _wide(D: torch.Tensor, axis: int, rows: Rows) -> tuple[bool, bool]:
    """(D is tall, D is split along its long side), from D's global shape (``axis`` has W's row count)."""
    shape = list(D.shape)
    shape[axis] = rows.size
    tall = shape[0] > shape[1]
    return tall, (axis == 0) == tall

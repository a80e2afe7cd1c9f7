"""8-bit block-wise quantized optimizer moments: bitsandbytes' dynamic 8-bit scheme (Dettmers et al. 2022), in torch.

A moment X of E elements is stored as E uint8 codes (X's own shape) plus one float32 scale per block of B elements:

    a_b = max_{i in block b} |X_i|,   q_i = argmin_c |code[c] - X_i / a_b|,   X_i ~ code[q_i] a_b,

so it takes E + 4 ceil(E / B) bytes instead of E s (s = 4 for float32). ``code`` is the dynamic map of
``bitsandbytes.functional.create_dynamic_map``: 256 values in [-1, 1] (signed, first moments) or [0, 1] (unsigned,
second moments) with a dynamic exponent (one bit per decade, from 1e-6 to 1) and the remaining bits a linear
fraction; the nearest code is the bucket of X_i / a_b among the midpoints of the sorted map, as bitsandbytes does
(ties go to the lower code; read from a 65536-entry table on the top 16 bits of the float32 pattern plus one
comparison, which gives exactly ``torch.bucketize``'s codes at ~15x its speed on CPU).
The relative error of each element is below half a code gap at its decade (<= 4.3% for the signed map's
coarsest band, and far less near the block maximum); zero is a code, so zero moments stay exactly zero.

The optimizer steps on float moments: ``unpacked`` dequantizes a parameter's moments, the step runs its rule
unchanged on them, and they are re-quantized with fresh block scales afterwards (bitsandbytes' 8-bit Adam kernels
do the same per block). Only the base update's moments (``exp_avg``, ``exp_avg_sq``) are quantized; bases,
online-PCA and Subset-Norm statistics keep the state dtype.

Why not the library: the core imports torch only (design rule), and bitsandbytes' CPU optimizer path is new and
prints warnings on import; torchao's low-bit states are tensor subclasses whose supported ops fit its own Adam
loops, not the in-place stage functions every preset here shares. ``tests/test_core_quantized.py`` checks the
codes and an 8-bit Adam trajectory against bitsandbytes where it installs.
"""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager

import torch
from torch.distributed.tensor import DTensor

__all__ = ["MOMENTS", "dynamic_map", "quantize", "dequantize", "moment_bytes", "pack", "unpacked"]

#: State entries that are quantized with ``state_bits=8``, and whether each is signed.
MOMENTS = {"exp_avg": True, "exp_avg_sq": False}
_SCALE = "_absmax"   # suffix of the entry that holds a moment's block scales


@functools.lru_cache(maxsize=None)
def _map(signed: bool) -> tuple[float, ...]:
    """bitsandbytes' ``create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)``, sorted."""
    data = []
    for i in range(7):
        items = 2 ** i + 1 if signed else 2 ** (i + 1) + 1
        edges = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        data += (10 ** (-6 + i) * means).tolist()   # float32 products, as bitsandbytes rounds them
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (256 - len(data))
    return tuple(sorted(data))


@functools.lru_cache(maxsize=None)
def _tables(signed: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(the 256 sorted codes, the 255 midpoints between neighbours) on ``device``."""
    code = torch.tensor(_map(signed), dtype=torch.float32, device=device)
    return code, (code[:-1] + code[1:]) / 2


def dynamic_map(signed: bool, device=None) -> torch.Tensor:
    """The 256 sorted code values (float32)."""
    return _tables(signed, torch.device(device or "cpu"))[0].clone()


@functools.lru_cache(maxsize=None)
def _lookup(signed: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's two-level table (uint8 ``low``, float32 ``mid``), indexed by the top 16 bits of a float32 x
    (sign, exponent, 7 fraction bits) read as a signed int16, plus 2^15 (negative x first).

    Each such range of 2^16 consecutive float32 bit patterns holds at most one midpoint of the map (checked here:
    the map's gaps are wider than the ranges), so x's bucket ``bucketize(x, mids)`` = #{mids < x} is ``low`` (the
    bucket of the range's smallest value) plus ``x > mid`` with ``mid = mids[low]`` (+inf when low = 255). That is
    the same count bucketize makes, ties included (x equal to a midpoint goes to the code below it). Ranges of NaN
    get 255 as bucketize gives NaN; the one range holding -inf and signalling NaNs follows -inf (the scaled values
    it is applied to are in [-1, 1] or quiet NaN)."""
    mids = _tables(signed, torch.device("cpu"))[1]
    top = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32)   # index i holds top bits i - 2^15
    first = (top << 16).view(torch.float32)
    last = ((top << 16) | 0xFFFF).view(torch.float32)
    b_first, b_last = torch.bucketize(first, mids), torch.bucketize(last, mids)
    has_nan = first.isnan() | last.isnan()
    assert ((b_first - b_last).abs()[~has_nan] <= 1).all(), "a range holds two midpoints"
    low = torch.where(has_nan, torch.where(first.isnan(), 255, b_first), torch.minimum(b_first, b_last))
    mid = torch.where(low < 255, mids[low.clamp(max=254)], torch.tensor(math.inf))
    return low.to(torch.uint8).to(device), mid.to(device)


#: Elements (de)quantized at a time (rounded down to whole blocks, at least one), so the temporaries of
#: (de)quantizing are O(_CHUNK) whatever E is: one float32, one int64, one float32 and one bool per element.
_CHUNK = 1 << 18


def _step(numel: int, block: int) -> int:
    return min(max(1, _CHUNK // block) * block, max(numel, 1))


def quantize(X: torch.Tensor, signed: bool, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 codes of X's shape, float32 block scales of length ceil(E / B)).

    Per block: a = max |x|, s = x / max(a, 1e-38) (float32; |s| <= 1 or NaN), and the code is #{mids < s} (the
    nearest code, ties to the lower one, as ``torch.bucketize(s, mids)``), read from ``_lookup``'s table."""
    flat = X.reshape(-1)
    n = flat.numel()
    dev = X.device
    q = torch.empty(n, dtype=torch.uint8, device=dev)
    absmax = torch.empty(math.ceil(n / block), dtype=torch.float32, device=dev)
    low, mid = _lookup(signed, dev)
    step = _step(n, block)
    scaled = torch.empty(step, dtype=torch.float32, device=dev)
    index = torch.empty(step, dtype=torch.int64, device=dev)
    upper = torch.empty(step, dtype=torch.float32, device=dev)
    above = torch.empty(step, dtype=torch.bool, device=dev)
    for lo in range(0, n, step):
        m = min(step, n - lo)
        x = flat[lo:lo + m].float()
        s, i, u, a, c = scaled[:m], index[:m], upper[:m], above[:m], q[lo:lo + m]
        full, rest = divmod(m, block)
        b = lo // block
        if full:
            xb = x[:full * block].view(full, block)
            scale = xb.abs().amax(dim=1)
            absmax[b:b + full] = scale
            torch.div(xb, scale.clamp(min=1e-38)[:, None], out=s[:full * block].view(full, block))
        if rest:
            scale = x[full * block:].abs().amax()
            absmax[b + full] = scale
            torch.div(x[full * block:], scale.clamp(min=1e-38), out=s[full * block:])
        torch.bitwise_right_shift(s.view(torch.int32), 16, out=i)
        i.add_(1 << 15)
        torch.index_select(low, 0, i, out=c)
        torch.index_select(mid, 0, i, out=u)
        torch.gt(s, u, out=a)
        c.add_(a)
    return q.view(X.shape), absmax


def dequantize(q: torch.Tensor, absmax: torch.Tensor, signed: bool, block: int,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """code[q] * a_b, in ``dtype`` and q's shape (the product in float32)."""
    flat = q.reshape(-1)
    n = flat.numel()
    out = torch.empty(n, dtype=dtype, device=q.device)
    code = _tables(signed, q.device)[0]
    step = _step(n, block)
    index = torch.empty(step, dtype=torch.int64, device=q.device)
    direct = dtype == torch.float32
    values = out if direct else torch.empty(step, dtype=torch.float32, device=q.device)
    for lo in range(0, n, step):
        m = min(step, n - lo)
        i = index[:m]
        i.copy_(flat[lo:lo + m])
        v = values[lo:lo + m] if direct else values[:m]
        torch.index_select(code, 0, i, out=v)
        full, rest = divmod(m, block)
        b = lo // block
        if full:
            v[:full * block].view(full, block).mul_(absmax[b:b + full, None])
        if rest:
            v[full * block:].mul_(absmax[b + full])
        if not direct:
            out[lo:lo + m] = v
    return out.view(q.shape)


def moment_bytes(numel: int, block: int) -> int:
    """Bytes of one quantized moment of ``numel`` elements: numel + 4 ceil(numel / B)."""
    return numel + 4 * math.ceil(numel / block)


def _quantized(group: dict) -> bool:
    return group["state_bits"] == 8


def pack(state: dict, group: dict) -> dict:
    """Quantize ``state``'s float moments in place when the group asks for 8-bit states; returns ``state``."""
    if not _quantized(group):
        return state
    for key, signed in MOMENTS.items():
        X = state.get(key)
        if X is not None and X.dtype != torch.uint8:
            if isinstance(X, DTensor):
                raise ValueError("state_bits=8 does not support sharded (DTensor) parameters yet")
            state[key], state[key + _SCALE] = quantize(X, signed, int(group["state_block"]))
    return state


@contextmanager
def unpacked(state: dict, group: dict, dtype: torch.dtype):
    """Within the block, ``state``'s moments are float tensors of ``dtype``; on exit they are quantized again."""
    if not _quantized(group):
        yield state
        return
    block = int(group["state_block"])
    for key, signed in MOMENTS.items():
        if key + _SCALE in state and state[key].dtype == torch.uint8:
            state[key] = dequantize(state[key], state[key + _SCALE], signed, block, dtype)
    try:
        yield state
    finally:
        pack(state, group)

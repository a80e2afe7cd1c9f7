"""8-bit block-wise quantized optimizer moments: bitsandbytes' dynamic 8-bit scheme (Dettmers et al. 2022), in torch.

A moment X of E elements is stored as E uint8 codes (X's own shape) plus one float32 scale per block of B elements:

    a_b = max_{i in block b} |X_i|,   q_i = argmin_c |code[c] - X_i / a_b|,   X_i ~ code[q_i] a_b,

so it takes E + 4 ceil(E / B) bytes instead of E s (s = 4 for float32). ``code`` is the dynamic map of
``bitsandbytes.functional.create_dynamic_map``: 256 values in [-1, 1] (signed, first moments) or [0, 1] (unsigned,
second moments) with a dynamic exponent (one bit per decade, from 1e-6 to 1) and the remaining bits a linear
fraction; the nearest code is found by bucketing against the midpoints of the sorted map, as bitsandbytes does.
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


def _blocks(X: torch.Tensor, block: int) -> torch.Tensor:
    """X flattened and zero-padded to (ceil(E / B), B) (padding cannot change a block's max |x|)."""
    flat = X.reshape(-1).float()
    pad = -flat.numel() % block
    return torch.nn.functional.pad(flat, (0, pad)).view(-1, block)


#: Blocks processed at a time, so the float32 temporaries of (de)quantizing stay O(B * _CHUNK) whatever E is.
_CHUNK = 4096


def _chunks(numel: int, block: int):
    """(start, stop, first block) of each slice of at most B * _CHUNK elements (slices start on block edges)."""
    step = block * _CHUNK
    return ((i, min(i + step, numel), i // block) for i in range(0, numel, step))


def quantize(X: torch.Tensor, signed: bool, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 codes of X's shape, float32 block scales of length ceil(E / B))."""
    flat = X.reshape(-1)
    q = torch.empty(flat.numel(), dtype=torch.uint8, device=X.device)
    absmax = torch.empty(math.ceil(flat.numel() / block), dtype=torch.float32, device=X.device)
    mids = _tables(signed, X.device)[1]
    for lo, hi, b in _chunks(flat.numel(), block):
        B = _blocks(flat[lo:hi], block)
        scale = B.abs().amax(dim=1)
        scaled = (B / scale.clamp(min=1e-38)[:, None]).clamp_(-1, 1)
        # 1-D input (2-D is ~50x slower on CPU); int32 indices halve the temporary
        q[lo:hi] = torch.bucketize(scaled.view(-1), mids, out_int32=True)[: hi - lo]
        absmax[b:b + scale.numel()] = scale
    return q.view(X.shape), absmax


def dequantize(q: torch.Tensor, absmax: torch.Tensor, signed: bool, block: int,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """code[q] * a_b, in ``dtype`` and q's shape."""
    flat = q.reshape(-1)
    out = torch.empty(flat.numel(), dtype=dtype, device=q.device)
    code = _tables(signed, q.device)[0]
    for lo, hi, b in _chunks(flat.numel(), block):
        values = _blocks(code[flat[lo:hi].int()], block)
        out[lo:hi] = (values * absmax[b:b + values.shape[0], None]).view(-1)[: hi - lo]
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

"""Argument checks shared by the generators: explicit generators, dtypes, sizes (no global RNG anywhere)."""
from __future__ import annotations

import math
from numbers import Integral, Real

import torch

FLOAT_DTYPES = (torch.float32, torch.float64)


def as_generator(generator, name: str = "generator") -> torch.Generator:
    """A ``torch.Generator`` as given, or a fresh CPU one seeded with a non-negative int; never the global RNG."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, Integral) and not isinstance(generator, bool) and generator >= 0:
        return torch.Generator().manual_seed(int(generator))
    raise ValueError(f"{name} must be a torch.Generator or a non-negative int seed, got {generator!r}")


def check_dtype(dtype, name: str = "dtype") -> torch.dtype:
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_int(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum or \
            (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be an int >= {minimum}{upper}, got {value!r}")
    return int(value)


def check_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
               strict_min: bool = False, strict_max: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    if minimum is not None and (v < minimum or (strict_min and v == minimum)):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value!r}")
    if maximum is not None and (v > maximum or (strict_max and v == maximum)):
        raise ValueError(f"{name} must be {'<' if strict_max else '<='} {maximum}, got {value!r}")
    return v


def check_matrix(X, shape: tuple[int, ...], name: str = "X") -> torch.Tensor:
    """X must be a float32/float64 tensor of exactly ``shape``."""
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {shape}, got {type(X).__name__}")
    if tuple(X.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(X.shape)}")
    if X.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {X.dtype}")
    return X


def check_batch(batch) -> int:
    return check_int(batch, "batch", minimum=1)

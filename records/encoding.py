"""The one JSON encoding of results, and JSON-lines rows that state a run's configuration once.

Values: numbers, strings, booleans, None, lists and dicts; numpy/torch scalars and arrays become numbers and lists;
non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON, and unlike ``null`` it keeps
``inf`` apart from ``nan``). :func:`from_jsonable` turns those strings back into floats.

Rows (``rows.jsonl`` of a probe): a *header row* ``{"kind": "run", "run": <id>, "code_version": ..., "config":
{...}}`` is written when a run opens the file, and the rows after it carry only ``"run"``. :func:`read_rows`
gives every row its run's ``config`` and ``code_version`` back, so readers see what files with the configuration
on each row (the format before header rows, which still load unchanged) gave them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["to_jsonable", "from_jsonable", "dumps", "read_jsonl", "header_row", "read_rows", "HEADER_KIND"]

HEADER_KIND = "run"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy/torch scalars and arrays -> numbers and lists; NaN/inf -> "nan"/"inf"/"-inf";
    paths and ``str`` subclasses -> ``str``; dataclasses -> dicts; anything else -> its ``repr``."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch tensor
        return to_jsonable(obj.detach().cpu().tolist())
    if type(obj).__module__.split(".")[0] == "numpy" and hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "item"):
        try:
            return to_jsonable(obj.item())
        except Exception:  # noqa: BLE001 - not a scalar after all
            pass
    return repr(obj)


def from_jsonable(obj: Any) -> Any:
    """Inverse of the non-finite encoding: "nan"/"inf"/"-inf" strings back to floats (recursively)."""
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def dumps(obj: Any, **kw) -> str:
    """``json.dumps`` of ``to_jsonable(obj)``: strict JSON (never a bare NaN), UTF-8 text kept as is."""
    return json.dumps(to_jsonable(obj), allow_nan=False, ensure_ascii=False, **kw)


def _lines(path: Path):
    """Decoded JSON objects of a JSON-lines file; a torn last line (a killed writer) is skipped."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield from_jsonable(json.loads(line))
            except json.JSONDecodeError:
                if line.endswith("\n"):
                    raise
                return


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every row of a JSON-lines file, non-finite strings decoded; [] if the file does not exist."""
    path = Path(path)
    return list(_lines(path)) if path.exists() else []


def header_row(run: str, code_version: str, config: dict) -> dict:
    """The row that states, once, the configuration and code version of the rows of ``run`` after it."""
    return {"kind": HEADER_KIND, "run": run, "code_version": code_version, "config": config}


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The data rows of a rows file, each with its run's ``config`` and ``code_version`` (header rows dropped).

    A header applies to the rows after it that name its run, until that run's next header (a resumed run may
    write a new one)."""
    headers: dict[str, dict] = {}
    rows = []
    for row in read_jsonl(path):
        if row.get("kind") == HEADER_KIND:
            headers[row["run"]] = {"config": row["config"], "code_version": row["code_version"]}
            continue
        rows.append({**row, **headers.get(row.get("run"), {})})
    return rows

"""The code version stamped on every row, record and checkpoint: one format for the whole workbench."""
from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

__all__ = ["code_version", "git_commit", "git_dirty", "package_version", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package_version() -> str:
    """The installed ``sublab`` distribution's version, ``"unknown"`` when it is not installed."""
    try:
        from importlib.metadata import version
        return version("sublab")
    except Exception:  # noqa: BLE001 - not installed: still a usable label
        return "unknown"


def git_commit() -> str | None:
    """The commit checked out in the source tree, None outside a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (None outside a git checkout)."""
    if git_commit() is None:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def code_version() -> str:
    """``<commit>`` or ``<commit>+dirty`` (tracked files changed) in a git checkout, else ``sublab <version>``.

    Computed once per process: every result of a run carries the same label."""
    commit = git_commit()
    if commit:
        return commit + ("+dirty" if git_dirty() else "")
    return f"sublab {package_version()}"

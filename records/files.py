"""Files that are never torn, never private by accident and never written by two runs at once.

* :func:`atomic_path` / :func:`atomic_write_text`: write a temporary file next to the target, fsync it, give it the
  mode a plain ``open`` would (``0o666 & ~umask``: ``mkstemp`` alone makes it 0600), ``os.replace`` it onto the
  target and fsync the folder. A run killed at any moment leaves the old file or the new one.
* Temporary names carry the writer's pid (``.<name>.<pid>.<random>.tmp``); :func:`remove_stale_temporaries` deletes
  those whose writer is no longer alive (a SIGKILL mid-write leaves one behind). A pid is local to one machine:
  on a file system shared by several machines, run one writer per folder.
* :func:`lock_folder`: an advisory ``fcntl.flock`` on ``<folder>/.sublab.lock`` held for a whole run (the file is
  removed on release). The kernel releases the lock when the holder exits or is killed, so a crashed run never
  blocks the next one; a second writer gets :class:`FolderBusy` with the holder's pid.
* :func:`writable_folder` / :func:`writable_file`: check an output location by creating a file in it, before any
  work is done (``os.access`` is not enough: it says yes to root on a read-only mount).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write_text", "remove_stale_temporaries", "lock_folder", "FolderBusy",
           "writable_folder", "writable_file", "LOCK_NAME"]

LOCK_NAME = ".sublab.lock"
_TEMP = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp$")  # .<name>.<pid>.<mkstemp's 8 characters>.tmp


def _umask() -> int:
    """The process umask, read from /proc where possible (``os.umask`` can only read it by setting it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` (mode ``0o666 & ~umask``, fsynced
    file and folder); on any error it is removed and an existing ``path`` is left untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writers that are no longer alive, in ``folder`` and its direct subfolders (a
    run folder and, for ``verify``, its ``claims/``, ``rows/`` and ``figures/``); returns them."""
    removed = []
    folder = Path(folder)
    for tmp in [*folder.glob(".*.tmp"), *folder.glob("*/.*.tmp")]:
        match = _TEMP.match(tmp.name)
        if match and tmp.is_file() and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


class FolderBusy(RuntimeError):
    """Another live process holds the output folder's lock."""


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, what: str = "run") -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if needed) for the ``with`` block; stale temporary files are
    removed once it is held. ``what`` names this run in the message another process gets: :class:`FolderBusy`
    with the holder's pid and ``what``.

    The lock file exists while the lock is held and is removed on release (one a killed holder leaves behind is
    reused); a lock taken on a file that was removed meanwhile is retried on the current one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = _acquire(folder / LOCK_NAME)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        remove_stale_temporaries(folder)
        yield folder
    finally:
        with contextlib.suppress(FileNotFoundError):
            (folder / LOCK_NAME).unlink()
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(lock: Path) -> int:
    """A descriptor of ``lock`` holding its exclusive flock (never blocks); FolderBusy, naming the holder's pid and
    what it runs (the lock file's content), if another process holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid, _, what = os.pread(fd, 200, 0).decode(errors="replace").strip().partition(" ")
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise FolderBusy(f"{lock.parent} is in use by another {what or 'run'} (pid {pid or 'unknown'}); wait "
                             f"for it to finish or choose another output folder") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed this file while we waited for it: lock the current one


def writable_folder(path: str | os.PathLike, option: str) -> Path:
    """Create ``path`` if needed and prove it writable by creating a file in it; raises ValueError naming
    ``option`` (e.g. ``"--out"``) when it is a file, cannot be created or is read-only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file; a folder is needed")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: not a writable folder ({exc.strerror or exc})") from None
    return path


def writable_file(path: str | os.PathLike, option: str) -> Path:
    """Check that the file ``path`` can be written (its folder is writable, it is not a folder); ValueError if not."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; a file name is needed")
    writable_folder(path.parent if str(path.parent) else Path("."), option)
    return path

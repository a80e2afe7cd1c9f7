"""Provenance and I/O shared by ``probes``, ``analysis`` and ``claims`` (imports the standard library, torch and
``subspace`` only, so every layer of the workbench can use it).

* :mod:`records.provenance`: the code version stamped on every result.
* :mod:`records.files`: atomic writes that respect the umask, clean-up of dead writers' temporary files, the
  output-folder lock and writability checks made before any work.
* :mod:`records.encoding`: the one JSON encoding of results (NaN/inf as ``"nan"``/``"inf"``/``"-inf"``) and JSON-lines
  rows that keep a run's configuration once, in a header row.
* :mod:`records.tensors`: the dtype map (``subspace.DTYPES``) and optimizer-state bytes.
* :mod:`records.options`: argument types, the help formatter and the device check of every ``sublab`` subcommand.
"""
from .encoding import dumps, from_jsonable, header_row, read_jsonl, read_rows, to_jsonable
from .files import (FolderBusy, atomic_path, atomic_write_text, lock_folder, remove_stale_temporaries,
                    writable_file, writable_folder)
from .provenance import code_version, git_commit, git_dirty, package_version

__all__ = ["code_version", "git_commit", "git_dirty", "package_version", "atomic_path", "atomic_write_text",
           "remove_stale_temporaries", "lock_folder", "FolderBusy", "writable_folder", "writable_file", "dumps",
           "to_jsonable", "from_jsonable", "read_jsonl", "header_row", "read_rows", "DTYPES", "state_bytes"]


def __getattr__(name: str):
    """``DTYPES`` and ``state_bytes`` on first use: importing ``records`` does not import torch (the ``sublab``
    entry point stays light)."""
    if name in ("DTYPES", "state_bytes"):
        from . import tensors
        return getattr(tensors, name)
    raise AttributeError(f"module 'records' has no attribute {name!r}")

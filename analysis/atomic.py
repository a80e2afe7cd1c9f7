"""Atomic file writes for ``analysis`` (``analysis.plotting`` saves figures with it): ``records.atomic_path``,
re-exported; see :mod:`records.files`."""
from records import atomic_path

__all__ = ["atomic_path"]

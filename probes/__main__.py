"""``python -m probes ...`` (and ``torchrun ... -m probes ...``): the ``sublab probe`` command without the claims CLI."""
import sys

from .cli import _standalone

sys.exit(_standalone())

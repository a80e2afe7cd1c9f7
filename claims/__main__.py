"""``python -m claims`` is the same as ``sublab``."""
import sys

from .cli import main

sys.exit(main())

"""``python -m gateway`` is the same as the ``isogw`` command."""

import sys

from gateway.entry_point import run

sys.exit(run())

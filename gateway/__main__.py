"""``python -m gateway`` is the same as the ``isogw`` command."""

import sys

from gateway.cli import main

sys.exit(main())

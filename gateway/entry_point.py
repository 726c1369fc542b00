"""The ``isogw`` command and ``python -m gateway``: Ctrl-C while the command is still loading
(the schemas and libraries take a second or two) ends it quietly, as it does later on."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130
"""As a shell reports a command stopped by Ctrl-C (128 + SIGINT)."""


def run() -> int:
    try:
        from gateway.cli import main

        return main()
    except KeyboardInterrupt:
        sys.stderr.write("isogw: interrupted\n")
        return EXIT_INTERRUPTED

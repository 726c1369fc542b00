"""The ``isogw`` command and ``python -m gateway``: Ctrl-C while the command is still loading
(the schemas and libraries take a second or two) ends it quietly, as it does later on; so does
a reader that stops reading the output (``isogw core message … --json | head``)."""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130
"""As a shell reports a command stopped by Ctrl-C (128 + SIGINT)."""
EXIT_BROKEN_PIPE = 141
"""As a shell reports a command whose reader went away (128 + SIGPIPE)."""


def run() -> int:
    try:
        from gateway.cli import main

        status = main()
        sys.stdout.flush()  # here, where a reader that went away is handled
        return status
    except KeyboardInterrupt:
        sys.stderr.write("isogw: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Nothing more can be written; the interpreter's final flush must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE

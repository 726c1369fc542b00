"""Log lines that a sender cannot forge.

The gateway's logs are ``key=value`` lines that operators and their tools read one line per
event. Some values are text a sender chose (a message id, a reference, a reason text from a
participant's admi.002): a schema lets a newline or a space through, and without care a
message id such as ``X\\nERROR event=authentication-alarm …`` would write a second, forged
line, or ``X outcome=accepted`` a forged field.

- ``sender_text`` writes such a value as it is when it is a plain token, and JSON-quoted
  otherwise (quotes, backslashes and control characters escaped; Chinese and other text as it
  is, so operators can read it).
- ``OneLineFormatter`` escapes every control character left in a record's message, so one
  record is one line whatever was logged (a traceback still follows on its own lines).
"""

from __future__ import annotations

import json
import logging
import re

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
"""What ``isogw serve`` writes for each record: the gateway runs several processes that log to
the same stream, so each line says which one wrote it: its process id, as ``/healthz`` and the
``isogw_process_info`` metric give it."""

PLAIN = re.compile(r"[A-Za-z0-9._:/@+-]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def sender_text(value: str) -> str:
    """``value`` for a ``key=value`` log field: bare if it is a plain token, else quoted."""
    return value if PLAIN.fullmatch(value) else one_line(json.dumps(value, ensure_ascii=False))


def _escaped(character: re.Match[str]) -> str:
    return json.dumps(character.group())[1:-1]


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\u0000``…): one line."""
    return CONTROL.sub(_escaped, text)


class OneLineFormatter(logging.Formatter):
    """A formatter whose record messages never break the line (see the module)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = one_line(record.message)
        return super().formatMessage(record)

"""Log lines a sender cannot forge: its text is quoted when it is not a plain token, and a
record's message never breaks the line."""

from __future__ import annotations

import logging
import sys

from gateway.log_text import OneLineFormatter, sender_text


def test_a_plain_token_is_written_as_it_is() -> None:
    for value in ("B301290000007202611230042", "-", "line:40/Document/Cdtr", "a.b+c@d"):
        assert sender_text(value) == value


def test_anything_else_is_quoted_and_escaped() -> None:
    assert sender_text("X outcome=accepted") == '"X outcome=accepted"'
    assert sender_text('say "hi"') == '"say \\"hi\\""'
    assert sender_text("X\nERROR event=forged") == '"X\\nERROR event=forged"'
    assert sender_text("") == '""'
    # Chinese stays readable; line separators other than \\n are escaped too.
    assert sender_text("中国银行 无法入账") == '"中国银行 无法入账"'
    assert sender_text("a\u2028b\x85c") == '"a\\u2028b\\u0085c"'


def record(message: str, *arguments: object, error: bool = False) -> logging.LogRecord:
    information = None
    if error:
        try:
            raise ValueError("boom")
        except ValueError:
            information = sys.exc_info()
    return logging.LogRecord(
        "isogw.http", logging.WARNING, __file__, 1, message, arguments, information
    )


def test_a_record_is_one_line_whatever_was_logged() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    text = formatter.format(
        record("event=submit message_id=%s", "X\r\nERROR event=forged\u2028x\x00y\x85z")
    )
    assert (
        text == "WARNING event=submit message_id=X\\r\\nERROR event=forged\\u2028x\\u0000y\\u0085z"
    )
    assert len(text.splitlines()) == 1


def test_a_traceback_still_follows_on_its_own_lines() -> None:
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    lines = formatter.format(record("event=internal-error id=%s", "a\nb", error=True)).splitlines()
    assert lines[0] == "WARNING event=internal-error id=a\\nb"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"

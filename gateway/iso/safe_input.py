"""The guarded byte stream every parse reads from (DESIGN §7).

Before the parser sees a byte, the prolog is checked: UTF-8 only (a UTF-8 byte-order mark or
an ``encoding="UTF-8"`` declaration is accepted, anything else is refused), no DOCTYPE and no
processing instruction. While the parser reads, the stream counts bytes and start tags: an
input larger than ``max_message_bytes`` or one that makes the parser hold more than
``max_elements_in_memory`` elements between two transaction boundaries is stopped.
Counting is done on whole chunks with ``bytes.count``, so it costs next to nothing.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from gateway.configuration.settings import ParserSettings
from gateway.iso.problems import Problem

_UTF8_BOM = b"\xef\xbb\xbf"
_FOREIGN_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x2b\x2f\x76")
_DECLARATION = re.compile(rb"\A<\?xml\s[^>]*?\?>", re.DOTALL)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_WHITESPACE = b" \t\r\n"


class UnsafeInputError(Exception):
    """The input breaks a parser rule; ``problem`` says which and where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


class GuardedStream:
    """A read-only stream over ``source`` that enforces the parser bounds."""

    def __init__(
        self, source: BinaryIO, limits: ParserSettings, count_elements: bool = True
    ) -> None:
        self._source = source
        self._limits = limits
        self._count_elements = count_elements
        self._started = False
        self.bytes_read = 0
        self.lines_read = 1
        self._elements_held = 0

    def release(self) -> None:
        """Called at a transaction boundary, once the parser's elements have been freed."""
        self._elements_held = 0

    def read_all(self) -> bytes:
        """Read everything (for small inputs parsed whole), with the same checks."""
        chunks = []
        while chunk := self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    def read(self, size: int = -1) -> bytes:
        if not self._started:
            self._started = True
            chunk = self._read_prolog()
        else:
            chunk = self._source.read(self._limits.read_chunk_bytes)
        self._account(chunk)
        return chunk

    def _account(self, chunk: bytes) -> None:
        self.bytes_read += len(chunk)
        self.lines_read += chunk.count(b"\n")
        if self.bytes_read > self._limits.max_message_bytes:
            raise UnsafeInputError(
                Problem(
                    "FF01",
                    f"input is larger than the limit of {self._limits.max_message_bytes} bytes "
                    "(setting parser.max_message_bytes)",
                    self.lines_read,
                )
            )
        if not self._count_elements:
            return
        self._elements_held += chunk.count(b"<") - chunk.count(b"</")
        if self._elements_held > self._limits.max_elements_in_memory:
            raise UnsafeInputError(
                Problem(
                    "FF01",
                    "too many elements without a transaction boundary (more than "
                    f"{self._limits.max_elements_in_memory}, setting "
                    "parser.max_elements_in_memory)",
                    self.lines_read,
                )
            )

    def _read_prolog(self) -> bytes:
        head = self._source.read(max(self._limits.read_chunk_bytes, self._limits.max_prolog_bytes))
        if not head.strip():
            raise UnsafeInputError(Problem("FF01", "input is empty", 1))
        for bom in _FOREIGN_BOMS:
            if head.startswith(bom):
                raise UnsafeInputError(
                    Problem("FF01", "input is not UTF-8 (byte-order mark of another encoding)", 1)
                )
        body = head[len(_UTF8_BOM) :] if head.startswith(_UTF8_BOM) else head
        position = 0
        declaration = _DECLARATION.match(body)
        if declaration:
            encoding = _ENCODING.search(declaration.group(0))
            if encoding and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
                name = encoding.group(1).decode("ascii", "replace")
                raise UnsafeInputError(
                    Problem("FF01", f"encoding {name!r} is not allowed; only UTF-8 is accepted", 1)
                )
            position = declaration.end()
        elif body.startswith(b"<?xml"):
            raise UnsafeInputError(Problem("FF01", "malformed XML declaration", 1))
        self._check_prolog(body, position)
        return head

    def _check_prolog(self, body: bytes, position: int) -> None:
        limit = self._limits.max_prolog_bytes
        while True:
            while position < len(body) and body[position] in _WHITESPACE:
                position += 1
            line = body.count(b"\n", 0, position) + 1
            if position >= min(len(body), limit):
                raise UnsafeInputError(
                    Problem(
                        "FF01",
                        f"no root element within the first {limit} bytes "
                        "(setting parser.max_prolog_bytes)",
                        line,
                    )
                )
            if body.startswith(b"<!--", position):
                end = body.find(b"-->", position)
                if end < 0:
                    raise UnsafeInputError(Problem("FF01", "unterminated comment in prolog", line))
                position = end + 3
            elif body.startswith(b"<!", position):
                raise UnsafeInputError(
                    Problem(
                        "FF01", "DOCTYPE declarations are not allowed (DTDs and entities)", line
                    )
                )
            elif body.startswith(b"<?", position):
                raise UnsafeInputError(
                    Problem("FF01", "processing instructions are not allowed", line)
                )
            elif body.startswith(b"<", position):
                return
            else:
                raise UnsafeInputError(Problem("FF01", "content before the root element", line))

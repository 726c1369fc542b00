"""The well-formedness of a streamed input, asked when its streaming pass went wrong.

lxml's parser with an XSD attached (``iterparse(..., schema=...)``, which validates a large
file in one streaming pass) does not report well-formedness errors (seen with lxml 6.1 and
libxml2 2.14): at a bare ``&`` or a file cut short it stops giving events and raises nothing,
so a truncated package passed as valid. The streaming pass therefore notes whether its input
ended as a document does (the root element's end seen, no error, no bound met); when it did
not, this second pass reads the input again with a plain parser that keeps nothing (a target
without callbacks: libxml2 parses at full speed and builds no tree) for the first syntax
error and its line. A well-formed input costs nothing more.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway.configuration.settings import ParserSettings
from gateway.iso.input_source import InputSource
from gateway.iso.problems import Problem
from gateway.iso.safe_input import GuardedStream, UnsafeInputError
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS, syntax_text

_POSITION = re.compile(r", line \d+, column \d+$")


class _KeepNothing:
    """A parser target with no start, end or data method: no event reaches Python."""

    def close(self) -> None:
        return None


def first_syntax_error(source: InputSource, limits: ParserSettings) -> Problem | None:
    """The input's first well-formedness error (FF01 with its line), or None. Read within
    the same bounds as the streaming pass; when one stops the reading, only an error before
    the last line read counts (a well-formed beginning ending there is not one)."""
    parser = etree.XMLParser(target=_KeepNothing(), **SAFE_PARSE_OPTIONS)
    last_line = 1
    with source.open() as stream:
        guarded = GuardedStream(stream, limits, count_elements=False)
        try:
            while chunk := guarded.read():
                last_line += chunk.count(b"\n")
                parser.feed(chunk)
            parser.close()  # lxml's feed parser tells its first error when closed
        except UnsafeInputError:
            try:
                parser.close()
            except etree.XMLSyntaxError as error:
                problem = _problem(error)
                return problem if 0 < problem.line < last_line else None
            return None
        except etree.XMLSyntaxError as error:
            return _problem(error)
    return None


def _problem(error: etree.XMLSyntaxError) -> Problem:
    # The feed parser's exception is its first error, its position appended to the text.
    message = _POSITION.sub("", error.msg)
    return Problem("FF01", f"not well-formed XML: {syntax_text(message)}", error.lineno or 0)

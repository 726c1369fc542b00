"""The parser options every parse of untrusted input uses (DESIGN §7)."""

from __future__ import annotations

from typing import Any

SAFE_PARSE_OPTIONS: dict[str, Any] = {
    "no_network": True,
    "resolve_entities": False,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": False,
    "remove_pis": False,
}
"""No network, no entity expansion, no DTD, and libxml2's own caps stay on."""

MAX_DEPTH = 256
"""Nesting depth libxml2 accepts with ``huge_tree`` off (fixed by libxml2; no accepted message
comes near it: the deepest path in the schemas is about 15 levels). Deeper input is refused
as not well-formed (FF01)."""

MAX_TEXT_BYTES = 10_000_000
"""Largest text node libxml2 accepts with ``huge_tree`` off (fixed by libxml2)."""

_HUGE_ADVICE = ", use XML_PARSE_HUGE option"


def syntax_text(message: str) -> str:
    """libxml2's text for a syntax error, in the terms of this product: its advice to turn on
    huge trees, which a user cannot do and the gateway never does, becomes the bound met."""
    if message.startswith("Excessive depth in document"):
        return (
            f"elements nested deeper than {MAX_DEPTH} levels (the parser's depth bound; no "
            "ISO 20022 message nests that deep)"
        )
    return message.replace(_HUGE_ADVICE, " (a fixed bound of the parser)")

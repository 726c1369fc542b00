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
"""No network, no entity expansion, no DTD; libxml2's own depth and text-size caps stay on
(``huge_tree`` off limits nesting to 256 levels and a text node to 10 MB)."""

"""Codec paths: ``A/B/C``, ``A/@Ccy`` and ``A/chq:Chq/ChqNb`` turned into Clark names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class PathError(ValueError):
    """A codec path cannot be compiled."""


@dataclass(frozen=True, slots=True)
class CompiledPath:
    text: str
    steps: tuple[str, ...]
    """Element steps as Clark names, ``{namespace}LocalName``."""

    attribute: str | None
    """Attribute name at the end of the path (``Ccy`` for ``Amt/@Ccy``)."""


def compile_path(text: str, namespace: str, prefixes: Mapping[str, str]) -> CompiledPath:
    """Compile a path; unprefixed steps are in ``namespace``; a prefixed step switches to it.

    A step after a prefixed one inherits that step's namespace, so ``Envlp/chq:Chq/ChqNb``
    reads ``ChqNb`` in the cheque namespace.
    """
    parts = text.split("/")
    attribute = None
    if parts[-1].startswith("@"):
        attribute = parts.pop()[1:]
        if not _NAME.fullmatch(attribute):
            raise PathError(f"path {text!r}: bad attribute name")
    if not parts or any(not part for part in parts):
        raise PathError(f"path {text!r}: empty step")
    steps = []
    current = namespace
    for part in parts:
        prefix, _, local = part.rpartition(":")
        if prefix:
            if prefix not in prefixes:
                raise PathError(f"path {text!r}: unknown prefix {prefix!r}")
            current = prefixes[prefix]
        if not _NAME.fullmatch(local):
            raise PathError(f"path {text!r}: bad element name {local!r}")
        steps.append(f"{{{current}}}{local}")
    return CompiledPath(text, tuple(steps), attribute)


def local_name(clark: str) -> str:
    return clark.rpartition("}")[2]
